import Autograd
import Models
import NN
import Tensors

/// The three reference models whose training steps `bench core` times (shapes from the
/// numerical-core issue; the same models are built in PyTorch by
/// launch/compare/pytorch_core.py for comparison).
protocol ReferenceModel {
    var arena: ParameterArena { get }
    /// The loss of one batch (synthetic, fixed inputs).
    func loss() -> Variable
}

/// (a) MLP VAE 5000 → 1024 → 256 → (μ, log σ² 128), decoder back to 5000; MSE + KL; batch 64.
final class ReferenceVAE: ReferenceModel {
    let arena = ParameterArena(seed: 1)
    let encoder: [Linear], mean: Linear, logVariance: Linear, decoder: [Linear]
    let x: Variable, noise: Variable

    init(genes: Int = 5000, batch: Int = 64) {
        encoder = [Linear(arena, "enc1", genes, 1024), Linear(arena, "enc2", 1024, 256)]
        mean = Linear(arena, "mu", 256, 128)
        logVariance = Linear(arena, "logvar", 256, 128)
        decoder = [Linear(arena, "dec1", 128, 256), Linear(arena, "dec2", 256, 1024), Linear(arena, "dec3", 1024, genes)]
        arena.seal()
        x = Variable(Tensor(shape: [batch, genes], values: RandomKey(seed: 2, stream: RandomStream.syntheticInputs).normal(batch * genes)))
        noise = Variable(Tensor(shape: [batch, 128], values: RandomKey(seed: 3, stream: RandomStream.syntheticInputs).normal(batch * 128)))
    }

    func loss() -> Variable {
        let h = encoder.reduce(x) { $1($0).leakyReLU(0.2) }
        let mu = mean(h), logVar = logVariance(h)
        let z = mu + (logVar * 0.5).exp() * noise
        var y = z
        for (i, layer) in decoder.enumerated() { y = i == decoder.count - 1 ? layer(y).tanh() : layer(y).leakyReLU(0.2) }
        return Loss.meanSquaredError(y, x) + Loss.gaussianKL(mean: mu, logVariance: logVar) * 0.005
    }
}

/// (b) A UNet on 64×64×3: channels 32/64/128, GroupNorm(8) + SiLU, two ResNet blocks per
/// level, strided-conv down, nearest-upsample + conv up, skip concatenation; MSE; batch 16.
final class ReferenceUNet: ReferenceModel {
    let arena = ParameterArena(seed: 1)
    let unet: UNet
    let x: Variable, target: Variable

    init(batch: Int = 16, size: Int = 64, channels: [Int] = [32, 64, 128]) {
        unet = UNet(arena, channels: channels)
        arena.seal()
        let count = batch * 3 * size * size
        x = Variable(Tensor(shape: [batch, 3, size, size], values: RandomKey(seed: 2, stream: RandomStream.syntheticInputs).normal(count)))
        target = Variable(Tensor(shape: [batch, 3, size, size], values: RandomKey(seed: 3, stream: RandomStream.syntheticInputs).normal(count)))
    }

    func loss() -> Variable { Loss.meanSquaredError(unet(x), target) }
}

/// (c) MLP 5000 → 512 → 128 → 1 with the Cox loss; batch 256.
final class ReferenceCox: ReferenceModel {
    let arena = ParameterArena(seed: 1)
    let layers: [Linear]
    let x: Variable, times: [Double], events: [Bool]

    init(genes: Int = 5000, batch: Int = 256) {
        layers = [Linear(arena, "fc1", genes, 512), Linear(arena, "fc2", 512, 128), Linear(arena, "fc3", 128, 1)]
        arena.seal()
        x = Variable(Tensor(shape: [batch, genes], values: RandomKey(seed: 2, stream: RandomStream.syntheticInputs).normal(batch * genes)))
        let u = RandomKey(seed: 3, stream: RandomStream.syntheticInputs).uniform(2 * batch)
        times = (0..<batch).map { (u[$0] * 3000).rounded() }
        events = (0..<batch).map { u[batch + $0] < 0.6 }
    }

    func loss() -> Variable {
        let risk = layers[2](layers[1](layers[0](x).relu()).relu()).reshaped([-1])
        return Loss.coxPartialLikelihood(risk: risk, times: times, events: events)
    }
}

/// (e) RNA-CDM's base denoiser as the demo trains it (cluster-configs/runs/demo-rna-cdm-base.yaml:
/// 32×32 tiles, dim 32, levels ×1 ×2 ×4, one block per level, attention at levels 1 and 2 and
/// in the middle, 4 heads, condition 64, a 32-d latent), batch 16: the P2-weighted ε loss of
/// fixed noised tiles at fixed timesteps, one in ten without its RNA.
final class ReferenceDenoiser: ReferenceModel {
    static var demoConfig: Denoiser.Config {
        var config = Denoiser.Config()
        (config.imageSize, config.dim, config.dimMults, config.blocksPerLevel, config.attentionLevels, config.conditionDim) = (32, 32, [1, 2, 4], 1, [1, 2], 64)
        return config
    }

    /// The base stage of cluster-configs/models/rna-cdm-base.yaml: 64 × 64, dim 128, levels ×1 ×2
    /// ×3 ×4, two blocks per level, attention at 16² and 8², 8 heads, condition 512.
    static var paperConfig: Denoiser.Config {
        var config = Denoiser.Config()
        (config.imageSize, config.dim, config.dimMults, config.blocksPerLevel, config.attentionLevels) = (64, 128, [1, 2, 3, 4], 2, [2, 3])
        (config.heads, config.conditionDim) = (8, 512)
        return config
    }

    let arena = ParameterArena(seed: 1)
    let denoiser: Denoiser
    let x: Tensor, noise: Tensor, latents: Tensor, timesteps: [Double], keep: [Bool], weights: [Double]

    init(batch: Int = 16, config: Denoiser.Config = demoConfig, latentDim: Int = 32) {
        denoiser = Denoiser(arena, config: config, latentDim: latentDim)
        arena.seal()
        let count = batch * 3 * config.imageSize * config.imageSize, shape = [batch, 3, config.imageSize, config.imageSize]
        x = Tensor(shape: shape, values: RandomKey(seed: 2, stream: RandomStream.syntheticInputs).normal(count))
        noise = Tensor(shape: shape, values: RandomKey(seed: 3, stream: RandomStream.syntheticInputs).normal(count))
        latents = Tensor(shape: [batch, latentDim], values: RandomKey(seed: 4, stream: RandomStream.syntheticInputs).normal(batch * latentDim))
        let schedule = NoiseSchedule(.cosine, timesteps: 1000)
        timesteps = (0..<batch).map { Double($0 * 997 % 1000) }
        keep = (0..<batch).map { $0 % 10 != 9 }
        weights = timesteps.map { schedule.p2Weight(Int($0), gamma: 0.5) }
    }

    func loss() -> Variable {
        Denoiser.weightedLoss(denoiser(Variable(x), timesteps: timesteps, latents: latents, keep: keep), noise: noise, weights: weights)
    }

    /// One guided sampling step's network work: both halves (with and without RNA) of `x` at once.
    func guidedForward() -> Tensor {
        let b = x.shape[0]
        let twice = { (y: Tensor) in Tensor(shape: [2 * b] + Array(y.shape.dropFirst()), values: y.floats + y.floats) }
        return GradMode.withoutGradients {
            denoiser(Variable(twice(x)), timesteps: Array(repeating: 500, count: 2 * b), latents: twice(latents),
                     keep: Array(repeating: true, count: b) + Array(repeating: false, count: b)).value
        }
    }
}
