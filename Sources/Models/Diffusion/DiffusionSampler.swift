import Foundation
import Tensors

/// Turns noise into tiles with a trained denoiser: ancestral DDPM (Ho et al. 2020) or
/// deterministic DDIM (η = 0, Song et al. 2021), over `steps` timesteps evenly spaced from T − 1
/// down to 0, with classifier-free guidance and Imagen's dynamic thresholding of the predicted x₀.
///
/// Every random number of a tile comes from its own key (start noise from `diffusionNoise`,
/// each DDPM step's from `samplingNoise` at that step), so a tile does not depend on which other
/// tiles share its batch or its worker.
public struct DiffusionSampler: Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case ddpm, ddim }

    public var schedule: NoiseSchedule
    public var kind: Kind
    /// 1 ≤ steps ≤ T.
    public var steps: Int
    /// The percentile of |x̂₀| per tile that dynamic thresholding rescales to 1 (when above 1).
    public var thresholdPercentile: Double

    public init(schedule: NoiseSchedule, kind: Kind, steps: Int, thresholdPercentile: Double = 0.9) {
        (self.schedule, self.kind, self.steps, self.thresholdPercentile) = (schedule, kind, steps, thresholdPercentile)
    }

    /// The timesteps visited, from T − 1 down to 0.
    public var visited: [Int] {
        let last = Double(schedule.timesteps - 1)
        guard steps > 1 else { return [schedule.timesteps - 1] }
        return (0..<steps).map { Int((last * Double(steps - 1 - $0) / Double(steps - 1)).rounded()) }
    }

    /// ε = ε_null + s·(ε_cond − ε_null).
    public static func guided(conditional: [Float], null: [Float], scale: Double) -> [Float] {
        let s = Float(scale)
        return zip(conditional, null).map { $1 + s * ($0 - $1) }
    }

    /// Samples [keys.count, 3, size, size] in [−1, 1]: `predict(x_t, t)` gives the (guided) ε̂ of
    /// every row; `keys` one per tile; `progress(done)` after each step.
    public func sample(keys: [RandomKey], size: Int, predict: (Tensor, Int) -> [Float], progress: (Int) -> Void = { _ in }) -> Tensor {
        let n = 3 * size * size
        var x = keys.flatMap { key -> [Float] in
            var k = key
            k.stream = RandomStream.diffusionNoise
            return k.normal(n).map(Float.init)
        }
        let timesteps = visited
        for (index, t) in timesteps.enumerated() {
            let epsilon = predict(Tensor(shape: [keys.count, 3, size, size], values: x), t)
            let previous = index + 1 < timesteps.count ? schedule.alphaBars[timesteps[index + 1]] : 1.0
            let current = schedule.alphaBars[t]
            for (row, key) in keys.enumerated() {
                let range = (row * n)..<((row + 1) * n)
                let x0 = threshold(zip(x[range], epsilon[range]).map { (xt, e) in
                    (xt - Float((1 - current).squareRoot()) * e) / Float(current.squareRoot())
                })
                var noise: [Double]? = nil
                if kind == .ddpm, index + 1 < timesteps.count {
                    var k = key
                    (k.stream, k.step) = (RandomStream.samplingNoise, UInt32(index))
                    noise = k.normal(n)
                }
                let next = step(x: Array(x[range]), x0: x0, current: current, previous: previous, noise: noise)
                x.replaceSubrange(range, with: next)
            }
            progress(index + 1)
        }
        return Tensor(shape: [keys.count, 3, size, size], values: x.map { min(max($0, -1), 1) })
    }

    /// Dynamic thresholding (Saharia et al. 2022): s = the `thresholdPercentile` of |x̂₀|, at least
    /// 1; x̂₀ clipped to [−s, s] and divided by s.
    public func threshold(_ x0: [Float]) -> [Float] {
        let sorted = x0.map(abs).sorted()
        let s = max(1, sorted[min(sorted.count - 1, Int(thresholdPercentile * Double(sorted.count - 1)))])
        return x0.map { min(max($0, -s), s) / s }
    }

    /// x at the next visited step from x_t and the clipped x̂₀ (ᾱ at both steps; ᾱ = 1 after the last).
    func step(x: [Float], x0: [Float], current: Double, previous: Double, noise: [Double]?) -> [Float] {
        switch kind {
        case .ddim:
            // ε recomputed from the clipped x̂₀, so that x stays on the model's trajectory.
            let (a, b) = (current.squareRoot(), (1 - current).squareRoot())
            let (pa, pb) = (Float(previous.squareRoot()), Float((1 - previous).squareRoot()))
            return zip(x, x0).map { (xt, x0) in
                let e = b > 0 ? (xt - Float(a) * x0) / Float(b) : 0
                return pa * x0 + pb * e
            }
        case .ddpm:
            // The posterior q(x_prev | x_t, x̂₀) of the respaced chain: β = 1 − ᾱ_t/ᾱ_prev.
            let beta = 1 - current / previous
            let c0 = Float(previous.squareRoot() * beta / (1 - current))
            let ct = Float((1 - beta).squareRoot() * (1 - previous) / (1 - current))
            let sigma = Float((beta * (1 - previous) / (1 - current)).squareRoot())
            return x.indices.map { i in c0 * x0[i] + ct * x[i] + (noise.map { sigma * Float($0[i]) } ?? 0) }
        }
    }
}
