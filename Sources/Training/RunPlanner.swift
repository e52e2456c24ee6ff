import Checkpoints
import Cohorts
import Distributed
import Foundation
import NN
import Terminal
import Yams

/// The coordinator's planning before any training: config → cohort validation → split →
/// sample counts → batch geometry → the task's preparation → companions, starting weights and
/// the checkpoint to resume from. Every refusal names its key and exits 2.
enum RunPlanner {
    /// Config → cohort validation → split → batch geometry → the task's preparation.
    static func plan(file: URL, runDirectory: String?, overrides: [String], resume: String, workers: Int) throws -> (RunPlan, EffectiveConfig) {
        // --run-dir is run_dir given on the command line (relative to the working directory).
        let effective = try ConfigLoader.load(file: file, overrides: overrides + (runDirectory.map { ["run_dir=" + ConfigLoader.quoted($0)] } ?? []))
        let config = effective.config
        let cohort = URL(fileURLWithPath: config.cohort)
        let problems = try CohortValidator(directory: cohort).validate()
        guard problems.isEmpty else { throw TrainingError.invalidCohort(directory: cohort.path, problems: problems.map(\.description)) }
        let reader = try CohortReader(directory: cohort)
        let split = DataSplit(cancerTypes: try reader.cancerTypes(),
                              fractions: (config.train.split.train, config.train.split.validation), seed: UInt64(config.train.seed))
        // ConfigLoader has checked that the task exists.
        guard let task = TaskRegistry.task(named: config.task) else { throw TrainingError.plan("task: unknown task '\(config.task)'") }
        let samples = try RunPlan.SplitSamples(unit: task.unit, train: reader.samples(task.unit, of: split.train).count,
                                               validation: reader.samples(task.unit, of: split.validation).count,
                                               test: reader.samples(task.unit, of: split.test).count)
        let microBatch = defaultMicroBatch(config, workers: workers, minimum: task.minimumMicroBatch)
        try checkGeometry(config, split: split, samples: samples, workers: workers, microBatch: microBatch)
        let sampler = EpochSampler(samples: samples.train, globalBatch: config.train.globalBatch, microBatch: microBatch,
                                   seed: UInt64(config.train.seed), dropLast: config.train.dropLast)
        if microBatch < task.minimumMicroBatch {
            throw TrainingError.plan("train.micro_batch: \(config.task) needs at least \(task.minimumMicroBatch) samples per micro-batch (BatchNorm), got \(microBatch); raise train.micro_batch or train.global_batch")
        }
        let prepared = try prepare(task, reader: reader, split: split, model: effective.model)
        let directory = URL(fileURLWithPath: config.runDir)
        var plan = RunPlan(
            config: config, model: try Yams.serialize(node: effective.model), runDirectory: directory.standardizedFileURL.path,
            split: split, workers: workers, microBatch: microBatch,
            steps: config.train.steps > 0 ? config.train.steps : config.train.epochs * sampler.batchesPerEpoch,
            stepsPerEpoch: sampler.batchesPerEpoch, prepared: prepared)
        plan.cohortShape = RunPlan.CohortShape(reader.manifest)
        plan.samples = samples
        plan.companions = try Companions.identify(config.companions, for: task, cohort: reader)
        guard config.schedule.warmupSteps < plan.steps else {
            throw TrainingError.plan("schedule.warmup_steps (\(config.schedule.warmupSteps)) must be shorter than the run (\(plan.steps) steps); lower schedule.warmup_steps or raise train.steps")
        }
        plan.resume = try resumePoint(resume, runDirectory: directory, plan: plan)
        if !config.optimizer.groups.isEmpty || (!config.train.initFrom.isEmpty && plan.resume == nil) {
            // The model's parameter names, for the groups' patterns and the tensors to start from.
            let arena = try modelArena(task, model: effective.model, prepared: prepared,
                                       companions: Companions(identities: plan.companions ?? [], cohort: reader))
            _ = try ParameterGroups(config: config.optimizer.groups, taskGroups: [:], arena: arena, task: config.task)
            if !config.train.initFrom.isEmpty && plan.resume == nil {
                plan.initialWeights = try initialWeights(from: config.train.initFrom, into: arena, task: task, cohort: reader)
            }
        }
        let terms = GradientExchange.maxReproducibleTerms
        if config.exchange.algorithm == .reproducible && plan.microBatchesPerStep > terms {
            throw TrainingError.plan("exchange.algorithm reproducible sums at most \(terms) micro-batches per step; raise train.micro_batch")
        }
        return (plan, effective)
    }

