import Autograd
import Models
import NN
import Optim
import Tensors

/// (d) The tile-classifier task's step: a `TileClassifier` (depth 3, width 16, 4 classes) on 32
/// tiles of 64×64 bytes, scaled and turned (one flip or rotation per tile) by a `TileNormalizer`
/// as the task does, with cross-entropy. The PyTorch twin is `pytorch_core.py`'s `TileCNN`.
final class ReferenceTileCNN: ReferenceModel {
    let arena = ParameterArena(seed: 1)
    let network: TileClassifier
    let normalizer = TileNormalizer(mean: [0.70, 0.55, 0.70], std: [0.15, 0.20, 0.15])
    let pixels: [UInt8], labels: [Int], transforms: [TileTransform], size: Int
    let key = RandomKey(seed: 5, stream: RandomStream.step)

    init(batch: Int = 32, size: Int = 64, classes: Int = 4) {
        network = TileClassifier(arena, config: .init(depth: 3, width: 16), classes: classes)
        arena.seal()
        self.size = size
        pixels = RandomKey(seed: 2, stream: RandomStream.syntheticInputs).uniform(batch * size * size * 3).map { UInt8(min(255, Int($0 * 256))) }
        labels = RandomKey(seed: 3, stream: RandomStream.syntheticInputs).uniform(batch).map { min(classes - 1, Int($0 * Double(classes))) }
        transforms = TileTransform.random(count: batch, key: RandomKey(seed: 4, stream: RandomStream.step))
    }

    func input() -> Variable { Variable(normalizer.tensor(pixels[...], size: size, transforms: transforms)) }

    func loss() -> Variable { Loss.crossEntropy(network(input(), key: key), labels: labels) }
}

extension CoreBench {
    /// The tile CNN step's pieces, each timed alone on the shapes the step gives it (ms): the
    /// input's scaling and turning, per stage the conv and max-pool forward and backward and the
    /// BatchNorm and ReLU forward+backward (kernels on tensors, as the tape runs them), the global mean
    /// and the head (dropout, linear, cross-entropy) through autograd, and AdamW.
    func tileParts(_ table: BenchTable) {
        let model = ReferenceTileCNN()
        var parts = [(String, Double)](), stages = [String]()
        parts.append(("input scale+turn", median { _ = model.input() }))
        var x = model.input().value
        let (batch, depth, width) = (x.shape[0], 3, 16)
        for stage in 0..<depth {
            let channels = width << stage, side = x.shape[2]
            let geometry = Conv2dGeometry(inChannels: x.shape[1], outChannels: channels, kernel: 3, padding: 1)
            let weight = Tensor(shape: geometry.weightShape, values: RandomKey(seed: 6, stream: RandomStream.syntheticInputs).normal(geometry.weightShape.reduce(1, *)).map { $0 * 0.1 })
            let convolved = Tensor.conv2d(x, weight, geometry)
            let upstream = Tensor(repeating: 1e-3, shape: convolved.shape)
            let (one, zero) = (Tensor(repeating: 1, shape: [channels]), Tensor(zeros: [channels]))
            let name = "stage\(stage)"
            stages.append("stage\(stage) [\(batch), \(x.shape[1])→\(channels), \(side)×\(side)]")
            let input = x
            parts.append(("\(name) conv fwd", median { _ = Tensor.conv2d(input, weight, geometry) }))
            parts.append(("\(name) conv bwd", median {
                Tensor.conv2dBackward(input, weight, gradient: upstream, geometry,
                                      gradInput: stage == 0 ? nil : Tensor(zeros: input.shape), gradWeight: Tensor(zeros: weight.shape))
            }))
            let normalized = Tensor.batchNorm(convolved, weight: one, bias: zero, epsilon: 1e-5)
            parts.append(("\(name) batchnorm fwd+bwd", median {
                let (_, mean, _, inverseStd) = Tensor.batchNorm(convolved, weight: one, bias: zero, epsilon: 1e-5)
                _ = Tensor.batchNormBackward(convolved, mean: mean, inverseStd: inverseStd, weight: one, gradient: upstream,
                                             weightGradient: nil, biasGradient: nil)
            }))
            let rectified = normalized.output.map(.relu)
            parts.append(("\(name) relu fwd+bwd", median {
                let y = normalized.output.map(.relu)
                _ = Tensor.unaryBackward(.relu, x: normalized.output, y: y, gradient: upstream)
            }))
            let pooled = rectified.maxPool(kernel: 2, stride: 2)
            let pooledUpstream = Tensor(repeating: 1e-3, shape: pooled.output.shape)
            parts.append(("\(name) maxpool fwd", median { _ = rectified.maxPool(kernel: 2, stride: 2) }))
            parts.append(("\(name) maxpool bwd", median {
                _ = Tensor.maxPoolBackward(gradient: pooledUpstream, inputShape: rectified.shape, argmax: pooled.argmax)
            }))
            x = pooled.output
        }
        let maps = x, features = x.shape[1]
        parts.append(("global mean fwd+bwd", median {
            Variable(maps, gradient: Tensor(zeros: maps.shape)).mean(to: [batch, features, 1, 1]).backward(seed: Tensor(repeating: 1e-3, shape: [batch, features, 1, 1]))
        }))
        let head = ParameterArena(seed: 1), dropout = Dropout(0.1), linear = Linear(head, "output", features, 4)
        head.seal()
        let pooledFeatures = Tensor(repeating: 0.5, shape: [batch, features])
        parts.append(("head fwd+bwd", median {
            Loss.crossEntropy(linear(dropout(Variable(pooledFeatures, gradient: Tensor(zeros: [batch, features])), key: model.key)), labels: model.labels).backward()
        }))
        var adamW = Adam.adamW()
        parts.append(("adamw", median {
            adamW.step(parameters: model.arena.values, gradients: model.arena.gradients, lr: 1e-4)
        }))
        for (name, seconds) in parts {
            table.row(case: "tile-cnn-parts \(name)", values: [seconds * 1e3, "ms", "-", "-"], value: seconds * 1e3, unit: "ms")
        }
        table.note("tile-cnn parts: \(stages.joined(separator: ", ")); head = dropout + linear + cross-entropy")
        table.note("tile-cnn parts sum to \(String(format: "%.1f", parts.map(\.1).reduce(0, +) * 1e3)) ms")
    }
}
