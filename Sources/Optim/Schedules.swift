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
    switch gradients.dtype {
    case .float32: clip(gradients.buffer(Float.self), maxNorm)
    case .float64: clip(gradients.buffer(Double.self), maxNorm)
    }
}

private func clip<T: TensorScalar>(_ g: UnsafeMutableBufferPointer<T>, _ maxNorm: Double) -> Double {
    var squares = 0.0
    for x in g { squares += Double(x) * Double(x) }
    let norm = squares.squareRoot()
    if norm > maxNorm {
        let scale = T(maxNorm / (norm + 1e-6))
        for i in g.indices { g[i] *= scale }
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
        precondition(parameters.count == shadow.count, "EMA of \(shadow.count) elements updated from \(parameters.count)")
        switch shadow.dtype {
        case .float32: blend(shadow.buffer(Float.self), parameters.buffer(Float.self))
        case .float64: blend(shadow.buffer(Double.self), parameters.buffer(Double.self))
        }
    }

    private func blend<T: TensorScalar>(_ s: UnsafeMutableBufferPointer<T>, _ p: UnsafeMutableBufferPointer<T>) {
        let (d, e) = (T(decay), T(1 - decay))
        for i in s.indices { s[i] = d * s[i] + e * p[i] }
    }
}
