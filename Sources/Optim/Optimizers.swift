import Tensors

/// Update rules over flat buffers: one loop over a contiguous range of the parameter arena,
/// its gradients and the rule's moments (so ZeRO-1 can give each worker its own slice).
/// Semantics follow PyTorch's `torch.optim` (defaults, bias correction, decoupled decay).
public protocol Optimizer {
    /// Applies one update to `parameters` given `gradients` (same shape, flat), `runs` of them
    /// (tiling all elements, in order) each at `lr` × its scale and with or without weight
    /// decay: parameter groups. The optimizer's state covers exactly these elements.
    mutating func step(parameters: Tensor, gradients: Tensor, lr: Double, runs: [UpdateRun])
    /// Steps taken so far; with `state(like:)` all a checkpoint needs to restore the rule.
    var stepCount: Int { get set }
    /// The rule's per-element state, named, each shaped like `parameters` (allocated at zero
    /// before the first step). Writing into these tensors restores a saved state.
    mutating func state(like parameters: Tensor) -> [(name: String, values: Tensor)]
}

/// Contiguous elements updated alike (one parameter group's share of a flat buffer): the
/// learning rate is multiplied by `lrScale`; `decay` false turns weight decay off (norms, biases).
public struct UpdateRun: Sendable, Equatable {
    public var range: Range<Int>
    public var lrScale: Double
    public var decay: Bool

    public init(_ range: Range<Int>, lrScale: Double = 1, decay: Bool = true) { (self.range, self.lrScale, self.decay) = (range, lrScale, decay) }
}

extension Optimizer {
    /// One update of every element alike.
    public mutating func step(parameters: Tensor, gradients: Tensor, lr: Double) {
        step(parameters: parameters, gradients: gradients, lr: lr, runs: [UpdateRun(0..<parameters.count)])
    }
}

/// SGD with momentum (and optional Nesterov) and L2 weight decay, as `torch.optim.SGD`:
/// g ← g + λp;  b ← μb + g (b = g at the first step);  p ← p − lr·(nesterov ? g + μb : b).
public struct SGD: Optimizer {
    public var momentum, weightDecay: Double
    public var nesterov: Bool
    public var stepCount = 0
    private var buffer: Tensor?

    public init(momentum: Double = 0, weightDecay: Double = 0, nesterov: Bool = false) {
        (self.momentum, self.weightDecay, self.nesterov) = (momentum, weightDecay, nesterov)
    }

    public mutating func step(parameters: Tensor, gradients: Tensor, lr: Double, runs: [UpdateRun]) {
        let first = stepCount == 0
        let b = buffer ?? Tensor(zeros: parameters.shape, dtype: parameters.dtype)
        buffer = b
        stepCount += 1
        for run in runs {
            let (rate, decay) = (lr * run.lrScale, run.decay ? weightDecay : 0)
            switch parameters.dtype {
            case .float32: update(parameters, gradients, b, first, rate, decay, run.range, Float.self)
            case .float64: update(parameters, gradients, b, first, rate, decay, run.range, Double.self)
            }
        }
    }

    /// The momentum buffer (none without momentum).
    public mutating func state(like parameters: Tensor) -> [(name: String, values: Tensor)] {
        guard momentum != 0 else { return [] }
        let b = buffer ?? Tensor(zeros: parameters.shape, dtype: parameters.dtype)
        buffer = b
        return [("sgd.momentum", b)]
    }

    private func update<T: TensorScalar>(_ p: Tensor, _ g: Tensor, _ b: Tensor, _ first: Bool, _ lr: Double, _ weightDecay: Double,
                                         _ elements: Range<Int>, _: T.Type) {
        let pp = p.pointer(T.self), pg = g.pointer(T.self), pb = b.pointer(T.self)
        let (mu, wd, rate) = (T(momentum), T(weightDecay), T(lr))
        Parallel.forRanges(elements.count) { range in
            for i in (range.lowerBound + elements.lowerBound)..<(range.upperBound + elements.lowerBound) {
                let grad = pg[i] + wd * pp[i]
                guard mu != 0 else { pp[i] -= rate * grad; continue }
                pb[i] = first ? grad : mu * pb[i] + grad
                pp[i] -= rate * (nesterov ? grad + mu * pb[i] : pb[i])
            }
        }
    }
}

