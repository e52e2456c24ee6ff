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
    private let state: TrainingState
    private let schedule: WarmupCosine
    private let cohort: URL
    private let checkpoints: CheckpointStore
    /// The split in the task's unit: global indices of patients, tiles or spots.
    private let samples: (train: [Int], validation: [Int], test: [Int])
    /// The training order at its start (a resume moves its position).
    private let trainingSampler: EpochSampler
    /// `GradientModulating`: the step's statistics so far, in fixed point.
    private var statistics: [Int64] = []
    /// The task's optional capabilities, looked up once rather than on every micro-batch.
    private let modulating: (any GradientModulating)?
    private let global: (any GlobalBatchTrainable)?
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
        samples = (try reader.samples(T.unit, of: plan.split.train), try reader.samples(T.unit, of: plan.split.validation),
                   try reader.samples(T.unit, of: plan.split.test))
        // The coordinator's plan has refused a split without training samples.
        trainingSampler = EpochSampler(samples: max(1, samples.train.count), globalBatch: config.train.globalBatch, microBatch: plan.microBatch,
                                       seed: UInt64(config.train.seed), dropLast: config.train.dropLast)
        let model = try T.decodeModel(yaml: plan.model)
        let prepared = try plan.prepared.decode(T.Prepared.self)
        arena = ParameterArena(seed: UInt64(config.train.seed))
        task = try T(model: model, prepared: prepared, arena: arena, cohort: reader, companions: Companions(identities: plan.companions ?? [], cohort: reader))
        exchange = try GradientExchange(
            algorithm: config.exchange.algorithm, workers: workers, count: arena.count,
            bucketElements: max(1, Int(config.exchange.bucketMb * 1e6) / MemoryLayout<Float>.stride),
            microBatchesPerWorker: plan.microBatchesPerWorker, microBatchesPerStep: plan.microBatchesPerStep)
        arena.seal(gradients: TensorStorage(borrowing: exchange.gradients))
        modulating = task as? any GradientModulating
        global = task as? any GlobalBatchTrainable
        let groups = try ParameterGroups(config: config.optimizer.groups, taskGroups: modulating?.parameterGroups ?? [:],
                                         arena: arena, task: T.name)
        state = TrainingState(config: config, arena: arena, groups: groups, workers: workers)
        schedule = WarmupCosine(peak: config.optimizer.lr, warmupSteps: config.schedule.warmupSteps, totalSteps: plan.steps, floor: config.schedule.minLr)
    }

    private var rank: Int { workers.rank }
    private func now() -> Double { Date.timeIntervalSinceReferenceDate - start }

    func run() throws {
        var sampler = trainingSampler
        var step = 0, stoppedEarly = false, earlyStopped = false
        if let resume = plan.resume {
            (sampler.epoch, sampler.cursor) = try state.restore(from: URL(fileURLWithPath: resume.checkpoint))
            step = resume.step
        } else if let initial = plan.initialWeights {
            try state.initialize(from: initial)
        }
        let loader = task.batches(cohort: cohort, samples: samples.train, sampler: sampler, rank: rank, workers: workers.size,
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
                let loss = try evaluate(step: step, split: "validation", samples: samples.validation)["loss"]
                earlyStopped = loss.map { state.earlyStopping?.update(loss: $0, step: step) ?? false } ?? false
            }
            let stopping = stoppedEarly || earlyStopped
            if stopping || flags[1] > 0 || (every.everySteps > 0 && step % every.everySteps == 0) || (every.atEnd && step == plan.steps) {
                try saveCheckpoint(step: step, epoch: position.epoch, cursor: position.cursor)
                lastSave = now()
            }
            if stopping { break }
        }
        // The final figures, of the weights training ends with (early stopping's best, if it stopped).
        let weightsOfStep = earlyStopped ? state.earlyStopping?.bestStep : nil
        try evaluate(step: step, split: "validation", samples: samples.validation, final: true, weightsOfStep: weightsOfStep)
        try evaluate(step: step, split: "test", samples: samples.test, final: true, weightsOfStep: weightsOfStep)
        let figures = rank == 0 ? try finalEvaluation(step: step) : [:]
        let digest = SHA256.hash(data: UnsafeRawBufferPointer(arena.values.buffer(Float.self)))
        try send(FinalReport(worker: rank, steps: step, parameterCount: arena.count,
                             parameterSHA256: digest.map { String(format: "%02x", $0) }.joined(), stoppedEarly: stoppedEarly,
                             evaluation: figures, earlyStopping: earlyStopped ? state.earlyStopping?.scalars : nil), .final)
    }

    /// The task's whole-split figures on the test split (neighbours from the training split),
    /// and its plots, into the run directory.
    private func finalEvaluation(step: Int) throws -> [String: Double] {
        try send(Beat(worker: rank, step: step, phase: "final evaluation"), .beat)
        task.setTraining(false)
        defer { task.setTraining(true) }
        let reader = try CohortReader(directory: cohort)
        var lastNote = 0.0
        // A long evaluation (diffusion sampling) tells the coordinator how far it is: progress
        // for the liveness watch, and a line for the user.
        let progress: (String) -> Void = { [self] detail in
            guard now() - lastNote >= 10 else { return }
            lastNote = now()
            try? send(Beat(worker: rank, step: step, phase: "final evaluation: \(detail)"), .beat)
        }
        return try task.finalEvaluation(EvaluationSet(reference: reader, referencePatients: plan.split.train, target: reader,
                                                      targetPatients: plan.split.test, name: "test split", progress: progress),
                                        into: URL(fileURLWithPath: plan.runDirectory))
    }

    /// Writes this worker's slice of every arena (its partition of the elements) and reports
    /// the shard, or why it could not be written, to the coordinator, which commits the
    /// checkpoint once every shard is in.
    private func saveCheckpoint(step: Int, epoch: Int, cursor: Int) throws {
        try send(Beat(worker: rank, step: step, phase: "checkpoint"), .beat)
        let begin = now()
        let arenas = state.arenas()
        var shard: Manifest.ShardRecord?, failure: String?
        do {
            try checkpoints.prepare(step: step)
            let slices = arenas.map { arena in
                let part = Communicator.partition(count: arena.count, parts: workers.size)[rank]
                let local = (part.lowerBound - arena.held.lowerBound)..<(part.upperBound - arena.held.lowerBound)
                return ShardSlice(arena: arena.name, start: part.lowerBound, values: UnsafeBufferPointer(rebasing: arena.values.buffer(Float.self)[local]))
            }
            shard = try Shard.write(slices, worker: rank, in: checkpoints.directory(step: step), threads: BLASThreads.count)
        } catch {
            failure = "\(error)"
        }
        let views = arena.entries.map { Manifest.TensorView(name: $0.name, arena: "parameters", offset: $0.offset, shape: $0.shape) }
            + arena.bufferEntries.map { Manifest.TensorView(name: $0.name, arena: "buffers", offset: $0.offset, shape: $0.shape) }
        try send(ShardReport(worker: rank, step: step, epoch: epoch, cursor: cursor, shard: shard, error: failure,
                             arenas: arenas.map { Manifest.Arena(name: $0.name, count: $0.count) }, tensors: rank == 0 ? views : [],
                             scalars: state.scalars,
                             span: Span(name: "checkpoint", start: begin, duration: now() - begin)), .checkpoint)
    }

    /// One training step; returns the sampler's position after it.
    private func step(_ step: Int, _ loader: Prefetcher<T.Batch>) throws -> (epoch: Int, cursor: Int) {
        var spans = [Span]()
        let dataStart = now()
        guard let batch = try loader.next() else { throw TrainingError.plan("the loader ended before step \(step + 1)") }
        let computeStart = now()
        spans.append(Span(name: "data-wait", start: dataStart, duration: computeStart - dataStart))

        exchange.beginStep()
        let lossSum = try backward(batch, step: step)
        let exchangeStart = now()
        spans.append(Span(name: "compute", start: computeStart, duration: exchangeStart - computeStart))
        try send(Beat(worker: rank, step: step + 1, phase: "exchange"), .beat)
        try exchange.finish()
        let optimizerStart = now()
        spans.append(Span(name: "exchange", start: exchangeStart, duration: optimizerStart - exchangeStart))

        let coefficients = try modulateGradients(step: step + 1)
        let norm = clipGradientNorm(arena.gradients, maxNorm: config.optimizer.clipNorm > 0 ? config.optimizer.clipNorm : .infinity)
        guard norm.isFinite else { throw TrainingError.nonFinite(step: step + 1, detail: "the gradient norm (\(norm))") }
        let lr = schedule.learningRate(at: step)
        state.update(step: step + 1, lr: lr)
        exchange.gradients.update(repeating: 0)
        let stateStart = now()
        spans.append(Span(name: "optimizer", start: optimizerStart, duration: stateStart - optimizerStart))
        let gathers = try state.gatherPartitions()
        let averages = try state.averageBuffers()
        if gathers || averages { spans.append(Span(name: "exchange", start: stateStart, duration: now() - stateStart)) }

        try send(StepReport(worker: rank, step: step, epoch: batch.share.epoch, lossSum: lossSum, samples: batch.count,
                            learningRate: lr, gradientNorm: norm, overlappedExchange: exchange.overlappedSeconds, spans: spans,
                            coefficients: coefficients), .step)
        return (batch.share.epoch, batch.share.cursor)
    }

    /// `GradientModulating`: adds the statistics of the micro-batch just computed to the step's,
    /// in fixed point (integers add up the same in any order); a value that is not finite, or
    /// beyond the fixed point's ±2³¹, ends the run like a loss that is not finite.
    private func collectStatistics(step: Int) throws {
        guard let task = modulating else { return }
        let taken = task.takeStatistics()
        if statistics.count != task.statisticNames.count { statistics = Array(repeating: 0, count: task.statisticNames.count) }
        for (index, name) in task.statisticNames.enumerated() {
            let value = taken[name] ?? 0
            guard value.isFinite, abs(value) < 2_147_483_648 else {
                throw TrainingError.nonFinite(step: step + 1, detail: "the gradient-modulation statistic \(name) (\(value)) of worker \(rank)")
            }
            statistics[index] &+= Int64(value * Self.statisticScale)
        }
    }

    /// Fixed point of the statistics: 2³² per unit.
    private static var statisticScale: Double { 4_294_967_296 }

    /// `GradientModulating`: the step's statistics summed over the workers, and each group's
    /// gradients scaled by its coefficient (the same on every worker). Returns the coefficients.
    private func modulateGradients(step: Int) throws -> [String: Double]? {
        guard let task = modulating else { return nil }
        var sums = statistics.count == task.statisticNames.count ? statistics : Array(repeating: 0, count: task.statisticNames.count)
        statistics = []
        try workers.allreduce(&sums, op: .sum)
        let totals = Dictionary(uniqueKeysWithValues: zip(task.statisticNames, sums.map { Double($0) / Self.statisticScale }))
        let coefficients = task.gradientCoefficients(totals, step: step)
        let gradients = arena.gradients.buffer(Float.self)
        for (group, coefficient) in coefficients {
            for range in state.groups.named[group] ?? [] { for i in range { gradients[i] *= Float(coefficient) } }
        }
        return coefficients
    }

    /// A micro-batch's key: the step and its first sample's place in the global batch, the same
    /// on any number of workers.
    private func key(step: Int, _ share: BatchShare, _ rows: Range<Int>) -> RandomKey {
        RandomKey(seed: UInt64(config.train.seed), stream: RandomStream.step, step: UInt32(truncatingIfNeeded: step),
                  sample: UInt32(truncatingIfNeeded: share.positions[rows.lowerBound]))
    }

    /// Forward and backward of this worker's micro-batches into the gradient arena; returns the
    /// sum of the per-sample loss.
    private func backward(_ batch: T.Batch, step: Int) throws -> Double {
        if let global { return try backwardGlobally(global, batch, step: step) }
        let share = batch.share
        var lossSum = 0.0
        for (index, rows) in share.microBatches.enumerated() {
            let loss = task.loss(batch, rows: rows, key: key(step: step, share, rows))
            try collectStatistics(step: step)
            lossSum += try finite(loss, step: step) * Double(rows.count)
            // Each micro-batch's mean loss, weighted so that the sum over all is the global mean.
            try backward(loss * (Double(rows.count) / Double(share.batchSize)), last: index == share.microBatches.count - 1)
        }
        return lossSum
    }

    /// A loss over the global batch (`GlobalBatchTrainable`): every micro-batch's outputs, all
    /// gathered; the loss and its gradient with respect to all outputs, alike on every worker;
    /// then each micro-batch back-propagates its rows of that gradient.
    private func backwardGlobally<G: GlobalBatchTrainable>(_ task: G, _ batch: T.Batch, step: Int) throws -> Double {
        guard let batch = batch as? G.Batch else { throw TrainingError.plan("internal: \(T.name)'s batch is not its own") }
        let share = batch.share, width = task.outputWidth
        let shares = trainingSampler.shares(ofBatch: share.batchSize, workers: workers.size), mine = shares[rank]
        let outputs = try share.microBatches.map { rows in
            let output = task.outputs(batch, rows: rows, key: key(step: step, share, rows))
            try collectStatistics(step: step)
            return output
        }
        let all = try gatherGlobally(task, batch, outputs: outputs.map(\.value), shares: shares)
        let variable = Variable(all.outputs, gradient: Tensor(zeros: all.outputs.shape))
        let loss = task.globalLoss(outputs: variable, inputs: all.inputs)
        let value = try finite(loss, step: step)
        loss.backward()
        let gradient = variable.grad?.floats ?? []
        for (index, (rows, output)) in zip(share.microBatches, outputs).enumerated() {
            let seed = Array(gradient[((mine.lowerBound + rows.lowerBound) * width)..<((mine.lowerBound + rows.upperBound) * width)])
            try backward(output, seed: Tensor(shape: [rows.count, width], values: seed), last: index == share.microBatches.count - 1)
        }
        return value * Double(batch.count)
    }

    /// The outputs [batch × width] and loss inputs of a whole global batch, in its order, from
    /// every worker's share (`shares`, in rank order) of it.
    private func gatherGlobally<G: GlobalBatchTrainable>(_ task: G, _ batch: G.Batch, outputs: [Tensor], shares: [Range<Int>]) throws
        -> (outputs: Tensor, inputs: [Float]) {
        let size = batch.share.batchSize, mine = shares[rank]
        var values = [Float](repeating: 0, count: size * task.outputWidth), inputs = [Float](repeating: 0, count: size * task.lossInputWidth)
        for (rows, output) in zip(batch.share.microBatches, outputs) {
            let at = mine.lowerBound + rows.lowerBound
            values.replaceSubrange((at * task.outputWidth)..<((at + rows.count) * task.outputWidth), with: output.floats)
            inputs.replaceSubrange((at * task.lossInputWidth)..<((at + rows.count) * task.lossInputWidth), with: task.lossInputs(batch, rows: rows))
        }
        func gather(_ array: inout [Float], width: Int) throws {
            let parts = shares.map { ($0.lowerBound * width)..<($0.upperBound * width) }
            try array.withUnsafeMutableBufferPointer { try workers.allgather(inPlace: $0, parts: parts) }
        }
        try gather(&values, width: task.outputWidth)
        try gather(&inputs, width: task.lossInputWidth)
        return (Tensor(shape: [size, task.outputWidth], values: values), inputs)
    }

    /// The global-batch loss of a whole evaluation chunk (the same on every worker).
    private func globalLoss<G: GlobalBatchTrainable>(_ task: G, _ batch: T.Batch, shares: [Range<Int>]) throws -> Double {
        guard let batch = batch as? G.Batch else { throw TrainingError.plan("internal: \(T.name)'s batch is not its own") }
        let key = RandomKey(seed: 0, stream: RandomStream.step)
        let all = try gatherGlobally(task, batch, outputs: batch.share.microBatches.map { task.outputs(batch, rows: $0, key: key).value }, shares: shares)
        return task.globalLoss(outputs: Variable(all.outputs), inputs: all.inputs).value.scalars[0]
    }

    private func finite(_ loss: Variable, step: Int) throws -> Double {
        let value = loss.value.scalars[0]
        guard value.isFinite else { throw TrainingError.nonFinite(step: step + 1, detail: "the loss (\(value)) of worker \(rank)") }
        return value
    }

    /// Back-propagates `root` (from `seed`, or 1 for a scalar) into the gradient arena. The last
    /// micro-batch of a step hands each gradient to the exchange as soon as backward finishes
    /// it; the others are set aside (the exchange keeps micro-batches apart).
    private func backward(_ root: Variable, seed: Tensor? = nil, last: Bool) throws {
        var exchangeError: Error?
        let storage = arena.gradients.storage
        root.backward(seed: seed, leafFinished: !last ? nil : { [exchange] gradient in
            guard gradient.storage === storage, exchangeError == nil else { return }
            do { try exchange.gradientFinal(gradient.offset..<(gradient.offset + gradient.count)) } catch { exchangeError = error }
        })
        if let exchangeError { throw exchangeError }
        if !last { exchange.setAsideMicroBatch() }
    }

    /// Means of the task's evaluation sums over `samples`, each worker taking its share
    /// (the same figures on every worker); worker 0 reports them, marked `final` for the
    /// figures of the weights training ends with.
    @discardableResult
    private func evaluate(step: Int, split: String, samples: [Int], final: Bool = false, weightsOfStep: Int? = nil) throws -> [String: Double] {
        guard !samples.isEmpty else { return [:] }
        try send(Beat(worker: rank, step: step, phase: "evaluate \(split)"), .beat)
        task.setTraining(false)
        defer { task.setTraining(true) }
        let chunk = 256
        let sampler = EpochSampler(samples: samples.count, globalBatch: chunk, microBatch: (chunk + workers.size - 1) / workers.size,
                                   seed: 0, dropLast: false)
        let loader = task.batches(cohort: cohort, samples: samples, sampler: sampler, rank: rank, workers: workers.size,
                                  steps: sampler.batchesPerEpoch)
        var sums = [String: Double]()
        while let batch = try loader.next() {
            if let global {  // every worker joins the gather, with rows or without
                let loss = try GradMode.withoutGradients { try globalLoss(global, batch, shares: sampler.shares(ofBatch: batch.share.batchSize, workers: workers.size)) }
                sums["loss", default: 0] += loss * Double(batch.count)
            }
            guard batch.count > 0 else { continue }
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
