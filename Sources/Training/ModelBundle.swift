import Checkpoints
import Cohorts
import Crypto
import Foundation
import NN

/// A trained model packaged for use outside Transcriptile (Docs/Checkpoints.md, "Model
/// bundles"): one directory holding
///
///     model.safetensors  the weights: parameters and buffers by layer name, F32 (`__metadata__`:
///                        format pt, task, step, source)
///     bundle.json        task and step; input: the genes in the model's column order, the kind of
///                        values and the normaliser; outputs; cancer types (code → name);
///                        architecture; the weights' names, shapes and places; provenance
///     config.yaml        the run's effective config, as the checkpoint recorded it
///     README.md          how to load it and apply it to a new expression table in Python
///
/// Built from a `TrainedRun`: the weights from its checkpoint, the rest from its plan and, for
/// what a plan does not hold (a cancer-type plan has only the number of genes and types), from
/// its cohort, checked to have the genes the run trained on.
public struct ModelBundle {
    public static let format = "transcriptile-model-bundle"
    public static let version = 1
    /// Every file of a bundle: a directory holding anything else is not one.
    public static let fileNames = ["model.safetensors", "bundle.json", "config.yaml", "README.md"]

    public let task: String
    public let step: Int
    /// The step whose weights the checkpoint holds: `step`, or early stopping's best step when
    /// early stopping ended the run and restored those weights.
    public let weightsOfStep: Int
    public let tensors: [ExportedTensor]
    /// The model's input genes, in the order of its input's columns.
    public var genes: [String] { description.genes }
    public var normalizer: ExpressionNormalizer { description.normalizer }
    /// Cancer-type names by code (for cancer-type: the order of the logits).
    public var cancerTypes: [String] { description.cancerTypes }
    /// What the raw values are (`counts`, `tpm`, `log`, …: the cohort's `expression_kind`); nil
    /// when the run's cohort could not be used, and then `cohortProblem` says why.
    public let expressionKind: String?
    public let cohortProblem: String?
    /// The effective run config (YAML).
    public let config: String
    let description: TaskDescription
    let metadata: [String: String]
    let provenance: [String: Any]

    public init(run: TrainedRun) throws {
        let type = try run.taskType
        guard let bundleable = type as? any BundleableTask.Type else {
            throw TrainingError.plan("task '\(type.name)' has no model bundle yet; export its weights alone with --out NAME.safetensors")
        }
        let checkpoint = run.checkpoint, manifest = checkpoint.manifest
        let cohort = RunCohort(run)
        description = try Self.describe(bundleable, run: run, cohort: cohort)
        try Self.check(description, checkpoint: checkpoint)
        tensors = try checkpoint.exportedTensors()
        try Self.check(tensors, against: description.layout, manifest: manifest, path: checkpoint.directory.path)
        task = type.name
        step = manifest.step
        // Early stopping that ended the run restored the best step's weights before this save.
        let scalars = manifest.scalars, patience = run.plan.config.evaluation.patience
        let stopped = patience > 0 && (scalars["early_stopping.stale"] ?? 0) >= Double(patience)
        weightsOfStep = stopped ? scalars["early_stopping.best_step"].flatMap { Int(exactly: $0) } ?? step : step
        do { expressionKind = try cohort.opened().reader.manifest.expressionKind; cohortProblem = nil } catch {
            (expressionKind, cohortProblem) = (nil, "\(error)")
        }
        config = manifest.config
        metadata = checkpoint.exportMetadata
        let parameters = tensors.filter { $0.arena == "parameters" }.sorted { $0.offset < $1.offset }
        var hash = SHA256()
        for tensor in parameters { tensor.values.withUnsafeBytes { hash.update(bufferPointer: $0) } }
        let split = run.plan.split
        var provenance: [String: Any] = [
            "checkpoint": checkpoint.directory.path, "checkpoint_saved": manifest.created, "run_directory": run.directory.path,
            "config_sha256": Self.hex(SHA256.hash(data: Data(config.utf8))),
            "parameters_sha256": Self.hex(hash.finalize()),
            "split": ["train": split.train.count, "validation": split.validation.count, "test": split.test.count],
            "cohort": ["path": run.cohort.path, "patients": run.plan.cohortShape.map { $0.patients as Any } ?? NSNull(),
                       "genes_sha256": Self.sha256(description.genes.joined(separator: "\n"))],
        ]
        if let trained = run.plan.provenance {
            provenance["trained_by"] = ["version": trained.version, "commit": trained.commit, "command": trained.command, "started": trained.started]
        }
        self.provenance = provenance
    }

    /// Opens the existential: the task's description from the plan's model and prepared data.
    private static func describe<T: BundleableTask>(_: T.Type, run: TrainedRun, cohort: RunCohort) throws -> TaskDescription {
        let model = try T.decodeModel(yaml: run.plan.model)
        let prepared: T.Prepared
        do { prepared = try run.plan.prepared.decode(T.Prepared.self) } catch {
            throw TrainingError.plan("\(run.directory.appendingPathComponent("run_plan.json").path): prepared does not fit task \(T.name): \(error)")
        }
        return try T.describe(model: model, prepared: prepared, cohort: cohort)
    }

