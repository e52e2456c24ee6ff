/// Row standardisation, LayerNorm's core.
extension Tensor {
    /// The tensor viewed as rows of `rowLength`, each standardised: y = (x − μ) / √(σ² + ε),
    /// with μ and the biased variance σ² of the row. Returns y and each row's 1/√(σ² + ε),
    /// which the backward needs, plus the row means and variances (for running statistics).
    public func standardizedRows(_ rowLength: Int, epsilon: Double) -> (output: Tensor, inverseStd: Tensor, mean: Tensor, variance: Tensor) {
        precondition(rowLength > 0 && count % rowLength == 0, "rows of \(rowLength) in \(shape)")
        let rows = count / rowLength
        let out = Tensor(uninitialized: shape, dtype: dtype)
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
        Parallel.forRanges(count / n, cost: n) { rows in for r in rows {
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
        } }
    }

    /// Backward of `standardizedRows`: dx = rstd · (g − mean(g) − y · mean(g ⊙ y)) per row,
    /// given the standardised output y and each row's inverse standard deviation.
    public static func standardizedRowsBackward(output y: Tensor, inverseStd: Tensor, gradient g: Tensor) -> Tensor {
        let out = Tensor(uninitialized: y.shape, dtype: y.dtype)
        switch y.dtype {
        case .float32: standardizeBackwardKernel(y, inverseStd, g, out, Float.self)
        case .float64: standardizeBackwardKernel(y, inverseStd, g, out, Double.self)
        }
        return out
    }
    static func standardizeBackwardKernel<T: TensorScalar>(_ y: Tensor, _ inverseStd: Tensor, _ g: Tensor, _ out: Tensor, _: T.Type) {
        let rows = inverseStd.count, n = y.count / max(rows, 1)
        let py = y.pointer(T.self), pg = g.pointer(T.self), po = out.pointer(T.self), rstd = inverseStd.pointer(T.self)
        Parallel.forRanges(rows, cost: n) { range in for r in range {
            let yr = py + r * n, gr = pg + r * n, o = po + r * n
            var sumG: T = 0, sumGY: T = 0
            for j in 0..<n { sumG += gr[j]; sumGY += gr[j] * yr[j] }
            let meanG = sumG / T(n), meanGY = sumGY / T(n), inv = rstd[r]
            for j in 0..<n { o[j] = inv * (gr[j] - meanG - yr[j] * meanGY) }
        } }
    }
}

/// GroupNorm with its affine, fused: one kernel forward and one backward instead of the chain
/// standardise → ×γ → +β (each a pass over the activations and a tape entry).
extension Tensor {
    /// x [B, C, …] → y = (x − μ)·rstd·γ_c + β_c, with μ and the biased variance over each sample's
    /// group of C/groups channels. Returns y and, per (sample, group), μ and rstd = 1/√(σ² + ε).
    public static func groupNorm(
        _ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, epsilon: Double
    ) -> (output: Tensor, mean: Tensor, inverseStd: Tensor) {
        let layout = GroupLayout(x, groups)
        precondition(weight.count == layout.channels && bias.count == layout.channels, "GroupNorm affine for \(x.shape)")
        let y = Tensor(uninitialized: x.shape, dtype: x.dtype)
        let mean = Tensor(uninitialized: [layout.rows], dtype: x.dtype), rstd = Tensor(uninitialized: [layout.rows], dtype: x.dtype)
        switch x.dtype {
        case .float32: groupNormKernel(x, layout, weight, bias, epsilon, y, mean, rstd, Float.self)
        case .float64: groupNormKernel(x, layout, weight, bias, epsilon, y, mean, rstd, Double.self)
        }
        return (y, mean, rstd)
    }

    /// Gradients of `groupNorm` given g = dL/dy: dL/dx (new), and dL/dγ, dL/dβ added into
    /// `weightGradient` and `biasGradient` when given.
    public static func groupNormBackward(
        _ x: Tensor, groups: Int, mean: Tensor, inverseStd: Tensor, weight: Tensor, gradient g: Tensor,
        weightGradient: Tensor?, biasGradient: Tensor?
    ) -> Tensor {
        let layout = GroupLayout(x, groups)
        let dx = Tensor(uninitialized: x.shape, dtype: x.dtype)
        // Per (sample, channel) partial sums of g and g·x̂, reduced over samples afterwards.
        let partials = Tensor(uninitialized: [2, layout.batch * layout.channels], dtype: x.dtype)
        switch x.dtype {
        case .float32: groupNormBackwardKernel(x, layout, mean, inverseStd, weight, g, dx, partials, Float.self)
        case .float64: groupNormBackwardKernel(x, layout, mean, inverseStd, weight, g, dx, partials, Double.self)
        }
        let perChannel = partials.reshaped([2, layout.batch, layout.channels]).sum(to: [2, 1, layout.channels])
        weightGradient?.add(perChannel.slice(rows: 0..<1).reshaped([layout.channels]))
        biasGradient?.add(perChannel.slice(rows: 1..<2).reshaped([layout.channels]))
        return dx
    }

    /// [B, C, spatial…] seen as B·groups rows of C/groups channels × spatial elements.
    struct GroupLayout {
        let batch, channels, groups, spatial: Int
        var perGroup: Int { channels / groups }
        var rows: Int { batch * groups }
        var rowLength: Int { perGroup * spatial }

        init(_ x: Tensor, _ groups: Int) {
            precondition(x.rank >= 2 && groups > 0 && x.shape[1] % groups == 0, "normalisation of \(x.shape) in \(groups) groups")
            (batch, channels, self.groups) = (x.shape[0], x.shape[1], groups)
            spatial = x.shape.dropFirst(2).reduce(1, *)
        }

