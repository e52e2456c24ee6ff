import Autograd
import NN
import Tensors

/// A small CNN from an RGB tile to class logits (e.g. the cancer type of the slide it was cut
/// from): what the histology alone says about a tumour, tile by tile.
///
///   tiles [B, 3, S, S]  (bytes scaled by a `TileNormalizer`)
///   → depth × {Conv3×3, pad 1, no bias → BatchNorm2d → ReLU → MaxPool 2×2}, stage i with
///     width·2^i channels, at most 8·width; the side halves (rounding down) at each stage
///   → global average pool [B, C] → Dropout → Linear → logits [B, classes]
///
/// The convolutions have no bias: the BatchNorm after each one subtracts it again.
public final class TileClassifier: Module {
    public struct Config: Codable, Sendable, Equatable {
        /// The number of conv stages.
        public var depth = 3
        /// The first stage's channels; each later stage doubles them, up to 8 × width.
        public var width = 16
        /// Before the output layer.
        public var dropout = 0.1

        public init(depth: Int = 3, width: Int = 16, dropout: Double = 0.1) {
            (self.depth, self.width, self.dropout) = (depth, width, dropout)
        }

        /// Problems with the sizes, each naming its key.
        public func problems() -> [String] {
            var problems = [String]()
            if !(1...16).contains(depth) { problems.append("depth: must be in 1…16, got \(depth)") }
            if !(1...(maxWidth / 8)).contains(width) { problems.append("width: must be in 1…\(maxWidth / 8), got \(width)") }
            if !(0..<1).contains(dropout) { problems.append("dropout: must be in [0, 1), got \(dropout)") }
            return problems
        }

        /// The channels of stage `stage` (from 0).
        public func channels(stage: Int) -> Int { width << min(stage, 3) }

        /// The smallest tile side the network takes: each stage halves it.
        public var smallestTile: Int { 1 << depth }
    }

    public let config: Config
    private let encoder: TileEncoder
    private let dropout: Dropout
    private let output: Linear

    /// Declares the parameters (and BatchNorm running statistics) in `arena`, named
    /// `stage{i}.conv`, `stage{i}.norm` and `output` as PyTorch would name them.
    public init(_ arena: ParameterArena, config: Config, classes: Int) {
        self.config = config
        encoder = TileEncoder(arena, "", depth: config.depth, width: config.width)
        dropout = Dropout(config.dropout)
        output = Linear(arena, "output", encoder.features, classes)
    }

    public var children: [any Module] { [encoder, dropout, output] }

    /// The pooled features [B, features] before dropout and the output layer.
    public func features(_ tiles: Variable) -> Variable { encoder(tiles) }

    /// Logits [B, classes] of `tiles` [B, 3, S, S], S ≥ `config.smallestTile`; `key` seeds dropout.
    public func callAsFunction(_ tiles: Variable, key: RandomKey) -> Variable {
        output(dropout(encoder(tiles), key: key))
    }
}

/// The tile classifier's convolutional part: tiles [B, 3, S, S] → depth × {Conv3×3, pad 1, no
/// bias → BatchNorm2d → ReLU → MaxPool 2×2} (stage i with width·2^i channels, at most 8·width)
/// → global average pool → features [B, `features`]. Parameters are named
/// `<prefix>stage{i}.conv` and `<prefix>stage{i}.norm`.
public final class TileEncoder: Module {
    private let stages: [(conv: Conv2d, norm: BatchNorm2d)]
    public let features: Int
    /// The smallest tile side it takes: each stage halves it.
    public let smallestTile: Int

    public init(_ arena: ParameterArena, _ prefix: String, depth: Int, width: Int) {
        let config = TileClassifier.Config(depth: depth, width: width)
        var inChannels = 3
        stages = (0..<depth).map { stage in
            let channels = config.channels(stage: stage)
            defer { inChannels = channels }
            return (Conv2d(arena, "\(prefix)stage\(stage).conv", inChannels, channels, kernel: 3, padding: 1, bias: false),
                    BatchNorm2d(arena, "\(prefix)stage\(stage).norm", channels))
        }
        features = config.channels(stage: depth - 1)
        smallestTile = config.smallestTile
    }

    public var children: [any Module] { stages.flatMap { [$0.conv, $0.norm] as [any Module] } }

    public func callAsFunction(_ tiles: Variable) -> Variable {
        // The tile tasks refuse tiles smaller than 2^depth (prepare; evaluate on another cohort).
        precondition(tiles.shape.count == 4 && tiles.shape[1] == 3 && tiles.shape[2] >= smallestTile && tiles.shape[3] >= smallestTile,
                     "a TileEncoder of \(stages.count) stages on tiles \(tiles.shape): needs [B, 3, S, S] with S ≥ \(smallestTile)")
        let maps = stages.reduce(tiles) { x, stage in stage.norm(stage.conv(x)).relu().maxPool(kernel: 2, stride: 2) }
        let (batch, channels) = (maps.shape[0], maps.shape[1])
        return maps.mean(to: [batch, channels, 1, 1]).reshaped([batch, channels])
    }
}
