/// Pooling and nearest-neighbour upsampling over [B, C, H, W], each with its adjoint. Every
/// kernel walks one H×W plane at a time through pointers; planes are split across threads, and
/// each thread writes only its own planes.
extension Tensor {
    /// Average over k×k windows moved by `stride` (no padding): each window's sum over k².
    public func averagePool(kernel k: Int, stride s: Int) -> Tensor {
        let (ho, wo) = ((shape[2] - k) / s + 1, (shape[3] - k) / s + 1)
        let out = Tensor(uninitialized: [shape[0], shape[1], ho, wo], dtype: dtype)
        switch dtype {
        case .float32: Tensor.windowSums(self, into: out, k, s, divisor: Float(k * k))
        case .float64: Tensor.windowSums(self, into: out, k, s, divisor: Double(k * k))
        }
        return out
    }

    /// The adjoint of `averagePool`: each output gradient spread evenly over its window.
    public static func averagePoolBackward(gradient g: Tensor, inputShape: [Int], kernel k: Int, stride s: Int) -> Tensor {
        let dx = Tensor(zeros: inputShape, dtype: g.dtype)
        switch g.dtype {
        case .float32: spreadOverWindows(g, into: dx, k, s, Float.self)
        case .float64: spreadOverWindows(g, into: dx, k, s, Double.self)
        }
        return dx
    }

    /// Maximum over k×k windows moved by `stride`, with the flat input index of each maximum
    /// (the first one in row-major order on ties; a window without a value above −∞ gives −∞
    /// and its first element). The indices run plane by plane, as the output does.
    public func maxPool(kernel k: Int, stride s: Int) -> (output: Tensor, argmax: [Int]) {
        let (ho, wo) = ((shape[2] - k) / s + 1, (shape[3] - k) / s + 1)
        let out = Tensor(uninitialized: [shape[0], shape[1], ho, wo], dtype: dtype)
        let argmax = [Int](unsafeUninitializedCapacity: out.count) { indices, initialized in
            switch dtype {
            case _ where out.count == 0: break
            case .float32 where k == 2 && s == 2: Tensor.maxPool2x2(self, out, indices, Float.self)
            case .float32: Tensor.maxPoolKernel(self, out, indices, k, s, Float.self)
            case .float64 where k == 2 && s == 2: Tensor.maxPool2x2(self, out, indices, Double.self)
            case .float64: Tensor.maxPoolKernel(self, out, indices, k, s, Double.self)
            }
            initialized = out.count
        }
        return (out, argmax)
    }

    /// The adjoint of `maxPool`: each output gradient goes to the input that was the maximum.
    public static func maxPoolBackward(gradient g: Tensor, inputShape: [Int], argmax: [Int]) -> Tensor {
        // `argmax` is what `maxPool` returned for the output whose gradient `g` is (the autograd
        // op passes both); no file, config value or argument reaches it.
        precondition(argmax.count == g.count, "maxPoolBackward: \(argmax.count) indices for a gradient of \(g.shape)")
        let dx = Tensor(zeros: inputShape, dtype: g.dtype)
        switch g.dtype {
        case .float32: scatterMaxima(g, argmax, into: dx, Float.self)
        case .float64: scatterMaxima(g, argmax, into: dx, Double.self)
        }
        return dx
    }

    /// Nearest-neighbour upsampling by an integer `factor`: [B, C, H, W] → [B, C, fH, fW].
    public func upsampleNearest(_ factor: Int) -> Tensor {
        let out = Tensor(uninitialized: [shape[0], shape[1], shape[2] * factor, shape[3] * factor], dtype: dtype)
        switch dtype {
        case .float32: Tensor.repeatPixels(self, into: out, factor, Float.self)
        case .float64: Tensor.repeatPixels(self, into: out, factor, Double.self)
        }
        return out
    }

    /// The adjoint of `upsampleNearest`: sums each factor×factor block.
    public static func upsampleNearestBackward(gradient g: Tensor, factor: Int) -> Tensor {
        let out = Tensor(uninitialized: [g.shape[0], g.shape[1], g.shape[2] / factor, g.shape[3] / factor], dtype: g.dtype)
        switch g.dtype {
        case .float32: windowSums(g, into: out, factor, factor, divisor: Float(1))
        case .float64: windowSums(g, into: out, factor, factor, divisor: Double(1))
        }
        return out
    }

    /// (planes, h, w) of x [B, C, H, W].
    private var planeShape: (planes: Int, h: Int, w: Int) { (shape[0] * shape[1], shape[2], shape[3]) }

