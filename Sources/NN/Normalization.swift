import Autograd
import Tensors

/// Normalisation layers. LayerNorm standardises rows with the `standardizedRows` op, then applies
/// a per-feature affine γ·x̂ + β; GroupNorm and BatchNorm (in training) are each a single fused op
/// with their affine (`Variable.groupNorm`, `Variable.batchNorm`).

/// LayerNorm over the last axis of size `dim`.
public final class LayerNorm: Module {
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
public final class GroupNorm: Module {
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

/// BatchNorm over the channels at axis 1 of [B, C] (`BatchNorm1d`) or [B, C, H, W]
/// (`BatchNorm2d`), as PyTorch's: in training, each channel is standardised with the mean and
/// biased variance of its B·H·W values in the batch, and the running averages (arena buffers, so
/// the runtime can average them over workers) move toward the batch's mean and *unbiased*
/// variance by `momentum`; in evaluation, the running averages standardise. Then γ·x̂ + β per
/// channel. A batch with one value per channel has no statistics of its own (PyTorch raises): in
/// training it is standardised with the running averages, as in evaluation, and leaves them
/// unchanged.
///
/// In training, statistics, standardisation and affine are one fused op over the input in its own
/// layout (`Variable.batchNorm`); [B, F] is the case H·W = 1.
public final class BatchNorm: ModalModule {
    public let weight: Parameter, bias: Parameter
    public let runningMean: Buffer, runningVariance: Buffer
    public let epsilon, momentum: Double
    public var isTraining = true

    public init(_ arena: ParameterArena, _ name: String, _ channels: Int, epsilon: Double = 1e-5, momentum: Double = 0.1) {
        weight = arena.declare("\(name).weight", shape: [channels], initializer: .ones)
        bias = arena.declare("\(name).bias", shape: [channels], initializer: .zeros)
        runningMean = arena.declareBuffer("\(name).running_mean", shape: [channels], value: 0)
        runningVariance = arena.declareBuffer("\(name).running_var", shape: [channels], value: 1)
        self.epsilon = epsilon
        self.momentum = momentum
    }

    /// x [B, C, …] → the same shape.
    public func callAsFunction(_ x: Variable) -> Variable {
        let channels = weight.value.count
        // The model wires each BatchNorm to the layer before it; no input can change a channel count.
        precondition(x.shape.count >= 2 && x.shape[1] == channels, "BatchNorm of \(channels) channels on \(x.shape)")
        let values = x.value.count / channels
        if isTraining && values > 1 {
            let (output, mean, variance) = x.batchNorm(weight: weight.variable, bias: bias.variable, epsilon: epsilon)
            blend(runningMean.value, toward: mean)
            blend(runningVariance.value, toward: variance.map(.affine(scale: Double(values) / Double(values - 1), shift: 0)))
            return output
        }
        let perChannel = [channels] + Array(repeating: 1, count: x.shape.count - 2)  // broadcasts over [B, C, …]
        let inverseStd = runningVariance.value.map(.affine(scale: 1, shift: epsilon)).map(.power(-0.5))
        let normalized = (x - Variable(runningMean.value.reshaped(perChannel))) * Variable(inverseStd.reshaped(perChannel))
        return normalized * weight.variable.reshaped(perChannel) + bias.variable.reshaped(perChannel)
    }

    /// running ← (1 − momentum)·running + momentum·batch
    private func blend(_ running: Tensor, toward batch: Tensor) {
        let updated = Tensor.binary(running.map(.affine(scale: 1 - momentum, shift: 0)),
                                    batch.map(.affine(scale: momentum, shift: 0)), .add)
        running.assign(updated.scalars)
    }
}

/// BatchNorm over [B, F] (PyTorch's `BatchNorm1d`).
public typealias BatchNorm1d = BatchNorm
/// BatchNorm over [B, C, H, W], statistics per channel over (B, H, W) (PyTorch's `BatchNorm2d`).
public typealias BatchNorm2d = BatchNorm
