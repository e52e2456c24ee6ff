import Autograd
import Checkpoints
import Cohorts
import Crypto
import Distributed
import Foundation
import Terminal
import NN
import Optim
import Tensors

/// `transcriptile-worker`: receives the plan from the coordinator, then trains its share of
/// every global batch (DESIGN §2). Any error goes to the coordinator, which ends the job
/// naming this worker.
public enum WorkerProcess {
    public static func main() -> Never {
        let world: Communicator, threadLevel: MPIRuntime.ThreadLevel
        do {
            threadLevel = try MPIRuntime.start(requesting: .multiple)  // for the heartbeat thread
            world = try Communicator.world()
        } catch {
            Console.error("transcriptile-worker: cannot start MPI: \(error)\n")
            exit(1)
        }
        if world.size < 2 || world.rank == 0 {
            // Not started beside a coordinator (alone, or as world rank 0): nobody would send a plan.
            let why = "transcriptile-worker: \(world.size < 2 ? "started alone" : "started as world rank 0"): workers are ranks 1…N " +
                "beside the coordinator (rank 0). Start a run with: transcriptile train RUN.yaml --workers N"
            if world.size > 1 { world.abort(why, code: 2) }  // the other ranks would wait for a plan
            Console.error(why + "\n")
            exit(2)
        }
        StopSignal.install()
        do {
            _ = try RankHosts.gather(world)
            let bytes = try world.broadcastBytes([], root: 0)
            // A rank that gives a colour always gets a communicator (nil is only for colour nil).
            guard let workers = try world.split(color: 0, key: world.rank) else { throw TrainingError.plan("internal: no workers' communicator") }
            switch try JSONDecoder.lenient.decode(PlanMessage.self, from: Data(bytes)) {
            case let .failure(_, exitCode):
                exit(exitCode)  // the coordinator has said why
            case let .plan(plan):
                if threadLevel == .multiple { Heartbeat.start(world, every: min(1, plan.config.liveness.timeoutS / 5)) }
                guard let task = TaskRegistry.task(named: plan.config.task) else { throw TrainingError.plan("unknown task \(plan.config.task)") }
                try train(task, plan: plan, world: world, workers: workers)
                Heartbeat.stop()
                exit(0)
            }
        } catch {
            fail(world, error)
        }
    }

    /// Tells the coordinator, which aborts the job naming this rank; aborts alone if the
    /// coordinator does not within 10 s.
    private static func fail(_ world: Communicator, _ error: Error) -> Never {
        let message = "\(error)"
        let code = (error as? TrainingError)?.exitCode ?? 1
        let failure = Failure(worker: world.rank - 1, message: message, exitCode: code)
        if let bytes = try? JSONEncoder.compact.encode(failure) {
            try? world.send(Array(bytes), to: 0, tag: MessageTag.failure.rawValue)
        }
        Thread.sleep(forTimeInterval: 10)
        Heartbeat.stop()
        world.abort("worker \(world.rank - 1): \(message)", code: code)
    }

    private static func train<T: Trainable>(_: T.Type, plan: RunPlan, world: Communicator, workers: Communicator) throws {
        try WorkerLoop<T>(plan: plan, world: world, workers: workers).run()
    }
}

/// Tells the coordinator this process is alive, from a thread of its own, so that a worker that
/// stops answering (a crash, a frozen node, SIGSTOP) is told apart from one waiting on the others.
enum Heartbeat {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var stopped = false

    static func start(_ world: Communicator, every interval: Double) {
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: interval)
                let sent = lock.withLock { !stopped && (try? world.send([], to: 0, tag: MessageTag.heartbeat.rawValue)) != nil }
                guard sent else { return }
            }
        }
        thread.name = "heartbeat"
        thread.start()
    }

    /// No heartbeat is sent after this returns (MPI may then be finalised).
    static func stop() { lock.withLock { stopped = true } }
}

