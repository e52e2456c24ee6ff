import Tensors

extension Variable {
    /// Matrix product: self [..., M, K] × other [K, N] (shared) or [..., K, N] (batched);
    /// with `transposeOther`, other is [N, K] / [..., N, K] and enters as its transpose.
    ///   C = A·B:   dA = G·Bᵀ,  dB = Aᵀ·G
    ///   C = A·Bᵀ:  dA = G·B,   dB = Gᵀ·A
    /// For a shared B, dB sums over every leading index: one gemm over the flattened rows.
    public func matmul(_ other: Variable, transposeOther: Bool = false) -> Variable {
        let a = self, b = other
        let y = Tensor.matmul(a.value, b.value, transposeB: transposeOther)
        return Variable(y, parents: [a, b]) { g in
            if let da = a.gradientBuffer() {
                Tensor.matmul(g, b.value, transposeB: !transposeOther, into: da, accumulate: true)
            }
            if let db = b.gradientBuffer() {
                let shared = b.value.rank == 2
                let (ga, aa) = shared ? (g.rows, a.value.rows) : (g, a.value)
                if transposeOther {
                    Tensor.matmul(ga, aa, transposeA: true, into: db, accumulate: true)
                } else {
                    Tensor.matmul(aa, ga, transposeA: true, into: db, accumulate: true)
                }
            }
        }
    }
}
