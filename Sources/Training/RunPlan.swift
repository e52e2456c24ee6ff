import Checkpoints
import Cohorts
import Distributed
import Foundation

/// What the coordinator decides before training and broadcasts to every worker (DESIGN §2):
/// the effective config, the data split, the resolved batch geometry and the task's prepared
/// data. Stored in the run directory as `run_plan.json`, in snake_case like the config.
public struct RunPlan: Codable, Sendable {
    public var config: RunConfig
    /// The task's model section as YAML.
    public var model: String
    public var runDirectory: String
    public var split: DataSplit
    public var workers: Int
    /// Resolved `train.micro_batch`.
    public var microBatch: Int
    /// Resolved `train.steps`.
    public var steps: Int
    public var stepsPerEpoch: Int
    /// The task's `Prepared` (e.g. the normaliser and gene list).
    public var prepared: JSONValue
    /// The checkpoint training continues from (verified by the coordinator), if any.
    public var resume: ResumePoint?
    /// The cohort as the run saw it, so that later commands notice when it has changed (absent
    /// in plans of older builds).
    public var cohortShape: CohortShape?
    /// Who started this part of the run, where and with what (absent in plans of older builds).
    public var provenance: Provenance?
    /// The split counted in the task's sampling unit (absent in plans of older builds: patients).
    public var samples: SplitSamples?
    /// Where `train.init_from` starts the weights (nil: initialised afresh).
    public var initialWeights: InitialWeights?
    /// The frozen runs the task uses (`companions:`), as they were when the run was planned.
    public var companions: [CompanionIdentity]?

    enum CodingKeys: String, CodingKey {
        case config, model, runDirectory = "run_dir", split, workers, microBatch = "micro_batch", steps, stepsPerEpoch = "steps_per_epoch",
             prepared, resume, cohortShape = "cohort_shape", provenance, samples, initialWeights = "initial_weights", companions
    }

    /// Another run's checkpoint this one starts from, and which of this model's tensors it
    /// fills (same name and shape) or leaves initialised.
    public struct InitialWeights: Codable, Sendable, Equatable {
        public var checkpoint: String
        public var step: Int
        public var task: String
        public var loaded: [String]
        public var kept: [String]
    }

    /// How many samples of `unit` each part of the split holds.
    public struct SplitSamples: Codable, Sendable, Equatable {
        public var unit: SampleUnit
        public var train: Int, validation: Int, test: Int
    }

    /// Samples the sampler ranges over.
    public var trainingSamples: Int { samples?.train ?? split.train.count }
    public var unit: SampleUnit { samples?.unit ?? .patient }

    /// A cohort's size and gene list, as far as a trained model depends on them.
    public struct CohortShape: Codable, Sendable, Equatable {
        public var patients: Int
        public var genes: Int
        public var genesSHA256: String

        public init(_ manifest: CohortManifest) { (patients, genes, genesSHA256) = (manifest.patients, manifest.genes, manifest.genesSHA256) }

        enum CodingKeys: String, CodingKey { case patients, genes, genesSHA256 = "genes_sha256" }
    }

    /// The program and command that planned the run, on which hosts, and when (UTC, ISO 8601).
    public struct Provenance: Codable, Sendable {
        public var version: String
        public var commit: String
        /// The coordinator's command line: the config, every `--set`, `--run-dir` and `--resume`.
        public var command: String
        /// Each world rank's host; rank 0 is the coordinator.
        public var hosts: [String]
        public var ranks: Int
        public var started: String
    }

    /// Micro-batches in one full global batch, and the most any worker runs in one step.
    public var microBatchesPerStep: Int { (config.train.globalBatch + microBatch - 1) / microBatch }
    public var microBatchesPerWorker: Int { (microBatchesPerStep + workers - 1) / workers }

    /// What a checkpoint must share with this run to be resumed by it: the task, the model and
    /// everything that decides which samples and updates follow (Docs/Checkpoints.md).
    public var identity: [String: String] {
        let t = config.train
        var identity = ["task": config.task, "model": model, "optimizer.name": config.optimizer.name, "train.seed": "\(t.seed)",
                        "train.global_batch": "\(t.globalBatch)", "train.drop_last": "\(t.dropLast)",
                        "train.split": "\(t.split.train)/\(t.split.validation)"]
        // Only when set, so that checkpoints of runs without them keep resuming.
        if t.ema.decay > 0 { identity["train.ema.decay"] = "\(t.ema.decay)" }
        if !t.initFrom.isEmpty { identity["train.init_from"] = t.initFrom }
        for companion in companions ?? [] { identity["companions.\(companion.name)"] = companion.parametersSHA256 }
        if !config.optimizer.groups.isEmpty { identity["optimizer.groups"] = "\(config.optimizer.groups.map { "\($0.match):\($0.lrScale):\($0.weightDecay)" })" }
        return identity
    }
}

