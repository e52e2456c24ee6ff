import Autograd
import NN
import Tensors

/// The β-VAE of RNA-CDM (SCIENCE.md): a patient's normalised bulk RNA [B, genes] to a latent
/// Gaussian (μ, log σ²) [B, latent] and back.
///
///   encoder: Dropout(p) → {Linear → BatchNorm → LeakyReLU} per hidden width → Linear μ, Linear log σ²
///   decoder: latent → {Linear → BatchNorm → LeakyReLU} per hidden width, reversed → Linear → Tanh
///   loss:    MSE(x̂, x) + β · mean_b KL(N(μ, σ²) ‖ N(0, 1))
///
/// The paper's sizes are the defaults (hidden 6000, 4000; latent 200; dropout 0.5; β 0.005).
public final class ExpressionVAE: Module {
    public struct Config: Codable, Sendable, Equatable {
        public var hidden = [6000, 4000]
        public var latent = 200
        /// On the input only, as in the paper.
        public var dropout = 0.5
        public var beta = 0.005
        /// Negative slope of the LeakyReLUs (PyTorch's default).
        public var leakySlope = 0.01

        public init(hidden: [Int] = [6000, 4000], latent: Int = 200, dropout: Double = 0.5, beta: Double = 0.005, leakySlope: Double = 0.01) {
            (self.hidden, self.latent, self.dropout, self.beta, self.leakySlope) = (hidden, latent, dropout, beta, leakySlope)
        }

        enum CodingKeys: String, CodingKey { case hidden, latent, dropout, beta, leakySlope = "leaky_slope" }

        /// Problems with the sizes, each naming its key.
        public func problems() -> [String] {
            var problems = [String]()
            if hidden.isEmpty || !hidden.allSatisfy({ (1...maxWidth).contains($0) }) { problems.append("hidden: one or more layer widths, each in 1…\(maxWidth), got \(hidden)") }
            if !(1...maxWidth).contains(latent) { problems.append("latent: must be in 1…\(maxWidth), got \(latent)") }
            if !(0..<1).contains(dropout) { problems.append("dropout: must be in [0, 1), got \(dropout)") }
            if !(beta >= 0 && beta.isFinite) { problems.append("beta: must be a finite number ≥ 0, got \(beta)") }
            if !(leakySlope >= 0 && leakySlope.isFinite) { problems.append("leaky_slope: must be a finite number ≥ 0, got \(leakySlope)") }
            return problems
        }
    }

    /// The terms of the loss of one batch (each a scalar).
    public struct Terms {
        public let total, reconstruction, divergence: Variable
    }

    public let config: Config
    private let inputDropout: Dropout
    private let encoder: [(Linear, BatchNorm1d)]
    private let mean: Linear, logVariance: Linear
    private let decoder: [(Linear, BatchNorm1d)]
    private let output: Linear

    /// Declares the parameters (and BatchNorm running statistics) in `arena`.
    public init(_ arena: ParameterArena, config: Config, genes: Int) {
        self.config = config
        inputDropout = Dropout(config.dropout)
        func stack(_ name: String, from input: Int, through widths: [Int]) -> [(Linear, BatchNorm1d)] {
            var width = input
            return widths.enumerated().map { index, next in
                defer { width = next }
                return (Linear(arena, "\(name).\(index)", width, next), BatchNorm1d(arena, "\(name).\(index).norm", next))
            }
        }
        encoder = stack("encoder", from: genes, through: config.hidden)
        mean = Linear(arena, "encoder.mean", config.hidden.last!, config.latent)
        logVariance = Linear(arena, "encoder.log_variance", config.hidden.last!, config.latent)
        decoder = stack("decoder", from: config.latent, through: config.hidden.reversed())
        output = Linear(arena, "decoder.output", config.hidden.first!, genes)
    }

    public var children: [any Module] {
        [inputDropout] + (encoder + decoder).flatMap { [$0.0, $0.1] as [any Module] } + [mean, logVariance, output]
    }

    private func block(_ layers: [(Linear, BatchNorm1d)], _ x: Variable) -> Variable {
        layers.reduce(x) { x, layer in layer.1(layer.0(x)).leakyReLU(config.leakySlope) }
    }

    /// μ and log σ² [B, latent] of `expression` [B, genes]; `key` seeds the input dropout.
    public func encode(_ expression: Variable, key: RandomKey) -> (mean: Variable, logVariance: Variable) {
        let h = block(encoder, inputDropout(expression, key: key))
        return (mean(h), logVariance(h))
    }

    /// The reconstruction [B, genes] of latents [B, latent], in (−1, 1).
    public func decode(_ latent: Variable) -> Variable {
        output(block(decoder, latent)).tanh()
    }

    /// z = μ + exp(½ log σ²) · ε for `noise` ε [B, latent].
    public func sample(mean: Variable, logVariance: Variable, noise: Tensor) -> Variable {
        mean + (logVariance * 0.5).exp() * Variable(noise)
    }

    /// ε ~ N(0, 1) [B, latent] drawn from `key` (stream `latentNoise`).
    public func noise(rows: Int, key: RandomKey) -> Tensor {
        var key = key
        key.stream = RandomStream.latentNoise
        return Tensor(shape: [rows, config.latent], values: key.normal(rows * config.latent))
    }

    /// The loss of reconstructing `expression` [B, genes] through a sampled latent; ε is drawn
    /// from `key` unless `noise` is given.
    public func loss(_ expression: Variable, key: RandomKey, noise: Tensor? = nil) -> Terms {
        let (mu, logVar) = encode(expression, key: key)
        let epsilon = noise ?? self.noise(rows: expression.shape[0], key: key)
        let reconstruction = Loss.meanSquaredError(decode(sample(mean: mu, logVariance: logVar, noise: epsilon)), expression)
        let divergence = Loss.gaussianKL(mean: mu, logVariance: logVar)
        return Terms(total: reconstruction + divergence * config.beta, reconstruction: reconstruction, divergence: divergence)
    }
}
