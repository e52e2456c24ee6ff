import Autograd
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
        x = Variable(Tensor(shape: [batch, genes], values: RandomKey(seed: 2, stream: 0).normal(batch * genes)))
        noise = Variable(Tensor(shape: [batch, 128], values: RandomKey(seed: 3, stream: 0).normal(batch * 128)))
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
    let stem: Conv2d, head: (GroupNorm, Conv2d)
    let down: [([ResidualBlock], Conv2d?)], middle: ResidualBlock, up: [(Conv2d, [ResidualBlock])]
    let x: Variable, target: Variable

    init(batch: Int = 16, size: Int = 64, channels: [Int] = [32, 64, 128]) {
        stem = Conv2d(arena, "stem", 3, channels[0], kernel: 3, padding: 1)
        var down = [([ResidualBlock], Conv2d?)](), previous = channels[0]
        for (level, c) in channels.enumerated() {
            let blocks = [ResidualBlock(arena, "down\(level).0", previous, c), ResidualBlock(arena, "down\(level).1", c, c)]
            let last = level == channels.count - 1
            down.append((blocks, last ? nil : Conv2d(arena, "down\(level).pool", c, c, kernel: 3, stride: 2, padding: 1)))
            previous = c
        }
        self.down = down
        middle = ResidualBlock(arena, "middle", previous, previous)
        var up = [(Conv2d, [ResidualBlock])]()
        for level in stride(from: channels.count - 2, through: 0, by: -1) {
            let c = channels[level]
            up.append((Conv2d(arena, "up\(level).conv", previous, c, kernel: 3, padding: 1),
                       [ResidualBlock(arena, "up\(level).0", 2 * c, c), ResidualBlock(arena, "up\(level).1", c, c)]))
            previous = c
        }
        self.up = up
        head = (GroupNorm(arena, "head.norm", groups: 8, channels: previous), Conv2d(arena, "head.conv", previous, 3, kernel: 3, padding: 1))
        arena.seal()
        let count = batch * 3 * size * size
        x = Variable(Tensor(shape: [batch, 3, size, size], values: RandomKey(seed: 2, stream: 0).normal(count)))
        target = Variable(Tensor(shape: [batch, 3, size, size], values: RandomKey(seed: 3, stream: 0).normal(count)))
    }

    func loss() -> Variable {
        var h = stem(x), skips = [Variable]()
        for (blocks, pool) in down {
            h = blocks.reduce(h) { $1($0) }
            if let pool { skips.append(h); h = pool(h) }
        }
        h = middle(h)
        for (conv, blocks) in up {
            h = conv(h.upsampleNearest(2))
            h = blocks.reduce(concatenate([h, skips.removeLast()], axis: 1)) { $1($0) }
        }
        return Loss.meanSquaredError(head.1(head.0(h).silu()), target)
    }
}

/// GroupNorm → SiLU → Conv3×3 → GroupNorm → SiLU → Conv3×3, plus the input (1×1 conv if the
/// channel count changes).
final class ResidualBlock {
    let norm1: GroupNorm, conv1: Conv2d, norm2: GroupNorm, conv2: Conv2d, skip: Conv2d?

    init(_ arena: ParameterArena, _ name: String, _ inChannels: Int, _ outChannels: Int) {
        norm1 = GroupNorm(arena, "\(name).norm1", groups: 8, channels: inChannels)
        conv1 = Conv2d(arena, "\(name).conv1", inChannels, outChannels, kernel: 3, padding: 1)
        norm2 = GroupNorm(arena, "\(name).norm2", groups: 8, channels: outChannels)
        conv2 = Conv2d(arena, "\(name).conv2", outChannels, outChannels, kernel: 3, padding: 1)
        skip = inChannels == outChannels ? nil : Conv2d(arena, "\(name).skip", inChannels, outChannels, kernel: 1)
    }

    func callAsFunction(_ x: Variable) -> Variable {
        let h = conv2(norm2(conv1(norm1(x).silu())).silu())
        return h + (skip.map { $0(x) } ?? x)
    }
}

/// (c) MLP 5000 → 512 → 128 → 1 with the Cox loss; batch 256.
final class ReferenceCox: ReferenceModel {
    let arena = ParameterArena(seed: 1)
    let layers: [Linear]
    let x: Variable, times: [Double], events: [Bool]

    init(genes: Int = 5000, batch: Int = 256) {
        layers = [Linear(arena, "fc1", genes, 512), Linear(arena, "fc2", 512, 128), Linear(arena, "fc3", 128, 1)]
        arena.seal()
        x = Variable(Tensor(shape: [batch, genes], values: RandomKey(seed: 2, stream: 0).normal(batch * genes)))
        let u = RandomKey(seed: 3, stream: 0).uniform(2 * batch)
        times = (0..<batch).map { (u[$0] * 3000).rounded() }
        events = (0..<batch).map { u[batch + $0] < 0.6 }
    }

    func loss() -> Variable {
        let risk = layers[2](layers[1](layers[0](x).relu()).relu()).reshaped([-1])
        return Loss.coxPartialLikelihood(risk: risk, times: times, events: events)
    }
}
