import Autograd
import Cohorts
import Foundation
import Models
import NN
import Tensors

/// The cell-type fractions of a tile, from its pixels: a `TileClassifier` CNN whose softmax is
/// trained toward the simulator's per-tile truth (`/truth/tile_fractions`) with soft-label cross
/// entropy, −Σ_k f_k log p_k. RNA-CDM's evaluation reads generated tiles with it (a frozen
/// companion): do synthetic tiles keep the cell fractions of the RNA they were painted from?
/// Training tiles are turned by the eight flips and 90° rotations, as for `tile-classifier`.
public final class TileFractionsTask: Trainable {
    public typealias Model = TileClassifier.Config

    public struct Prepared: Codable, Sendable {
        public var normalizer: TileNormalizer
        public var cellTypes: [String]
        public var tileSize: Int
        enum CodingKeys: String, CodingKey { case normalizer, cellTypes = "cell_types", tileSize = "tile_size" }
    }

    public static let name = "tile-fractions"
    public static let purpose = "CNN regressor of a tile's cell-type fractions (simulated cohorts' /truth; reads RNA-CDM's generated tiles)"
    public static let defaultModel = Model(depth: 3, width: 16, dropout: 0)
    public static let unit = SampleUnit.tile
    public static let minimumMicroBatch = 2  // BatchNorm

    public static func problems(in model: Model) -> [String] { model.problems() }

    public static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared {
        guard let size = cohort.manifest.tileSize, cohort.tiles > 0 else {
            throw TrainingError.unsuitableCohort("the cohort has no tiles (/tiles/pixels); \(name) needs them")
        }
        guard let truth = try cohort.truthFractions(), truth.names.count >= 2 else {
            throw TrainingError.unsuitableCohort("the cohort has no /truth/tile_fractions (simulated cohorts carry them: `transcriptile data simulate`); \(name) learns from them")
        }
        try TileClassifierTask.checkDepth(model.depth, tileSize: size)
        return Prepared(normalizer: try TileClassifierTask.measureNormalizer(cohort, patients: split.train), cellTypes: truth.names, tileSize: size)
    }

    private let network: TileClassifier
    public let prepared: Prepared
    /// The run's cohort's per-tile truth [tiles × cell types] (empty when built for prediction
    /// on a cohort without truth).
    private let truth: [Float]

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws {
        self.prepared = prepared
        try TileClassifierTask.checkDepth(model.depth, tileSize: prepared.tileSize)
        network = TileClassifier(arena, config: model, classes: prepared.cellTypes.count)
        truth = try cohort.truthFractions()?.tiles ?? []
    }

    public var cellTypes: [String] { prepared.cellTypes }
    /// The width of `features`.
    public var featureWidth: Int { network.config.channels(stage: network.config.depth - 1) }

    public func batches(cohort: URL, samples: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int) -> Prefetcher<TileBatch> {
        CohortLoader.tiles(directory: cohort, subset: samples, sampler: sampler, rank: rank, workers: workers, steps: steps)
    }

    private func targets(_ tiles: some Collection<Int>) -> Tensor {
        let k = prepared.cellTypes.count
        return Tensor(shape: [tiles.count, k], values: tiles.flatMap { truth[($0 * k)..<(($0 + 1) * k)] })
    }

    private func input(_ pixels: ArraySlice<UInt8>, transforms: [TileTransform]? = nil) -> Variable {
        Variable(prepared.normalizer.tensor(pixels, size: prepared.tileSize, transforms: transforms))
    }

    private static func softCrossEntropy(_ logits: Variable, _ targets: Tensor) -> Variable {
        (logits.logSoftmax() * Variable(targets)).sum() * (-1 / Double(targets.shape[0]))
    }

    public func loss(_ batch: TileBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        let bytes = prepared.tileSize * prepared.tileSize * 3
        let x = input(batch.pixels[(rows.lowerBound * bytes)..<(rows.upperBound * bytes)], transforms: TileTransform.random(count: rows.count, key: key))
        return Self.softCrossEntropy(network(x, key: key), targets(batch.tiles[rows]))
    }

    public func evaluate(_ batch: TileBatch) -> [String: Double] {
        let logits = network(input(batch.pixels[...]), key: RandomKey(seed: 0, stream: RandomStream.step)).value
        let target = targets(batch.tiles)
        let loss = Self.softCrossEntropy(Variable(logits), target).value.scalars[0]
        let squared = zip(logits.softmax().floats, target.floats).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
        return ["count": Double(batch.count), "loss": loss * Double(batch.count), "squared_error": squared / Double(prepared.cellTypes.count)]
    }

    public func setTraining(_ training: Bool) { network.setTraining(training) }

    /// Predicted fractions [n × cell types] and pooled features [n × featureWidth] of tiles given
    /// as RGB bytes of this model's tile size (evaluation mode, in blocks of 256).
    public func predict(_ pixels: [UInt8]) -> (fractions: [Float], features: [Float]) {
        let bytes = prepared.tileSize * prepared.tileSize * 3, n = pixels.count / bytes
        var fractions = [Float](), features = [Float]()
        for start in stride(from: 0, to: n, by: 256) {
            let x = input(pixels[(start * bytes)..<(min(n, start + 256) * bytes)])
            GradMode.withoutGradients {
                let f = network.features(x)
                features += f.value.floats
                fractions += network(x, key: RandomKey(seed: 0, stream: RandomStream.step)).value.softmax().floats
            }
        }
        return (fractions, features)
    }

    /// On the target patients' tiles: Pearson's r between predicted and true fractions per cell
    /// type (`r.<type>`) and over all (tile, type) pairs (`r`), and the mean absolute error.
    public func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double] {
        let tiles = try set.target.samples(.tile, of: set.targetPatients)
        guard !tiles.isEmpty, let truth = try set.target.truthFractions(), truth.names == prepared.cellTypes else { return [:] }
        guard set.target.manifest.tileSize == prepared.tileSize else {
            throw TrainingError.unsuitableCohort("\(set.target.directory.path) has tiles of \(set.target.manifest.tileSize ?? 0) px; this model was trained on tiles of \(prepared.tileSize) px")
        }
        let k = prepared.cellTypes.count
        let predicted = predict(try tiles.flatMap { try set.target.tile($0) }).fractions
        let expected = tiles.flatMap { truth.tiles[($0 * k)..<(($0 + 1) * k)] }
        var figures = ["tiles": Double(tiles.count), "r": LatentMetrics.columnCorrelations(predicted, expected, columns: 1)[0],
                       "mean_absolute_error": zip(predicted, expected).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(expected.count)]
        for (name, r) in zip(prepared.cellTypes, LatentMetrics.columnCorrelations(predicted, expected, columns: k)) { figures["r.\(name)"] = r }
        return figures
    }
}
