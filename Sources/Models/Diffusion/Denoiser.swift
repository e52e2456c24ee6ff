import Autograd
import NN
import Tensors

/// One stage of RNA-CDM's cascade: a UNet that predicts the noise ε in a noised tile x_t,
/// conditioned on the timestep and on a patient's RNA latent (Imagen-style, Saharia et al. 2022):
///
///   time     sinusoid(t, dim) → Linear 4·dim → SiLU → Linear 4·dim           = e_t
///   latent   Linear(latent → condition_dim) = c, or the learned null token when dropped
///   embedding e = e_t + Linear(c → 4·dim) [+ the low-resolution noise level's, like time]
///   context  the tokens [c, Linear(e_t → condition_dim)] for cross-attention
///   UNet     [x_t (, the upsampled noisy low-resolution tile)] → ε̂, every ResNet block adding
///            its projection of e, attention (self + cross) at `attention_levels`
///
/// A super-resolution stage also sees the low-resolution tile, upsampled and noised to a level
/// it is told (noise conditioning augmentation), so it learns to clean what the stage below it
/// gets wrong.
public final class Denoiser: Module {
    public enum Stage: String, Codable, Sendable, CaseIterable {
        case base
        case superResolution = "super_resolution"
    }

    public struct Config: Codable, Sendable, Equatable {
        public var stage = Stage.base
        /// The side of the tiles this stage makes (the cohort's tiles are averaged down to it).
        public var imageSize = 32
        /// A super-resolution stage's input side (the side of the stage below); 0 for base.
        public var lowresSize = 0
        /// The first level's channels; level i has dim·dim_mults[i].
        public var dim = 32
        public var dimMults = [1, 2, 4]
        public var blocksPerLevel = 2
        /// Levels (0 = full resolution) whose blocks attend (self and cross).
        public var attentionLevels = [1, 2]
        public var heads = 4
        public var groups = 8
        /// The width of the conditioning tokens.
        public var conditionDim = 128
        public var schedule = NoiseSchedule.Kind.cosine
        public var timesteps = 1000
        /// The P2 weighting's γ (0: plain ε loss).
        public var p2Gamma = 0.5
        /// The probability of training a sample without its RNA (classifier-free guidance).
        public var conditionDrop = 0.1
        /// The low-resolution input's noise level when sampling (0…1 of the schedule); training
        /// draws a level per sample uniformly in [0, 1).
        public var lowresNoiseLevel = 0.2
        /// The end-of-run evaluation (with a fraction regressor): test patients it paints (0: none)
        /// and its DDPM steps.
        public var evaluationPatients = 24
        public var evaluationSteps = 25

        enum CodingKeys: String, CodingKey {
            case stage, imageSize = "image_size", lowresSize = "lowres_size", dim, dimMults = "dim_mults",
                 blocksPerLevel = "blocks_per_level", attentionLevels = "attention_levels", heads, groups,
                 conditionDim = "condition_dim", schedule, timesteps, p2Gamma = "p2_gamma",
                 conditionDrop = "condition_drop", lowresNoiseLevel = "lowres_noise_level",
                 evaluationPatients = "evaluation_patients", evaluationSteps = "evaluation_steps"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Config()
            stage = try c.decodeIfPresent(Stage.self, forKey: .stage) ?? d.stage
            imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? d.imageSize
            lowresSize = try c.decodeIfPresent(Int.self, forKey: .lowresSize) ?? d.lowresSize
            dim = try c.decodeIfPresent(Int.self, forKey: .dim) ?? d.dim
            dimMults = try c.decodeIfPresent([Int].self, forKey: .dimMults) ?? d.dimMults
            blocksPerLevel = try c.decodeIfPresent(Int.self, forKey: .blocksPerLevel) ?? d.blocksPerLevel
            attentionLevels = try c.decodeIfPresent([Int].self, forKey: .attentionLevels) ?? d.attentionLevels
            heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
            groups = try c.decodeIfPresent(Int.self, forKey: .groups) ?? d.groups
            conditionDim = try c.decodeIfPresent(Int.self, forKey: .conditionDim) ?? d.conditionDim
            schedule = try c.decodeIfPresent(NoiseSchedule.Kind.self, forKey: .schedule) ?? d.schedule
            timesteps = try c.decodeIfPresent(Int.self, forKey: .timesteps) ?? d.timesteps
            p2Gamma = try c.decodeIfPresent(Double.self, forKey: .p2Gamma) ?? d.p2Gamma
            conditionDrop = try c.decodeIfPresent(Double.self, forKey: .conditionDrop) ?? d.conditionDrop
            lowresNoiseLevel = try c.decodeIfPresent(Double.self, forKey: .lowresNoiseLevel) ?? d.lowresNoiseLevel
            evaluationPatients = try c.decodeIfPresent(Int.self, forKey: .evaluationPatients) ?? d.evaluationPatients
            evaluationSteps = try c.decodeIfPresent(Int.self, forKey: .evaluationSteps) ?? d.evaluationSteps
        }

