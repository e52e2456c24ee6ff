import Autograd
import Cohorts
import Foundation
import Models
import NN
import Plotting
import Tensors

/// RNA-CDM stage 2: one stage of the cascaded diffusion model that paints H&E tiles from a
/// patient's RNA. Its samples are tiles, each paired with its patient's latent μ from the frozen
/// β-VAE of stage 1 (the companion `rna_encoder`), so raw RNA is the input everywhere. A `base`
/// stage learns tiles averaged down to `image_size`; a `super_resolution` stage learns tiles at
/// its `image_size` from the same tile averaged down to `lowres_size`, upsampled and noised.
/// Stages train as separate runs (see Docs/Models.md): each has its own size, schedule,
/// checkpoints and EMA, and one stage can be retrained without the others.
public final class DiffusionTask: Trainable {
    public typealias Model = Denoiser.Config

    public struct Prepared: Codable, Sendable {
        /// The cohort's tile side, which `image_size` divides.
        public var tileSize: Int
        public var latentDim: Int
        enum CodingKeys: String, CodingKey { case tileSize = "tile_size", latentDim = "latent_dim" }
    }

    public static let name = "rna-cdm-diffusion"
    public static let purpose = "RNA-CDM stage 2: a base or super-resolution diffusion UNet painting H&E tiles from the frozen β-VAE's RNA latent"
    public static let defaultModel = Model()
    public static let unit = SampleUnit.tile
    public static let companions = [
        CompanionRequirement(name: "rna_encoder", task: ExpressionVAETask.name, required: true,
                             purpose: "its encoder's latent μ of each patient's RNA, frozen, conditions every tile"),
        CompanionRequirement(name: "fraction_regressor", task: TileFractionsTask.name, required: false,
                             purpose: "reads the cell-type fractions and features of generated tiles for the evaluation"),
        CompanionRequirement(name: "lower_stage", task: name, required: false,
                             purpose: "the stage below a super-resolution stage, so that its evaluation samples the whole cascade"),
    ]

    public static func problems(in model: Model) -> [String] { model.problems() }