        /// A group per channel (BatchNorm): rows of `spatial` elements, one per sample and channel.
        init(channelsOf x: Tensor) {
            precondition(x.rank >= 2, "BatchNorm of \(x.shape): needs [B, C, …]")
            self.init(x, x.shape[1])
        }
    }

    static func groupNormKernel<T: TensorScalar>(
        _ x: Tensor, _ layout: GroupLayout, _ weight: Tensor, _ bias: Tensor, _ epsilon: Double,
        _ y: Tensor, _ mean: Tensor, _ rstd: Tensor, _: T.Type
    ) {
        let px = x.pointer(T.self), py = y.pointer(T.self), gamma = weight.pointer(T.self), beta = bias.pointer(T.self)
        let pm = mean.pointer(T.self), pr = rstd.pointer(T.self), n = layout.rowLength, s = layout.spatial
        Parallel.forRanges(layout.rows, cost: n) { rows in
            for r in rows {
                let xr = px + r * n, yr = py + r * n
                // Two passes (mean, then centred squares): no cancellation.
                let mu = T(simdSum(xr, n) / Double(n))
                let variance = simdCentredSquares(xr, n, mu) / Double(n)
                let inv = T(1 / (variance + epsilon).squareRoot())
                (pm[r], pr[r]) = (mu, inv)
                for c in 0..<layout.perGroup {
                    let channel = (r % layout.groups) * layout.perGroup + c
                    let scale = inv * gamma[channel], shift = beta[channel] - mu * scale
                    let xc = xr + c * s, yc = yr + c * s
                    for j in 0..<s { yc[j] = xc[j] * scale + shift }
                }
            }
        }
    }

    static func groupNormBackwardKernel<T: TensorScalar>(
        _ x: Tensor, _ layout: GroupLayout, _ mean: Tensor, _ rstd: Tensor, _ weight: Tensor, _ g: Tensor,
        _ dx: Tensor, _ partials: Tensor, _: T.Type
    ) {
        let px = x.pointer(T.self), pg = g.pointer(T.self), pdx = dx.pointer(T.self), gamma = weight.pointer(T.self)
        let pm = mean.pointer(T.self), pr = rstd.pointer(T.self), n = layout.rowLength, s = layout.spatial
        let dGamma = partials.pointer(T.self), dBeta = dGamma + layout.batch * layout.channels
        Parallel.forRanges(layout.rows, cost: n) { rows in
            for r in rows {
                let (mu, inv) = (Double(pm[r]), Double(pr[r]))
                let firstChannel = (r % layout.groups) * layout.perGroup, sample = r / layout.groups
                // With x̂ = (x − μ)·rstd and dx̂ = γ_c·g:
                //   dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))  (means over the row).
                var meanDxhat = 0.0, meanDxhatXhat = 0.0
                for c in 0..<layout.perGroup {
                    let offset = r * n + c * s, channel = firstChannel + c
                    let (sumG, sumGX) = simdSumAndDot(pg + offset, px + offset, s)
                    let sumGXhat = inv * (sumGX - mu * sumG)
                    dBeta[sample * layout.channels + channel] = T(sumG)
                    dGamma[sample * layout.channels + channel] = T(sumGXhat)
                    meanDxhat += Double(gamma[channel]) * sumG
                    meanDxhatXhat += Double(gamma[channel]) * sumGXhat
                }
                meanDxhat /= Double(n)
                meanDxhatXhat /= Double(n)
                // dx = g·(rstd·γ_c) + x·(−rstd²·B) + rstd·(μ·rstd·B − A), A = mean(dx̂), B = mean(dx̂·x̂).
                let b = T(-inv * inv * meanDxhatXhat), constant = T(inv * (mu * inv * meanDxhatXhat - meanDxhat))
                for c in 0..<layout.perGroup {
                    let offset = r * n + c * s, a = T(inv) * gamma[firstChannel + c]
                    let gc = pg + offset, xc = px + offset, dc = pdx + offset
                    for j in 0..<s { dc[j] = gc[j] * a + xc[j] * b + constant }
                }
            }
        }
    }
}

/// Σ p[0..<n], eight lanes at a time, returned in Double.
@inline(__always)
func simdSum<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int) -> Double {
    var lanes = SIMD8<T>(), j = 0
    while j + 8 <= n { lanes += UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<T>.self); j += 8 }
    var total = Double(lanes.sum())
    while j < n { total += Double(p[j]); j += 1 }
    return total
}

/// Σ (p − μ)², eight lanes at a time.
@inline(__always)
func simdCentredSquares<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int, _ mu: T) -> Double {
    var lanes = SIMD8<T>(), j = 0
    let m = SIMD8<T>(repeating: mu)
    while j + 8 <= n { let d = UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<T>.self) - m; lanes += d * d; j += 8 }
    var total = Double(lanes.sum())
    while j < n { let d = Double(p[j] - mu); total += d * d; j += 1 }
    return total
}

/// (Σ a, Σ a·(b − centre)), eight lanes at a time.
@inline(__always)
func simdSumAndDot<T: TensorScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ n: Int, centre: T = 0) -> (Double, Double) {
    var sum = SIMD8<T>(), dot = SIMD8<T>(), j = 0
    let m = SIMD8<T>(repeating: centre)
    while j + 8 <= n {
        let va = UnsafeRawPointer(a + j).loadUnaligned(as: SIMD8<T>.self)
        sum += va
        dot += va * (UnsafeRawPointer(b + j).loadUnaligned(as: SIMD8<T>.self) - m)
        j += 8
    }
    var (s, d) = (Double(sum.sum()), Double(dot.sum()))
    while j < n { s += Double(a[j]); d += Double(a[j]) * Double(b[j] - centre); j += 1 }
    return (s, d)
}
