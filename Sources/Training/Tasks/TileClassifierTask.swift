import Autograd
import Cohorts
import Foundation
import Models
import NN
import Plotting
import Tensors

/// Cancer type from a tile's pixels (a `TileClassifier` CNN with cross-entropy): the first task
/// whose samples are tiles. Training tiles are turned by one of the eight flips and 90°
/// rotations, drawn per sample; evaluation sees them as they are. The end of the run reports
/// accuracy per tile and per patient (the majority of its tiles) with a confusion matrix.
/// RNA-CDM uses it downstream: pretrained on synthetic tiles, fine-tuned on a few real ones
/// (`train.init_from`).
public final class TileClassifierTask: Trainable {
    public typealias Model = TileClassifier.Config

    public struct Prepared: Codable, Sendable {
        public var normalizer: TileNormalizer
        public var cancerTypes: [String]
        public var tileSize: Int

        enum CodingKeys: String, CodingKey { case normalizer, cancerTypes = "cancer_types", tileSize = "tile_size" }
    }

    public static let name = "tile-classifier"
    public static let purpose = "CNN classifier of cancer type from H&E tiles (flips and rotations; accuracy per tile and per patient, confusion matrix)"
    public static let defaultModel = Model()
    public static let unit = SampleUnit.tile
    public static let minimumMicroBatch = 2  // BatchNorm

    public static func problems(in model: Model) -> [String] { model.problems() }

    /// Channel statistics from up to this many training tiles (evenly spread over the split).
    static let normalizerTiles = 2048

    public static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared {
        let tiles = try prepareTiles(cohort: cohort, split: split, depth: model.depth, task: name)
        return Prepared(normalizer: tiles.normalizer, cancerTypes: tiles.cancerTypes, tileSize: tiles.size)
    }

    /// Tiles must survive `depth` halvings: checked when a run is planned, and again when a model
    /// is built from a run plan (a file).
    static func checkDepth(_ depth: Int, tileSize size: Int) throws {
        guard size >= 1 << depth else {
            throw TrainingError.unsuitableCohort("tiles of \(size) px are too small for model.depth \(depth) (each stage halves them: at least \(1 << depth) px); lower model.depth")
        }
    }

    /// What a task classifying from tiles checks and prepares: the cohort has tiles at least
    /// 2^depth pixels a side (`model.depth`) and two or more cancer types; the channel
    /// statistics of up to `normalizerTiles` training tiles, evenly spread over the split.
    static func prepareTiles(cohort: CohortReader, split: DataSplit, depth: Int, task: String) throws
        -> (normalizer: TileNormalizer, size: Int, cancerTypes: [String]) {
        guard let size = cohort.manifest.tileSize, cohort.tiles > 0 else {
            throw TrainingError.unsuitableCohort("the cohort has no tiles (/tiles/pixels); \(task) needs them — tile slides with `transcriptile data tile-slides`")
        }
        try checkDepth(depth, tileSize: size)
        let types = try cohort.layout().cancerTypes
        guard types.count >= 2 else { throw TrainingError.unsuitableCohort("the cohort has \(types.count) cancer type; \(task) needs at least 2 to classify") }
        return (try measureNormalizer(cohort, patients: split.train), size, types)
    }

    /// The channel statistics of up to `normalizerTiles` tiles of `patients`, evenly spread.
    static func measureNormalizer(_ cohort: CohortReader, patients: [Int]) throws -> TileNormalizer {
        let tiles = try cohort.samples(.tile, of: patients)
        let stride = max(1, tiles.count / normalizerTiles)
        return TileNormalizer(measuring: try Swift.stride(from: 0, to: tiles.count, by: stride).prefix(normalizerTiles).map { try cohort.tile(tiles[$0]) })
    }

    private let network: TileClassifier
    private let prepared: Prepared

    public init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws {
        self.prepared = prepared
        try TileClassifierTask.checkDepth(model.depth, tileSize: prepared.tileSize)
        network = TileClassifier(arena, config: model, classes: prepared.cancerTypes.count)
    }

    public func batches(cohort: URL, samples: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int) -> Prefetcher<TileBatch> {
        CohortLoader.tiles(directory: cohort, subset: samples, sampler: sampler, rank: rank, workers: workers, steps: steps)
    }

