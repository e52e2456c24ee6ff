import Autograd
import NN
import Tensors

/// Attention-based multiple-instance pooling (Ilse et al., ICML 2018): a bag of instance
/// features h_i [N, D], packed bag after bag with `offsets`, becomes one vector per bag,
///   a_i = softmax over the bag of wᵀ·tanh(V·h_i),   z_b = Σ_{i in b} a_i·h_i   → [B, D].
/// The weights say which tiles the model looked at. Parameters `<name>.attention` (V, D → L)
/// and `<name>.score` (w, L → 1).
public final class AttentionMIL: Module {
    public let attention: Linear, score: Linear

    public init(_ arena: ParameterArena, _ name: String, features: Int, hidden: Int) {
        attention = Linear(arena, "\(name).attention", features, hidden)
        score = Linear(arena, "\(name).score", hidden, 1)
    }

    public var children: [any Module] { [attention, score] }

    /// Pooled features [bags, D] and each instance's weight [N].
    public func callAsFunction(_ instances: Variable, offsets: [Int]) -> (pooled: Variable, weights: Variable) {
        let n = instances.shape[0]
        let weights = score(attention(instances).tanh()).reshaped([n]).segmentSoftmax(offsets: offsets)
        return (segmentWeightedSum(weights: weights, values: instances, offsets: offsets), weights)
    }
}
