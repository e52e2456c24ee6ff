import Autograd
import Cohorts
import Crypto
import Distributed
import Foundation
import NN
import Optim
import Tensors
import Yams

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
        StopSignal.install()
        do {
            let bytes = try world.broadcastBytes([], root: 0)
            let workers = try world.split(color: 0, key: world.rank)!
            switch try JSONDecoder.lenient.decode(PlanMessage.self, from: Data(bytes)) {
            case let .failure(_, exitCode):
                exit(exitCode)  // the coordinator has said why
            case let .plan(plan):
                if threadLevel == .multiple { Heartbeat.start(world, every: min(1, plan.config.liveness.timeoutS / 5)) }
                guard let task = TaskRegistry.task(named: plan.config.task) else { throw TrainingError.plan("unknown task \(plan.config.task)") }
                try train(task, plan: plan, world: world, workers: workers)
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
        world.abort("worker \(world.rank - 1): \(message)", code: code)
    }

    private static func train<T: Trainable>(_: T.Type, plan: RunPlan, world: Communicator, workers: Communicator) throws {
        try WorkerLoop<T>(plan: plan, world: world, workers: workers).run()
    }
}

/// Tells the coordinator this process is alive, from a thread of its own, so that a worker that
/// stops answering (a crash, a frozen node, SIGSTOP) is told apart from one waiting on the others.
enum Heartbeat {
    static func start(_ world: Communicator, every interval: Double) {
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: interval)
                guard (try? world.send([], to: 0, tag: MessageTag.heartbeat.rawValue)) != nil else { return }
            }
        }
        thread.name = "heartbeat"
        thread.start()
    }
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
    private var start = 0.0

    init(plan: RunPlan, world: Communicator, workers: Communicator) throws {
        self.plan = plan
        config = plan.config
        self.world = world
        self.workers = workers
        BLASThreads.set(config.threadsPerRank)
        cohort = URL(fileURLWithPath: config.cohort)
        let reader = try CohortReader(directory: cohort)
        let model = try T.decodeModel(try Yams.compose(yaml: plan.model) ?? Node([(Node, Node)]()))
        let prepared = try JSONDecoder.lenient.decode(T.Prepared.self, from: plan.prepared)
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
    }

    private var rank: Int { workers.rank }
    private func now() -> Double { Date.timeIntervalSinceReferenceDate - start }

    func run() throws {
        let sampler = EpochSampler(samples: plan.split.train.count, globalBatch: config.train.globalBatch,
                                   microBatch: plan.microBatch, seed: UInt64(config.train.seed), dropLast: config.train.dropLast)
        let loader = task.batches(cohort: cohort, patients: plan.split.train, sampler: sampler, rank: rank, workers: workers.size, steps: plan.steps)
        defer { loader.stop() }
        try world.startBarrier().wait()  // the common start of every rank's timeline (the coordinator's is non-blocking: they must match)
        start = Date.timeIntervalSinceReferenceDate
        var step = 0, stoppedEarly = false
        while step < plan.steps {
            let stop = try StopSignal.isRaised || world.hasArrived(from: 0, tag: MessageTag.stop.rawValue)
            if try workers.allreduce(Int32(stop ? 1 : 0), op: .max) > 0 { stoppedEarly = true; break }
            try self.step(step, loader)
            step += 1
            if config.evaluation.everySteps > 0, step % config.evaluation.everySteps == 0, step < plan.steps {
                try evaluate(step: step, split: "validation", patients: plan.split.validation)
            }
        }
        try evaluate(step: step, split: "validation", patients: plan.split.validation)
        try evaluate(step: step, split: "test", patients: plan.split.test)
        let digest = SHA256.hash(data: UnsafeRawBufferPointer(arena.values.buffer(Float.self)))
        try send(FinalReport(worker: rank, steps: step, parameterCount: arena.count,
                             parameterSHA256: digest.map { String(format: "%02x", $0) }.joined(), stoppedEarly: stoppedEarly), .final)
    }

    private func step(_ step: Int, _ loader: Prefetcher<PatientBatch>) throws {
        var spans = [Span]()
        let dataStart = now()
        guard let batch = try loader.next() else { throw TrainingError.plan("the loader ended before step \(step)") }
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
            guard value.isFinite else { throw TrainingError.nonFinite(step: step, detail: "the loss (\(value)) of worker \(rank)") }
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
        try send(Beat(worker: rank, step: step, phase: "exchange"), .beat)
        try exchange.finish()
        let optimizerStart = now()
        spans.append(Span(name: "exchange", start: exchangeStart, duration: optimizerStart - exchangeStart))

        let norm = clipGradientNorm(arena.gradients, maxNorm: config.optimizer.clipNorm > 0 ? config.optimizer.clipNorm : .infinity)
        guard norm.isFinite else { throw TrainingError.nonFinite(step: step, detail: "the gradient norm (\(norm))") }
        let lr = schedule.learningRate(at: step)
        optimizer.step(parameters: arena.values, gradients: arena.gradients, lr: lr)
        exchange.gradients.update(repeating: 0)
        spans.append(Span(name: "optimizer", start: optimizerStart, duration: now() - optimizerStart))

        try send(StepReport(worker: rank, step: step, epoch: batch.epoch, lossSum: lossSum, samples: batch.patients.count,
                            learningRate: lr, gradientNorm: norm, overlappedExchange: exchange.overlappedSeconds, spans: spans), .step)
    }

    /// Means of the task's evaluation sums over `patients`, each worker taking its share;
    /// worker 0 reports them.
    private func evaluate(step: Int, split: String, patients: [Int]) throws {
        guard !patients.isEmpty else { return }
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
        if rank == 0 { try send(EvaluationReport(step: step, split: split, metrics: metrics), .evaluation) }
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
