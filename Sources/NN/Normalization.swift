import Autograd
import Tensors

/// Normalisation layers. LayerNorm and BatchNorm standardise runs of elements with the shared
/// `standardizedRows` op, then apply a per-feature affine γ·x̂ + β; GroupNorm, the hot one in
/// the UNets, is a single fused op (`Variable.groupNorm`).

/// LayerNorm over the last axis of size `dim`.
public final class LayerNorm {
    public let weight: Parameter, bias: Parameter
    public let epsilon: Double

    public init(_ arena: ParameterArena, _ name: String, _ dim: Int, epsilon: Double = 1e-5) {
        weight = arena.declare("\(name).weight", shape: [dim], initializer: .ones)
        bias = arena.declare("\(name).bias", shape: [dim], initializer: .zeros)
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        x.standardizedRows(x.shape.last!, epsilon: epsilon).output * weight.variable + bias.variable
    }
}

/// GroupNorm over [B, C, H, W]: statistics per sample and group of C/groups channels.
public final class GroupNorm {
    public let groups: Int
    public let weight: Parameter, bias: Parameter
    public let epsilon: Double

    public init(_ arena: ParameterArena, _ name: String, groups: Int, channels: Int, epsilon: Double = 1e-5) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels in \(groups) groups")
        self.groups = groups
        weight = arena.declare("\(name).weight", shape: [channels], initializer: .ones)
        bias = arena.declare("\(name).bias", shape: [channels], initializer: .zeros)
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        x.groupNorm(groups: groups, weight: weight.variable, bias: bias.variable, epsilon: epsilon)
    }
}

/// BatchNorm over [B, F]: in training, statistics of the batch (and running averages updated with
/// `momentum`, the variance unbiased, as PyTorch); in evaluation, the running averages. A
/// one-row batch has no statistics of its own (PyTorch raises): in training it is normalised with
/// the running averages, as in evaluation, and leaves them unchanged.
public final class BatchNorm1d {
    public let weight: Parameter, bias: Parameter
    public let runningMean: Buffer, runningVariance: Buffer
    public let epsilon, momentum: Double
    public var isTraining = true

    public init(_ arena: ParameterArena, _ name: String, _ features: Int, epsilon: Double = 1e-5, momentum: Double = 0.1) {
        weight = arena.declare("\(name).weight", shape: [features], initializer: .ones)
        bias = arena.declare("\(name).bias", shape: [features], initializer: .zeros)
        runningMean = arena.declareBuffer("\(name).running_mean", shape: [features], value: 0)
        runningVariance = arena.declareBuffer("\(name).running_var", shape: [features], value: 1)
        self.epsilon = epsilon
        self.momentum = momentum
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        let batch = x.shape[0]
        let normalized: Variable
        if isTraining && batch > 1 {
            let (columns, mean, variance) = x.permuted([1, 0]).standardizedRows(batch, epsilon: epsilon)
            normalized = columns.permuted([1, 0])
            let unbiased = variance.map(.affine(scale: Double(batch) / Double(batch - 1), shift: 0))
            blend(runningMean.value, toward: mean)
            blend(runningVariance.value, toward: unbiased)
        } else {
            let inverseStd = runningVariance.value.map(.affine(scale: 1, shift: epsilon)).map(.power(-0.5))
            normalized = (x - Variable(runningMean.value)) * Variable(inverseStd)
        }
        return normalized * weight.variable + bias.variable
    }

    /// running ← (1 − momentum)·running + momentum·batch
    private func blend(_ running: Tensor, toward batch: Tensor) {
        let updated = Tensor.binary(running.map(.affine(scale: 1 - momentum, shift: 0)),
                                    batch.map(.affine(scale: momentum, shift: 0)), .add)
        running.assign(updated.scalars)
    }
}
