import Autograd
import NN
import Tensors

/// Cancer type from both modalities of a patient — the bag of their H&E tiles and their bulk
/// RNA — fused late, as Path-GPTOmic fuses them for survival:
///
///   tiles of the bag [N, 3, S, S] → `TileEncoder` → [N, C] → `AttentionMIL` → h_path [B, C]
///   RNA [B, genes] → MLP (`ExpressionClassifier`, `features` outputs) → h_omic [B, F]
///   logits = W_path·Dropout(h_path) + W_omic·h_omic + b
///
/// The head is split by modality so that each modality's own logits, W_u·h_u + b/2, can be
/// scored for gradient modulation (OGM-GE, Peng et al. CVPR 2022). Parameters are named
/// `path_encoder.*`, `rna_encoder.*` and `head.*`.
public final class MultimodalClassifier: Module {
    public struct Config: Codable, Sendable, Equatable {
        /// The tile encoder's conv stages and first stage's channels.
        public var depth = 2
        public var width = 16
        /// The attention's hidden size.
        public var attention = 32
        /// The RNA encoder's hidden layers and output features.
        public var hidden = [64]
        public var features = 32
        public var dropout = 0.1
        /// Tiles per patient in a batch; beyond it a deterministic draw each epoch.
        public var maxTiles = 16
        public var modulation = Modulation()

        /// OGM-GE: the dominant modality u (ρᵤ = sᵤ / s_other > 1, sᵤ the summed probability its
        /// own logits give the true class) has its encoder's gradients scaled by
        /// 1 − tanh(α·(ρᵤ − 1)); the other keeps 1. Active from `start_step` up to `end_step`
        /// (0: to the end); α 0 turns it off.
        public struct Modulation: Codable, Sendable, Equatable {
            public var alpha = 0.5
            public var startStep = 0
            public var endStep = 0

            enum CodingKeys: String, CodingKey { case alpha, startStep = "start_step", endStep = "end_step" }
        }

        public init() {}

        enum CodingKeys: String, CodingKey { case depth, width, attention, hidden, features, dropout, maxTiles = "max_tiles", modulation }

        /// Problems with the sizes, each naming its key.
        public func problems() -> [String] {
            var problems = TileClassifier.Config(depth: depth, width: width, dropout: dropout).problems()
            problems += ExpressionClassifier.Config(hidden: hidden, dropout: dropout).problems().filter { !$0.hasPrefix("dropout") }
            if !(1...maxWidth).contains(attention) { problems.append("attention: must be in 1…\(maxWidth), got \(attention)") }
            if !(1...maxWidth).contains(features) { problems.append("features: must be in 1…\(maxWidth), got \(features)") }
            if !(1...4096).contains(maxTiles) { problems.append("max_tiles: must be in 1…4096, got \(maxTiles)") }
            if !(modulation.alpha >= 0 && modulation.alpha <= 10) { problems.append("modulation.alpha: must be in 0…10 (0: off), got \(modulation.alpha)") }
            if modulation.startStep < 0 { problems.append("modulation.start_step: must be ≥ 0, got \(modulation.startStep)") }
            if modulation.endStep < 0 { problems.append("modulation.end_step: must be ≥ 0 (0: to the end), got \(modulation.endStep)") }
            return problems
        }
    }

    public let config: Config
    public let tileEncoder: TileEncoder
    private let pool: AttentionMIL
    private let rnaEncoder: ExpressionClassifier
    private let dropout: Dropout
    private let pathologyHead: Linear, omicHead: Linear
    private let bias: Parameter

    public init(_ arena: ParameterArena, config: Config, genes: Int, classes: Int) {
        self.config = config
        tileEncoder = TileEncoder(arena, "path_encoder.", depth: config.depth, width: config.width)
        pool = AttentionMIL(arena, "path_encoder.pool", features: tileEncoder.features, hidden: config.attention)
        rnaEncoder = ExpressionClassifier(arena, config: .init(hidden: config.hidden, dropout: config.dropout), genes: genes,
                                          classes: config.features, prefix: "rna_encoder.")
        dropout = Dropout(config.dropout)
        pathologyHead = Linear(arena, "head.pathology", tileEncoder.features, classes, bias: false)
        omicHead = Linear(arena, "head.omic", config.features, classes, bias: false)
        bias = arena.declare("head.bias", shape: [classes], initializer: .zeros)
    }

    public var children: [any Module] { [tileEncoder, pool, rnaEncoder, dropout, pathologyHead, omicHead] }

    /// Logits [B, classes] — fused, and each modality's own — of B patients: their tiles
    /// [N, 3, S, S] packed bag after bag (`offsets`, B + 1) and their RNA [B, genes].
    public func callAsFunction(tiles: Variable, offsets: [Int], expression: Variable, key: RandomKey)
        -> (fused: Variable, pathology: Variable, omic: Variable) {
        let pathology = pathologyHead(dropout(pool(tileEncoder(tiles), offsets: offsets).pooled, key: key))
        var omicKey = key
        omicKey.sample &+= 1 << 28  // the RNA encoder's dropout draws apart from the pathology's
        let omic = omicHead(rnaEncoder(expression, key: omicKey))
        let b = bias.variable
        return (pathology + omic + b, pathology + b * 0.5, omic + b * 0.5)
    }
}