    /// `train.micro_batch`, or when it is 0: with `exchange.algorithm: reproducible`, a size that
    /// depends on the global batch alone — ⌈global / 8⌉ capped at 32 (at least 8 micro-batches a
    /// step, so up to that many workers are busy) and at least the task's minimum — so that the
    /// weights are the same on any number of workers by default; otherwise one micro-batch per
    /// worker (⌈global / workers⌉), the fastest split.
    static func defaultMicroBatch(_ config: RunConfig, workers: Int, minimum: Int) -> Int {
        let global = config.train.globalBatch
        if config.train.microBatch > 0 { return config.train.microBatch }
        guard config.exchange.algorithm == .reproducible else { return (global + workers - 1) / workers }
        return min(global, max(minimum, min(32, (global + 7) / 8)))
    }

    /// The split and the batch geometry can train: a non-empty training split, a global batch
    /// the split can fill and that has a sample for every worker, and patients to validate on
    /// when early stopping needs them.
    private static func checkGeometry(_ config: RunConfig, split: DataSplit, samples: RunPlan.SplitSamples, workers: Int, microBatch: Int) throws {
        let train = config.train
        guard !split.train.isEmpty else {
            throw TrainingError.plan("the training split is empty (train.split.train \(train.split.train) of the cohort's patients); raise train.split.train or use a larger cohort")
        }
        guard samples.train > 0 else {
            throw TrainingError.unsuitableCohort("the training split's \(split.train.count) patients have no \(samples.unit.plural); \(config.task) trains on \(samples.unit.plural): use a cohort that has them")
        }
        guard samples.train >= train.globalBatch || !train.dropLast else {
            throw TrainingError.plan("train.global_batch (\(train.globalBatch)) exceeds the training split (\(samples.train) \(samples.unit.plural)); lower it or set train.drop_last: false")
        }
        guard train.globalBatch >= workers else {
            throw TrainingError.plan("train.global_batch (\(train.globalBatch)) is smaller than the number of workers (\(workers)): a worker would have no sample to train on; raise train.global_batch to at least \(workers) or use fewer workers")
        }
        // Fewer micro-batches than workers is allowed (a fixed train.micro_batch keeps results
        // independent of the worker count, e.g. when resuming on more workers), but said.
        let microBatches = (train.globalBatch + microBatch - 1) / microBatch
        if microBatches < workers {
            Console.error("""
                transcriptile-coordinator: note: \(workers) workers but only \(microBatches) micro-batches of \(microBatch) per step \
                (train.global_batch \(train.globalBatch)): \(workers - microBatches) worker(s) idle in every step; a train.micro_batch of \
                \(train.globalBatch / workers) or less would use them all\n
                """)
        }
        if config.evaluation.patience > 0 && split.validation.isEmpty {
            throw TrainingError.plan("evaluation.patience: early stopping needs validation patients, but the validation split is empty (train.split.validation \(train.split.validation)); raise it or set evaluation.patience: 0")
        }
    }

