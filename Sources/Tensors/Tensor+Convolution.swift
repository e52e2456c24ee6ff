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
        let lowering = ConvLowering(geo), weights = lowering.weights(w, geo, T.self)
        let cg = geo.inChannels / geo.groups, og = geo.outChannels / geo.groups, spatial = ho * wo
        // Images are split across threads, each running its own lowering and single-threaded GEMMs
        // in its own scratch.
        let scratchCount = lowering.scratchCount(geo, ho, wo)
        let scratch = Tensor(uninitialized: [BLASThreads.slots(for: batch), scratchCount], dtype: x.dtype)
        BLASThreads.splittingWork(batch) { slot, images in
            for b in images {
                let image = y.pointer(T.self) + b * geo.outChannels * spatial
                if let bias {
                    let pb = bias.pointer(T.self)
                    for o in 0..<geo.outChannels { (image + o * spatial).update(repeating: pb[o], count: spatial) }
                }
                for g in 0..<geo.groups {
                    lowering.convolve(x.pointer(T.self) + (b * geo.inChannels + g * cg) * h * wd, h, wd, geo, group: g,
                                      weights: weights.pointer(T.self), scratch: scratch.pointer(T.self) + slot * scratchCount,
                                      beta: bias == nil ? 0 : 1, into: image + g * og * spatial, ho, wo)
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
        let lowering = ConvLowering(geo)
        // With stride 1, dX is itself a convolution: dY (padded by k − 1 − p) with the weights
        // flipped and transposed. Its GEMMs have the long inner size O·k (or O·k²) and write dX
        // directly, instead of the short inner size O and a scatter-add (col2im) of a k²-times
        // larger matrix.
        let transposedGeometry = Conv2dGeometry(
            inChannels: geo.outChannels, outChannels: geo.inChannels, kernel: geo.kernel,
            padding: max(0, geo.kernel - 1 - geo.padding), groups: geo.groups)
        let transposed = dx != nil && !geo.isPointwise && geo.stride == 1 && geo.padding < geo.kernel
        let transposedLowering = ConvLowering(transposedGeometry)
        let transposedWeights = transposed
            ? transposedLowering.weights(flippedTransposedWeights(w, geo, T.self), transposedGeometry, T.self) : nil
        let scratchCount = max(lowering.scratchCount(geo, ho, wo),
                               transposed ? transposedLowering.scratchCount(transposedGeometry, h, wd) : 0,
                               dx != nil && !transposed && !geo.isPointwise ? geo.patch * spatial : 0)
        // The batch is cut into a fixed number of pieces, which the threads claim in turn as in
        // the forward. Each piece sums its weight gradient, in the lowering's layout, into its own
        // buffer, and the buffers are added into dW in piece order at the end: dW is the same
        // whichever thread took which piece (a buffer per thread would sum in claiming order).
        let slots = BLASThreads.slots(for: batch), partial = lowering.weightGradientCount(geo)
        let pieces = backwardPieces(batch: batch, slots: slots, partialBytes: dw == nil ? 0 : partial * x.dtype.byteWidth)
        let weightGradients = dw.map { Tensor(zeros: [pieces, partial], dtype: $0.dtype) }
        let scratch = Tensor(uninitialized: [slots, scratchCount], dtype: x.dtype)
        BLASThreads.splittingWork(pieces) { slot, pieceRange in
            let cols = scratch.pointer(T.self) + slot * scratchCount
            for piece in pieceRange {
                for b in piece * batch / pieces..<(piece + 1) * batch / pieces {
                    for g in 0..<geo.groups {
                        let image = x.pointer(T.self) + (b * geo.inChannels + g * cg) * h * wd
                        let grad = dy.pointer(T.self) + (b * geo.outChannels + g * og) * spatial
                        if let weightGradients {
                            lowering.accumulateWeightGradient(
                                image, h, wd, geo, group: g, gradient: grad, ho, wo, scratch: cols,
                                into: weightGradients.pointer(T.self) + piece * weightGradients.shape[1])
                        }
                        guard let dx else { continue }
                        let target = dx.pointer(T.self) + (b * geo.inChannels + g * cg) * h * wd
                        let weight = w.pointer(T.self) + g * og * geo.patch
                        if geo.isPointwise {
                            // dX[g] += W[g]ᵀ · dY[g]   [cg, og] × [og, spatial]
                            T.gemm(transA: true, transB: false, m: geo.patch, n: spatial, k: og, alpha: 1,
                                   a: weight, lda: geo.patch, b: grad, ldb: spatial, beta: 1, c: target, ldc: spatial)
                        } else if let transposedWeights {
                            transposedLowering.convolve(grad, ho, wo, transposedGeometry, group: g,
                                                        weights: transposedWeights.pointer(T.self), scratch: cols,
                                                        beta: 1, into: target, h, wd)
                        } else {
                            // dCols = W[g]ᵀ · dY[g]   [patch, og] × [og, spatial], then col2im adds into dX.
                            T.gemm(transA: true, transB: false, m: geo.patch, n: spatial, k: og, alpha: 1,
                                   a: weight, lda: geo.patch, b: grad, ldb: spatial, beta: 0, c: cols, ldc: spatial)
                            col2im(cols, cg, h, wd, geo, ho, wo, target)
                        }
                    }
                }
            }
        }
        if let dw, let weightGradients {
            let count = weightGradients.shape[1]
            lowering.addWeightGradient(weightGradients.sum(to: [1, count]).reshaped([count]), geo, into: dw, T.self)
        }
    }

    /// Pieces of a batch in the convolution's backward, each with its own weight gradient buffer
    /// of `partialBytes`: 4 per thread (fewer than elsewhere, as each holds a copy of dW), one on
    /// one thread, and no more than fit in 256 MiB of buffers, though at least one per thread
    /// (a 512-channel 3×3 layer's buffer, transformed for Winograd, is 16 MiB).
    static func backwardPieces(batch: Int, slots: Int, partialBytes: Int) -> Int {
        guard slots > 1 else { return 1 }
        return min(batch, slots * 4, max(slots, (256 << 20) / max(partialBytes, 1)))
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

    /// rows[c·k + j, y′·Wo + ox] = x[c, y′ − p, ox − p + j] (0 outside) for the Ho + k − 1 padded
    /// rows y′ of a stride-1 convolution: im2col's row (c, i, j) is row c·k + j read i·Wo further on.
    static func shiftedRows<T: TensorScalar>(
        _ x: UnsafePointer<T>, _ channels: Int, _ h: Int, _ w: Int, _ geo: Conv2dGeometry, _ ho: Int, _ wo: Int,
        _ rows: UnsafeMutablePointer<T>
    ) {
        let k = geo.kernel, p = geo.padding, height = ho + k - 1
        Parallel.forRanges(channels, cost: k * height * wo) { channelRange in
        for c in channelRange {
            let plane = x + c * h * w
            for j in 0..<k {
                let valid = validColumns(j, w, wo, 1, p)
                let block = rows + (c * k + j) * height * wo
                if w == wo, !valid.isEmpty, p < min(height, p + h) {
                    shiftedRowsBlock(plane, h, w, p, shift: j - p, valid: valid, height: height, into: block)
                    continue
                }
                for y in 0..<height {
                    let iy = y - p, out = block + y * wo
                    guard iy >= 0 && iy < h, !valid.isEmpty else { out.update(repeating: 0, count: wo); continue }
                    out.update(repeating: 0, count: valid.lowerBound)
                    (out + valid.upperBound).update(repeating: 0, count: wo - valid.upperBound)
                    (out + valid.lowerBound).update(from: plane + iy * w - p + j + valid.lowerBound, count: valid.count)
                }
            }
        }
        }
    }

    /// One block of `shiftedRows` (channel c, kernel column j) when the output is as wide as the
    /// input ("same" padding, the UNets' 3×3): its rows with input are one run in both, copied
    /// at once — instead of a copy and two fills per row of 8–64 elements — and the |shift|
    /// elements per row that the run carried over from the next or previous row are set to zero.
    @inline(__always)
    private static func shiftedRowsBlock<T: TensorScalar>(
        _ plane: UnsafePointer<T>, _ h: Int, _ w: Int, _ p: Int, shift: Int, valid: Range<Int>, height: Int,
        into block: UnsafeMutablePointer<T>
    ) {
        let first = p, last = min(height, p + h) - 1   // the padded rows that hold input rows 0…
        block.update(repeating: 0, count: first * w + valid.lowerBound)
        (block + first * w + valid.lowerBound).update(from: plane + shift + valid.lowerBound,
                                                       count: (last - first) * w + valid.count)
        for y in first..<last {
            let row = block + y * w
            for x in valid.upperBound..<w { row[x] = 0 }
            for x in 0..<valid.lowerBound { row[w + x] = 0 }
        }
        let end = block + last * w + valid.upperBound
        end.update(repeating: 0, count: height * w - (last * w + valid.upperBound))
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

/// How a convolution becomes GEMMs: one image and group at a time, into one thread's scratch.
enum ConvLowering {
    /// 1×1, stride 1, no padding: the image itself is the GEMM operand.
    case pointwise
    /// Stride 1, other than Winograd's: `shiftedRows` copies each input channel k times (not k²
    /// times as im2col), and the convolution is k GEMMs of inner size C·k, one per kernel row i,
    /// each reading those rows i output rows further on. Weights are laid out [k, O, C/groups · k].
    case shiftedRows
    /// Any stride: one GEMM over im2col's [C·k², Ho·Wo] patch matrix.
    case im2col
    /// 3×3, stride 1, padding ≤ 2: Winograd's F(2×2, 3×3), 16 GEMMs on transformed
    /// tiles (`Winograd`); weights and their gradients are held transformed, [16, O, C/groups].
    case winograd

    init(_ geo: Conv2dGeometry) {
        self = geo.isPointwise ? .pointwise : Winograd.applies(to: geo) ? .winograd : geo.stride == 1 ? .shiftedRows : .im2col
    }

    /// Elements of a weight gradient in this lowering's layout.
    func weightGradientCount(_ geo: Conv2dGeometry) -> Int {
        self == .winograd ? 16 * geo.outChannels * (geo.inChannels / geo.groups) : geo.outChannels * geo.patch
    }

    /// Scratch elements one image and group needs for an output of ho × wo.
    func scratchCount(_ geo: Conv2dGeometry, _ ho: Int, _ wo: Int) -> Int {
        switch self {
        case .pointwise: 0
        case .shiftedRows: geo.inChannels / geo.groups * geo.kernel * (ho + geo.kernel - 1) * wo
        case .im2col: geo.patch * ho * wo
        case .winograd: Winograd.scratchCount(geo, ho, wo)
        }
    }

    /// The weights [O, C/groups, k, k] in this lowering's layout.
    func weights<T: TensorScalar>(_ w: Tensor, _ geo: Conv2dGeometry, _: T.Type) -> Tensor {
        if self == .winograd { return Winograd.transformedWeights(w, geo, T.self) }
        guard self == .shiftedRows else { return w }
        let permuted = Tensor(uninitialized: w.shape, dtype: w.dtype)
        forEachKernelRowIndex(geo) { natural, rowMajor in permuted.pointer(T.self)[rowMajor] = w.pointer(T.self)[natural] }
        return permuted
    }

    /// Adds a weight gradient held in this lowering's layout into `dw` [O, C/groups, k, k].
    func addWeightGradient<T: TensorScalar>(_ gradient: Tensor, _ geo: Conv2dGeometry, into dw: Tensor, _: T.Type) {
        if self == .winograd { return Winograd.addWeightGradient(gradient, geo, into: dw, T.self) }
        guard self == .shiftedRows else { return dw.add(gradient.reshaped(dw.shape)) }
        let source = gradient.pointer(T.self), target = dw.pointer(T.self)
        forEachKernelRowIndex(geo) { natural, rowMajor in target[natural] += source[rowMajor] }
    }

    /// Calls `body(natural, kernelRowMajor)` with the offset of every weight in both layouts.
    private func forEachKernelRowIndex(_ geo: Conv2dGeometry, _ body: (Int, Int) -> Void) {
        let (k, cg, outputs) = (geo.kernel, geo.inChannels / geo.groups, geo.outChannels)
        for o in 0..<outputs {
            for c in 0..<cg {
                for i in 0..<k {
                    for j in 0..<k { body(((o * cg + c) * k + i) * k + j, ((i * outputs + o) * cg + c) * k + j) }
                }
            }
        }
    }

    /// out[og, ho·wo] = β·out + (weights of `group`) ⋆ input[C/groups, h, w]: one image and group.
    func convolve<T: TensorScalar>(
        _ input: UnsafePointer<T>, _ h: Int, _ w: Int, _ geo: Conv2dGeometry, group g: Int,
        weights: UnsafePointer<T>, scratch: UnsafeMutablePointer<T>, beta: T,
        into out: UnsafeMutablePointer<T>, _ ho: Int, _ wo: Int
    ) {
        let (k, cg, og, spatial) = (geo.kernel, geo.inChannels / geo.groups, geo.outChannels / geo.groups, ho * wo)
        switch self {
        case .winograd:
            Winograd.convolve(input, h, w, geo, group: g, weights: weights, scratch: scratch, beta: beta, into: out, ho, wo)
        case .pointwise, .im2col:
            if self == .im2col { Tensor.im2col(input, cg, h, w, geo, ho, wo, scratch) }
            T.gemm(transA: false, transB: false, m: og, n: spatial, k: geo.patch, alpha: 1,
                   a: weights + g * og * geo.patch, lda: geo.patch, b: self == .im2col ? UnsafePointer(scratch) : input, ldb: spatial,
                   beta: beta, c: out, ldc: spatial)
        case .shiftedRows:
            Tensor.shiftedRows(input, cg, h, w, geo, ho, wo, scratch)
            for i in 0..<k {
                T.gemm(transA: false, transB: false, m: og, n: spatial, k: cg * k, alpha: 1,
                       a: weights + (i * geo.outChannels + g * og) * cg * k, lda: cg * k,
                       b: scratch + i * wo, ldb: (ho + k - 1) * wo, beta: i == 0 ? beta : 1, c: out, ldc: spatial)
            }
        }
    }

    /// dW[group] += dY[og, ho·wo] · lowered(input)ᵀ, with dW in this lowering's layout.
    func accumulateWeightGradient<T: TensorScalar>(
        _ input: UnsafePointer<T>, _ h: Int, _ w: Int, _ geo: Conv2dGeometry, group g: Int,
        gradient dy: UnsafePointer<T>, _ ho: Int, _ wo: Int, scratch: UnsafeMutablePointer<T>,
        into dw: UnsafeMutablePointer<T>
    ) {
        let (k, cg, og, spatial) = (geo.kernel, geo.inChannels / geo.groups, geo.outChannels / geo.groups, ho * wo)
        switch self {
        case .winograd:
            Winograd.accumulateWeightGradient(input, h, w, geo, group: g, gradient: dy, ho, wo, scratch: scratch, into: dw)
        case .pointwise, .im2col:
            if self == .im2col { Tensor.im2col(input, cg, h, w, geo, ho, wo, scratch) }
            T.gemm(transA: false, transB: true, m: og, n: geo.patch, k: spatial, alpha: 1,
                   a: dy, lda: spatial, b: self == .im2col ? UnsafePointer(scratch) : input, ldb: spatial,
                   beta: 1, c: dw + g * og * geo.patch, ldc: geo.patch)
        case .shiftedRows:
            Tensor.shiftedRows(input, cg, h, w, geo, ho, wo, scratch)
            for i in 0..<k {
                T.gemm(transA: false, transB: true, m: og, n: cg * k, k: spatial, alpha: 1,
                       a: dy, lda: spatial, b: scratch + i * wo, ldb: (ho + k - 1) * wo,
                       beta: 1, c: dw + (i * geo.outChannels + g * og) * cg * k, ldc: cg * k)
            }
        }
    }
}
