import Autograd
import Tensors

/// y = x·Wᵀ + b over the last axis: x [..., in] → [..., out]; W [out, in] as PyTorch stores it.
/// Initialised as PyTorch's default: W, b ~ U(−1/√in, 1/√in).
public final class Linear: Module {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ arena: ParameterArena, _ name: String, _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        let bound = 1 / Double(inFeatures).squareRoot()
        weight = arena.declare("\(name).weight", shape: [outFeatures, inFeatures], initializer: .uniform(bound: bound))
        self.bias = bias ? arena.declare("\(name).bias", shape: [outFeatures], initializer: .uniform(bound: bound)) : nil
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        let y = x.matmul(weight.variable, transposeOther: true)
        return bias.map { y + $0.variable } ?? y
    }
}

/// A token table: indices → rows of W [count, dim], initialised N(0, 1) as PyTorch does.
public final class Embedding: Module {
    public let weight: Parameter

    public init(_ arena: ParameterArena, _ name: String, count: Int, dim: Int) {
        weight = arena.declare("\(name).weight", shape: [count, dim], initializer: .normal(std: 1))
    }

    /// indices → [indices.count, dim]
    public func callAsFunction(_ indices: [Int]) -> Variable { weight.variable.gatherRows(indices) }
}

/// Inverted dropout: in training, zeroes each element with probability p and scales the rest by
/// 1/(1 − p); the identity otherwise. The mask comes from Philox keyed by the caller's
/// `RandomKey` (seed, step, sample), so it is the same on any rank and after a resume.
public final class Dropout: ModalModule {
    public let probability: Double
    public var isTraining = true

    public init(_ probability: Double) {
        precondition((0..<1).contains(probability), "dropout probability \(probability) must be in [0, 1)")
        self.probability = probability
    }

    public func callAsFunction(_ x: Variable, key: RandomKey) -> Variable {
        guard isTraining, probability > 0 else { return x }
        var key = key
        key.stream = RandomStream.dropout
        let keep = 1 / (1 - probability)
        let mask = key.uniform(x.value.count).map { $0 < probability ? 0 : keep }
        return x * Variable(Tensor(shape: x.shape, values: mask, dtype: x.dtype))
    }
}