/// Adam (Kingma & Ba) with bias correction; `decoupled` gives AdamW (Loshchilov & Hutter):
///   Adam:  g ← g + λp                 AdamW: p ← p − lr·λ·p
///   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
public struct Adam: Optimizer {
    public var beta1, beta2, epsilon, weightDecay: Double
    public var decoupled: Bool
    /// Steps taken so far (t).
    public var stepCount = 0
    private var moments: (m: Tensor, v: Tensor)?

    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0, decoupled: Bool = false) {
        (self.beta1, self.beta2, self.epsilon, self.weightDecay, self.decoupled) = (beta1, beta2, epsilon, weightDecay, decoupled)
    }

    /// AdamW with PyTorch's default decay of 0.01.
    public static func adamW(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01) -> Adam {
        Adam(beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay, decoupled: true)
    }

    /// The first and second moments.
    public mutating func state(like parameters: Tensor) -> [(name: String, values: Tensor)] {
        let state = moments ?? (Tensor(zeros: parameters.shape, dtype: parameters.dtype), Tensor(zeros: parameters.shape, dtype: parameters.dtype))
        moments = state
        return [("adam.m", state.m), ("adam.v", state.v)]
    }

    public mutating func step(parameters: Tensor, gradients: Tensor, lr: Double, runs: [UpdateRun]) {
        let state = state(like: parameters).map(\.values)
        stepCount += 1
        for run in runs {
            let (rate, decay) = (lr * run.lrScale, run.decay ? weightDecay : 0)
            switch parameters.dtype {
            case .float32: update(parameters, gradients, state[0], state[1], rate, decay, run.range, Float.self)
            case .float64: update(parameters, gradients, state[0], state[1], rate, decay, run.range, Double.self)
            }
        }
    }

    /// Elements `elements` at rate `lr` with decay `weightDecay`.
    private func update<T: TensorScalar>(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ lr: Double, _ weightDecay: Double,
                                         _ elements: Range<Int>, _: T.Type) {
        let offset = elements.lowerBound
        let pp = p.pointer(T.self) + offset, pg = g.pointer(T.self) + offset, pm = m.pointer(T.self) + offset, pv = v.pointer(T.self) + offset
        let t = Double(stepCount)
        let (b1, b2) = (T(beta1), T(beta2))
        let stepSize = T(lr / (1 - Double.pow(beta1, t)))
        let correction2 = T((1 - Double.pow(beta2, t)).squareRoot())
        let (eps, wd, decay) = (T(epsilon), T(decoupled ? 0 : weightDecay), T(decoupled ? 1 - lr * weightDecay : 1))
        // Eight lanes at a time (the compiler does not vectorise the square root and division
        // of the scalar loop), then the scalar tail; both compute the same expression. Threads
        // take whole blocks of lanes.
        typealias Lanes = SIMD8<T>
        let width = Lanes.scalarCount, blocks = (elements.count + width - 1) / width
        Parallel.forRanges(blocks, cost: width) { blockRange in
            let start = blockRange.lowerBound * width, end = min(elements.count, blockRange.upperBound * width)
            let lanesEnd = start + (end - start) / width * width
            for i in stride(from: start, to: lanesEnd, by: width) {
                let param = UnsafeRawPointer(pp + i).loadUnaligned(as: Lanes.self)
                let grad = UnsafeRawPointer(pg + i).loadUnaligned(as: Lanes.self) + wd * param
                let first = b1 * UnsafeRawPointer(pm + i).loadUnaligned(as: Lanes.self) + (1 - b1) * grad
                let second = b2 * UnsafeRawPointer(pv + i).loadUnaligned(as: Lanes.self) + (1 - b2) * grad * grad
                let updated = decay * param - stepSize * first / (second.squareRoot() / correction2 + eps)
                UnsafeMutableRawPointer(pm + i).storeBytes(of: first, as: Lanes.self)
                UnsafeMutableRawPointer(pv + i).storeBytes(of: second, as: Lanes.self)
                UnsafeMutableRawPointer(pp + i).storeBytes(of: updated, as: Lanes.self)
            }
            for i in lanesEnd..<end {
                let grad = pg[i] + wd * pp[i]
                pm[i] = b1 * pm[i] + (1 - b1) * grad
                pv[i] = b2 * pv[i] + (1 - b2) * grad * grad
                pp[i] = decay * pp[i] - stepSize * pm[i] / (pv[i].squareRoot() / correction2 + eps)
            }
        }
    }
}