/// One worker's training loop: data → micro-batches (forward, backward, accumulate) →
/// exchange overlapped with the last backward → clip → optimizer → report.
final class WorkerLoop<T: Trainable> {
    private let plan: RunPlan
    private let config: RunConfig
    private let world: Communicator
    private let workers: Communicator
    private let task: T
    private let arena: ParameterArena
    private let exchange: GradientExchange
    private var optimizer: any Optimizer
    private let schedule: WarmupCosine
    private let cohort: URL
    private let checkpoints: CheckpointStore
    private let earlyStopping: EarlyStopping?
    /// Each worker's partition of the arena: its checkpoint slice, and with ZeRO-1 the elements
    /// whose optimizer state it keeps and updates.
    private let partition: [Range<Int>]
    /// The elements this worker's optimizer covers: its partition (ZeRO-1) or all.
    private let optimized: Range<Int>
    private var start = 0.0

    init(plan: RunPlan, world: Communicator, workers: Communicator) throws {
        self.plan = plan
        config = plan.config
        self.world = world
        self.workers = workers
        BLASThreads.set(config.threadsPerRank)
        cohort = URL(fileURLWithPath: config.cohort)
        checkpoints = CheckpointStore(runDirectory: URL(fileURLWithPath: plan.runDirectory))
        let reader = try CohortReader(directory: cohort)
        let model = try T.decodeModel(yaml: plan.model)
        let prepared = try plan.prepared.decode(T.Prepared.self)
        arena = ParameterArena(seed: UInt64(config.train.seed))
        task = try T(model: model, prepared: prepared, arena: arena, cohort: reader)
        exchange = try GradientExchange(
            algorithm: config.exchange.algorithm, workers: workers, count: arena.count,
            bucketElements: max(1, Int(config.exchange.bucketMb * 1e6) / MemoryLayout<Float>.stride),
            microBatchesPerWorker: plan.microBatchesPerWorker, microBatchesPerStep: plan.microBatchesPerStep)
        arena.seal(gradients: TensorStorage(borrowing: exchange.gradients))
        let o = config.optimizer
        optimizer = switch o.name {
        case "sgd": SGD(momentum: o.momentum, weightDecay: o.weightDecay)
        case "adam": Adam(beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay)
        default: Adam.adamW(beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay)
        }
        schedule = WarmupCosine(peak: o.lr, warmupSteps: config.schedule.warmupSteps, totalSteps: plan.steps, floor: config.schedule.minLr)
        earlyStopping = config.evaluation.patience > 0
            ? EarlyStopping(patience: config.evaluation.patience, minDelta: config.evaluation.minDelta, arena: arena) : nil
        partition = Communicator.partition(count: arena.count, parts: workers.size)
        optimized = config.exchange.zeroStage == 1 ? partition[workers.rank] : 0..<arena.count
    }

    private var rank: Int { workers.rank }
    private func now() -> Double { Date.timeIntervalSinceReferenceDate - start }

    func run() throws {
        var sampler = EpochSampler(samples: plan.split.train.count, globalBatch: config.train.globalBatch,
                                   microBatch: plan.microBatch, seed: UInt64(config.train.seed), dropLast: config.train.dropLast)
        var step = 0, stoppedEarly = false, earlyStopped = false
        if let resume = plan.resume {
            (sampler.epoch, sampler.cursor) = try restore(from: URL(fileURLWithPath: resume.checkpoint))
            step = resume.step
        }
        let loader = task.batches(cohort: cohort, patients: plan.split.train, sampler: sampler, rank: rank, workers: workers.size,
                                  steps: plan.steps - step)
        defer { loader.stop() }
        try world.startBarrier().wait()  // the common start of every rank's timeline (the coordinator's is non-blocking: they must match)
        start = Date.timeIntervalSinceReferenceDate
        var lastSave = now()
        let every = config.checkpoint
        while step < plan.steps {
            let position = try self.step(step, loader)
            step += 1
            // Every worker must agree on stopping and saving: a signal or the coordinator's stop
            // reaches them at different moments, and only worker 0's clock times the saves.
            let stopAsked = try StopSignal.isRaised || world.hasArrived(from: 0, tag: MessageTag.stop.rawValue)
            let timeDue = rank == 0 && every.everyMinutes > 0 && now() - lastSave >= every.everyMinutes * 60
            var flags: [Int32] = [stopAsked ? 1 : 0, timeDue ? 1 : 0]
            try workers.allreduce(&flags, op: .max)
            stoppedEarly = flags[0] > 0
            // Evaluated before saving, so that a checkpoint holds early stopping's state after this step.
            if !stoppedEarly, config.evaluation.everySteps > 0, step % config.evaluation.everySteps == 0, step < plan.steps {
                let loss = try evaluate(step: step, split: "validation", patients: plan.split.validation)["loss"]
                earlyStopped = loss.map { earlyStopping?.update(loss: $0, step: step) ?? false } ?? false
            }
            let stopping = stoppedEarly || earlyStopped
            if stopping || flags[1] > 0 || (every.everySteps > 0 && step % every.everySteps == 0) || (every.atEnd && step == plan.steps) {
                try saveCheckpoint(step: step, epoch: position.epoch, cursor: position.cursor)
                lastSave = now()
            }
            if stopping { break }
        }
        // The final figures, of the weights training ends with (early stopping's best, if it stopped).
        let weightsOfStep = earlyStopped ? earlyStopping?.bestStep : nil
        try evaluate(step: step, split: "validation", patients: plan.split.validation, final: true, weightsOfStep: weightsOfStep)
        try evaluate(step: step, split: "test", patients: plan.split.test, final: true, weightsOfStep: weightsOfStep)
        let figures = rank == 0 ? try finalEvaluation(step: step) : [:]
        let digest = SHA256.hash(data: UnsafeRawBufferPointer(arena.values.buffer(Float.self)))
        try send(FinalReport(worker: rank, steps: step, parameterCount: arena.count,
                             parameterSHA256: digest.map { String(format: "%02x", $0) }.joined(), stoppedEarly: stoppedEarly,
                             evaluation: figures, earlyStopping: earlyStopped ? earlyStopping?.scalars : nil), .final)
    }