    public func loss(_ batch: TileBatch, rows: Range<Int>, key: RandomKey) -> Variable {
        let turned = input(batch.pixels, rows: rows, transforms: TileTransform.random(count: rows.count, key: key))
        return Loss.crossEntropy(network(turned, key: key), labels: Array(batch.cancerTypes[rows]))
    }

    public func evaluate(_ batch: TileBatch) -> [String: Double] {
        let rows = 0..<batch.count
        let logits = network(input(batch.pixels, rows: rows), key: RandomKey(seed: 0, stream: RandomStream.step)).value
        let loss = Loss.crossEntropy(Variable(logits), labels: batch.cancerTypes).value.scalars[0]
        let correct = zip(Classification.predictions(logits), batch.cancerTypes).filter { $0 == $1 }.count
        return ["count": Double(rows.count), "loss": loss * Double(rows.count), "accuracy": Double(correct)]
    }

    public func setTraining(_ training: Bool) { network.setTraining(training) }

    /// On the target patients' tiles: accuracy per tile and per patient (the class most of its
    /// tiles get; a tie goes to the larger summed probability), the chance level (the commonest
    /// class's share of patients), and `confusion_matrix.png` (.svg) per patient.
    public func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double] {
        let tiles = try set.target.samples(.tile, of: set.targetPatients)
        guard !tiles.isEmpty else { return [:] }
        guard set.target.manifest.tileSize == prepared.tileSize else {
            throw TrainingError.unsuitableCohort("\(set.target.directory.path) has tiles of \(set.target.manifest.tileSize ?? 0) px; this model was trained on tiles of \(prepared.tileSize) px — tile the slides at that size")
        }
        let owners = try set.target.tilePatients(), types = try set.target.cancerTypes()
        let classes = prepared.cancerTypes.count
        var votes = [Int: [Int]](), probabilities = [Int: [Double]](), tileCorrect = 0
        for start in Swift.stride(from: 0, to: tiles.count, by: 256) {
            let block = Array(tiles[start..<min(tiles.count, start + 256)])
            let pixels = try block.flatMap { try set.target.tile($0) }
            let logits = GradMode.withoutGradients { network(input(pixels, rows: 0..<block.count), key: RandomKey(seed: 0, stream: RandomStream.step)).value }
            let probability = logits.softmax().floats
            for (row, (tile, predicted)) in zip(block, Classification.predictions(logits)).enumerated() {
                let patient = owners[tile]
                if predicted == types[patient] { tileCorrect += 1 }
                votes[patient, default: Array(repeating: 0, count: classes)][predicted] += 1
                for c in 0..<classes { probabilities[patient, default: Array(repeating: 0, count: classes)][c] += Double(probability[row * classes + c]) }
            }
        }
        let patients = votes.keys.sorted()
        let predicted = patients.map { patient -> Int in
            let (count, sum) = (votes[patient] ?? [], probabilities[patient] ?? [])
            return (0..<classes).max { (count[$0], sum[$0]) < (count[$1], sum[$1]) } ?? 0
        }
        let truth = patients.map { types[$0] }
        let patientCorrect = zip(predicted, truth).filter { $0 == $1 }.count
        try ConfusionMatrix(title: "Cancer type of \(set.name), per patient (majority of tiles)", classNames: prepared.cancerTypes,
                            truth: truth, predicted: predicted).write(to: directory.appendingPathComponent("confusion_matrix"))
        return ["tile_accuracy": Double(tileCorrect) / Double(tiles.count), "patient_accuracy": Double(patientCorrect) / Double(patients.count),
                "chance_accuracy": Classification.chance(truth), "tiles": Double(tiles.count), "patients": Double(patients.count)]
    }

    /// Rows `rows` of a batch's tile bytes as the network's input, turned by `transforms` if given.
    private func input(_ pixels: [UInt8], rows: Range<Int>, transforms: [TileTransform]? = nil) -> Variable {
        let bytes = prepared.tileSize * prepared.tileSize * 3
        return Variable(prepared.normalizer.tensor(pixels[(rows.lowerBound * bytes)..<(rows.upperBound * bytes)], size: prepared.tileSize, transforms: transforms))
    }

}
