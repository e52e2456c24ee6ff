/// Pooling and nearest-neighbour upsampling over [B, C, H, W], each with its adjoint.
extension Tensor {
    /// Average over k×k windows moved by `stride` (no padding).
    public func averagePool(kernel k: Int, stride s: Int) -> Tensor {
        let (n, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let ho = (h - k) / s + 1, wo = (w - k) / s + 1
        let out = Tensor(zeros: [shape[0], shape[1], ho, wo], dtype: dtype)
        switch dtype {
        case .float32: Tensor.poolWindows(n, h, w, ho, wo, k, s) { src, dst in out.pointer(Float.self)[dst] += pointer(Float.self)[src] / Float(k * k) }
        case .float64: Tensor.poolWindows(n, h, w, ho, wo, k, s) { src, dst in out.pointer(Double.self)[dst] += pointer(Double.self)[src] / Double(k * k) }
        }
        return out
    }

    /// The adjoint of `averagePool`: each output gradient spread evenly over its window.
    public static func averagePoolBackward(gradient g: Tensor, inputShape: [Int], kernel k: Int, stride s: Int) -> Tensor {
        let dx = Tensor(zeros: inputShape, dtype: g.dtype)
        let (n, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        switch g.dtype {
        case .float32: poolWindows(n, h, w, g.shape[2], g.shape[3], k, s) { src, dst in dx.pointer(Float.self)[src] += g.pointer(Float.self)[dst] / Float(k * k) }
        case .float64: poolWindows(n, h, w, g.shape[2], g.shape[3], k, s) { src, dst in dx.pointer(Double.self)[src] += g.pointer(Double.self)[dst] / Double(k * k) }
        }
        return dx
    }

    /// Maximum over k×k windows moved by `stride`, with the flat input index of each maximum.
    public func maxPool(kernel k: Int, stride s: Int) -> (output: Tensor, argmax: [Int]) {
        let (n, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let ho = (h - k) / s + 1, wo = (w - k) / s + 1
        let x = scalars
        var best = [Double](repeating: -.infinity, count: n * ho * wo)
        var argmax = [Int](repeating: 0, count: best.count)
        best.withUnsafeMutableBufferPointer { best in
            argmax.withUnsafeMutableBufferPointer { argmax in
                Tensor.poolWindows(n, h, w, ho, wo, k, s) { src, dst in
                    if x[src] > best[dst] { best[dst] = x[src]; argmax[dst] = src }
                }
            }
        }
        return (Tensor(shape: [shape[0], shape[1], ho, wo], values: best, dtype: dtype), argmax)
    }
    /// The adjoint of `maxPool`: each output gradient goes to the input that was the maximum.
    public static func maxPoolBackward(gradient g: Tensor, inputShape: [Int], argmax: [Int]) -> Tensor {
        let grad = g.scalars
        var values = [Double](repeating: 0, count: inputShape.reduce(1, *))
        for (i, src) in argmax.enumerated() { values[src] += grad[i] }
        return Tensor(shape: inputShape, values: values, dtype: g.dtype)
    }

    /// Nearest-neighbour upsampling by an integer `factor`: [B, C, H, W] → [B, C, fH, fW].
    public func upsampleNearest(_ factor: Int) -> Tensor {
        let (n, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let out = Tensor(zeros: [shape[0], shape[1], h * factor, w * factor], dtype: dtype)
        switch dtype {
        case .float32: Tensor.poolWindows(n, h * factor, w * factor, h, w, factor, factor) { big, small in out.pointer(Float.self)[big] = pointer(Float.self)[small] }
        case .float64: Tensor.poolWindows(n, h * factor, w * factor, h, w, factor, factor) { big, small in out.pointer(Double.self)[big] = pointer(Double.self)[small] }
        }
        return out
    }

    /// The adjoint of `upsampleNearest`: sums each factor×factor block.
    public static func upsampleNearestBackward(gradient g: Tensor, factor: Int) -> Tensor {
        g.averagePool(kernel: factor, stride: factor).map(.affine(scale: Double(factor * factor), shift: 0))
    }

    /// Calls `body(inputIndex, outputIndex)` for every (window element, window) pair of a k×k,
    /// stride-s pooling of `planes` planes of h×w into ho×wo. Planes are split across threads, so
    /// `body` may only write elements of the plane it is given.
    static func poolWindows(_ planes: Int, _ h: Int, _ w: Int, _ ho: Int, _ wo: Int, _ k: Int, _ s: Int, _ body: (Int, Int) -> Void) {
        Parallel.forRanges(planes, cost: h * w) { planeRange in
        for p in planeRange {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let dst = (p * ho + oy) * wo + ox
                    for i in 0..<k {
                        let row = (p * h + oy * s + i) * w + ox * s
                        for j in 0..<k { body(row + j, dst) }
                    }
                }
            }
        }
        }
    }
}