    /// The task's whole-split figures on the test split (neighbours from the training split),
    /// and its plots, into the run directory.
    private func finalEvaluation(step: Int) throws -> [String: Double] {
        try send(Beat(worker: rank, step: step, phase: "final evaluation"), .beat)
        task.setTraining(false)
        defer { task.setTraining(true) }
        let reader = try CohortReader(directory: cohort)
        return try task.finalEvaluation(EvaluationSet(reference: reader, referencePatients: plan.split.train, target: reader,
                                                      targetPatients: plan.split.test, name: "test split"),
                                        into: URL(fileURLWithPath: plan.runDirectory))
    }

    /// A flat arena of the training state as this worker holds it: elements `held` of an arena
    /// of `count` (all of it, except ZeRO-1's optimizer state: the worker's partition).
    private struct StateArena {
        let name: String
        let values: Tensor
        let held: Range<Int>
        let count: Int
    }

    /// The training state a checkpoint holds: parameters, buffers (running statistics), the
    /// optimizer's moments, early stopping's best weights.
    private func stateArenas() -> [StateArena] {
        let whole = ([("parameters", arena.values)] + (arena.buffers.count > 0 ? [("buffers", arena.buffers)] : [])
            + (earlyStopping?.arenas ?? [])).map { StateArena(name: $0, values: $1, held: 0..<$1.count, count: $1.count) }
        let moments = optimizer.state(like: arena.values.slice(rows: optimized)).map {
            StateArena(name: $0.name, values: $0.values, held: optimized, count: arena.count)
        }
        return whole + moments
    }

    /// Writes this worker's slice of every arena (its partition of the elements) and reports
    /// the shard, or why it could not be written, to the coordinator, which commits the
    /// checkpoint once every shard is in.
    private func saveCheckpoint(step: Int, epoch: Int, cursor: Int) throws {
        try send(Beat(worker: rank, step: step, phase: "checkpoint"), .beat)
        let begin = now()
        let arenas = stateArenas()
        var shard: Manifest.ShardRecord?, failure: String?
        do {
            try checkpoints.prepare(step: step)
            let slices = arenas.map { state in
                let part = Communicator.partition(count: state.count, parts: workers.size)[rank]
                let local = (part.lowerBound - state.held.lowerBound)..<(part.upperBound - state.held.lowerBound)
                return ShardSlice(arena: state.name, start: part.lowerBound, values: UnsafeBufferPointer(rebasing: state.values.buffer(Float.self)[local]))
            }
            shard = try Shard.write(slices, worker: rank, in: checkpoints.directory(step: step), threads: BLASThreads.count)
        } catch {
            failure = "\(error)"
        }
        let views = arena.entries.map { Manifest.TensorView(name: $0.name, arena: "parameters", offset: $0.offset, shape: $0.shape) }
            + arena.bufferEntries.map { Manifest.TensorView(name: $0.name, arena: "buffers", offset: $0.offset, shape: $0.shape) }
        try send(ShardReport(worker: rank, step: step, epoch: epoch, cursor: cursor, shard: shard, error: failure,
                             arenas: arenas.map { Manifest.Arena(name: $0.name, count: $0.count) }, tensors: rank == 0 ? views : [],
                             scalars: ["optimizer.step_count": Double(optimizer.stepCount)].merging(earlyStopping?.scalars ?? [:]) { $1 },
                             span: Span(name: "checkpoint", start: begin, duration: now() - begin)), .checkpoint)
    }

