import Foundation

/// The forward (noising) process of a diffusion model over T discrete steps (Ho et al. 2020):
/// x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, with ᾱ_t = Π_{s ≤ t} (1 − β_s), t = 0 … T − 1.
public struct NoiseSchedule: Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// β linear from 10⁻⁴ to 0.02, scaled by 1000/T (Ho et al.; Nichol & Dhariwal's scaling).
        case linear
        /// ᾱ(t) = f(t)/f(0), f(t) = cos²(((t/T) + 0.008)/1.008 · π/2), β capped at 0.999 (Nichol & Dhariwal 2021).
        case cosine
    }

    public let kind: Kind
    /// ᾱ_t for t = 0 … T − 1.
    public let alphaBars: [Double]
    public var timesteps: Int { alphaBars.count }

    /// `timesteps` ≥ 2 (checked with the config).
    public init(_ kind: Kind, timesteps: Int) {
        let t = Double(timesteps)
        let betas: [Double]
        switch kind {
        case .linear:
            let (first, last) = (1e-4 * 1000 / t, 0.02 * 1000 / t)
            betas = (0..<timesteps).map { first + (last - first) * Double($0) / (t - 1) }
        case .cosine:
            func f(_ step: Double) -> Double { let c = cos((step / t + 0.008) / 1.008 * Double.pi / 2); return c * c }
            betas = (0..<timesteps).map { min(1 - f(Double($0 + 1)) / f(Double($0)), 0.999) }
        }
        var product = 1.0
        alphaBars = betas.map { product *= 1 - $0; return product }
        self.kind = kind
    }

    /// The signal-to-noise ratio ᾱ_t / (1 − ᾱ_t).
    public func signalToNoise(_ t: Int) -> Double { alphaBars[t] / (1 - alphaBars[t]) }

    /// The P2 weight of step t's ε loss, (k + SNR(t))^−γ (Choi et al. 2022): γ = 0 is the plain
    /// loss; γ > 0 leans on the noisier steps, where content forms.
    public func p2Weight(_ t: Int, gamma: Double, k: Double = 1) -> Double { pow(k + signalToNoise(t), -gamma) }

    /// x_t from x₀ and ε (same length), in place of nothing: a new array.
    public func noised(_ x0: ArraySlice<Float>, noise: ArraySlice<Float>, at t: Int) -> [Float] {
        let (a, b) = (Float(alphaBars[t].squareRoot()), Float((1 - alphaBars[t]).squareRoot()))
        return zip(x0, noise).map { a * $0 + b * $1 }
    }
}
