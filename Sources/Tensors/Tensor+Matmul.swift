extension Tensor {
    /// Matrix product through BLAS gemm.
    ///
    /// - `a` [..., M, K] (or [..., K, M] with `transposeA`), `b` [K, N] (or [N, K] with
    ///   `transposeB`): a 2-D `b` is shared by every leading index of `a`, done as one gemm over
    ///   the flattened rows when `a` is not transposed.
    /// - `a` [..., M, K], `b` [..., K, N] with equal leading (batch) dimensions: one gemm per batch.
    /// - `into`: write (or with `accumulate`, add) the product into an existing tensor, e.g. a
    ///   gradient buffer, instead of allocating.
    /// Returns [..., M, N].
    @discardableResult
    public static func matmul(
        _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
        into out: Tensor? = nil, accumulate: Bool = false
    ) -> Tensor {
        precondition(a.dtype == b.dtype, "matmul dtypes differ: \(a.dtype) and \(b.dtype)")
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
        let m = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let k = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let kb = transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
        let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        precondition(k == kb, "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") × \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        precondition(batchB.isEmpty || batchA == batchB, "matmul batch dimensions differ: \(a.shape) × \(b.shape)")
        let shape = batchA + [m, n]
        // A new output is written whole (β = 0, or filled when k = 0), so it starts uninitialised.
        let c = out ?? Tensor(uninitialized: shape, dtype: a.dtype)
        precondition(c.count == shape.reduce(1, *) && c.dtype == a.dtype, "matmul output \(c.shape) ≠ \(shape)")
        switch a.dtype {
        case .float32: gemmKernel(a, b, c, transposeA, transposeB, m, n, k, accumulate, Float.self)
        case .float64: gemmKernel(a, b, c, transposeA, transposeB, m, n, k, accumulate, Double.self)
        }
        return out == nil ? c : Tensor(storage: c.storage, offset: c.offset, shape: shape)
    }
    static func gemmKernel<T: TensorScalar>(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, _ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int,
        _ accumulate: Bool, _: T.Type
    ) {
        let batches = a.shape.dropLast(2).reduce(1, *)
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { c.fill(0) }
            return
        }
        let product = GEMMPieces.Product(
            a: a.pointer(T.self), b: b.pointer(T.self), c: c.pointer(T.self), transA: ta, transB: tb,
            lda: ta ? m : k, ldb: tb ? k : n, beta: accumulate ? 1 : 0)
        // A shared right operand takes all rows of `a` in one product.
        let shared = b.rank == 2 && !ta
        GEMMPieces(batches: shared ? 1 : batches, m: shared ? batches * m : m, n: n, k: k,
                   strideB: b.rank == 2 ? 0 : k * n, threads: BLASThreads.count).run(product)
    }

    /// The tensor as a matrix of rows over its last axis: [∏ leading, last].
    public var rows: Tensor { reshaped([count / max(shape.last ?? 1, 1), shape.last ?? 1]) }
}

/// A batch of equal products C_i = op(A_i)·op(B_i) (C_i [m, n], inner size k) cut into pieces
/// that the rank's threads claim in turn, each run by single-threaded BLAS: whole products when
/// there are plenty, else blocks of C's rows (or of its columns, when C is wider than tall);
/// small batches run whole on the calling thread.
/// OpenBLAS's own threads take fixed shares and wait for each other, so one preempted thread
/// stalls the product; here it delays only its piece (Docs/Numerics.md, Threads). Splitting
/// rows or columns leaves every element's sum over k as it was, so results do not depend on it.
struct GEMMPieces {
    /// Operands of the batch: A_i at `a + i·m·k`, B_i at `b + i·strideB`, C_i at `c + i·m·n`.
    struct Product<T: TensorScalar> {
        let a, b: UnsafePointer<T>, c: UnsafeMutablePointer<T>
        let transA, transB: Bool, lda, ldb: Int, beta: T
    }

    /// Below this many floating-point operations in all, the batch runs on the calling thread
    /// (through BLAS as configured); a piece does at least about this much.
    static let minimumFlops = 1 << 21
    /// Rows or columns per block, preferably: thinner blocks repack the other operand too often.
    /// A product too narrow for one such block per thread still gets one per thread, down to
    /// `thinnestBlock`: anything beats handing it to OpenBLAS's threads, whose fixed shares
    /// stall when a core is busy elsewhere.
    static let minimumBlock = 64, thinnestBlock = 16

    let batches, m, n, k, strideB: Int
    /// Whether the threads share the batch; blocks per product when they do.
    let split: Bool, splitRows: Bool, blocks: Int

    init(batches: Int, m: Int, n: Int, k: Int, strideB: Int, threads: Int) {
        (self.batches, self.m, self.n, self.k, self.strideB) = (batches, m, n, k, strideB)
        splitRows = m >= n
        let flops = 2 * m * n * k, wanted = threads * Parallel.piecesPerThread
        split = threads > 1 && batches * flops >= Self.minimumFlops
        let extent = max(m, n), byShape = max(extent / Self.minimumBlock, min(threads, extent / Self.thinnestBlock))
        blocks = !split || batches >= wanted ? 1
            : max(1, min((wanted + batches - 1) / batches, byShape, flops / Self.minimumFlops))
    }

    func run<T: TensorScalar>(_ p: Product<T>) {
        guard split, batches * blocks > 1 else {
            // One thread, a small batch, or one product too thin to cut: on the calling thread
            // (OpenBLAS would hand products from 0.5 MFLOP to its own threads).
            BLASThreads.singleThreaded {
                for i in 0..<batches { piece(p, batch: i, block: 0..<(splitRows ? m : n)) }
            }
            return
        }
        let extent = splitRows ? m : n
        BLASThreads.splittingWork(batches * blocks) { _, pieces in
            for index in pieces {
                let j = index % blocks
                piece(p, batch: index / blocks, block: j * extent / blocks..<(j + 1) * extent / blocks)
            }
        }
    }

    /// Rows (or columns) `block` of C_batch.
    private func piece<T: TensorScalar>(_ p: Product<T>, batch i: Int, block: Range<Int>) {
        let a = p.a + i * m * k, b = p.b + i * strideB, c = p.c + i * m * n, first = block.lowerBound
        if splitRows {
            // Row r of op(A) starts at a + r·lda, or at a + r when A is stored transposed.
            T.gemm(transA: p.transA, transB: p.transB, m: block.count, n: n, k: k, alpha: 1,
                   a: a + (p.transA ? first : first * p.lda), lda: p.lda, b: b, ldb: p.ldb,
                   beta: p.beta, c: c + first * n, ldc: n)
        } else {
            // Column j of op(B) starts at b + j, or at b + j·ldb when B is stored transposed.
            T.gemm(transA: p.transA, transB: p.transB, m: m, n: block.count, k: k, alpha: 1,
                   a: a, lda: p.lda, b: b + (p.transB ? first * p.ldb : first), ldb: p.ldb,
                   beta: p.beta, c: c + first, ldc: n)
        }
    }
}
