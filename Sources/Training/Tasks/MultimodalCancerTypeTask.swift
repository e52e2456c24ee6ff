import Autograd
import Cohorts
import Foundation
import Models
import NN
import Plotting
import Tensors

/// Cancer type from a patient's bag of tiles and bulk RNA together (`MultimodalClassifier`):
/// the runtime's bag task, and a testbed for Path-GPTOmic's machinery — attention-MIL pooling of
/// a variable number of tiles, late fusion, and gradient modulation. With one modality far
/// easier than the other, the model learns to lean on it and leaves the other encoder
/// undertrained; OGM-GE (`GradientModulating`) damps the dominant encoder's gradients by how much
/// better its own logits score the step's samples, summed over every worker.
public final class MultimodalCancerTypeTask: GradientModulating {
    public typealias Model = MultimodalClassifier.Config

    public struct Prepared: Codable, Sendable {
        public var normalizer: ExpressionNormalizer
        public var tiles: TileNormalizer
        public var cancerTypes: [String]
        public var genes: Int
        public var tileSize: Int

        enum CodingKeys: String, CodingKey { case normalizer, tiles, cancerTypes = "cancer_types", genes, tileSize = "tile_size" }
    }

    public static let name = "multimodal-cancer-type"
    public static let purpose = "cancer type from a patient's bag of tiles and RNA (attention-MIL, late fusion, OGM-GE gradient modulation)"
    public static let defaultModel = Model()
    public static let unit = SampleUnit.bag
    public static let minimumMicroBatch = 2  // BatchNorm (over the tiles of at least two bags)

    public static func problems(in model: Model) -> [String] { model.problems() }

    public static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared {
        guard try !cohort.genes().isEmpty else { throw TrainingError.unsuitableCohort("the cohort has no RNA (/rna/expression); \(name) needs it") }
        let tiles = try TileClassifierTask.prepareTiles(cohort: cohort, split: split, depth: model.depth, task: name)
        return Prepared(normalizer: try ExpressionNormalizer(reader: cohort, patients: split.train), tiles: tiles.normalizer,
                        cancerTypes: tiles.cancerTypes, genes: try cohort.genes().count, tileSize: tiles.size)
    }

    private let network: MultimodalClassifier
    private let prepared: Prepared
    /// Sums since the runtime last took them: how much probability each modality's own
    /// logits gave the true class.
    private var scores = ["score_pathology": 0.0, "score_omic": 0.0]

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws {
        self.prepared = prepared
        try TileClassifierTask.checkDepth(model.depth, tileSize: prepared.tileSize)
        network = MultimodalClassifier(arena, config: model, genes: prepared.genes, classes: prepared.cancerTypes.count)
    }

    public func batches(cohort: URL, samples: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int) -> Prefetcher<BagBatch> {
        CohortLoader.bags(directory: cohort, subset: samples, sampler: sampler, bags: BagSampling(cap: network.config.maxTiles, seed: sampler.seed),
                          normalizer: prepared.normalizer, rank: rank, workers: workers, steps: steps)
    }

    public func loss(_ batch: BagBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        let labels = Array(batch.cancerTypes[rows])
        let logits = self.logits(batch, rows: rows, key: key, augment: true)
        for (name, own) in [("score_pathology", logits.pathology), ("score_omic", logits.omic)] {
            let probabilities = own.value.softmax().floats, classes = prepared.cancerTypes.count
            scores[name, default: 0] += labels.enumerated().reduce(0.0) { $0 + Double(probabilities[$1.offset * classes + $1.element]) }
        }
        return Loss.crossEntropy(logits.fused, labels: labels)
    }

    public func evaluate(_ batch: BagBatch) -> [String: Double] {
        let rows = 0..<batch.count
        let logits = self.logits(batch, rows: rows, key: RandomKey(seed: 0, stream: RandomStream.step), augment: false)
        let loss = Loss.crossEntropy(Variable(logits.fused.value), labels: batch.cancerTypes).value.scalars[0]
        func correct(_ logits: Variable) -> Double {
            Double(zip(Classification.predictions(logits.value), batch.cancerTypes).filter { $0 == $1 }.count)
        }
        return ["count": Double(rows.count), "loss": loss * Double(rows.count), "accuracy": correct(logits.fused),
                "accuracy_pathology": correct(logits.pathology), "accuracy_omic": correct(logits.omic)]
    }

    public func setTraining(_ training: Bool) { network.setTraining(training) }

    // MARK: Gradient modulation

    public let parameterGroups = ["pathology": ["path_encoder.*"], "omic": ["rna_encoder.*"]]
    public let statisticNames = ["score_pathology", "score_omic"]

    public func takeStatistics() -> [String: Double] {
        defer { scores = scores.mapValues { _ in 0 } }
        return scores
    }

    /// OGM-GE: ρ = s_pathology / s_omic; the modality with ρᵤ > 1 gets 1 − tanh(α·(ρᵤ − 1)),
    /// the other 1 — inside the configured window of steps.
    public func gradientCoefficients(_ totals: [String: Double], step: Int) -> [String: Double] {
        let modulation = network.config.modulation
        let active = modulation.alpha > 0 && step > modulation.startStep && (modulation.endStep == 0 || step <= modulation.endStep)
        let pathology = totals["score_pathology"] ?? 0, omic = totals["score_omic"] ?? 0
        guard active, pathology > 0, omic > 0 else { return ["pathology": 1, "omic": 1] }
        let ratio = pathology / omic
        let damp = { (rho: Double) in rho > 1 ? 1 - Foundation.tanh(modulation.alpha * (rho - 1)) : 1 }
        return ["pathology": damp(ratio), "omic": damp(1 / ratio)]
    }

    /// Rows `rows` of `batch`: their bags' tiles (each turned by a flip or rotation when
    /// augmenting, drawn by the bag's place in the global batch and the tile's in the bag) and
    /// their RNA.
    private func logits(_ batch: BagBatch, rows: Range<Int>, key: RandomKey, augment: Bool)
        -> (fused: Variable, pathology: Variable, omic: Variable) {
        let tiles = batch.tileRange(rows), bytes = prepared.tileSize * prepared.tileSize * 3
        let transforms = !augment ? nil : rows.flatMap { row -> [TileTransform] in
            var bagKey = key
            bagKey.sample = UInt32(truncatingIfNeeded: batch.share.positions[row] &* 4096)  // max_tiles ≤ 4096
            return TileTransform.random(count: batch.offsets[row + 1] - batch.offsets[row], key: bagKey)
        }
        let pixels = prepared.tiles.tensor(batch.pixels[(tiles.lowerBound * bytes)..<(tiles.upperBound * bytes)], size: prepared.tileSize,
                                           transforms: transforms)
        let genes = prepared.genes
        let expression = Tensor(shape: [rows.count, genes], values: Array(batch.expression[(rows.lowerBound * genes)..<(rows.upperBound * genes)]))
        return network(tiles: Variable(pixels), offsets: batch.offsets[rows.lowerBound...rows.upperBound].map { $0 - tiles.lowerBound },
                       expression: Variable(expression), key: key)
    }
}
