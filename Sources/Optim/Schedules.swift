import RealModule
import Tensors

/// Linear warm-up to `peak`, then cosine decay to `floor` at `totalSteps` (steps count from 0).
public struct WarmupCosine: Sendable, Codable, Equatable {
    public var peak, floor: Double
    public var warmupSteps, totalSteps: Int

    public init(peak: Double, warmupSteps: Int, totalSteps: Int, floor: Double = 0) {
        precondition(warmupSteps >= 0 && totalSteps > warmupSteps, "warm-up \(warmupSteps) must be shorter than \(totalSteps) steps")
        (self.peak, self.warmupSteps, self.totalSteps, self.floor) = (peak, warmupSteps, totalSteps, floor)
    }

    /// The learning rate for `step`.
    public func learningRate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let progress = min(1, Double(step - warmupSteps) / Double(totalSteps - warmupSteps))
        return floor + (peak - floor) * (1 + Double.cos(.pi * progress)) / 2
    }
}

/// Gradient clipping by global norm: if ‖g‖₂ > `maxNorm`, scales g by maxNorm/(‖g‖₂ + 1e-6)
/// (as `torch.nn.utils.clip_grad_norm_`). Returns the norm before clipping. The norm is
/// accumulated in Double.
@discardableResult
public func clipGradientNorm(_ gradients: Tensor, maxNorm: Double) -> Double {
    let norm = gradients.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot()
    if norm > maxNorm {
        let scaled = gradients.map(.affine(scale: maxNorm / (norm + 1e-6), shift: 0))
        gradients.assign(scaled.scalars)
    }
    return norm
}

/// An exponential moving average of the parameters (for diffusion sampling):
/// shadow ← decay·shadow + (1 − decay)·parameters, starting from a copy of the parameters.
public struct ExponentialMovingAverage {
    public let decay: Double
    public let shadow: Tensor

    public init(of parameters: Tensor, decay: Double) {
        precondition((0...1).contains(decay), "EMA decay \(decay) must be in [0, 1]")
        self.decay = decay
        shadow = parameters.copy()
    }

    public func update(from parameters: Tensor) {
        shadow.assign(Tensor.binary(shadow.map(.affine(scale: decay, shift: 0)),
                                    parameters.map(.affine(scale: 1 - decay, shift: 0)), .add).scalars)
    }
}
