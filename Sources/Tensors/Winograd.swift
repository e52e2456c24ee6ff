/// Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
/// Neural Networks", 2016) for 3×3 stride-1 convolutions: a 2×2 block of outputs costs 16
/// multiplies per input channel instead of 36.
///
/// An image's output is cut into 2×2 tiles, each reading a 4×4 input tile (neighbours overlap
/// by two). Per call the weights become U = G·g·Gᵀ (4×4 per output and input channel); per
/// image the input tiles become V = Bᵀ·d·B; 16 GEMMs M[ξ] = U[ξ]·V[ξ] ([O × C] × [C × tiles],
/// ξ = one of the 4×4 positions) do all the channel sums; and Y = Aᵀ·M·A turns each tile back
/// into its 2×2 outputs. The transforms only add, subtract and halve, so the result is the
/// convolution's in exact arithmetic; in float32 it differs from the direct sum by rounding
/// (2–5·10⁻⁷ RMS relative). The GEMMs are 2.25× smaller than the direct lowering's; the
/// transforms, SIMD over tiles, cost a fraction of that (Docs/Numerics.md, Convolution).
enum Winograd {
    /// 3×3, stride 1, padding up to 2 ("same" and "valid", and their input gradients): at every
    /// channel count tried (4–128) it was no slower than the direct GEMMs.
    static func applies(to geo: Conv2dGeometry) -> Bool { geo.kernel == 3 && geo.stride == 1 && geo.padding <= 2 }

    /// Tiles per SIMD step of the transforms.
    static let lanes = 8

    /// Elements of V and M together that an image's tiles are transformed in at a time: a large
    /// image goes in chunks of tile rows, so that scratch stays bounded (a 256×256 image at 128
    /// channels would need 268 MB per thread at once) and V and M stay nearer the cores.
    static let chunkElements = 1 << 20

    /// Where one image's transforms live in its scratch: V [16, C/g, tiles] and M [16, O/g,
    /// tiles] (`planeStride` apart) for one chunk of tile rows, then a work area (the chunk's
    /// input rows with their zero border, or a tile row of the output side).
    struct Layout {
        /// Tiles of the whole output, and tile rows per chunk.
        let rows, columns, chunkRows: Int
        let vStride, mStride: Int

        init(_ geo: Conv2dGeometry, _ ho: Int, _ wo: Int) {
            let (cg, og) = (geo.inChannels / geo.groups, geo.outChannels / geo.groups)
            (rows, columns) = ((ho + 1) / 2, (wo + 1) / 2)
            chunkRows = max(1, min(rows, chunkElements / max(1, 16 * (cg + og) * columns)))
            (vStride, mStride) = (planeStride(cg, chunkRows * columns), planeStride(og, chunkRows * columns))
        }

        /// The tile rows of each chunk.
        var chunks: StrideTo<Int> { stride(from: 0, to: rows, by: chunkRows) }
        func chunk(from first: Int) -> Range<Int> { first..<min(rows, first + chunkRows) }
        /// A padded input row as the input transform keeps it: its even columns, then its odd ones.
        var pitch: Int { 2 * (columns + 1) }
        var workCount: Int { max((2 * chunkRows + 2) * pitch, 4 * (columns + lanes)) + lanes }
        var scratchCount: Int { 16 * (vStride + mStride) + workCount }
    }

    /// Scratch for one image and group.
    static func scratchCount(_ geo: Conv2dGeometry, _ ho: Int, _ wo: Int) -> Int { Layout(geo, ho, wo).scratchCount }

    /// Elements from one of the 16 planes of V or M to the next: more than a plane, so that the
    /// transforms' 16 interleaved streams do not all fall into the same cache sets (planes are
    /// often a multiple of 4 KiB), and so that a SIMD step past a plane's last tile stays inside.
    static func planeStride(_ channels: Int, _ count: Int) -> Int { channels * count + 2 * lanes }

