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
/// Samples are the cohort's patients (the RNA tasks); each worker's loader yields its share of
/// every global batch, already cut into micro-batches.
public protocol Trainable: AnyObject {
    /// The `model` section of the run config (every field with a default).
    associatedtype Model: Codable & Sendable
    /// What the coordinator computes once before training and every worker needs (e.g. the
    /// normalisation statistics of the training split); stored in the run plan.
    associatedtype Prepared: Codable & Sendable

    /// The `task` config value.
    static var name: String { get }
    /// One line for `--help` and the docs.
    static var purpose: String { get }
    static var defaultModel: Model { get }
    /// Problems with a model config (each naming its key), beyond types.
    static func problems(in model: Model) -> [String]
    /// The fewest samples a training micro-batch may hold (2 for models with BatchNorm: the
    /// batch's own statistics need two rows). The default is 1.
    static var minimumMicroBatch: Int { get }

    /// Coordinator, before any training: checks that the cohort suits the task (throwing a
    /// message that says what is missing) and computes `Prepared` from the training split.
    static func prepare(cohort: CohortReader, split: DataSplit, model: Model) throws -> Prepared

    /// Builds the model, declaring its parameters in `arena` (the runtime seals it).
    init(model: Model, prepared: Prepared, arena: ParameterArena, cohort: CohortReader) throws

    /// The worker's stream of its share of each global batch of `patients`.
    func batches(cohort: URL, patients: [Int], sampler: EpochSampler, rank: Int, workers: Int, steps: Int) -> Prefetcher<PatientBatch>

    /// The mean loss over `rows` of `batch` (one micro-batch); `key` seeds its randomness.
    func loss(_ batch: PatientBatch, rows: Range<Int>, key: RandomKey) -> Variable

    /// Evaluation sums over `batch` (no gradients): each metric's sum, and "count". The runtime
    /// adds them over workers and reports sum / count.
    func evaluate(_ batch: PatientBatch) -> [String: Double]

    /// Switches training-only behaviour (dropout) on or off.
    func setTraining(_ training: Bool)

    /// Figures over whole sets of patients beyond per-batch sums (e.g. on latents), with the
    /// final weights in evaluation mode; may write plots into `directory`. Run by worker 0 at the
    /// end of training and by `transcriptile evaluate`. The default has none.
    func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double]
}

/// The patients a final evaluation looks at: `reference` ones (the training split: what a
/// k-NN classifier knows) and `target` ones (the test split, or another cohort's patients).
public struct EvaluationSet {
    public var reference: CohortReader, referencePatients: [Int]
    public var target: CohortReader, targetPatients: [Int]
    /// For titles: "test split" or the other cohort's name.
    public var name: String

    public init(reference: CohortReader, referencePatients: [Int], target: CohortReader, targetPatients: [Int], name: String) {
        (self.reference, self.referencePatients, self.target, self.targetPatients, self.name) = (reference, referencePatients, target, targetPatients, name)
    }
}

extension Trainable {
    public static var minimumMicroBatch: Int { 1 }

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
    public static var tasks: [any Trainable.Type] { [CancerTypeTask.self, ExpressionVAETask.self] }

    public static var names: [String] { tasks.map { $0.name } }

    public static func task(named name: String) -> (any Trainable.Type)? {
        tasks.first { $0.name == name }
    }
}