/// Where a resumed run starts: a verified checkpoint directory and its step.
public struct ResumePoint: Codable, Sendable {
    public var checkpoint: String
    public var step: Int
}

/// Tags of the point-to-point messages between workers and the coordinator.
enum MessageTag: Int {
    /// Worker → coordinator, after each step: `StepReport`.
    case step = 10
    /// Worker → coordinator, entering a phase that waits on the others: `Beat`.
    case beat = 11
    /// Worker → coordinator: `Failure`; the coordinator ends the job naming the worker.
    case failure = 12
    /// Coordinator → worker: stop at the next step boundary (a signal arrived).
    case stop = 13
    /// Worker 0 → coordinator: `EvaluationReport`.
    case evaluation = 14
    /// Worker → coordinator, after the last step: `FinalReport`.
    case final = 15
    /// Worker → coordinator, every few seconds from a thread of its own: it is alive.
    case heartbeat = 16
    /// Worker → coordinator, after writing (or failing to write) its checkpoint shard: `ShardReport`.
    case checkpoint = 17
}

/// Every rank's host name, gathered on the coordinator at start (every rank calls it first), so
/// that a lost worker is named with its machine.
enum RankHosts {
    /// On the coordinator: the host of each world rank; elsewhere: empty.
    static func gather(_ world: Communicator) throws -> [String] {
        let name = (try? Communicator.processorName()) ?? "?"
        let gathered = try world.gatherBytes(Array(name.utf8), root: 0)
        return (gathered ?? []).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// The plan broadcast, or why there is none (every rank then exits with `exitCode`).
enum PlanMessage: Codable {
    case plan(RunPlan)
    case failure(message: String, exitCode: Int32)
}

/// A span of a rank's time, in seconds since the run's common start.
struct Span: Codable {
    var name: String
    var start: Double
    var duration: Double
}

/// A worker's share of one step; `step` is the loop's index (0-based), which the coordinator
/// records as step `step + 1` like everything a user reads.
struct StepReport: Codable {
    var worker: Int
    var step: Int
    var epoch: Int
    /// Sum of the per-sample loss over this worker's samples, and their number.
    var lossSum: Double
    var samples: Int
    var learningRate: Double
    var gradientNorm: Double
    /// Seconds of exchange work done inside backward (overlapped with computing).
    var overlappedExchange: Double
    var spans: [Span]
    /// `GradientModulating` tasks: each group's gradient coefficient this step.
    var coefficients: [String: Double]?
}

/// A worker entering a phase at `step` (numbered from 1: the update in progress, or the one an
/// evaluation or checkpoint follows).
struct Beat: Codable {
    var worker: Int
    var step: Int
    var phase: String
}

struct Failure: Codable {
    var worker: Int
    var message: String
    var exitCode: Int32
}

/// One worker's part of a checkpoint: its shard, or why it could not write it. Worker 0 also
/// describes the arenas, their named views and the scalar state.
struct ShardReport: Codable {
    var worker: Int
    var step: Int
    var epoch: Int, cursor: Int
    var shard: Manifest.ShardRecord?
    var error: String?
    var arenas: [Manifest.Arena]
    var tensors: [Manifest.TensorView]
    var scalars: [String: Double]
    var span: Span
}

/// A split's figures at `step` (the number of steps trained). `final`: the figures of the
/// weights training ends with — after early stopping, those of `weightsOfStep`.
struct EvaluationReport: Codable {
    var step: Int
    var split: String
    var metrics: [String: Double]
    var final = false
    var weightsOfStep: Int?
}

struct FinalReport: Codable {
    var worker: Int
    var steps: Int
    var parameterCount: Int
    var parameterSHA256: String
    var stoppedEarly: Bool
    /// The task's whole-split figures (worker 0 only).
    var evaluation: [String: Double]
    /// Early stopping's state when it ended training.
    var earlyStopping: [String: Double]?
}

extension JSONEncoder {
    static let compact: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }()

    static let pretty: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }()
}

extension JSONDecoder {
    static let lenient: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }()
}
