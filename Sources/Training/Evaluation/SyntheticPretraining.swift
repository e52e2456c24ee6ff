import Autograd
import Models
import NN
import Optim
import Tensors

/// RNA-CDM's downstream claim, measured in one process: a tile classifier of cancer type
/// (`TileClassifier`, the `tile-classifier` task's network at its default size) pretrained on
/// generated tiles and fine-tuned on a small share of real ones, against the same network
/// trained on that share alone from the same initial weights, for the same number of steps on
/// the share. Both read tiles scaled by the share's channel statistics, with the eight flips and
/// rotations; accuracy is per tile on held-out real tiles.
public enum SyntheticPretraining {
    /// Tiles as RGB bytes [n × size × size × 3] with a cancer-type label each.
    public struct Tiles {
        public var pixels: [UInt8], labels: [Int]
        public init(pixels: [UInt8], labels: [Int]) { (self.pixels, self.labels) = (pixels, labels) }
    }

    public static let steps = 150, batch = 32, lr = 3e-3

    /// (scratch, pretrained) test accuracy; `progress(done, total)` every few steps.
    public static func measure(generated: Tiles, share: Tiles, test: Tiles, size: Int, classes: Int, seed: UInt64,
                               progress: (Int, Int) -> Void = { _, _ in }) -> (scratch: Double, pretrained: Double) {
        var done = 0
        let total = 3 * steps
        let bytes = size * size * 3
        let normalizer = TileNormalizer(measuring: (0..<share.labels.count).map { Array(share.pixels[($0 * bytes)..<(($0 + 1) * bytes)]) })
        func run(_ stages: [Tiles]) -> Double {
            let arena = ParameterArena(seed: seed)
            let network = TileClassifier(arena, config: TileClassifier.Config(), classes: classes)
            arena.seal()
            var adam = Adam()
            for (stage, tiles) in stages.enumerated() {
                network.setTraining(true)
                for step in 0..<steps {
                    let key = RandomKey(seed: seed, stream: RandomStream.augmentation, step: UInt32(stage * steps + step))
                    let rows = key.uniform(batch).map { min(Int($0 * Double(tiles.labels.count)), tiles.labels.count - 1) }
                    let pixels = rows.flatMap { tiles.pixels[($0 * bytes)..<(($0 + 1) * bytes)] }
                    let x = Variable(normalizer.tensor(pixels[...], size: size, transforms: TileTransform.random(count: rows.count, key: key)))
                    arena.zeroGradients()
                    Loss.crossEntropy(network(x, key: key), labels: rows.map { tiles.labels[$0] }).backward()
                    adam.step(parameters: arena.values, gradients: arena.gradients, lr: lr)
                    done += 1
                    if done % 10 == 0 { progress(done, total) }
                }
            }
            network.setTraining(false)
            var correct = 0
            for start in stride(from: 0, to: test.labels.count, by: 256) {
                let end = min(test.labels.count, start + 256)
                let logits = GradMode.withoutGradients {
                    network(Variable(normalizer.tensor(test.pixels[(start * bytes)..<(end * bytes)], size: size)), key: RandomKey(seed: 0, stream: 0)).value
                }
                correct += zip(Classification.predictions(logits), test.labels[start..<end]).filter { $0 == $1 }.count
            }
            return Double(correct) / Double(max(1, test.labels.count))
        }
        return (run([share]), run([generated, share]))
    }
}