    /// U[ξ, o, c] = (G·g·Gᵀ)[ξ] for weights g = w[o, c] [O, C/g, 3, 3]: shape [16, O, C/g].
    /// G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
    static func transformedWeights<T: TensorScalar>(_ w: Tensor, _ geo: Conv2dGeometry, _: T.Type) -> Tensor {
        let filters = geo.outChannels * (geo.inChannels / geo.groups)
        let u = Tensor(uninitialized: [16, geo.outChannels, geo.inChannels / geo.groups], dtype: w.dtype)
        let source = w.pointer(T.self), target = u.pointer(T.self)
        /// (a, (a + b + c)/2, (a − b + c)/2, c): G times a column of three, or a row of three times Gᵀ.
        @inline(__always) func spread(_ a: T, _ b: T, _ c: T) -> (T, T, T, T) { (a, (a + b + c) / 2, (a - b + c) / 2, c) }
        for f in 0..<filters {
            let g = source + 9 * f
            let (c0, c1, c2) = (spread(g[0], g[3], g[6]), spread(g[1], g[4], g[7]), spread(g[2], g[5], g[8]))  // columns of G·g
            /// Row i of G·g times Gᵀ.
            @inline(__always) func row(_ i: Int, _ a: T, _ b: T, _ c: T) {
                let u = target + 4 * i * filters + f
                (u[0], u[filters], u[2 * filters], u[3 * filters]) = spread(a, b, c)
            }
            row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2); row(3, c0.3, c1.3, c2.3)
        }
        return u
    }

    /// out[og, ho, wo] = β·out + (U of `group`) ⋆ input[C/g, h, w] for one image and group.
    static func convolve<T: TensorScalar>(
        _ input: UnsafePointer<T>, _ h: Int, _ w: Int, _ geo: Conv2dGeometry, group g: Int,
        weights u: UnsafePointer<T>, scratch: UnsafeMutablePointer<T>, beta: T,
        into out: UnsafeMutablePointer<T>, _ ho: Int, _ wo: Int
    ) {
        let (cg, og) = (geo.inChannels / geo.groups, geo.outChannels / geo.groups), layout = Layout(geo, ho, wo)
        let v = scratch, m = v + 16 * layout.vStride, work = m + 16 * layout.mStride
        for first in layout.chunks {
            let chunk = layout.chunk(from: first), count = chunk.count * layout.columns
            transformInput(input, cg, h, w, padding: geo.padding, layout, chunk, work: work, into: v)
            for xi in 0..<16 {
                T.gemm(transA: false, transB: false, m: og, n: count, k: cg, alpha: 1,
                       a: u + (xi * geo.outChannels + g * og) * cg, lda: cg, b: v + xi * layout.vStride, ldb: count,
                       beta: 0, c: m + xi * layout.mStride, ldc: count)
            }
            transformOutput(m, og, layout, chunk, beta: beta, work: work, into: out, ho, wo)
        }
    }

    /// dU[group] += Σ_t (A·dy_t·Aᵀ)[ξ] · V_t[ξ]ᵀ for one image: the gradient of the transformed
    /// weights, [16, O, C/g] (the adjoint of `convolve`: y = Aᵀ·(U ⊙ V)·A is linear in U).
    /// `addWeightGradient` turns the sum over images into dW = Gᵀ·dU·G.
    static func accumulateWeightGradient<T: TensorScalar>(
        _ input: UnsafePointer<T>, _ h: Int, _ w: Int, _ geo: Conv2dGeometry, group g: Int,
        gradient dy: UnsafePointer<T>, _ ho: Int, _ wo: Int, scratch: UnsafeMutablePointer<T>,
        into du: UnsafeMutablePointer<T>
    ) {
        let (cg, og) = (geo.inChannels / geo.groups, geo.outChannels / geo.groups), layout = Layout(geo, ho, wo)
        let v = scratch, dm = v + 16 * layout.vStride, work = dm + 16 * layout.mStride
        for first in layout.chunks {
            let chunk = layout.chunk(from: first), count = chunk.count * layout.columns
            transformInput(input, cg, h, w, padding: geo.padding, layout, chunk, work: work, into: v)
            transformOutputGradient(dy, og, layout, chunk, ho, wo, work: work, into: dm)
            for xi in 0..<16 {
                T.gemm(transA: false, transB: true, m: og, n: cg, k: count, alpha: 1,
                       a: dm + xi * layout.mStride, lda: count, b: v + xi * layout.vStride, ldb: count,
                       beta: 1, c: du + (xi * geo.outChannels + g * og) * cg, ldc: cg)
            }
        }
    }

    /// dW[o, c] += Gᵀ·dU[·, o, c]·G for a transformed weight gradient dU [16, O, C/g], with
    /// Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
    static func addWeightGradient<T: TensorScalar>(_ du: Tensor, _ geo: Conv2dGeometry, into dw: Tensor, _: T.Type) {
        let filters = geo.outChannels * (geo.inChannels / geo.groups)
        let source = du.pointer(T.self), target = dw.pointer(T.self)
        /// Gᵀ times a column of four, or a row of four times G.
        @inline(__always) func gather(_ a: T, _ b: T, _ c: T, _ d: T) -> (T, T, T) { (a + (b + c) / 2, (b - c) / 2, (b + c) / 2 + d) }
        for f in 0..<filters {
            let u = source + f
            func at(_ xi: Int) -> T { u[xi * filters] }
            // Columns of Gᵀ·dU (3 × 4), then each of its rows times G.
            let c0 = gather(at(0), at(4), at(8), at(12)), c1 = gather(at(1), at(5), at(9), at(13))
            let c2 = gather(at(2), at(6), at(10), at(14)), c3 = gather(at(3), at(7), at(11), at(15))
            let r0 = gather(c0.0, c1.0, c2.0, c3.0), r1 = gather(c0.1, c1.1, c2.1, c3.1), r2 = gather(c0.2, c1.2, c2.2, c3.2)
            let out = target + 9 * f
            out[0] += r0.0; out[1] += r0.1; out[2] += r0.2
            out[3] += r1.0; out[4] += r1.1; out[5] += r1.2
            out[6] += r2.0; out[7] += r2.1; out[8] += r2.2
        }
    }

    // The transforms run over `lanes` tiles of a tile row at a time. A step past the row's last
    // tile reads and writes lanes that belong to the next row (or channel, or the slack at the
    // end of a plane or of the work area); the rows are done in order, so those are overwritten
    // with their own values afterwards.

    /// V[ξ, c, t] = (Bᵀ·d·B)[ξ] for the 4×4 input tile d of every output tile t in the chunk's
    /// tile rows. Each channel's rows for the chunk are first copied into the work area with
    /// their even and odd columns apart, so that the tiles' columns 2t, 2t + 1, 2t + 2, 2t + 3
    /// are contiguous vectors; the area's zero border (set once per chunk) stands for the padding.
    private static func transformInput<T: TensorScalar>(
        _ input: UnsafePointer<T>, _ channels: Int, _ h: Int, _ w: Int, padding p: Int, _ layout: Layout,
        _ chunk: Range<Int>, work padded: UnsafeMutablePointer<T>, into v: UnsafeMutablePointer<T>
    ) {
        let (columns, pitch, plane) = (layout.columns, layout.pitch, layout.vStride), half = pitch / 2
        let count = chunk.count * columns
        // Padded row r of the work area is input row top + r (padded rows of the whole image run from −p).
        let top = 2 * chunk.lowerBound - p, inputRows = max(0, top)..<min(h, top + 2 * chunk.count + 2)
        padded.update(repeating: 0, count: (2 * chunk.count + 2) * pitch + lanes)
        let width = min(w, pitch - p)
        for c in 0..<channels {
            for y in inputRows {
                // Input column x is padded column x + p: the even x go to the even columns when p is even.
                let row = padded + (y - top) * pitch, (even, odd) = (row + p / 2, row + half + p / 2)
                deinterleave(input + (c * h + y) * w, width, even: p % 2 == 0 ? even : odd, odd: p % 2 == 0 ? odd : even + 1)
            }
            for ty in 0..<chunk.count {
                let r = padded + 2 * ty * pitch, target = v + c * count + ty * columns
                for tx in stride(from: 0, to: columns, by: lanes) {
                    /// Bᵀ·d down the tiles' column s.
                    func column(_ s: Int) -> (SIMD8<T>, SIMD8<T>, SIMD8<T>, SIMD8<T>) {
                        let at = r + (s & 1) * half + tx + (s >> 1)
                        return bT(load(at), load(at + pitch), load(at + 2 * pitch), load(at + 3 * pitch))
                    }
                    let (c0, c1, c2, c3) = (column(0), column(1), column(2), column(3))
                    let t = target + tx
                    store(bT(c0.0, c1.0, c2.0, c3.0), t, plane)
                    store(bT(c0.1, c1.1, c2.1, c3.1), t + 4 * plane, plane)
                    store(bT(c0.2, c1.2, c2.2, c3.2), t + 8 * plane, plane)
                    store(bT(c0.3, c1.3, c2.3, c3.3), t + 12 * plane, plane)
                }
            }
        }
    }

    /// out[o, 2ty + a, 2tx + b] = β·out + (Aᵀ·M·A)[a, b] for the 4×4 products M of every tile
    /// in the chunk's tile rows; tiles over an odd edge keep only their inside outputs. A tile
    /// row's outputs go to the work area by even and odd columns, then into the output rows.
    private static func transformOutput<T: TensorScalar>(
        _ m: UnsafePointer<T>, _ channels: Int, _ layout: Layout, _ chunk: Range<Int>, beta: T,
        work: UnsafeMutablePointer<T>, into out: UnsafeMutablePointer<T>, _ ho: Int, _ wo: Int
    ) {
        let (columns, plane) = (layout.columns, layout.mStride), stride = columns + lanes, count = chunk.count * columns
        for o in 0..<channels {
            for ty in chunk {
                let source = m + o * count + (ty - chunk.lowerBound) * columns
                for tx in Swift.stride(from: 0, to: columns, by: lanes) {
                    let s = source + tx
                    /// Row i of M·A.
                    @inline(__always) func row(_ i: Int) -> (SIMD8<T>, SIMD8<T>) {
                        aT(load(s + 4 * i * plane), load(s + (4 * i + 1) * plane), load(s + (4 * i + 2) * plane), load(s + (4 * i + 3) * plane))
                    }
                    let (q0, q1, q2, q3) = (row(0), row(1), row(2), row(3))
                    let (even, odd) = (aT(q0.0, q1.0, q2.0, q3.0), aT(q0.1, q1.1, q2.1, q3.1))  // (top, bottom)
                    store(even.0, work + tx); store(odd.0, work + stride + tx)
                    store(even.1, work + 2 * stride + tx); store(odd.1, work + 3 * stride + tx)
                }
                for a in 0..<min(2, ho - 2 * ty) {
                    let y = out + (o * ho + 2 * ty + a) * wo, even = work + 2 * a * stride, odd = even + stride
                    if beta == 0 {
                        for k in 0..<wo / 2 { y[2 * k] = even[k]; y[2 * k + 1] = odd[k] }
                        if wo % 2 == 1 { y[wo - 1] = even[wo / 2] }
                    } else {
                        for k in 0..<wo / 2 { y[2 * k] = beta * y[2 * k] + even[k]; y[2 * k + 1] = beta * y[2 * k + 1] + odd[k] }
                        if wo % 2 == 1 { y[wo - 1] = beta * y[wo - 1] + even[wo / 2] }
                    }
                }
            }
        }
    }

    /// dM[ξ, o, t] = (A·dy_t·Aᵀ)[ξ] for the 2×2 output gradient dy_t of every tile in the
    /// chunk's tile rows (zero beyond an odd edge): the adjoint of `transformOutput`. A tile
    /// row's gradients go to the work area by even and odd columns first.
    private static func transformOutputGradient<T: TensorScalar>(
        _ dy: UnsafePointer<T>, _ channels: Int, _ layout: Layout, _ chunk: Range<Int>, _ ho: Int, _ wo: Int,
        work: UnsafeMutablePointer<T>, into dm: UnsafeMutablePointer<T>
    ) {
        let (columns, plane) = (layout.columns, layout.mStride), stride = columns + lanes, count = chunk.count * columns
        for o in 0..<channels {
            for ty in chunk {
                for a in 0..<2 {
                    let even = work + 2 * a * stride, odd = even + stride
                    guard 2 * ty + a < ho else {
                        even.update(repeating: 0, count: columns); odd.update(repeating: 0, count: columns)
                        continue
                    }
                    deinterleave(dy + (o * ho + 2 * ty + a) * wo, wo, even: even, odd: odd)
                    if wo % 2 == 1 { odd[wo / 2] = 0 }
                }
                let target = dm + o * count + (ty - chunk.lowerBound) * columns
                for tx in Swift.stride(from: 0, to: columns, by: lanes) {
                    let (p, q) = (load(work + tx), load(work + stride + tx))
                    let (r, s) = (load(work + 2 * stride + tx), load(work + 3 * stride + tx))
                    let (left, right) = (a(p, r), a(q, s))  // the columns of A·dy
                    let t = target + tx
                    store(a(left.0, right.0), t, plane)
                    store(a(left.1, right.1), t + 4 * plane, plane)
                    store(a(left.2, right.2), t + 8 * plane, plane)
                    store(a(left.3, right.3), t + 12 * plane, plane)
                }
            }
        }
    }

    /// even[k] = source[2k] and odd[k] = source[2k + 1] for the `count` elements of `source`.
    @inline(__always)
    private static func deinterleave<T: TensorScalar>(
        _ source: UnsafePointer<T>, _ count: Int, even: UnsafeMutablePointer<T>, odd: UnsafeMutablePointer<T>
    ) {
        var k = 0
        while 2 * k + 16 <= count {
            let pairs = UnsafeRawPointer(source + 2 * k).loadUnaligned(as: SIMD16<T>.self)
            store(pairs.evenHalf, even + k); store(pairs.oddHalf, odd + k)
            k += lanes
        }
        while 2 * k + 1 < count { (even[k], odd[k]) = (source[2 * k], source[2 * k + 1]); k += 1 }
        if count % 2 == 1 { even[count / 2] = source[count - 1] }
    }

    /// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1] times a column of four (or a row times B).
    @inline(__always)
    private static func bT<V: SIMD>(_ d0: V, _ d1: V, _ d2: V, _ d3: V) -> (V, V, V, V) where V.Scalar: FloatingPoint {
        (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    }

    /// Aᵀ = [1 1 1 0; 0 1 −1 −1] times a column of four (or a row times A).
    @inline(__always)
    private static func aT<V: SIMD>(_ m0: V, _ m1: V, _ m2: V, _ m3: V) -> (V, V) where V.Scalar: FloatingPoint {
        (m0 + m1 + m2, m1 - m2 - m3)
    }

    /// A = [1 0; 1 1; 1 −1; 0 −1] times a column of two (or a row times Aᵀ).
    @inline(__always)
    private static func a<V: SIMD>(_ x: V, _ y: V) -> (V, V, V, V) where V.Scalar: FloatingPoint {
        (x, x + y, x - y, -y)
    }

    @inline(__always)
    private static func load<T: TensorScalar>(_ p: UnsafePointer<T>) -> SIMD8<T> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self) }

    @inline(__always)
    private static func store<T: TensorScalar>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
    }

    /// Four vectors `plane` apart.
    @inline(__always)
    private static func store<T: TensorScalar>(_ v: (SIMD8<T>, SIMD8<T>, SIMD8<T>, SIMD8<T>), _ p: UnsafeMutablePointer<T>, _ plane: Int) {
        store(v.0, p); store(v.1, p + plane); store(v.2, p + 2 * plane); store(v.3, p + 3 * plane)
    }
}