    /// Loads every arena from `directory`: each worker decodes its own partition (only the
    /// frames that overlap it, whatever the number of workers that saved it, with ZeRO-1 or
    /// without), then the partitions of the arenas every worker holds whole are broadcast.
    /// Returns the sampler's position.
    private func restore(from directory: URL) throws -> (epoch: Int, cursor: Int) {
        let reader = try CheckpointReader(directory: directory)
        for state in stateArenas() {
            guard let saved = reader.manifest.arenas.first(where: { $0.name == state.name }), saved.count == state.count else {
                let found = reader.manifest.arenas.map { "\($0.name) (\($0.count))" }.joined(separator: ", ")
                throw TrainingError.plan("checkpoint \(directory.path) does not fit this model: it has arenas \(found); this run needs '\(state.name)' of \(state.count) elements")
            }
            let buffer = state.values.buffer(Float.self)
            if state.held != 0..<state.count {
                try reader.read(arena: state.name, range: state.held, into: buffer)
                continue
            }
            let parts = Communicator.partition(count: state.count, parts: workers.size)
            try reader.read(arena: state.name, range: parts[rank], into: UnsafeMutableBufferPointer(rebasing: buffer[parts[rank]]))
            for (worker, part) in parts.enumerated() where !part.isEmpty {
                try workers.broadcast(UnsafeMutableBufferPointer(rebasing: buffer[part]), root: worker)
            }
        }
        // The coordinator's resume check bounds the step count (CoordinatorProcess.resumePoint).
        optimizer.stepCount = reader.manifest.scalars["optimizer.step_count"].flatMap { Int(exactly: $0) } ?? 0
        earlyStopping?.restore(reader.manifest.scalars)
        return (reader.manifest.epoch, reader.manifest.cursor)
    }

    /// One training step; returns the sampler's position after it.
    private func step(_ step: Int, _ loader: Prefetcher<PatientBatch>) throws -> (epoch: Int, cursor: Int) {
        var spans = [Span]()
        let dataStart = now()
        guard let batch = try loader.next() else { throw TrainingError.plan("the loader ended before step \(step + 1)") }
        let computeStart = now()
        spans.append(Span(name: "data-wait", start: dataStart, duration: computeStart - dataStart))

        exchange.beginStep()
        var lossSum = 0.0, exchangeError: Error?
        let storage = arena.gradients.storage
        for (index, rows) in batch.microBatches.enumerated() {
            let key = RandomKey(seed: UInt64(config.train.seed), stream: 0, step: UInt32(truncatingIfNeeded: step),
                                sample: UInt32(truncatingIfNeeded: batch.positions[rows.lowerBound]))
            let loss = task.loss(batch, rows: rows, key: key)
            let value = loss.value.scalars[0]
            guard value.isFinite else { throw TrainingError.nonFinite(step: step + 1, detail: "the loss (\(value)) of worker \(rank)") }
            lossSum += value * Double(rows.count)
            let last = index == batch.microBatches.count - 1
            // Each micro-batch's mean loss, weighted so that the sum over all is the global mean.
            (loss * (Double(rows.count) / Double(batch.batchSize))).backward(leafFinished: !last ? nil : { [exchange] gradient in
                guard gradient.storage === storage, exchangeError == nil else { return }
                do { try exchange.gradientFinal(gradient.offset..<(gradient.offset + gradient.count)) } catch { exchangeError = error }
            })
            if let exchangeError { throw exchangeError }
            if !last { exchange.setAsideMicroBatch() }
        }
        let exchangeStart = now()
        spans.append(Span(name: "compute", start: computeStart, duration: exchangeStart - computeStart))
        try send(Beat(worker: rank, step: step + 1, phase: "exchange"), .beat)
        try exchange.finish()
        let optimizerStart = now()
        spans.append(Span(name: "exchange", start: exchangeStart, duration: optimizerStart - exchangeStart))

        let norm = clipGradientNorm(arena.gradients, maxNorm: config.optimizer.clipNorm > 0 ? config.optimizer.clipNorm : .infinity)
        guard norm.isFinite else { throw TrainingError.nonFinite(step: step + 1, detail: "the gradient norm (\(norm))") }
        let lr = schedule.learningRate(at: step)
        optimizer.step(parameters: arena.values.slice(rows: optimized), gradients: arena.gradients.slice(rows: optimized), lr: lr)
        exchange.gradients.update(repeating: 0)
        let stateStart = now()
        spans.append(Span(name: "optimizer", start: optimizerStart, duration: stateStart - optimizerStart))
        // ZeRO-1: every worker updated its own partition; gather the others'.
        let gathers = optimized.count < arena.count
        if gathers { try workers.allgather(inPlace: arena.values.buffer(Float.self), parts: partition) }
        let averages = try averageBuffers()
        if gathers || averages { spans.append(Span(name: "exchange", start: stateStart, duration: now() - stateStart)) }

        try send(StepReport(worker: rank, step: step, epoch: batch.epoch, lossSum: lossSum, samples: batch.patients.count,
                            learningRate: lr, gradientNorm: norm, overlappedExchange: exchange.overlappedSeconds, spans: spans), .step)
        return (batch.epoch, batch.cursor)
    }

