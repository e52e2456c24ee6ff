import Autograd
import Tensors

/// RNA-CDM's cascade at sampling time: the base stage paints small tiles from RNA latents, each
/// super-resolution stage paints larger ones from the stage below's (upsampled, noised to the
/// stage's `lowres_noise_level`) and the same RNA's latents — as its own encoder reads the RNA,
/// so each stage gets the latent it was trained on. Classifier-free guidance runs every batch
/// twice, with and without its latents.
public struct DiffusionCascade {
    public struct Stage {
        public var denoiser: Denoiser, schedule: NoiseSchedule
        public init(denoiser: Denoiser, schedule: NoiseSchedule) { (self.denoiser, self.schedule) = (denoiser, schedule) }
    }

    /// Base first; each next stage's `lowres_size` is the previous one's `image_size`.
    public var stages: [Stage]
    public var kind: DiffusionSampler.Kind
    public var steps: Int
    /// s in ε = ε_null + s·(ε_cond − ε_null); 1 is plain conditional sampling.
    public var guidance: Double
    /// Tiles through a denoiser at once (twice that many rows with guidance).
    public var batch: Int

    public init(stages: [Stage], kind: DiffusionSampler.Kind, steps: Int, guidance: Double, batch: Int = 16) {
        (self.stages, self.kind, self.steps, self.guidance, self.batch) = (stages, kind, steps, guidance, batch)
    }

    /// Why these stages do not chain, if they do not (base first, sizes matching).
    public var mismatch: String? {
        guard let first = stages.first else { return "no stages" }
        if first.denoiser.config.stage != .base { return "the first stage must be a base stage, not \(first.denoiser.config.stage.rawValue)" }
        for (below, above) in zip(stages, stages.dropFirst()) {
            if above.denoiser.config.stage != .superResolution { return "every stage after the first must be super_resolution" }
            if above.denoiser.config.lowresSize != below.denoiser.config.imageSize {
                return "a super-resolution stage takes \(above.denoiser.config.lowresSize) px tiles but the stage below makes \(below.denoiser.config.imageSize) px"
            }
        }
        return nil
    }

    /// The side of the tiles the cascade ends with.
    public var imageSize: Int { stages.last?.denoiser.config.imageSize ?? 0 }

    /// Tiles [n, 3, S, S] in [−1, 1] for `latents`, one [n, latentDim] per stage (the same RNA
    /// through each stage's encoder; callers pass one per stage); tile i draws every random
    /// number from `tileKeys[i]` (its seed and sample), so it is the same in any batch and on any
    /// worker. `progress(stage, tilesDone)` after every denoising step (a batch's tiles count in
    /// proportion to its steps done).
    public func sample(latents: [Tensor], tileKeys: [RandomKey], progress: (Int, Double) -> Void = { _, _ in }) -> Tensor {
        let n = tileKeys.count
        var previous: [Float] = []
        for (index, stage) in stages.enumerated() {
            let d = stage.denoiser.latentDim, latentValues = latents[index].floats
            let config = stage.denoiser.config, size = config.imageSize, pixels = 3 * size * size
            let sampler = DiffusionSampler(schedule: stage.schedule, kind: kind, steps: min(steps, stage.schedule.timesteps))
            var out = [Float]()
            out.reserveCapacity(n * pixels)
            for start in stride(from: 0, to: n, by: batch) {
                let rows = start..<min(n, start + batch)
                let keys = rows.map { i -> RandomKey in
                    var key = tileKeys[i]
                    key.seed = key.seed &+ (UInt64(index) << 40)  // each stage its own noise
                    return key
                }
                let z = Tensor(shape: [rows.count, d], values: Array(latentValues[(rows.lowerBound * d)..<(rows.upperBound * d)]))
                var lowres: Tensor?, lowresStep: Double?
                if config.stage == .superResolution {
                    let low = config.lowresSize
                    let lowPixels = 3 * low * low
                    let small = Tensor(shape: [rows.count, 3, low, low], values: Array(previous[(rows.lowerBound * lowPixels)..<(rows.upperBound * lowPixels)]))
                    let up = small.upsampleBilinear(size / low).floats
                    let step = min(Int(config.lowresNoiseLevel * Double(stage.schedule.timesteps)), stage.schedule.timesteps - 1)
                    let noised = keys.enumerated().flatMap { row, key -> [Float] in
                        var k = key
                        k.stream = RandomStream.lowResolutionNoise
                        return stage.schedule.noised(up[(row * pixels)..<((row + 1) * pixels)], noise: k.normal(pixels).map(Float.init)[...], at: step)
                    }
                    (lowres, lowresStep) = (Tensor(shape: [rows.count, 3, size, size], values: noised), Double(step))
                }
                let visited = Double(sampler.visited.count)
                let tiles = sampler.sample(keys: keys, size: size, predict: { x, t in
                    predict(stage.denoiser, x: x, t: t, latents: z, lowres: lowres, lowresStep: lowresStep)
                }, progress: { done in progress(index, Double(rows.lowerBound) + Double(rows.count) * Double(done) / visited) })
                out += tiles.floats
            }
            previous = out
        }
        return Tensor(shape: [n, 3, imageSize, imageSize], values: previous)
    }

    /// The guided ε̂ of every row of x.
    private func predict(_ denoiser: Denoiser, x: Tensor, t: Int, latents: Tensor, lowres: Tensor?, lowresStep: Double?) -> [Float] {
        let b = x.shape[0]
        return GradMode.withoutGradients {
            guard guidance != 1 else {
                return denoiser(Variable(x), timesteps: Array(repeating: Double(t), count: b), latents: latents, keep: Array(repeating: true, count: b),
                                lowres: lowres, lowresSteps: lowresStep.map { Array(repeating: $0, count: b) }).value.floats
            }
            let twice = { (y: Tensor) in Tensor(shape: [2 * b] + Array(y.shape.dropFirst()), values: y.floats + y.floats) }
            let both = denoiser(Variable(twice(x)), timesteps: Array(repeating: Double(t), count: 2 * b), latents: twice(latents),
                                keep: Array(repeating: true, count: b) + Array(repeating: false, count: b),
                                lowres: lowres.map(twice), lowresSteps: lowresStep.map { Array(repeating: $0, count: 2 * b) }).value.floats
            let half = both.count / 2
            return DiffusionSampler.guided(conditional: Array(both[..<half]), null: Array(both[half...]), scale: guidance)
        }
    }
}
