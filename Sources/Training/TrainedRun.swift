import Checkpoints
import Cohorts
import Foundation
import NN
import Yams

/// A run opened for inference (`transcriptile evaluate`, `encode`): its plan — `run_plan.json`
/// beside `checkpoints/`, with the config, the split and the task's prepared statistics (e.g.
/// the training split's normalisation) — and one of its checkpoints' weights.
public struct TrainedRun {
    public let checkpoint: CheckpointReader
    public let plan: RunPlan
    /// The run directory.
    public let directory: URL
    /// The weights `task(_:cohort:)` loads.
    public let weights: Weights

    /// A checkpoint's weights: the trained ones, or their exponential moving average
    /// (`train.ema.decay`), which diffusion models sample with.
    public enum Weights: String, Sendable, CaseIterable {
        case ema, trained
    }

    /// `weights` nil: the EMA when the run kept one, else the trained weights.
    public init(checkpoint: CheckpointReader, weights: Weights? = nil) throws {
        self.checkpoint = checkpoint
        let hasEMA = checkpoint.manifest.arenas.contains { $0.name == "ema" }
        if weights == .ema && !hasEMA {
            throw TrainingError.plan("--weights ema: \(checkpoint.directory.path) holds no EMA of the weights (the run's train.ema.decay was 0); use --weights trained")
        }
        self.weights = weights ?? (hasEMA ? .ema : .trained)
        directory = checkpoint.directory.deletingLastPathComponent().deletingLastPathComponent()
        let file = directory.appendingPathComponent("run_plan.json")
        guard let data = try? Data(contentsOf: file) else {
            throw TrainingError.plan("\(file.path) is missing: \(checkpoint.directory.path) is not inside a run directory (RUN/checkpoints/step-N)")
        }
        do { plan = try JSONDecoder.lenient.decode(RunPlan.self, from: data) } catch {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            if object?["runDirectory"] != nil {  // camelCase keys and a base64 `prepared`: before 0.19
                throw TrainingError.plan("\(file.path) was written by a Transcriptile older than 0.19, whose run plans (camelCase keys, base64 data) this version does not read; use the build that trained it, or train the run again")
            }
            throw TrainingError.plan("\(file.path) does not parse: \(error)")
        }
        // The plan is a file like any other: its config and model are checked as a run's are.
        let problems = plan.config.problems()
        guard problems.isEmpty else { throw TrainingError.plan("\(file.path): " + problems.joined(separator: "; ")) }
        do { try taskType.checkModel(try Yams.compose(yaml: plan.model) ?? Node([(Node, Node)]())) } catch {
            throw TrainingError.plan("\(file.path): model: \(error)")
        }
    }

    /// The run's cohort, validated and checked to be the one the run trained on: every index of
    /// the split inside it, and (for plans that recorded it) the same patients and genes.
    public func runCohort() throws -> CohortReader {
        let reader = try Self.validCohort(cohort)
        let largest = (plan.split.train + plan.split.validation + plan.split.test).max() ?? -1
        let changed = "the run's cohort \(cohort.path) changed since training"
        guard largest < reader.patients else {
            throw TrainingError.unsuitableCohort("\(changed): the run's split names patient \(largest), the cohort has \(reader.patients); evaluate on it with --cohort, or restore the cohort")
        }
        if let shape = plan.cohortShape, shape != RunPlan.CohortShape(reader.manifest) {
            throw TrainingError.unsuitableCohort("\(changed): it had \(shape.patients) patients and \(shape.genes) genes, now \(reader.patients) and \(reader.manifest.genes) (or another gene list); evaluate on it with --cohort, or restore the cohort")
        }
        return reader
    }

    /// Another cohort to evaluate or encode: validated, with the run's genes in the run's order.
    public func otherCohort(_ directory: URL) throws -> CohortReader {
        let reader = try Self.validCohort(directory)
        try checkGenes(of: reader)
        return reader
    }

    private static func validCohort(_ directory: URL) throws -> CohortReader {
        let problems = try CohortValidator(directory: directory).validate()
        guard problems.isEmpty else { throw TrainingError.invalidCohort(directory: directory.path, problems: problems.map(\.description)) }
        return try CohortReader(directory: directory)
    }

    public var taskType: any Trainable.Type {
        get throws {
            guard let type = TaskRegistry.task(named: plan.config.task) else {
                throw TrainingError.plan("the run's task '\(plan.config.task)' is not one of this build's: \(TaskRegistry.names.joined(separator: ", "))")
            }
            return type
        }
    }

    /// The run's cohort (as the run saw it).
    public var cohort: URL { URL(fileURLWithPath: plan.config.cohort) }

    /// The run's task with the checkpoint's parameters (`weights`) and buffers, in evaluation
    /// mode. `cohort` is the run's own (`runCohort()`), which some tasks read while they are built.
    public func task<T: Trainable>(_: T.Type, cohort: CohortReader) throws -> T {
        let model = try T.decodeModel(yaml: plan.model)
        let prepared = try plan.prepared.decode(T.Prepared.self)
        let arena = ParameterArena(seed: UInt64(plan.config.train.seed))
        let task = try T(model: model, prepared: prepared, arena: arena, cohort: cohort, companions: Companions(identities: plan.companions ?? [], cohort: cohort))
        arena.seal()
        for (name, values) in [(weights == .ema ? "ema" : "parameters", arena.values), ("buffers", arena.buffers)] where values.count > 0 {
            guard let saved = checkpoint.manifest.arenas.first(where: { $0.name == name }), saved.count == values.count else {
                throw TrainingError.plan("\(checkpoint.directory.path) does not fit the run's model: it lacks '\(name)' of \(values.count) elements")
            }
            try checkpoint.read(arena: name, range: 0..<values.count, into: values.buffer(Float.self))
        }
        task.setTraining(false)
        return task
    }

    /// Checks that `other` has the run's genes in the same order (a model reads genes by position).
    func checkGenes(of other: CohortReader) throws {
        let ours = try CohortReader(directory: cohort).genes(), theirs = try other.genes()
        guard ours != theirs else { return }
        if let i = zip(ours, theirs).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            throw TrainingError.unsuitableCohort("\(other.directory.path) has gene '\(theirs[i])' at position \(i) where the run's cohort has '\(ours[i])'; the model needs the same genes in the same order")
        }
        throw TrainingError.unsuitableCohort("\(other.directory.path) has \(theirs.count) genes, the run's cohort \(ours.count); the model needs the same genes in the same order")
    }
}