    /// Running statistics (BatchNorm) follow each worker's own batches; averaging them after
    /// every step keeps one set, the same on every worker, in evaluations and checkpoints.
    /// Returns whether there was anything to average.
    private func averageBuffers() throws -> Bool {
        guard workers.size > 1, arena.buffers.count > 0 else { return false }
        try workers.allreduce(arena.buffers.buffer(Float.self), op: .average)
        return true
    }

    /// Means of the task's evaluation sums over `patients`, each worker taking its share
    /// (the same figures on every worker); worker 0 reports them, marked `final` for the
    /// figures of the weights training ends with.
    @discardableResult
    private func evaluate(step: Int, split: String, patients: [Int], final: Bool = false, weightsOfStep: Int? = nil) throws -> [String: Double] {
        guard !patients.isEmpty else { return [:] }
        try send(Beat(worker: rank, step: step, phase: "evaluate \(split)"), .beat)
        task.setTraining(false)
        defer { task.setTraining(true) }
        let chunk = 256
        let sampler = EpochSampler(samples: patients.count, globalBatch: chunk, microBatch: (chunk + workers.size - 1) / workers.size,
                                   seed: 0, dropLast: false)
        let loader = task.batches(cohort: cohort, patients: patients, sampler: sampler, rank: rank, workers: workers.size,
                                  steps: sampler.batchesPerEpoch)
        var sums = [String: Double]()
        while let batch = try loader.next() {
            guard !batch.patients.isEmpty else { continue }
            let part = GradMode.withoutGradients { task.evaluate(batch) }
            sums.merge(part, uniquingKeysWith: +)
        }
        let names = try agreedMetricNames(Array(sums.keys))
        var values = names.map { sums[$0] ?? 0 }
        try workers.allreduce(&values, op: .sum)
        let total = Dictionary(uniqueKeysWithValues: zip(names, values))
        let count = max(total["count"] ?? 1, 1)
        var metrics = total.mapValues { $0 / count }
        metrics["count"] = total["count"]
        if rank == 0 { try send(EvaluationReport(step: step, split: split, metrics: metrics, final: final, weightsOfStep: weightsOfStep), .evaluation) }
        return metrics
    }

    /// The union of the metric names every worker produced (a worker with no patients has none).
    private func agreedMetricNames(_ local: [String]) throws -> [String] {
        let lines = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init) }
        let gathered = try workers.gatherBytes(Array(local.joined(separator: "\n").utf8), root: 0)
        let union = Set((gathered ?? []).flatMap(lines)).sorted().joined(separator: "\n")
        return lines(try workers.broadcastBytes(Array(union.utf8), root: 0))
    }

    private func send(_ message: some Encodable, _ tag: MessageTag) throws {
        try world.send(Array(try JSONEncoder.compact.encode(message)), to: 0, tag: tag.rawValue)
    }
}
