import Autograd
import Cohorts
import Foundation
import NN
import Tensors
import Yams

/// A model the runtime can train data-parallel: it declares its parameters in the run's arena,
/// computes the loss of one micro-batch, and evaluates. The runtime does the rest — sharding,
/// micro-batches, gradient accumulation and exchange, clipping, the optimizer, records.
///
/// A task declares what its samples are (`unit`: patients, tiles, spots or bags) and the batch
/// its loader yields; the runtime splits by patient, samples the unit, and each worker's loader
/// yields its share of every global batch, already cut into micro-batches.
public protocol Trainable: AnyObject {
    /// The `model` section of the run config (every field with a default).
    associatedtype Model: Codable & Sendable
    /// What the coordinator computes once before training and every worker needs (e.g. the
    /// normalisation statistics of the training split); stored in the run plan.
    associatedtype Prepared: Codable & Sendable
    /// What the loader yields: a worker's share of a global batch.
    associatedtype Batch: SampleBatch

    /// The `task` config value.
    static var name: String { get }
    /// One line for `--help` and the docs.
    static var purpose: String { get }
    /// What the sampler counts (patients for the RNA tasks).
    static var unit: SampleUnit { get }
    static var defaultModel: Model { get }
    /// Problems with a model config (each naming its key), beyond types.
    static func problems(in model: Model) -> [String]
    /// The fewest samples a training micro-batch may hold (2 for models with BatchNorm: the
    /// batch's own statistics need two rows). The default is 1.
    static var minimumMicroBatch: Int { get }

    /// Coordinator, before any training: checks that the cohort suits the task (throwing a
    /// message that says what is missing) and computes `Prepared` from the training split.
    static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared

    /// Other trained runs the task uses frozen, named under `companions:` (default: none).
    static var companions: [CompanionRequirement] { get }

    /// Builds the model, declaring its parameters in `arena` (the runtime seals it); the
    /// companions the config gave are there to be built, frozen.
    init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader, companions: Companions) throws

    /// The worker's stream of its share of each global batch of `samples` (global indices of
    /// `unit`: `CohortReader.samples`); `sampler` ranges over them.
    func batches(cohort: URL, samples: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int) -> Prefetcher<Batch>

    /// The mean loss over `rows` of `batch` (one micro-batch); `key` seeds its randomness.
    func loss(_ batch: Batch, rows: Range<Int>, key: RandomKey) -> Variable

    /// Evaluation sums over `batch` (no gradients): each metric's sum, and "count". The runtime
    /// adds them over workers and reports sum / count.
    func evaluate(_ batch: Batch) -> [String: Double]

    /// Switches training-only behaviour (dropout) on or off.
    func setTraining(_ training: Bool)

    /// Figures over whole sets of patients beyond per-batch sums (e.g. on latents), with the
    /// final weights in evaluation mode; may write plots into `directory`. Run by worker 0 at the
    /// end of training and by `transcriptile evaluate`. The default has none.
    func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double]
}

/// A task whose loss needs the whole global batch at once — the Cox partial likelihood, where a
/// sample's risk set holds every sample that failed later, on whichever worker. Each step the
/// runtime runs `outputs` on every micro-batch (keeping their graphs), all-gathers the outputs and
/// `lossInputs` over the workers in global-batch order, computes `globalLoss` identically on every
/// worker, and back-propagates each worker's rows of its gradient through its own micro-batches.
/// The gradient is the single-process gradient of the same global batch; the price is memory:
/// a worker holds the activations of all its micro-batches of a step at once, not one at a time.
/// Evaluations compute `globalLoss` over each evaluation chunk of 256 samples the same way.
public protocol GlobalBatchTrainable: Trainable {
    /// Columns of `outputs` and of `lossInputs` per sample.
    var outputWidth: Int { get }
    var lossInputWidth: Int { get }
    /// What the model computes for `rows` of `batch`: [rows × outputWidth] (e.g. the risk score).
    func outputs(_ batch: Batch, rows: Range<Int>, key: RandomKey) -> Variable
    /// What the loss reads beside the outputs, row after row (e.g. survival time and event).
    func lossInputs(_ batch: Batch, rows: Range<Int>) -> [Float]
    /// The mean loss of a whole batch from its outputs [n × outputWidth] and loss inputs.
    func globalLoss(outputs: Variable, inputs: [Float]) -> Variable
}