        /// The channels of each level.
        public var channels: [Int] { dimMults.map { dim * $0 } }

        /// Problems with the sizes, each naming its key.
        public func problems() -> [String] {
            var problems = [String]()
            if !(1...1024).contains(dim) { problems.append("dim: must be in 1…1024, got \(dim)") }
            if !(1...6).contains(dimMults.count) { problems.append("dim_mults: must list 1 to 6 levels, got \(dimMults.count)") }
            if let bad = dimMults.first(where: { !(1...16).contains($0) }) { problems.append("dim_mults: each must be in 1…16, got \(bad)") }
            guard problems.isEmpty else { return problems }  // the checks below multiply dim and dim_mults
            if !(1...8).contains(blocksPerLevel) { problems.append("blocks_per_level: must be in 1…8, got \(blocksPerLevel)") }
            if !(1...64).contains(groups) { problems.append("groups: must be in 1…64, got \(groups)") }
            if !(1...64).contains(heads) { problems.append("heads: must be in 1…64, got \(heads)") }
            if groups > 0, let bad = channels.first(where: { $0 % groups != 0 }) { problems.append("groups: every level's channels (dim × dim_mults) must be a multiple of groups \(groups), got \(bad)") }
            if let bad = attentionLevels.first(where: { !dimMults.indices.contains($0) }) {
                problems.append("attention_levels: levels are 0…\(dimMults.count - 1) (one per dim_mults entry), got \(bad)")
            }
            // The middle attends too: the last level's channels split into the heads as well.
            for level in Set(attentionLevels + [dimMults.count - 1]).sorted() where dimMults.indices.contains(level) && heads > 0 && channels[level] % heads != 0 {
                problems.append("heads: level \(level)'s \(channels[level]) channels must be a multiple of heads \(heads) (it attends)")
            }
            if let widest = channels.max(), widest > 4096 { problems.append("dim: dim × dim_mults must stay within 4096 channels, got \(widest)") }
            if !(1...4096).contains(conditionDim) { problems.append("condition_dim: must be in 1…4096, got \(conditionDim)") }
            if !(2...10_000).contains(timesteps) { problems.append("timesteps: must be in 2…10000, got \(timesteps)") }
            if !(0...4).contains(p2Gamma) { problems.append("p2_gamma: must be in 0…4, got \(p2Gamma)") }
            if !(0..<1).contains(conditionDrop) { problems.append("condition_drop: must be in [0, 1), got \(conditionDrop)") }
            if !(0..<1).contains(lowresNoiseLevel) { problems.append("lowres_noise_level: must be in [0, 1), got \(lowresNoiseLevel)") }
            if !(0...1000).contains(evaluationPatients) { problems.append("evaluation_patients: must be in 0…1000, got \(evaluationPatients)") }
            if !(1...1000).contains(evaluationSteps) { problems.append("evaluation_steps: must be in 1…1000, got \(evaluationSteps)") }
            let factor = 1 << max(0, dimMults.count - 1)
            if !(4...1024).contains(imageSize) || imageSize % factor != 0 {
                problems.append("image_size: must be in 4…1024 and a multiple of \(factor) (the UNet halves it \(dimMults.count - 1) times), got \(imageSize)")
            }
            switch stage {
            case .base where lowresSize != 0:
                problems.append("lowres_size: only a super_resolution stage takes a low-resolution input; set 0 or remove it")
            case .superResolution where lowresSize == 0:
                problems.append("lowres_size: a super_resolution stage needs the side of the stage below (e.g. \(imageSize / 2))")
            case .superResolution where lowresSize < 2 || lowresSize >= imageSize || imageSize % lowresSize != 0:
                problems.append("lowres_size: must divide image_size \(imageSize) and be smaller, got \(lowresSize)")
            default: break
            }
            return problems
        }
    }

