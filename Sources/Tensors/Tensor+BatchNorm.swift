/// BatchNorm's training step with its affine, fused: one kernel forward and one backward over
/// x [B, C, spatial…] in place, instead of permuting to [C, B, …] and back around a row op.
/// Channel c is the B runs of `spatial` contiguous elements at (b·C + c)·spatial (a [B, C]
/// input has runs of one element); channels are split across threads, so each thread owns its
/// channels' statistics and sums.
extension Tensor {
    /// x [B, C, …] → y = (x − μ_c)·r_c·γ_c + β_c, with μ_c and the biased variance σ²_c of channel
    /// c's B·spatial values and r_c = 1/√(σ²_c + ε). Returns y and, per channel, μ, σ² and r.
    public static func batchNorm(
        _ x: Tensor, weight: Tensor, bias: Tensor, epsilon: Double
    ) -> (output: Tensor, mean: Tensor, variance: Tensor, inverseStd: Tensor) {
        let layout = GroupLayout(channelsOf: x)
        // Called by `BatchNorm` with its own parameters, whose count it has checked against x.
        precondition(weight.count == layout.channels && bias.count == layout.channels, "BatchNorm affine \(weight.shape), \(bias.shape) for \(x.shape)")
        let y = Tensor(uninitialized: x.shape, dtype: x.dtype)
        let stats = (0..<3).map { _ in Tensor(uninitialized: [layout.channels], dtype: x.dtype) }
        switch x.dtype {
        case .float32: batchNormKernel(x, layout, weight, bias, epsilon, y, stats, Float.self)
        case .float64: batchNormKernel(x, layout, weight, bias, epsilon, y, stats, Double.self)
        }
        return (y, stats[0], stats[1], stats[2])
    }

    /// Gradients of `batchNorm` given g = dL/dy: dL/dx (new), and dL/dγ, dL/dβ added into
    /// `weightGradient` and `biasGradient` when given.
    public static func batchNormBackward(
        _ x: Tensor, mean: Tensor, inverseStd: Tensor, weight: Tensor, gradient g: Tensor,
        weightGradient: Tensor?, biasGradient: Tensor?
    ) -> Tensor {
        let layout = GroupLayout(channelsOf: x)
        // Called by the forward op's backward rule with the tensors it saved.
        precondition(g.shape == x.shape && mean.count == layout.channels, "BatchNorm backward: \(g.shape) for \(x.shape)")
        let dx = Tensor(uninitialized: x.shape, dtype: x.dtype)
        let sums = Tensor(uninitialized: [2, layout.channels], dtype: x.dtype)  // dγ, dβ
        switch x.dtype {
        case .float32: batchNormBackwardKernel(x, layout, mean, inverseStd, weight, g, dx, sums, Float.self)
        case .float64: batchNormBackwardKernel(x, layout, mean, inverseStd, weight, g, dx, sums, Double.self)
        }
        weightGradient?.add(sums.slice(rows: 0..<1).reshaped([layout.channels]))
        biasGradient?.add(sums.slice(rows: 1..<2).reshaped([layout.channels]))
        return dx
    }

    static func batchNormKernel<T: TensorScalar>(
        _ x: Tensor, _ layout: GroupLayout, _ weight: Tensor, _ bias: Tensor, _ epsilon: Double,
        _ y: Tensor, _ stats: [Tensor], _: T.Type
    ) {
        let px = x.pointer(T.self), py = y.pointer(T.self), gamma = weight.pointer(T.self), beta = bias.pointer(T.self)
        let pm = stats[0].pointer(T.self), pv = stats[1].pointer(T.self), pr = stats[2].pointer(T.self)
        let (batch, channels, s) = (layout.batch, layout.channels, layout.spatial)
        Parallel.forRanges(channels, cost: batch * s) { range in
            for c in range {
                // Each run in two passes while it is in cache (its mean m_b, then M2_b = Σ(x − m_b)²),
                // merged into the channel's μ and M2 by Chan's rule, runs of equal length s:
                //   δ = m_b − μ,  μ += δ/(b + 1),  M2 += M2_b + δ²·s·b/(b + 1).
                var mu = 0.0, m2 = 0.0
                for b in 0..<batch {
                    let run = px + (b * channels + c) * s
                    let runMean = simdSum(run, s) / Double(s), delta = runMean - mu, seen = Double(b)
                    mu += delta / (seen + 1)
                    m2 += simdCentredSquares(run, s, T(runMean)) + delta * delta * Double(s) * seen / (seen + 1)
                }
                let variance = m2 / Double(batch * s), inv = 1 / (variance + epsilon).squareRoot()
                (pm[c], pv[c], pr[c]) = (T(mu), T(variance), T(inv))
                let centre = T(mu), scale = T(inv) * gamma[c], shift = beta[c]
                for b in 0..<batch {
                    let xr = px + (b * channels + c) * s, yr = py + (b * channels + c) * s
                    for j in 0..<s { yr[j] = (xr[j] - centre) * scale + shift }
                }
            }
        }
    }

    static func batchNormBackwardKernel<T: TensorScalar>(
        _ x: Tensor, _ layout: GroupLayout, _ mean: Tensor, _ rstd: Tensor, _ weight: Tensor, _ g: Tensor,
        _ dx: Tensor, _ sums: Tensor, _: T.Type
    ) {
        let px = x.pointer(T.self), pg = g.pointer(T.self), pdx = dx.pointer(T.self), gamma = weight.pointer(T.self)
        let pm = mean.pointer(T.self), pr = rstd.pointer(T.self)
        let (batch, channels, s) = (layout.batch, layout.channels, layout.spatial)
        let dGamma = sums.pointer(T.self), dBeta = dGamma + channels
        Parallel.forRanges(channels, cost: batch * s) { range in
            for c in range {
                let centre = pm[c], inv = Double(pr[c]), n = Double(batch * s)
                // Over the channel's N values: dβ = Σg, dγ = Σg·x̂ = r·Σg·(x − μ).
                var sumG = 0.0, sumGCentred = 0.0
                for b in 0..<batch {
                    let offset = (b * channels + c) * s
                    let (runG, runGCentred) = simdSumAndDot(pg + offset, px + offset, s, centre: centre)
                    sumG += runG
                    sumGCentred += runGCentred
                }
                (dBeta[c], dGamma[c]) = (T(sumG), T(inv * sumGCentred))
                // With x̂ = (x − μ)·r and dx̂ = γ·g: dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
                //   = g·(γr) + (x − μ)·(−γr·r·dγ/N) − γr·dβ/N.
                let a = Double(gamma[c]) * inv
                let scale = T(a), slope = T(-a * inv * inv * sumGCentred / n), shift = T(-a * sumG / n)
                for b in 0..<batch {
                    let offset = (b * channels + c) * s
                    let gr = pg + offset, xr = px + offset, dr = pdx + offset
                    for j in 0..<s { dr[j] = gr[j] * scale + (xr[j] - centre) * slope + shift }
                }
            }
        }
    }
}