    /// y[p, oy, ox] = (Σ of x's k×k window at (oy·s, ox·s), row-major) / divisor.
    static func windowSums<T: TensorScalar>(_ x: Tensor, into y: Tensor, _ k: Int, _ s: Int, divisor: T) {
        let (planes, h, w) = x.planeShape, (ho, wo) = (y.shape[2], y.shape[3])
        let source = x.pointer(T.self), target = y.pointer(T.self)
        Parallel.forRanges(planes, cost: h * w) { planeRange in
            for p in planeRange {
                let plane = source + p * h * w, out = target + p * ho * wo
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var sum: T = 0
                        for i in 0..<k {
                            let row = plane + (oy * s + i) * w + ox * s
                            for j in 0..<k { sum += row[j] }
                        }
                        out[oy * wo + ox] = sum / divisor
                    }
                }
            }
        }
    }

    /// dx[window of (oy, ox)] += g[oy, ox] / k², for dx zeroed beforehand (windows may overlap).
    static func spreadOverWindows<T: TensorScalar>(_ g: Tensor, into dx: Tensor, _ k: Int, _ s: Int, _: T.Type) {
        let (planes, h, w) = dx.planeShape, (ho, wo) = (g.shape[2], g.shape[3])
        let source = g.pointer(T.self), target = dx.pointer(T.self), area = T(k * k)
        Parallel.forRanges(planes, cost: h * w) { planeRange in
            for p in planeRange {
                let plane = target + p * h * w, grad = source + p * ho * wo
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        let share = grad[oy * wo + ox] / area
                        for i in 0..<k {
                            let row = plane + (oy * s + i) * w + ox * s
                            for j in 0..<k { row[j] += share }
                        }
                    }
                }
            }
        }
    }

    static func maxPoolKernel<T: TensorScalar>(
        _ x: Tensor, _ y: Tensor, _ argmax: UnsafeMutableBufferPointer<Int>, _ k: Int, _ s: Int, _: T.Type
    ) {
        let (planes, h, w) = x.planeShape, (ho, wo) = (y.shape[2], y.shape[3])
        let source = x.pointer(T.self), target = y.pointer(T.self)
        Parallel.forRanges(planes, cost: h * w) { planeRange in
            for p in planeRange {
                let base = p * h * w, plane = source + base, out = p * ho * wo
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var first = oy * s * w + ox * s
                        var best = -T.infinity, index = first
                        for _ in 0..<k {
                            for j in first..<(first + k) where plane[j] > best { (best, index) = (plane[j], j) }
                            first += w
                        }
                        target[out + oy * wo + ox] = best
                        argmax[out + oy * wo + ox] = base + index
                    }
                }
            }
        }
    }

    /// `maxPoolKernel` for 2×2 windows with stride 2 (the usual CNN pooling): the same
    /// comparisons in the same order (top-left, top-right, bottom-left, bottom-right, each taken
    /// only if strictly larger), written as selects with wrapping index arithmetic so that the
    /// compiler vectorises each output row.
    static func maxPool2x2<T: TensorScalar>(_ x: Tensor, _ y: Tensor, _ argmax: UnsafeMutableBufferPointer<Int>, _: T.Type) {
        let (planes, h, w) = x.planeShape, (ho, wo) = (y.shape[2], y.shape[3])
        let source = x.pointer(T.self), target = y.pointer(T.self), indices = argmax.baseAddress!
        Parallel.forRanges(planes, cost: h * w) { planeRange in
            for p in planeRange {
                for oy in 0..<ho {
                    let first = (p &* h &+ 2 &* oy) &* w, out = (p &* ho &+ oy) &* wo
                    let top = source + first, bottom = top + w, values = target + out, maxima = indices + out
                    for ox in 0..<wo {
                        let column = 2 &* ox
                        var best = -T.infinity, index = 0
                        @inline(__always) func visit(_ value: T, _ offset: Int) {
                            let larger = value > best
                            best = larger ? value : best
                            index = larger ? offset : index
                        }
                        visit(top[column], 0)
                        visit(top[column &+ 1], 1)
                        visit(bottom[column], w)
                        visit(bottom[column &+ 1], w &+ 1)
                        values[ox] = best
                        maxima[ox] = first &+ column &+ index
                    }
                }
            }
        }
    }

    /// dx[argmax[i]] += g[i]; `argmax` runs plane by plane (as `maxPool` gives it), so threads
    /// taking whole planes write disjoint parts of dx.
    static func scatterMaxima<T: TensorScalar>(_ g: Tensor, _ argmax: [Int], into dx: Tensor, _: T.Type) {
        let planes = dx.planeShape.planes, perPlane = g.count / max(planes, 1)
        let source = g.pointer(T.self), target = dx.pointer(T.self)
        argmax.withUnsafeBufferPointer { indices in
            Parallel.forRanges(planes, cost: 4 * perPlane) { planeRange in
                for i in (planeRange.lowerBound * perPlane)..<(planeRange.upperBound * perPlane) {
                    target[indices[i]] += source[i]
                }
            }
        }
    }

    /// y[p, fy + a, fx + b] = x[p, y, x] for a, b in 0..<f: each input row widened once, then
    /// copied to the f output rows it fills.
    static func repeatPixels<T: TensorScalar>(_ x: Tensor, into y: Tensor, _ f: Int, _: T.Type) {
        let (planes, h, w) = x.planeShape, wide = w * f
        let source = x.pointer(T.self), target = y.pointer(T.self)
        Parallel.forRanges(planes, cost: h * w * f * f) { planeRange in
            for p in planeRange {
                for row in 0..<h {
                    let input = source + (p * h + row) * w, first = target + (p * h + row) * f * wide
                    for column in 0..<w { (first + column * f).update(repeating: input[column], count: f) }
                    for copy in 1..<max(f, 1) { (first + copy * wide).update(from: first, count: wide) }
                }
            }
        }
    }
}
