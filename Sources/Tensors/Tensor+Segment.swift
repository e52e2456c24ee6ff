/// Weighted sums over segments of rows: attention-MIL pooling of bags of tiles packed as one
/// [N, …] tensor, bag b being rows `offsets[b]..<offsets[b + 1]` (softmax within a bag is
/// `segmentSoftmax`).
extension Tensor {
    /// Per segment and head, the weighted sum of its rows of values:
    /// out[b, h, :] = Σ_{i in segment b} w[i, h] · v[i, :].
    /// weights [N, H] with values [N, D] give [B, H, D]; weights [N] give [B, D]. Every head
    /// weighs the whole row of values. An empty segment sums to zeros.
    public static func segmentWeightedSum(weights: Tensor, values: Tensor, offsets: [Int]) -> Tensor {
        let layout = SegmentSumLayout(weights, values, offsets)
        checkSegments(offsets, rows: layout.rows)
        let out = Tensor(zeros: weights.rank == 1 ? [layout.segments, layout.width] : [layout.segments, layout.heads, layout.width],
                         dtype: values.dtype)
        switch values.dtype {
        case .float32: segmentWeightedSumKernel(weights, values, offsets, layout, out, Float.self)
        case .float64: segmentWeightedSumKernel(weights, values, offsets, layout, out, Double.self)
        }
        return out
    }

    /// Gradients of `segmentWeightedSum` given g = dL/dout, added into `weightsGradient`
    /// (dw[i, h] = v[i] · g[b, h]) and `valuesGradient` (dv[i] = Σ_h w[i, h] · g[b, h]) when given.
    public static func segmentWeightedSumBackward(
        weights: Tensor, values: Tensor, offsets: [Int], gradient g: Tensor, weightsGradient: Tensor?, valuesGradient: Tensor?
    ) {
        let layout = SegmentSumLayout(weights, values, offsets)
        switch values.dtype {
        case .float32: segmentWeightedSumBackwardKernel(weights, values, offsets, layout, g, weightsGradient, valuesGradient, Float.self)
        case .float64: segmentWeightedSumBackwardKernel(weights, values, offsets, layout, g, weightsGradient, valuesGradient, Double.self)
        }
    }

    /// Checks that `offsets` splits `rows` rows into segments: it starts at 0, ends at `rows`
    /// and never decreases.
    static func checkSegments(_ offsets: [Int], rows: Int) {
        precondition(offsets.first == 0 && offsets.last == rows, "segment offsets must run from 0 to \(rows), got \(offsets)")
        for b in offsets.indices.dropFirst() {
            precondition(offsets[b - 1] <= offsets[b], "segment offsets decrease at \(b): \(offsets[b - 1]) > \(offsets[b])")
        }
    }

    /// weights [N] or [N, H] and values [N, D], checked against each other.
    struct SegmentSumLayout {
        let rows, heads, width, segments: Int

        init(_ weights: Tensor, _ values: Tensor, _ offsets: [Int]) {
            precondition(values.rank == 2 && (weights.rank == 1 || weights.rank == 2) && weights.shape[0] == values.shape[0],
                         "segment weighted sum needs weights [N] or [N, H] and values [N, D], got \(weights.shape) and \(values.shape)")
            precondition(weights.dtype == values.dtype, "segment weighted sum dtypes differ: \(weights.dtype) and \(values.dtype)")
            (rows, width) = (values.shape[0], values.shape[1])
            heads = weights.rank == 2 ? weights.shape[1] : 1
            segments = max(offsets.count - 1, 0)
        }
    }

    // Per segment b with n rows, as matrices: W_b [n, H], V_b [n, D], out_b and G_b [H, D].
    //   out_b = W_bᵀ·V_b,  dW_b = V_b·G_bᵀ,  dV_b = W_b·G_b.
    // Segments write disjoint rows, so they are split across threads, each with single-threaded
    // GEMMs (one large bag keeps BLAS's own threads).
    static func segmentWeightedSumKernel<T: TensorScalar>(
        _ weights: Tensor, _ values: Tensor, _ offsets: [Int], _ layout: SegmentSumLayout, _ out: Tensor, _: T.Type
    ) {
        let (h, d) = (layout.heads, layout.width)
        guard h > 0, d > 0 else { return }
        let w = weights.pointer(T.self), v = values.pointer(T.self), o = out.pointer(T.self)
        BLASThreads.splittingWork(layout.segments) { _, segments in
            for b in segments where offsets[b] < offsets[b + 1] {
                let first = offsets[b], n = offsets[b + 1] - first
                T.gemm(transA: true, transB: false, m: h, n: d, k: n, alpha: 1, a: w + first * h, lda: h,
                       b: v + first * d, ldb: d, beta: 0, c: o + b * h * d, ldc: d)
            }
        }
    }

    static func segmentWeightedSumBackwardKernel<T: TensorScalar>(
        _ weights: Tensor, _ values: Tensor, _ offsets: [Int], _ layout: SegmentSumLayout, _ g: Tensor,
        _ weightsGradient: Tensor?, _ valuesGradient: Tensor?, _: T.Type
    ) {
        let (h, d) = (layout.heads, layout.width)
        guard h > 0, d > 0 else { return }
        let w = weights.pointer(T.self), v = values.pointer(T.self), pg = g.pointer(T.self)
        let dw = weightsGradient?.pointer(T.self), dv = valuesGradient?.pointer(T.self)
        BLASThreads.splittingWork(layout.segments) { _, segments in
            for b in segments where offsets[b] < offsets[b + 1] {
                let first = offsets[b], n = offsets[b + 1] - first, gb = pg + b * h * d
                if let dw {
                    T.gemm(transA: false, transB: true, m: n, n: h, k: d, alpha: 1, a: v + first * d, lda: d,
                           b: gb, ldb: d, beta: 1, c: dw + first * h, ldc: h)
                }
                if let dv {
                    T.gemm(transA: false, transB: false, m: n, n: d, k: h, alpha: 1, a: w + first * h, lda: h,
                           b: gb, ldb: d, beta: 1, c: dv + first * d, ldc: d)
                }
            }
        }
    }
}
