/// Scaled dot-product attention computed in blocks (the online softmax of Milakov & Gimelshein
/// 2018, as FlashAttention arranges it): the scores of one block of queries against one block
/// of keys at a time, so memory grows with the sequence length, not its square — attention over
/// a 64 × 64 feature map (4096 positions) needs 64 × 128 scores at once instead of 4096².
extension Tensor {
    /// Queries and keys per block.
    public static let attentionBlock = (queries: 64, keys: 128)

    /// softmax(q·kᵀ·scale)·v for q [N, T, d], k and v [N, S, d] (contiguous) → the output
    /// [N, T, d] and each query row's log-sum-exp of its scaled scores [N, T] (what the backward
    /// needs to rebuild any block of probabilities). The N problems run in parallel.
    public static func blockAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Double) -> (output: Tensor, logSumExp: Tensor) {
        let (n, t, d, s) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1])
        let output = Tensor(zeros: [n, t, d], dtype: q.dtype), logSumExp = Tensor(zeros: [n, t], dtype: q.dtype)
        switch q.dtype {
        case .float32: attentionForward(q, k, v, output, logSumExp, n, t, s, d, Float(scale))
        case .float64: attentionForward(q, k, v, output, logSumExp, n, t, s, d, scale)
        }
        return (output, logSumExp)
    }

    /// The gradients (dq, dk, dv) of `blockAttention` given its output, log-sum-exp and the
    /// output's gradient, block by block: P = exp(q·kᵀ·scale − lse), dv = Pᵀ·dO,
    /// dS = P ⊙ (dO·vᵀ − rowsum(dO ⊙ O)), dq = scale·dS·k, dk = scale·dSᵀ·q.
    public static func blockAttentionBackward(_ q: Tensor, _ k: Tensor, _ v: Tensor, output: Tensor, logSumExp: Tensor, gradient: Tensor,
                                              scale: Double) -> (q: Tensor, k: Tensor, v: Tensor) {
        let (n, t, d, s) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1])
        let dq = Tensor(zeros: q.shape, dtype: q.dtype), dk = Tensor(zeros: k.shape, dtype: q.dtype), dv = Tensor(zeros: v.shape, dtype: q.dtype)
        switch q.dtype {
        case .float32: attentionBackward(q, k, v, output, logSumExp, gradient, dq, dk, dv, n, t, s, d, Float(scale))
        case .float64: attentionBackward(q, k, v, output, logSumExp, gradient, dq, dk, dv, n, t, s, d, scale)
        }
        return (dq, dk, dv)
    }

    private static func attentionForward<T: TensorScalar>(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ o: Tensor, _ lse: Tensor,
                                                          _ n: Int, _ t: Int, _ s: Int, _ d: Int, _ scale: T) {
        let (pq, pk, pv, po, pl) = (q.pointer(T.self), k.pointer(T.self), v.pointer(T.self), o.pointer(T.self), lse.pointer(T.self))
        let (bq, bk) = attentionBlock
        // Problems are split across threads, each with single-threaded GEMMs on its blocks.
        BLASThreads.splittingWork(n, cost: t * s * d) { _, problems in
            var scores = [T](repeating: 0, count: bq * bk), maxima = [T](repeating: 0, count: bq), sums = [T](repeating: 0, count: bq)
            for problem in problems {
                let (qn, kn, vn, on) = (pq + problem * t * d, pk + problem * s * d, pv + problem * s * d, po + problem * t * d)
                for q0 in stride(from: 0, to: t, by: bq) {
                    let rows = min(bq, t - q0)
                    for i in 0..<rows { (maxima[i], sums[i]) = (-T.infinity, 0) }
                    for k0 in stride(from: 0, to: s, by: bk) {
                        let columns = min(bk, s - k0)
                        scores.withUnsafeMutableBufferPointer { sc in
                            guard let base = sc.baseAddress else { return }
                            T.gemm(transA: false, transB: true, m: rows, n: columns, k: d, alpha: scale, a: qn + q0 * d, lda: d,
                                   b: kn + k0 * d, ldb: d, beta: 0, c: base, ldc: columns)
                            for i in 0..<rows {
                                let row = base + i * columns
                                let newMax = max(maxima[i], rowMaximum(row, columns))
                                // Rescale what this row has so far to the new maximum (nothing yet
                                // before its first block).
                                if maxima[i] != -T.infinity, maxima[i] != newMax {
                                    let shrink = T.fastExp(maxima[i] - newMax), out = on + (q0 + i) * d
                                    sums[i] *= shrink
                                    for c in 0..<d { out[c] *= shrink }
                                }
                                exponentiate(row, columns, minus: newMax)  // a loop of its own, so that it vectorises
                                sums[i] += T(simdSum(row, columns))
                                maxima[i] = newMax
                            }
                            T.gemm(transA: false, transB: false, m: rows, n: d, k: columns, alpha: 1, a: base, lda: columns,
                                   b: vn + k0 * d, ldb: d, beta: 1, c: on + q0 * d, ldc: d)
                        }
                    }
                    for i in 0..<rows {
                        let out = on + (q0 + i) * d, inverse = 1 / sums[i]
                        for c in 0..<d { out[c] *= inverse }
                        pl[problem * t + q0 + i] = maxima[i] + .log(sums[i])
                    }
                }
            }
        }
    }

    private static func attentionBackward<T: TensorScalar>(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ o: Tensor, _ lse: Tensor, _ g: Tensor,
                                                           _ dq: Tensor, _ dk: Tensor, _ dv: Tensor,
                                                           _ n: Int, _ t: Int, _ s: Int, _ d: Int, _ scale: T) {
        let (pq, pk, pv, po, pl, pg) = (q.pointer(T.self), k.pointer(T.self), v.pointer(T.self), o.pointer(T.self), lse.pointer(T.self), g.pointer(T.self))
        let (pdq, pdk, pdv) = (dq.pointer(T.self), dk.pointer(T.self), dv.pointer(T.self))
        let (bq, bk) = attentionBlock
        BLASThreads.splittingWork(n, cost: 2 * t * s * d) { _, problems in
            var p = [T](repeating: 0, count: bq * bk), dp = [T](repeating: 0, count: bq * bk), delta = [T](repeating: 0, count: bq)
            for problem in problems {
                let (qn, kn, vn) = (pq + problem * t * d, pk + problem * s * d, pv + problem * s * d)
                let (on, gn, ln) = (po + problem * t * d, pg + problem * t * d, pl + problem * t)
                let (dqn, dkn, dvn) = (pdq + problem * t * d, pdk + problem * s * d, pdv + problem * s * d)
                for q0 in stride(from: 0, to: t, by: bq) {
                    let rows = min(bq, t - q0)
                    for i in 0..<rows {
                        var sum: T = 0
                        for c in 0..<d { sum += gn[(q0 + i) * d + c] * on[(q0 + i) * d + c] }
                        delta[i] = sum
                    }
                    for k0 in stride(from: 0, to: s, by: bk) {
                        let columns = min(bk, s - k0)
                        p.withUnsafeMutableBufferPointer { pb in
                            dp.withUnsafeMutableBufferPointer { db in
                                guard let P = pb.baseAddress, let dP = db.baseAddress else { return }
                                T.gemm(transA: false, transB: true, m: rows, n: columns, k: d, alpha: scale, a: qn + q0 * d, lda: d,
                                       b: kn + k0 * d, ldb: d, beta: 0, c: P, ldc: columns)
                                for i in 0..<rows { exponentiate(P + i * columns, columns, minus: ln[q0 + i]) }
                                // dv += Pᵀ·dO;  dP = dO·vᵀ
                                T.gemm(transA: true, transB: false, m: columns, n: d, k: rows, alpha: 1, a: P, lda: columns,
                                       b: gn + q0 * d, ldb: d, beta: 1, c: dvn + k0 * d, ldc: d)
                                T.gemm(transA: false, transB: true, m: rows, n: columns, k: d, alpha: 1, a: gn + q0 * d, lda: d,
                                       b: vn + k0 * d, ldb: d, beta: 0, c: dP, ldc: columns)
                                for i in 0..<rows {
                                    let (p, g, centre) = (P + i * columns, dP + i * columns, delta[i])
                                    for j in 0..<columns { g[j] = p[j] * (g[j] - centre) }
                                }
                                // dq += scale·dS·k;  dk += scale·dSᵀ·q
                                T.gemm(transA: false, transB: false, m: rows, n: d, k: columns, alpha: scale, a: dP, lda: columns,
                                       b: kn + k0 * d, ldb: d, beta: 1, c: dqn + q0 * d, ldc: d)
                                T.gemm(transA: true, transB: false, m: columns, n: d, k: rows, alpha: scale, a: dP, lda: columns,
                                       b: qn + q0 * d, ldb: d, beta: 1, c: dkn + k0 * d, ldc: d)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The largest of n values (n ≥ 1), in four independent running maxima (the stdlib's
    /// generic SIMD maximum is not inlined here, and one chain of `max` waits on itself).
    @inline(__always)
    private static func rowMaximum<T: TensorScalar>(_ p: UnsafeMutablePointer<T>, _ n: Int) -> T {
        var (m0, m1, m2, m3) = (-T.infinity, -T.infinity, -T.infinity, -T.infinity), j = 0
        while j + 4 <= n {
            (m0, m1, m2, m3) = (max(m0, p[j]), max(m1, p[j + 1]), max(m2, p[j + 2]), max(m3, p[j + 3]))
            j += 4
        }
        while j < n { m0 = max(m0, p[j]); j += 1 }
        return max(max(m0, m1), max(m2, m3))
    }

    /// p ← exp(p − m) over n values.
    @inline(__always)
    private static func exponentiate<T: TensorScalar>(_ p: UnsafeMutablePointer<T>, _ n: Int, minus m: T) {
        for j in 0..<n { p[j] = T.fastExp(p[j] - m) }
    }
}
