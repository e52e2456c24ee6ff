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
        let c = out ?? Tensor(zeros: shape, dtype: a.dtype)
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
        let beta: T = accumulate ? 1 : 0
        let lda = ta ? m : k, ldb = tb ? k : n
        let batches = a.shape.dropLast(2).reduce(1, *)
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { c.fill(0) }
            return
        }
        if b.rank == 2 && !ta {
            // Shared right operand: all rows of `a` in one product.
            T.gemm(transA: false, transB: tb, m: batches * m, n: n, k: k, alpha: 1,
                   a: a.pointer(T.self), lda: lda, b: b.pointer(T.self), ldb: ldb, beta: beta, c: c.pointer(T.self), ldc: n)
            return
        }
        let strideB = b.rank == 2 ? 0 : k * n
        for i in 0..<batches {
            T.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1,
                   a: a.pointer(T.self) + i * m * k, lda: lda, b: b.pointer(T.self) + i * strideB, ldb: ldb,
                   beta: beta, c: c.pointer(T.self) + i * m * n, ldc: n)
        }
    }

    /// The tensor as a matrix of rows over its last axis: [∏ leading, last].
    public var rows: Tensor { reshaped([count / max(shape.last ?? 1, 1), shape.last ?? 1]) }
}
