import Autograd
import Models
import NN
import TestSupport
import Tensors
import XCTest

/// RNA-CDM's diffusion stage: the denoiser against PyTorch (Tests/Fixtures/make_model_fixtures.py,
/// `denoiser()`), its new layers against central differences, the noise schedules against their
/// formulas, and the samplers against an oracle that knows x₀.
final class DiffusionTests: XCTestCase {
    /// A super-resolution stage as the fixture builds it.
    static let fixtureConfig: Denoiser.Config = {
        var config = Denoiser.Config()
        (config.stage, config.imageSize, config.lowresSize) = (.superResolution, 8, 4)
        (config.dim, config.dimMults, config.blocksPerLevel, config.attentionLevels) = (8, [1, 2], 1, [1])
        (config.heads, config.groups, config.conditionDim) = (2, 4, 6)
        return config
    }()

    func testDenoiserMatchesPyTorch() throws {
        let fixture = try Fixture("denoiser")
        let arena = ParameterArena()
        let model = Denoiser(arena, config: Self.fixtureConfig, latentDim: 5)
        arena.seal()
        XCTAssertEqual(arena.entries.map(\.name).sorted(), fixture.names("parameters"), "parameter names")
        for name in fixture.names("parameters") {
            arena.values(of: try XCTUnwrap(arena.entry(named: name))).assign(fixture.tensor("parameters", name).scalars)
        }
        let xTensor = fixture.tensor("inputs", "x")
        let x = Variable(xTensor, gradient: Tensor(zeros: xTensor.shape))
        let out = model(x, timesteps: [3, 500, 999], latents: fixture.tensor("conditioning", "latents"), keep: [true, false, true],
                        lowres: fixture.tensor("conditioning", "lowres"), lowresSteps: [200, 200, 200])
        assertClose(out.value, fixture.tensor("output"), absolute: 1e-5, relative: 1e-4, "ε̂")
        out.backward(seed: fixture.tensor("upstream"))
        assertClose(try XCTUnwrap(x.grad), fixture.tensor("input_grads", "x"), absolute: 1e-5, relative: 2e-3, "dL/dx")
        for name in fixture.names("parameter_grads") {
            assertClose(arena.gradients(of: try XCTUnwrap(arena.entry(named: name))), fixture.tensor("parameter_grads", name),
                        absolute: 1e-5, relative: 2e-3, "dL/d\(name)")
        }
    }

    func testNewLayersAgainstCentralDifferences() {
        let arena = ParameterArena(dtype: .float64, seed: 3)
        let block = ResNetBlock(arena, "block", 4, 6, groups: 2, embeddingDim: 5)
        let attention = SpatialAttention(arena, "attention", channels: 4, heads: 2, groups: 2, contextDim: 3)
        arena.seal()
        checkGradients([randomTensor([2, 4, 3, 3]), randomTensor([2, 5], seed: 4)], arena: arena) { block($0[0], embedding: $0[1]) }
        checkGradients([randomTensor([2, 4, 3, 2]), randomTensor([2, 2, 3], seed: 5)], arena: arena) { attention($0[0], context: $0[1]) }
    }

    func testWholeDenoiserAgainstCentralDifferences() {
        let arena = ParameterArena(dtype: .float64, seed: 4)
        var config = Self.fixtureConfig
        (config.stage, config.lowresSize, config.imageSize, config.dim, config.conditionDim) = (.base, 0, 4, 4, 4)
        config.groups = 2
        let model = Denoiser(arena, config: config, latentDim: 3)
        arena.seal()
        let latents = randomTensor([2, 3], seed: 8)
        checkGradients([randomTensor([2, 3, 4, 4])], arena: arena, samples: 48) {
            model($0[0], timesteps: [10, 700], latents: latents, keep: [true, false])
        }
    }

