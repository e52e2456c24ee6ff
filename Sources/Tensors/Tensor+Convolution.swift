/// The shape arithmetic of a 2-D convolution over [B, C, H, W].
public struct Conv2dGeometry: Sendable, Equatable {
    public var inChannels, outChannels, kernel, stride, padding, groups: Int

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "channels \(inChannels)→\(outChannels) are not divisible by \(groups) groups")
        precondition(kernel > 0 && stride > 0 && padding >= 0, "kernel \(kernel), stride \(stride), padding \(padding)")
        (self.inChannels, self.outChannels, self.kernel, self.stride, self.padding, self.groups) =
            (inChannels, outChannels, kernel, stride, padding, groups)
    }

    /// Output height or width for an input of `size`.
    public func output(_ size: Int) -> Int { (size + 2 * padding - kernel) / stride + 1 }
    /// Weight shape [O, C/groups, k, k].
    public var weightShape: [Int] { [outChannels, inChannels / groups, kernel, kernel] }
    /// Rows of one group's im2col matrix: C/groups · k · k.
    var patch: Int { inChannels / groups * kernel * kernel }
    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
}

extension Tensor {
    /// Convolution (cross-correlation, as PyTorch): x [B, C, H, W], w [O, C/g, k, k], optional
    /// bias [O] → [B, O, Ho, Wo], by im2col + one gemm per image and group.
    public static func conv2d(_ x: Tensor, _ w: Tensor, bias: Tensor? = nil, _ geometry: Conv2dGeometry) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == geometry.inChannels, "conv2d input \(x.shape) for \(geometry)")
        precondition(w.shape == geometry.weightShape, "conv2d weight \(w.shape) ≠ \(geometry.weightShape)")
        precondition(bias.map { $0.count == geometry.outChannels } ?? true, "conv2d bias \(bias!.shape) for \(geometry)")
        let out = Tensor(uninitialized: [x.shape[0], geometry.outChannels, geometry.output(x.shape[2]), geometry.output(x.shape[3])], dtype: x.dtype)
        switch x.dtype {
        case .float32: convForward(x, w, bias, out, geometry, Float.self)
        case .float64: convForward(x, w, bias, out, geometry, Double.self)
        }
        return out
    }

    /// Convolution backward: adds dL/dx into `gradInput`, dL/dw into `gradWeight` and dL/db into
    /// `gradBias` (each may be nil), given g = dL/dy [B, O, Ho, Wo].
    public static func conv2dBackward(
        _ x: Tensor, _ w: Tensor, gradient g: Tensor, _ geometry: Conv2dGeometry,
        gradInput: Tensor?, gradWeight: Tensor?, gradBias: Tensor? = nil
    ) {
        switch x.dtype {
        case .float32: convBackward(x, w, g, geometry, gradInput, gradWeight, Float.self)
        case .float64: convBackward(x, w, g, geometry, gradInput, gradWeight, Double.self)
        }
        if let gradBias {
            let (batch, channels, spatial) = (g.shape[0], g.shape[1], g.shape[2] * g.shape[3])
            gradBias.add(g.reshaped([batch, channels, spatial]).sum(to: [1, channels, 1]))
        }
    }

    static func convForward<T: TensorScalar>(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ y: Tensor, _ geo: Conv2dGeometry, _: T.Type) {
        let (batch, h, wd) = (x.shape[0], x.shape[2], x.shape[3])
        let (ho, wo) = (y.shape[2], y.shape[3])
        let cg = geo.inChannels / geo.groups, og = geo.outChannels / geo.groups, spatial = ho * wo
        // Images are split across threads, each running its own im2col and single-threaded GEMMs.
        BLASThreads.splittingWork(batch) { _, images in
            let scratch = geo.isPointwise ? nil : Tensor(uninitialized: [geo.patch * spatial], dtype: x.dtype)
            let cols = scratch?.pointer(T.self)
            for b in images {
                let image = y.pointer(T.self) + b * geo.outChannels * spatial
                if let bias {
                    let pb = bias.pointer(T.self)
                    for o in 0..<geo.outChannels { (image + o * spatial).update(repeating: pb[o], count: spatial) }
                }
                for g in 0..<geo.groups {
                    let input = x.pointer(T.self) + (b * geo.inChannels + g * cg) * h * wd
                    if let cols { im2col(input, cg, h, wd, geo, ho, wo, cols) }
                    T.gemm(transA: false, transB: false, m: og, n: spatial, k: geo.patch, alpha: 1,
                           a: w.pointer(T.self) + g * og * geo.patch, lda: geo.patch, b: cols ?? input, ldb: spatial,
                           beta: bias == nil ? 0 : 1, c: image + g * og * spatial, ldc: spatial)
                }
            }
        }
    }
    static func convBackward<T: TensorScalar>(
        _ x: Tensor, _ w: Tensor, _ dy: Tensor, _ geo: Conv2dGeometry, _ dx: Tensor?, _ dw: Tensor?, _: T.Type
    ) {
        let (batch, h, wd) = (x.shape[0], x.shape[2], x.shape[3])
        let (ho, wo) = (dy.shape[2], dy.shape[3])
        let cg = geo.inChannels / geo.groups, og = geo.outChannels / geo.groups, spatial = ho * wo
        // With stride 1, dX is itself a convolution: dY (padded by k − 1 − p) with the weights
        // flipped and transposed. Its GEMM has the long inner size O·k² and writes dX directly,
        // instead of the short inner size O and a scatter-add (col2im) of a k²-times larger matrix.
        let transposed = dx != nil && !geo.isPointwise && geo.stride == 1 && geo.padding < geo.kernel
        let flipped = transposed ? flippedTransposedWeights(w, geo, T.self) : nil
        let transposedGeometry = Conv2dGeometry(
            inChannels: geo.outChannels, outChannels: geo.inChannels, kernel: geo.kernel,
            padding: transposed ? geo.kernel - 1 - geo.padding : 0, groups: geo.groups)
        // Images are split across threads as in the forward; each thread past the first sums
        // its weight gradient into a private buffer, added into dW at the end.
        let privateWeightGradients = dw.map { Tensor(zeros: [BLASThreads.chunks(for: batch) - 1, $0.count], dtype: $0.dtype) }
        BLASThreads.splittingWork(batch) { chunk, images in
            let scratch = Tensor(uninitialized: [max(geo.patch, transposedGeometry.patch) * max(spatial, h * wd)], dtype: x.dtype)
            let cols = scratch.pointer(T.self)
            let weightGradient = chunk == 0 ? dw?.pointer(T.self) : privateWeightGradients!.pointer(T.self) + (chunk - 1) * dw!.count
            for b in images {
                for g in 0..<geo.groups {
                    let image = x.pointer(T.self) + (b * geo.inChannels + g * cg) * h * wd
                    let grad = dy.pointer(T.self) + (b * geo.outChannels + g * og) * spatial
                    let weight = w.pointer(T.self) + g * og * geo.patch
                    if let weightGradient {
                        // dW[g] += dY[g] · colsᵀ   [og, spatial] × [spatial, patch]
                        let columns: UnsafePointer<T>
                        if geo.isPointwise { columns = UnsafePointer(image) } else {
                            im2col(image, cg, h, wd, geo, ho, wo, cols)
                            columns = UnsafePointer(cols)
                        }
                        T.gemm(transA: false, transB: true, m: og, n: geo.patch, k: spatial, alpha: 1,
                               a: grad, lda: spatial, b: columns, ldb: spatial,
                               beta: 1, c: weightGradient + g * og * geo.patch, ldc: geo.patch)
                    }
                    guard let dx else { continue }
                    let target = dx.pointer(T.self) + (b * geo.inChannels + g * cg) * h * wd
                    if geo.isPointwise {
                        // dX[g] += W[g]ᵀ · dY[g]   [cg, og] × [og, spatial]
                        T.gemm(transA: true, transB: false, m: geo.patch, n: spatial, k: og, alpha: 1,
                               a: weight, lda: geo.patch, b: grad, ldb: spatial, beta: 1, c: target, ldc: spatial)
                    } else if let flipped {
                        // dX[g] += W′[g] · im2col(dY[g])   [cg, og·k²] × [og·k², h·w]
                        im2col(grad, og, ho, wo, transposedGeometry, h, wd, cols)
                        T.gemm(transA: false, transB: false, m: cg, n: h * wd, k: transposedGeometry.patch, alpha: 1,
                               a: flipped.pointer(T.self) + g * cg * transposedGeometry.patch, lda: transposedGeometry.patch,
                               b: cols, ldb: h * wd, beta: 1, c: target, ldc: h * wd)
                    } else {
                        // dCols = W[g]ᵀ · dY[g]   [patch, og] × [og, spatial], then col2im adds into dX.
                        T.gemm(transA: true, transB: false, m: geo.patch, n: spatial, k: og, alpha: 1,
                               a: weight, lda: geo.patch, b: grad, ldb: spatial, beta: 0, c: cols, ldc: spatial)
                        col2im(cols, cg, h, wd, geo, ho, wo, target)
                    }
                }
            }
        }
        if let dw, let privateWeightGradients, privateWeightGradients.count > 0 {
            dw.add(privateWeightGradients.reshaped([privateWeightGradients.shape[0], dw.count]).sum(to: [1, dw.count]))
        }
    }

    /// W′[c, o, i, j] = W[o, c, k−1−i, k−1−j] within each group: the weights of the transposed
    /// convolution, shape [C, O/groups, k, k].
    static func flippedTransposedWeights<T: TensorScalar>(_ w: Tensor, _ geo: Conv2dGeometry, _: T.Type) -> Tensor {
        let (k, cg, og) = (geo.kernel, geo.inChannels / geo.groups, geo.outChannels / geo.groups)
        let flipped = Tensor(uninitialized: [geo.inChannels, og, k, k], dtype: w.dtype)
        let source = w.pointer(T.self), target = flipped.pointer(T.self)
        for g in 0..<geo.groups {
            for o in 0..<og {
                for c in 0..<cg {
                    let from = source + ((g * og + o) * cg + c) * k * k, to = target + ((g * cg + c) * og + o) * k * k
                    for t in 0..<(k * k) { to[t] = from[k * k - 1 - t] }
                }
            }
        }
        return flipped
    }

    /// The output columns ox whose input column ox·s − p + j lies inside 0..<w.
    @inline(__always)
    static func validColumns(_ j: Int, _ w: Int, _ wo: Int, _ s: Int, _ p: Int) -> Range<Int> {
        let lo = max(0, (p - j + s - 1) / s), hi = min(wo, (w - 1 + p - j) / s + 1)
        return lo..<max(lo, hi)
    }

    /// cols[(c·k + i)·k + j, oy·Wo + ox] = x[c, oy·s − p + i, ox·s − p + j] (0 outside).
    /// The in-bounds span of each output row is found once, so the copy loop has no branches.
    static func im2col<T: TensorScalar>(
        _ x: UnsafePointer<T>, _ channels: Int, _ h: Int, _ w: Int, _ geo: Conv2dGeometry, _ ho: Int, _ wo: Int,
        _ cols: UnsafeMutablePointer<T>
    ) {
        let k = geo.kernel, s = geo.stride, p = geo.padding
        Parallel.forRanges(channels, cost: k * k * ho * wo) { channelRange in
        for c in channelRange {
            let plane = x + c * h * w
            var row = cols + c * k * k * ho * wo
            for i in 0..<k {
                for j in 0..<k {
                    let valid = validColumns(j, w, wo, s, p)
                    for oy in 0..<ho {
                        let iy = oy * s - p + i
                        let out = row + oy * wo
                        guard iy >= 0 && iy < h, !valid.isEmpty else { out.update(repeating: 0, count: wo); continue }
                        out.update(repeating: 0, count: valid.lowerBound)
                        (out + valid.upperBound).update(repeating: 0, count: wo - valid.upperBound)
                        let line = plane + iy * w - p + j
                        if s == 1 {
                            (out + valid.lowerBound).update(from: line + valid.lowerBound, count: valid.count)
                        } else {
                            for ox in valid { out[ox] = line[ox * s] }
                        }
                    }
                    row += ho * wo
                }
            }
        }
        }
    }

    /// The adjoint of `im2col`: adds every column entry back onto the pixel it came from.
    static func col2im<T: TensorScalar>(
        _ cols: UnsafePointer<T>, _ channels: Int, _ h: Int, _ w: Int, _ geo: Conv2dGeometry, _ ho: Int, _ wo: Int,
        _ x: UnsafeMutablePointer<T>
    ) {
        let k = geo.kernel, s = geo.stride, p = geo.padding
        // Channels own disjoint input planes, so they can be summed into concurrently.
        Parallel.forRanges(channels, cost: k * k * ho * wo) { channelRange in
        for c in channelRange {
            let plane = x + c * h * w
            var row = cols + c * k * k * ho * wo
            for i in 0..<k {
                for j in 0..<k {
                    let valid = validColumns(j, w, wo, s, p)
                    for oy in 0..<ho {
                        let iy = oy * s - p + i
                        guard iy >= 0 && iy < h else { continue }
                        let line = plane + iy * w - p + j, input = row + oy * wo
                        if s == 1 {
                            for ox in valid { line[ox] += input[ox] }
                        } else {
                            for ox in valid { line[ox * s] += input[ox] }
                        }
                    }
                    row += ho * wo
                }
            }
        }
        }
    }
}