    /// The verified checkpoint a run continues from, or nil for a new run (whose directory must
    /// not hold another run). Passed-over checkpoints are reported; newer ones than the one
    /// chosen are moved aside, never overwritten.
    private static func resumePoint(_ resume: String, runDirectory: URL, plan: RunPlan) throws -> ResumePoint? {
        let store = CheckpointStore(runDirectory: runDirectory)
        let reader: CheckpointReader
        switch resume {
        case "none":
            try startNew(in: runDirectory)
            return nil
        case "auto":
            guard store.hasCommitted else { try startNew(in: runDirectory); return nil }
            let (newest, rejected) = store.newestValid()
            for (step, reason) in rejected {
                Console.error("transcriptile-coordinator: passing over \(CheckpointStore.name(step: step)): \(reason)\n")
            }
            guard let newest else {
                throw TrainingError.plan("""
                    \(store.root.path) holds no valid checkpoint (see above); nothing to resume.                     To start over, use --resume none with another --run-dir
                    """)
            }
            if !rejected.isEmpty { Console.error("transcriptile-coordinator: resuming from the newest valid checkpoint, \(newest.directory.lastPathComponent)\n") }
            reader = newest
        default:
            let path = URL(fileURLWithPath: resume)
            if FileManager.default.fileExists(atPath: path.appendingPathComponent("manifest.json").path) {
                reader = try CheckpointReader(directory: path)
                try reader.verify()
            } else if let newest = CheckpointStore(runDirectory: path).newestValid().reader {
                reader = newest
            } else {
                throw TrainingError.plan("--resume \(resume): neither a checkpoint (no manifest.json) nor a run directory with a valid checkpoint")
            }
        }
        let saved = reader.manifest
        let differences = plan.identity.sorted { $0.key < $1.key }.compactMap { key, ours -> String? in
            let theirs = saved.identity[key] ?? "(absent)"
            return ours == theirs ? nil : "\(key): checkpoint \(theirs.debugDescription), this run \(ours.debugDescription)"
        }
        guard differences.isEmpty else { throw CheckpointError.mismatch(path: reader.directory.path, differences: differences) }
        let stepCount = saved.scalars["optimizer.step_count"] ?? 0
        guard saved.cursor <= plan.trainingSamples, stepCount >= 0, stepCount <= Double(saved.step), stepCount.rounded() == stepCount else {
            throw CheckpointError.invalid(path: reader.directory.path, reason: "manifest.json: cursor \(saved.cursor) of \(plan.trainingSamples) training \(plan.unit.plural), optimizer.step_count \(stepCount) at step \(saved.step): not a position this run can continue from")
        }
        guard saved.step < plan.steps else {
            throw TrainingError.plan("checkpoint \(reader.directory.path) is at step \(saved.step), the run has \(plan.steps) steps: nothing left to train; raise train.steps to continue")
        }
        if reader.directory.deletingLastPathComponent().standardizedFileURL == store.root.standardizedFileURL {
            for moved in try store.supersede(after: saved.step) {
                Console.error("transcriptile-coordinator: moved a checkpoint newer than the one resumed aside: \(moved)\n")
            }
        }
        return ResumePoint(checkpoint: reader.directory.standardizedFileURL.path, step: saved.step)
    }

    /// A new run's directory: refused if taken; an earlier start's records are moved aside.
    private static func startNew(in directory: URL) throws {
        if let aside = try RunRecords.checkUnused(directory) {
            Console.error("transcriptile-coordinator: \(directory.path) held the records of an earlier start that left no checkpoint; moved them to \(aside.path)\n")
        }
    }

    /// A sealed arena of the task's model, as the workers will declare it.
    private static func modelArena<T: Trainable>(_: T.Type, model: Node, prepared: JSONValue, companions: Companions) throws -> ParameterArena {
        let arena = ParameterArena(seed: 0)
        _ = try T(model: try T.decodeModel(model), prepared: try prepared.decode(T.Prepared.self), arena: arena, cohort: companions.cohort,
                  companions: companions)
        arena.seal()
        return arena
    }

    /// `train.init_from`: the checkpoint named, or the newest valid one of the run named, and
    /// which tensors of `arena` it fills (same name and shape). Refused when it fills none, or
    /// when both models read RNA and the genes differ.
    private static func initialWeights(from path: String, into arena: ParameterArena, task: any Trainable.Type, cohort: CohortReader) throws
        -> RunPlan.InitialWeights {
        let key = "train.init_from"
        let reader: CheckpointReader, other: TrainedRun
        do {
            reader = try CheckpointStore.reader(at: path)
            other = try TrainedRun(checkpoint: reader)
        } catch {
            throw TrainingError.plan("\(key): \(error)")
        }
        let readsRNA: (SampleUnit) -> Bool = { $0 == .patient || $0 == .bag }
        if readsRNA(task.unit) && readsRNA(other.plan.unit) {
            do { try other.checkGenes(of: cohort) } catch { throw TrainingError.plan("\(key): \(reader.directory.path): \(error)") }
        }
        let theirs = Dictionary(reader.manifest.tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { first, _ in first })
        var loaded = [String](), kept = [String]()
        for entry in arena.entries + arena.bufferEntries {
            if theirs[entry.name] == entry.shape { loaded.append(entry.name); continue }
            kept.append(entry.name + (theirs[entry.name].map { " (shape \(entry.shape) here, \($0) there)" } ?? " (not in that run)"))
        }
        guard !loaded.isEmpty else {
            throw TrainingError.plan("\(key): \(reader.directory.path) (a \(other.plan.config.task) run) has no tensor of the same name and shape as this \(task.name) model: nothing to start from")
        }
        return RunPlan.InitialWeights(checkpoint: reader.directory.standardizedFileURL.path, step: reader.manifest.step, task: other.plan.config.task,
                                      loaded: loaded, kept: kept)
    }

    private static func prepare<T: Trainable>(_: T.Type, reader: CohortReader, split: DataSplit, model: Node) throws -> JSONValue {
        try JSONValue(encoding: try T.prepare(cohort: reader, split: split, model: try T.decodeModel(model)))
    }
}
