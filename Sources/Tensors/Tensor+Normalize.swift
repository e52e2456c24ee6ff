/// Row standardisation, the shared core of LayerNorm, GroupNorm and BatchNorm.
extension Tensor {
    /// The tensor viewed as rows of `rowLength`, each standardised: y = (x − μ) / √(σ² + ε),
    /// with μ and the biased variance σ² of the row. Returns y and each row's 1/√(σ² + ε),
    /// which the backward needs, plus the row means and variances (for running statistics).
    public func standardizedRows(_ rowLength: Int, epsilon: Double) -> (output: Tensor, inverseStd: Tensor, mean: Tensor, variance: Tensor) {
        precondition(rowLength > 0 && count % rowLength == 0, "rows of \(rowLength) in \(shape)")
        let rows = count / rowLength
        let out = Tensor(zeros: shape, dtype: dtype)
        let stats = (Tensor(zeros: [rows], dtype: dtype), Tensor(zeros: [rows], dtype: dtype), Tensor(zeros: [rows], dtype: dtype))
        switch dtype {
        case .float32: standardizeKernel(rowLength, epsilon, out, stats.0, stats.1, stats.2, Float.self)
        case .float64: standardizeKernel(rowLength, epsilon, out, stats.0, stats.1, stats.2, Double.self)
        }
        return (out, stats.0, stats.1, stats.2)
    }
    func standardizeKernel<T: TensorScalar>(
        _ n: Int, _ epsilon: Double, _ out: Tensor, _ inverseStd: Tensor, _ mean: Tensor, _ variance: Tensor, _: T.Type
    ) {
        let x = pointer(T.self), y = out.pointer(T.self)
        let rstd = inverseStd.pointer(T.self), mu = mean.pointer(T.self), va = variance.pointer(T.self)
        for r in 0..<(count / n) {
            let xr = x + r * n, yr = y + r * n
            // Two passes: the mean, then the centred sum of squares (no cancellation).
            var sum: T = 0
            for j in 0..<n { sum += xr[j] }
            let m = sum / T(n)
            var squares: T = 0
            for j in 0..<n { let d = xr[j] - m; squares += d * d }
            let v = squares / T(n)
            let inv = 1 / (v + T(epsilon)).squareRoot()
            for j in 0..<n { yr[j] = (xr[j] - m) * inv }
            (rstd[r], mu[r], va[r]) = (inv, m, v)
        }
    }

    /// Backward of `standardizedRows`: dx = rstd · (g − mean(g) − y · mean(g ⊙ y)) per row,
    /// given the standardised output y and each row's inverse standard deviation.
    public static func standardizedRowsBackward(output y: Tensor, inverseStd: Tensor, gradient g: Tensor) -> Tensor {
        let out = Tensor(zeros: y.shape, dtype: y.dtype)
        switch y.dtype {
        case .float32: standardizeBackwardKernel(y, inverseStd, g, out, Float.self)
        case .float64: standardizeBackwardKernel(y, inverseStd, g, out, Double.self)
        }
        return out
    }
    static func standardizeBackwardKernel<T: TensorScalar>(_ y: Tensor, _ inverseStd: Tensor, _ g: Tensor, _ out: Tensor, _: T.Type) {
        let rows = inverseStd.count, n = y.count / max(rows, 1)
        let py = y.pointer(T.self), pg = g.pointer(T.self), po = out.pointer(T.self), rstd = inverseStd.pointer(T.self)
        for r in 0..<rows {
            let yr = py + r * n, gr = pg + r * n, o = po + r * n
            var sumG: T = 0, sumGY: T = 0
            for j in 0..<n { sumG += gr[j]; sumGY += gr[j] * yr[j] }
            let meanG = sumG / T(n), meanGY = sumGY / T(n), inv = rstd[r]
            for j in 0..<n { o[j] = inv * (gr[j] - meanG - yr[j] * meanGY) }
        }
    }
}