    /// Tiles in [−1, 1]: (byte/255 − ½)/½.
    static let pixelScale = TileNormalizer(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])

    public static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared {
        guard let size = cohort.manifest.tileSize, cohort.tiles > 0 else {
            throw TrainingError.unsuitableCohort("the cohort has no tiles (/tiles/pixels); \(name) needs them — tile slides with `transcriptile data tile-slides`")
        }
        try checkSize(model, tileSize: size)
        guard try !cohort.genes().isEmpty else { throw TrainingError.unsuitableCohort("the cohort has no RNA (/rna/expression); \(name) conditions on it") }
        return Prepared(tileSize: size, latentDim: 0)
    }

    /// The stage's tiles are the cohort's averaged down by a whole factor.
    static func checkSize(_ model: Model, tileSize: Int) throws {
        guard tileSize >= model.imageSize, tileSize % model.imageSize == 0 else {
            throw TrainingError.unsuitableCohort("model.image_size \(model.imageSize) must divide the cohort's tile size \(tileSize) (tiles are averaged down by a whole factor); pick a divisor of \(tileSize)")
        }
    }

    public let denoiser: Denoiser
    public let schedule: NoiseSchedule
    public let encoder: ExpressionVAETask
    /// The evaluation's frozen companions, when the config names them.
    let regressor: TileFractionsTask?, lowerStage: DiffusionTask?
    let prepared: Prepared
    /// Each patient's latent μ [patients × latentDim], of the run's cohort.
    private let latents: [Float]

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws {
        guard let encoder = try companions.model("rna_encoder", as: ExpressionVAETask.self) else {
            throw TrainingError.plan("companions.rna_encoder: \(Self.name) needs a trained \(ExpressionVAETask.name) run")
        }
        try Self.checkSize(model, tileSize: prepared.tileSize)
        self.encoder = encoder
        self.prepared = prepared
        regressor = try companions.model("fraction_regressor", as: TileFractionsTask.self)
        lowerStage = try companions.model("lower_stage", as: DiffusionTask.self)
        if let lowerStage, lowerStage.config.imageSize != model.lowresSize || model.stage != .superResolution {
            throw TrainingError.plan("companions.lower_stage: that run makes \(lowerStage.config.imageSize) px tiles; this stage \(model.stage == .base ? "is a base stage" : "takes \(model.lowresSize) px ones")")
        }
        latents = try encoder.encode(cohort, patients: Array(0..<cohort.patients)).mean
        denoiser = Denoiser(arena, config: model, latentDim: encoder.vae.config.latent)
        schedule = NoiseSchedule(model.schedule, timesteps: model.timesteps)
    }

    public var config: Model { denoiser.config }
    public var latentDim: Int { denoiser.latentDim }

    public func batches(cohort: URL, samples: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int) -> Prefetcher<TileBatch> {
        CohortLoader.tiles(directory: cohort, subset: samples, sampler: sampler, rank: rank, workers: workers, steps: steps)
    }

    /// What one training sample draws: its timestep, whether it keeps its RNA, the noise level
    /// of its low-resolution input, and the key of its noises.
    struct Draw {
        var step: Int, keep: Bool, lowresStep: Int, key: RandomKey
    }

    /// Sample i of a micro-batch draws from `key.sample + i`, so its draws do not depend on how
    /// the global batch was cut.
    func trainingDraws(count: Int, key: RandomKey) -> [Draw] {
        (0..<count).map { i in
            var k = key
            (k.sample, k.stream) = (k.sample &+ UInt32(truncatingIfNeeded: i), RandomStream.diffusionDraws)
            let u = k.uniform(3)
            return Draw(step: min(Int(u[0] * Double(schedule.timesteps)), schedule.timesteps - 1), keep: u[1] >= config.conditionDrop,
                        lowresStep: lowresStep(level: u[2]), key: k)
        }
    }

    /// The schedule step of a low-resolution noise level in [0, 1).
    func lowresStep(level: Double) -> Int { min(Int(level * Double(schedule.timesteps)), schedule.timesteps - 1) }

    /// Tile bytes [tiles × S × S × 3] (the cohort's side) as the stage's target [tiles, 3, s, s]
    /// in [−1, 1] and, for a super-resolution stage, its low-resolution input upsampled back to s.
    func images(_ pixels: ArraySlice<UInt8>, transforms: [TileTransform]? = nil) -> (target: Tensor, lowres: Tensor?) {
        let full = Self.pixelScale.tensor(pixels, size: prepared.tileSize, transforms: transforms)
        let factor = prepared.tileSize / config.imageSize
        let target = factor == 1 ? full : full.averagePool(kernel: factor, stride: factor)
        guard config.stage == .superResolution else { return (target, nil) }
        let low = config.lowresSize
        let down = target.averagePool(kernel: config.imageSize / low, stride: config.imageSize / low)
        return (target, down.upsampleBilinear(config.imageSize / low))
    }

    /// The P2-weighted ε loss of noised `target` tiles with their draws (mean over the batch).
    func diffusionLoss(target: Tensor, lowres: Tensor?, latents: Tensor, draws: [Draw]) -> Variable {
        let n = target.count / max(1, draws.count)
        let values = target.floats, lowValues = lowres?.floats
        var noisy = [Float](), noise = [Float](), lowNoisy = [Float]()
        noisy.reserveCapacity(target.count)
        for (i, draw) in draws.enumerated() {
            let range = (i * n)..<((i + 1) * n)
            var k = draw.key
            k.stream = RandomStream.diffusionNoise
            let epsilon = k.normal(n).map(Float.init)
            noise += epsilon
            noisy += schedule.noised(values[range], noise: epsilon[...], at: draw.step)
            if let lowValues {
                k.stream = RandomStream.lowResolutionNoise
                lowNoisy += schedule.noised(lowValues[range], noise: k.normal(n).map(Float.init)[...], at: draw.lowresStep)
            }
        }
        let shape = target.shape
        let predicted = denoiser(Variable(Tensor(shape: shape, values: noisy)), timesteps: draws.map { Double($0.step) }, latents: latents,
                                 keep: draws.map(\.keep), lowres: lowres.map { _ in Tensor(shape: shape, values: lowNoisy) },
                                 lowresSteps: lowres.map { _ in draws.map { Double($0.lowresStep) } })
        return Denoiser.weightedLoss(predicted, noise: Tensor(shape: shape, values: noise), weights: draws.map { schedule.p2Weight($0.step, gamma: config.p2Gamma) })
    }

    /// The latents of `patients` [count × latentDim], of the run's cohort.
    func latents(of patients: some Collection<Int>) -> Tensor {
        let d = latentDim
        return Tensor(shape: [patients.count, d], values: patients.flatMap { latents[($0 * d)..<(($0 + 1) * d)] })
    }

    public func loss(_ batch: TileBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        let bytes = prepared.tileSize * prepared.tileSize * 3
        let (target, lowres) = images(batch.pixels[(rows.lowerBound * bytes)..<(rows.upperBound * bytes)],
                                      transforms: TileTransform.random(count: rows.count, key: key))
        return diffusionLoss(target: target, lowres: lowres, latents: latents(of: batch.patients[rows]), draws: trainingDraws(count: rows.count, key: key))
    }

    /// The validation loss with fixed draws per tile (its index seeds them): every sample keeps
    /// its RNA, the low-resolution input is noised at the sampling level.
    public func evaluate(_ batch: TileBatch) -> [String: Double] {
        let draws = batch.tiles.map { tile -> Draw in
            let k = RandomKey(seed: 0, stream: RandomStream.diffusionDraws, sample: UInt32(truncatingIfNeeded: tile))
            return Draw(step: min(Int(k.uniform(1)[0] * Double(schedule.timesteps)), schedule.timesteps - 1), keep: true,
                        lowresStep: lowresStep(level: config.lowresNoiseLevel), key: k)
        }
        let (target, lowres) = images(batch.pixels[...])
        let loss = GradMode.withoutGradients { diffusionLoss(target: target, lowres: lowres, latents: latents(of: batch.patients), draws: draws) }
        return ["count": Double(batch.count), "loss": loss.value.scalars[0] * Double(batch.count)]
    }

    public func setTraining(_ training: Bool) { denoiser.setTraining(training) }
}