    /// The plan is a file like any other: its normaliser must fit its genes and be usable.
    private static func check(_ description: TaskDescription, checkpoint: CheckpointReader) throws {
        let n = description.normalizer, genes = description.genes.count
        guard n.mean.count == genes, n.std.count == genes else {
            throw TrainingError.plan("the run's plan has \(genes) genes but a normaliser of \(n.mean.count) means and \(n.std.count) deviations")
        }
        guard n.mean.allSatisfy(\.isFinite), n.std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw TrainingError.plan("the run's plan has a normaliser with a non-finite mean or a deviation that is not a positive number")
        }
    }

    /// The checkpoint must hold exactly the tensors of the run's model, where the model puts them.
    private static func check(_ tensors: [ExportedTensor], against layout: ParameterArena, manifest: Manifest, path: String) throws {
        let expected = layout.entries.map { ("parameters", $0) } + layout.bufferEntries.map { ("buffers", $0) }
        let found = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let sizes = ["parameters": layout.count, "buffers": layout.bufferEntries.last.map { $0.offset + $0.count } ?? 0]
        for (arena, count) in sizes where count > 0 || manifest.arenas.contains(where: { $0.name == arena }) {
            let saved = manifest.arenas.first { $0.name == arena }?.count ?? 0
            guard saved == count else {
                throw TrainingError.plan("checkpoint \(path) does not hold the run's model: its '\(arena)' has \(saved) elements, the model \(count)")
            }
        }
        for (arena, entry) in expected {
            guard let tensor = found[entry.name], tensor.arena == arena, tensor.offset == entry.offset, tensor.shape == entry.shape else {
                let actual = found[entry.name].map { "\($0.shape) at \($0.arena)[\($0.offset)]" } ?? "nothing"
                throw TrainingError.plan("checkpoint \(path) does not hold the run's model: \(entry.name) should be \(entry.shape) at \(arena)[\(entry.offset)], it has \(actual)")
            }
        }
        guard tensors.count == expected.count else {
            let extra = Set(tensors.map(\.name)).subtracting(expected.map(\.1.name)).sorted()
            throw TrainingError.plan("checkpoint \(path) holds tensors the run's model does not have: \(extra.prefix(5).joined(separator: ", "))")
        }
    }

    static func sha256(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 { digest.map { String(format: "%02x", $0) }.joined() }
}

// MARK: - What a task tells a bundle

/// A task whose trained models can be exported as a bundle.
protocol BundleableTask: Trainable {
    /// The bundle's input, outputs and architecture for a model of `model` trained with `prepared`.
    static func describe(model: Model, prepared: Prepared, cohort: RunCohort) throws -> TaskDescription
}

/// What a task tells a model bundle beyond the weights.
struct TaskDescription {
    /// The input genes in the model's column order, and their normaliser.
    var genes: [String]
    var normalizer: ExpressionNormalizer
    var cancerTypes: [String]
    /// Output name → `{shape, meaning}` (shapes with "patients" for the batch).
    var outputs: [String: Any]
    /// The model section's settings plus what the forward pass needs (widths, ε, activation),
    /// and the forward pass in words.
    var architecture: [String: Any]
    /// The model declared in an arena that is never sealed (nothing allocated): the tensors,
    /// their places and shapes, that the checkpoint must hold.
    var layout: ParameterArena
    /// Python (numpy) computing the outputs from `x` (normalised input, [patients, genes]),
    /// `w` (the weights by name) and `arch` (bundle.json's architecture).
    var pythonForward: String
}

/// The run's cohort as far as a bundle needs it (gene names, cancer-type names, the kind of
/// values), opened when first asked and checked to have the genes the run trained on.
final class RunCohort {
    private let run: TrainedRun
    private var result: Result<(reader: CohortReader, genes: [String]), Error>?

    init(_ run: TrainedRun) { self.run = run }

    var path: String { run.cohort.path }

    func opened() throws -> (reader: CohortReader, genes: [String]) {
        if let result { return try result.get() }
        let result = Result { try open() }
        self.result = result
        return try result.get()
    }

    private func open() throws -> (reader: CohortReader, genes: [String]) {
        let reader: CohortReader
        do { reader = try CohortReader(directory: run.cohort) } catch {
            throw TrainingError.unsuitableCohort("the run's cohort cannot be opened: \(error)")
        }
        let genes = try reader.genes()
        let recorded = run.plan.cohortShape?.genesSHA256 ?? reader.manifest.genesSHA256
        guard ModelBundle.sha256(genes.joined(separator: "\n")) == recorded else {
            throw TrainingError.unsuitableCohort("the run's cohort \(path) changed since training: its \(genes.count) genes are not the ones the model was trained on (their SHA-256 differs from the one recorded); restore it")
        }
        return (reader, genes)
    }
}