extension GlobalBatchTrainable {
    /// One micro-batch on its own (tests, and tools that see no other workers).
    public func loss(_ batch: Batch, rows: Range<Int>, key: RandomKey) -> Variable {
        globalLoss(outputs: outputs(batch, rows: rows, key: key), inputs: lossInputs(batch, rows: rows))
    }
}

/// A task that scales named groups of its parameters' gradients every step, by coefficients
/// computed from figures of the whole step — Path-GPTOmic's gradient modulation damps the
/// modality that dominates. The runtime collects `takeStatistics()` after every micro-batch's
/// loss and sums them over the step's micro-batches on all workers in fixed point (2⁻³²
/// resolution), so the sums — and the coefficients — do not depend on how the batch was dealt;
/// after the exchange and before clipping it asks `gradientCoefficients` for a coefficient per
/// group and scales that group's gradients. The coefficients go to metrics.jsonl as
/// `coefficient.<group>` each step.
public protocol GradientModulating: Trainable {
    /// The task's groups: name → shell patterns of parameter names (`rna_encoder.*`).
    var parameterGroups: [String: [String]] { get }
    /// The statistics' names, the same on every worker.
    var statisticNames: [String] { get }
    /// The statistics of the micro-batches since the last call (sums over their samples), then
    /// cleared.
    func takeStatistics() -> [String: Double]
    /// A coefficient per group (absent: 1) from the statistics summed over every worker, at
    /// step `step` (numbered from 1).
    func gradientCoefficients(_ totals: [String: Double], step: Int) -> [String: Double]
}

/// The patients a final evaluation looks at: `reference` ones (the training split: what a
/// k-NN classifier knows) and `target` ones (the test split, or another cohort's patients).
public struct EvaluationSet {
    public var reference: CohortReader, referencePatients: [Int]
    public var target: CohortReader, targetPatients: [Int]
    /// For titles: "test split" or the other cohort's name.
    public var name: String
    /// Where a long evaluation says how far it is ("painting tiles 40/72"), every few seconds at
    /// most: the runtime's liveness watch hears it, and the user sees it.
    public var progress: (String) -> Void

    public init(reference: CohortReader, referencePatients: [Int], target: CohortReader, targetPatients: [Int], name: String,
                progress: @escaping (String) -> Void = { _ in }) {
        (self.reference, self.referencePatients, self.target, self.targetPatients, self.name) = (reference, referencePatients, target, targetPatients, name)
        self.progress = progress
    }
}

extension Trainable {
    public static var minimumMicroBatch: Int { 1 }
    public static var companions: [CompanionRequirement] { [] }

    public func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double] { [:] }

    static func defaultModelNode() throws -> Node {
        try Yams.compose(yaml: try YAMLEncoder().encode(defaultModel)) ?? Node([(Node, Node)]())
    }

    static func decodeModel(_ node: Node) throws -> Model {
        try YAMLDecoder().decode(Model.self, from: node)
    }

    /// The model section as the run plan stores it (YAML).
    static func decodeModel(yaml: String) throws -> Model {
        try decodeModel(try Yams.compose(yaml: yaml) ?? Node([(Node, Node)]()))
    }

    /// Decodes and checks a model section; throws a `ConfigError` naming the key.
    static func checkModel(_ node: Node) throws {
        let problems = problems(in: try decodeModel(node))
        guard problems.isEmpty else { throw ConfigError(problems.joined(separator: "\n  ")) }
    }
}

/// The tasks a run config may name.
public enum TaskRegistry {
    public static var tasks: [any Trainable.Type] { [CancerTypeTask.self, ExpressionVAETask.self, SurvivalCoxTask.self, TileClassifierTask.self, MultimodalCancerTypeTask.self, TileFractionsTask.self, DiffusionTask.self] }

    public static var names: [String] { tasks.map { $0.name } }

    public static func task(named name: String) -> (any Trainable.Type)? {
        tasks.first { $0.name == name }
    }
}