    func testSchedulesFollowTheirFormulas() {
        let linear = NoiseSchedule(.linear, timesteps: 1000)
        XCTAssertEqual(linear.alphaBars[0], 1 - 1e-4, accuracy: 1e-12)
        XCTAssertEqual(linear.alphaBars[999] / linear.alphaBars[998], 1 - 0.02, accuracy: 1e-12)
        XCTAssertEqual(linear.alphaBars[999], 4.04e-5, accuracy: 1e-6, "Ho et al.'s ᾱ_T")
        let cosine = NoiseSchedule(.cosine, timesteps: 1000)
        func f(_ t: Double) -> Double { let c = cos((t / 1000 + 0.008) / 1.008 * .pi / 2); return c * c }
        for t in [0, 10, 500, 900] { XCTAssertEqual(cosine.alphaBars[t], f(Double(t + 1)) / f(0), accuracy: 1e-9, "ᾱ at \(t) below the β cap") }
        XCTAssertLessThan(cosine.alphaBars[999], 1e-4)
        for schedule in [linear, cosine] {
            XCTAssertTrue(zip(schedule.alphaBars, schedule.alphaBars.dropFirst()).allSatisfy { $0 > $1 }, "ᾱ decreases")
            XCTAssertEqual(schedule.p2Weight(400, gamma: 0), 1)
            XCTAssertEqual(schedule.p2Weight(400, gamma: 0.5), 1 / (1 + schedule.signalToNoise(400)).squareRoot(), accuracy: 1e-12)
        }
        let x0: [Float] = [0.5, -0.25], noise: [Float] = [1, 2]
        let a = cosine.alphaBars[300]
        let noised = cosine.noised(x0[...], noise: noise[...], at: 300)
        XCTAssertEqual(Double(noised[0]), a.squareRoot() * 0.5 + (1 - a).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(Double(noised[1]), -a.squareRoot() * 0.25 + 2 * (1 - a).squareRoot(), accuracy: 1e-6)
    }

    /// Given the true ε of every x_t, both samplers land on x₀ (inside [−1, 1], so thresholding
    /// leaves it alone) from any noise, in any number of steps (in one step x̂₀ divides by
    /// √ᾱ_T ≈ 0.006, so Float rounding grows tenfold).
    func testSamplersReachTheOraclesTile() {
        let x0 = RandomKey(seed: 9, stream: 0).uniform(2 * 3 * 4 * 4).map { Float($0 * 1.6 - 0.8) }
        let schedule = NoiseSchedule(.cosine, timesteps: 200)
        for kind in DiffusionSampler.Kind.allCases {
            for steps in [1, 7, 200] {
                let sampler = DiffusionSampler(schedule: schedule, kind: kind, steps: steps)
                XCTAssertEqual(sampler.visited.first, 199)
                XCTAssertEqual(sampler.visited.last, steps == 1 ? 199 : 0)
                XCTAssertEqual(Set(sampler.visited).count, steps)
                let keys = (0..<2).map { RandomKey(seed: 3, stream: 0, sample: UInt32($0)) }
                let tiles = sampler.sample(keys: keys, size: 4) { x, t in
                    let a = schedule.alphaBars[t]
                    return zip(x.floats, x0).map { (xt, x0) in (xt - Float(a.squareRoot()) * x0) / Float((1 - a).squareRoot()) }
                }
                assertClose(tiles, Tensor(shape: [2, 3, 4, 4], values: x0), absolute: steps == 1 ? 2e-3 : 2e-4, "\(kind) in \(steps) steps")
            }
        }
    }

    func testDynamicThresholdingRescalesOnlyBeyondOne() {
        let sampler = DiffusionSampler(schedule: NoiseSchedule(.linear, timesteps: 10), kind: .ddim, steps: 10, thresholdPercentile: 0.5)
        XCTAssertEqual(sampler.threshold([0.5, -0.9, 0.2]), [0.5, -0.9, 0.2], "|x̂₀| within 1: unchanged")
        XCTAssertEqual(sampler.threshold([4, -2, 1]), [1, -1, 0.5], "s = the median |x̂₀| = 2: clipped to [−2, 2], divided by 2")
    }

    /// A tile's noise is its own: the same tiles in batches of 1 or 3, and a cascade checks its chain.
    func testCascadeTilesDoNotDependOnTheirBatch() {
        var base = Denoiser.Config()
        (base.imageSize, base.dim, base.dimMults, base.blocksPerLevel, base.attentionLevels, base.conditionDim, base.timesteps) = (8, 8, [1, 2], 1, [1], 8, 50)
        var sr = base
        (sr.stage, sr.imageSize, sr.lowresSize) = (.superResolution, 16, 8)
        let stages = [base, sr].map { config in
            let arena = ParameterArena(seed: 5)
            defer { arena.seal() }
            return DiffusionCascade.Stage(denoiser: Denoiser(arena, config: config, latentDim: 4), schedule: NoiseSchedule(config.schedule, timesteps: config.timesteps))
        }
        let latents = randomTensor([3, 4], seed: 2, dtype: .float32)
        let keys = (0..<3).map { RandomKey(seed: 7, stream: 0, sample: UInt32($0)) }
        for kind in DiffusionSampler.Kind.allCases {
            let together = DiffusionCascade(stages: stages, kind: kind, steps: 5, guidance: 2, batch: 3)
            XCTAssertNil(together.mismatch)
            var alone = together
            alone.batch = 1
            let a = together.sample(latents: [latents, latents], tileKeys: keys), b = alone.sample(latents: [latents, latents], tileKeys: keys)
            XCTAssertEqual(a.shape, [3, 3, 16, 16])
            assertClose(a, b, absolute: 1e-5, "\(kind): batches of 3 and of 1")
            XCTAssertTrue(a.floats.allSatisfy { (-1...1).contains($0) })
        }
        XCTAssertEqual(DiffusionCascade(stages: [stages[1]], kind: .ddim, steps: 5, guidance: 1).mismatch, "the first stage must be a base stage, not super_resolution")
        XCTAssertEqual(DiffusionCascade(stages: [stages[0], stages[0]], kind: .ddim, steps: 5, guidance: 1).mismatch, "every stage after the first must be super_resolution")
    }

    func testConfigProblemsNameTheirKeys() {
        XCTAssertEqual(Denoiser.Config().problems(), [])
        XCTAssertEqual(Self.fixtureConfig.problems(), [])
        var config = Denoiser.Config()
        config.lowresSize = 16
        XCTAssertEqual(config.problems(), ["lowres_size: only a super_resolution stage takes a low-resolution input; set 0 or remove it"])
        config.stage = .superResolution
        config.lowresSize = 0
        XCTAssertEqual(config.problems(), ["lowres_size: a super_resolution stage needs the side of the stage below (e.g. 16)"])
        config.lowresSize = 12
        XCTAssertEqual(config.problems(), ["lowres_size: must divide image_size 32 and be smaller, got 12"])
        config = Denoiser.Config()
        (config.imageSize, config.attentionLevels, config.dim) = (30, [3], 12)
        XCTAssertEqual(config.problems(), [
            "groups: every level's channels (dim × dim_mults) must be a multiple of groups 8, got 12",
            "attention_levels: levels are 0…2 (one per dim_mults entry), got 3",
            "image_size: must be in 4…1024 and a multiple of 4 (the UNet halves it 2 times), got 30"])
    }
}
