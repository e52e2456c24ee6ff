/// Softmax over the last axis and over segments of rows, forward and backward: one kernel each,
/// walking the runs that are normalised together.
///
/// A run whose every entry is −∞ (every key masked out) has no mass: its softmax is 0 and its
/// log-softmax −∞, rather than NaN. An empty run produces nothing.
extension Tensor {
    /// Softmax over the last axis (max-subtracted, so no exponent overflows).
    public func softmax() -> Tensor { softmaxFamily(.lastAxis(of: shape), log: false) }

    /// log-softmax over the last axis: x − max − log Σ exp(x − max).
    public func logSoftmax() -> Tensor { softmaxFamily(.lastAxis(of: shape), log: true) }

    /// Softmax backward: dx = y ⊙ (g − Σ g⊙y) per row, with y the softmax output.
    public static func softmaxBackward(output y: Tensor, gradient g: Tensor) -> Tensor {
        softmaxFamilyBackward(y, g, .lastAxis(of: y.shape), log: false)
    }

    /// log-softmax backward: dx = g − softmax(x) · Σ g per row, with y the log-softmax output.
    public static func logSoftmaxBackward(output y: Tensor, gradient g: Tensor) -> Tensor {
        softmaxFamilyBackward(y, g, .lastAxis(of: y.shape), log: true)
    }

    /// Softmax down the rows of each segment, per head: self [N] or [N, H], segment b being rows
    /// `offsets[b]..<offsets[b + 1]` (`offsets` [B + 1], from 0 to N, non-decreasing; a segment
    /// may be empty). y[i, h] = exp(x[i, h] − m) / Σ_{j in b} exp(x[j, h] − m), m the segment's
    /// maximum for head h. Same shape as self.
    public func segmentSoftmax(offsets: [Int]) -> Tensor {
        Tensor.checkSegments(offsets, rows: shape.first ?? 0)
        return softmaxFamily(.segments(offsets: offsets, heads: count / max(shape.first ?? 1, 1)), log: false)
    }

    /// Backward of `segmentSoftmax`: dx = y ⊙ (g − Σ_{segment} g⊙y), per segment and head.
    public static func segmentSoftmaxBackward(output y: Tensor, gradient g: Tensor, offsets: [Int]) -> Tensor {
        softmaxFamilyBackward(y, g, .segments(offsets: offsets, heads: y.count / max(y.shape.first ?? 1, 1)), log: false)
    }

    /// The runs normalised together. Run (s, h) holds elements i·heads + h for the rows i of
    /// segment s: contiguous for the last axis, every `heads`-th element for segments of [N, H].
    enum SoftmaxRuns {
        /// `count` rows of `length` contiguous elements.
        case rows(count: Int, length: Int)
        /// Rows `offsets[s]..<offsets[s + 1]` of [N, heads], one run per (segment, head).
        case segments(offsets: [Int], heads: Int)

        static func lastAxis(of shape: [Int]) -> SoftmaxRuns {
            let length = shape.last ?? 1
            return .rows(count: shape.reduce(1, *) / max(length, 1), length: length)
        }

        var segments: Int {
            switch self {
            case .rows(let count, _): count
            case .segments(let offsets, _): offsets.count - 1
            }
        }

        var heads: Int {
            switch self {
            case .rows: 1
            case .segments(_, let heads): heads
            }
        }

        /// The rows of segment `s`.
        func rows(_ s: Int) -> Range<Int> {
            switch self {
            case .rows(_, let length): s &* length..<(s &+ 1) &* length
            case .segments(let offsets, _): offsets[s]..<offsets[s &+ 1]
            }
        }
    }

    private func softmaxFamily(_ runs: SoftmaxRuns, log: Bool) -> Tensor {
        let out = Tensor(uninitialized: shape, dtype: dtype)
        switch dtype {
        case .float32: softmaxKernel(runs, log, out, Float.self)
        case .float64: softmaxKernel(runs, log, out, Double.self)
        }
        return out
    }
    func softmaxKernel<T: TensorScalar>(_ runs: SoftmaxRuns, _ log: Bool, _ out: Tensor, _: T.Type) {
        let heads = runs.heads, xBase = pointer(T.self), yBase = out.pointer(T.self)
        Parallel.forRanges(runs.segments, cost: count / max(runs.segments, 1)) { segments in
            for s in segments {
                let rows = runs.rows(s)
                for h in 0..<heads {
                    // Element i of this run is x[i·heads] (x, y offset to head h).
                    let x = xBase + h, y = yBase + h
                    var top = -T.infinity
                    for i in rows { top = max(top, x[i &* heads]) }
                    guard top > -T.infinity else {  // every entry −∞ (or none): no mass
                        for i in rows { y[i &* heads] = log ? -T.infinity : 0 }
                        continue
                    }
                    var sum: T = 0
                    for i in rows { let e = T.exp(x[i &* heads] - top); y[i &* heads] = e; sum += e }
                    if log {
                        let lse = top + T.log(sum)
                        for i in rows { y[i &* heads] = x[i &* heads] - lse }
                    } else {
                        let inv = 1 / sum
                        for i in rows { y[i &* heads] *= inv }
                    }
                }
            }
        }
    }

    private static func softmaxFamilyBackward(_ y: Tensor, _ g: Tensor, _ runs: SoftmaxRuns, log: Bool) -> Tensor {
        let out = Tensor(uninitialized: y.shape, dtype: y.dtype)
        switch y.dtype {
        case .float32: softmaxBackwardKernel(y, g, runs, log, out, Float.self)
        case .float64: softmaxBackwardKernel(y, g, runs, log, out, Double.self)
        }
        return out
    }
    static func softmaxBackwardKernel<T: TensorScalar>(_ y: Tensor, _ g: Tensor, _ runs: SoftmaxRuns, _ log: Bool, _ out: Tensor, _: T.Type) {
        let heads = runs.heads, yBase = y.pointer(T.self), gBase = g.pointer(T.self), outBase = out.pointer(T.self)
        Parallel.forRanges(runs.segments, cost: y.count / max(runs.segments, 1)) { segments in
            for s in segments {
                let rows = runs.rows(s)
                for h in 0..<heads {
                    let py = yBase + h, pg = gBase + h, o = outBase + h
                    var sum: T = 0
                    if log {
                        for i in rows { sum += pg[i &* heads] }
                        for i in rows { o[i &* heads] = pg[i &* heads] - T.exp(py[i &* heads]) * sum }
                    } else {
                        for i in rows { sum += pg[i &* heads] * py[i &* heads] }
                        for i in rows { o[i &* heads] = py[i &* heads] * (pg[i &* heads] - sum) }
                    }
                }
            }
        }
    }
}