    public let config: Config
    public let latentDim: Int
    private let time: (Linear, Linear)
    private let lowresTime: (Linear, Linear)?
    private let conditionProjection: Linear, conditionToEmbedding: Linear, timeToken: Linear
    private let nullCondition: Parameter
    private let unet: UNet

    /// Declares the parameters in `arena` (names: `time.{0,1}`, `lowres_time.{0,1}`,
    /// `condition`, `condition_embedding`, `time_token`, `null_condition`, `unet.*`).
    public init(_ arena: ParameterArena, config: Config, latentDim: Int) {
        self.config = config
        self.latentDim = latentDim
        let embedding = 4 * config.dim
        time = (Linear(arena, "time.0", config.dim, embedding), Linear(arena, "time.1", embedding, embedding))
        lowresTime = config.stage == .superResolution ? (Linear(arena, "lowres_time.0", config.dim, embedding), Linear(arena, "lowres_time.1", embedding, embedding)) : nil
        conditionProjection = Linear(arena, "condition", latentDim, config.conditionDim)
        conditionToEmbedding = Linear(arena, "condition_embedding", config.conditionDim, embedding)
        timeToken = Linear(arena, "time_token", embedding, config.conditionDim)
        nullCondition = arena.declare("null_condition", shape: [1, config.conditionDim], initializer: .normal(std: 0.02))
        unet = UNet(arena, prefix: "unet.", inChannels: config.stage == .superResolution ? 6 : 3, outChannels: 3, channels: config.channels,
                    blocks: config.blocksPerLevel, groups: config.groups, embeddingDim: embedding,
                    attention: UNet.Attention(levels: Set(config.attentionLevels), heads: config.heads, contextDim: config.conditionDim))
    }

    public var children: [any Module] {
        [time.0, time.1] + (lowresTime.map { [$0.0, $0.1] } ?? []) + [conditionProjection, conditionToEmbedding, timeToken, unet]
    }

    /// The P2-weighted ε loss: the mean over the batch of weight_b · mean((ε̂ − ε)²) of row b.
    public static func weightedLoss(_ predicted: Variable, noise: Tensor, weights: [Double]) -> Variable {
        let w = Tensor(shape: [weights.count, 1, 1, 1], values: weights, dtype: noise.dtype)
        return ((predicted - Variable(noise)).square() * Variable(w)).mean()
    }

    /// ε̂ [B, 3, S, S] for noised tiles `x` [B, 3, S, S] at `timesteps`, conditioned on
    /// `latents` [B, latentDim] where `keep[b]` (the null token elsewhere); a super-resolution
    /// stage also takes `lowres` [B, 3, S, S] (upsampled, noised) and its noise `lowresSteps`.
    public func callAsFunction(_ x: Variable, timesteps: [Double], latents: Tensor, keep: [Bool],
                               lowres: Tensor? = nil, lowresSteps: [Double]? = nil) -> Variable {
        let b = x.shape[0]
        func embed(_ steps: [Double], _ mlp: (Linear, Linear)) -> Variable {
            mlp.1(mlp.0(Variable(timestepEmbedding(steps, dim: config.dim, dtype: x.dtype))).silu())
        }
        let timeEmbedding = embed(timesteps, time)
        let mask = Tensor(shape: [b, 1], values: keep.map { $0 ? 1.0 : 0.0 }, dtype: x.dtype)
        let inverse = Tensor(shape: [b, 1], values: keep.map { $0 ? 0.0 : 1.0 }, dtype: x.dtype)
        let condition = conditionProjection(Variable(latents)) * Variable(mask) + nullCondition.variable * Variable(inverse)
        var embedding = timeEmbedding + conditionToEmbedding(condition)
        var input = x
        if let lowresTime, let lowres, let lowresSteps {
            embedding = embedding + embed(lowresSteps, lowresTime)
            input = concatenate([x, Variable(lowres)], axis: 1)
        }
        let d = config.conditionDim
        let context = concatenate([condition.reshaped([b, 1, d]), timeToken(timeEmbedding).reshaped([b, 1, d])], axis: 1)
        return unet(input, embedding: embedding, context: context)
    }
}
