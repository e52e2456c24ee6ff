import Checkpoints
import Distributed
import Foundation
import Plotting
import Terminal

/// The coordinator's watch over a running job.
final class Monitor {
    private let plan: RunPlan
    private let world: Communicator
    /// Each world rank's host, to name a lost worker's machine.
    private let hosts: [String]
    private let records: RunRecords
    private let workers: Int
    private let progress: ProgressBar
    private var pending: [Int: [StepReport]] = [:]
    private var completed: [(step: Int, loss: Double, seconds: Double, samples: Int)] = []
    private var evaluations: [EvaluationReport] = []
    private var finals: [Int: FinalReport] = [:]
    /// Per worker: the last (step, phase) heard, ordered so that later is larger.
    private var position: [(step: Int, phase: Int, text: String)]
    /// When anything (even a heartbeat) last came from each worker, and when any progress did.
    private var lastSeen: [Double]
    private var lastProgress = 0.0
    /// When the coordinator last looked for messages: time it spent deaf (committing a
    /// checkpoint on a slow disk, descheduled on busy cores) is not held against the workers.
    private var lastListened = 0.0
    private var slowestStep = 0.0
    private var stopSent = false
    private var start = 0.0
    private var shares = (data: 0.0, exchange: 0.0, overlapped: 0.0, step: 0.0)
    private let effectiveYAML: String
    private let checkpoints: CheckpointStore
    private var shardReports: [Int: [ShardReport]] = [:]
    /// The newest committed checkpoint, and whether the last save asked for by a signal or the
    /// end of the run failed (the job then exits non-zero).
    private var committed: Int?
    private var finalSaveFailed = false
    /// Metrics lines that could not be appended (a full disk); the first failure is shown.
    private var lostMetricsLines = 0

    init(plan: RunPlan, effective: EffectiveConfig, world: Communicator, hosts: [String]) throws {
        self.plan = plan
        self.hosts = hosts
        self.world = world
        workers = plan.workers
        effectiveYAML = effective.yaml
        checkpoints = CheckpointStore(runDirectory: URL(fileURLWithPath: plan.runDirectory))
        let history = plan.resume.map { URL(fileURLWithPath: $0.checkpoint).appendingPathComponent("metrics.jsonl") }
        records = try RunRecords(directory: URL(fileURLWithPath: plan.runDirectory), history: history, resumedAt: plan.resume?.step,
                                 keepingTimeline: plan.resume.map { $0.checkpoint.hasPrefix(plan.runDirectory + "/") } ?? false)
        progress = ProgressBar("training", total: plan.steps, unit: "steps", first: plan.resume?.step ?? 0, every: plan.config.progress.everyS)
        position = Array(repeating: (-1, 0, "starting"), count: plan.workers)
        lastSeen = Array(repeating: 0, count: plan.workers)
        if let resume = plan.resume {
            committed = resume.step
            restoreHistory()
        }
        try records.write("config.yaml", Data(effective.yaml.utf8))
        try records.write("run_plan.json", try JSONEncoder.pretty.encode(plan))
        let c = plan.config
        let samplesLine = plan.samples.map { $0.unit == .patient ? "" : " (\($0.train)/\($0.validation)/\($0.test) \($0.unit.plural))" } ?? ""
        Console.output("""
            training \(c.task) on \(plan.workers) worker\(plan.workers == 1 ? "" : "s"): \
            \(plan.split.train.count)/\(plan.split.validation.count)/\(plan.split.test.count) train/validation/test patients\(samplesLine), \
            \(plan.steps) steps (\(plan.stepsPerEpoch) per epoch) of \(c.train.globalBatch) \(plan.unit == .patient ? "samples" : plan.unit.plural) in micro-batches of \(plan.microBatch); \
            exchange \(c.exchange.algorithm.rawValue)\(c.exchange.zeroStage == 1 ? ", ZeRO-1 optimizer state" : "")
            run directory: \(plan.runDirectory) (the effective config: config.yaml)
            \(plan.resume.map { "resuming from \($0.checkpoint) at step \($0.step)\n" } ?? "")\
            \((plan.companions ?? []).map { "companion \($0.name): \($0.checkpoint) (a \($0.task) run at step \($0.step), \($0.weights == "ema" ? "EMA of the weights" : "trained weights"), frozen)\n" }.joined())\
            \(plan.initialWeights.map { "starting from \($0.checkpoint) (a \($0.task) run at step \($0.step)): \($0.loaded.count) of \($0.loaded.count + $0.kept.count) tensors loaded\($0.kept.isEmpty ? "" : "; initialised afresh: " + $0.kept.joined(separator: ", "))\n" } ?? "")
            """)
    }

    /// A resumed run's loss curve and evaluations so far, from the restored `metrics.jsonl`.
    private func restoreHistory() {
        for line in records.metricsLines() {
            guard let step = line["step"] as? Int else { continue }
            if let split = line["split"] as? String {
                let metrics = line.filter { !["step", "split", "final", "weights_of_step"].contains($0.key) }.compactMapValues { $0 as? Double }
                evaluations.append(EvaluationReport(step: step, split: split, metrics: metrics, final: line["final"] as? Bool ?? false,
                                                    weightsOfStep: line["weights_of_step"] as? Int))
            } else if let loss = line["loss"] as? Double {
                completed.append((step, loss, line["step_s"] as? Double ?? 0, line["samples"] as? Int ?? 0))
            }
        }
    }

    func run() throws -> Int32 {
        let ready = try world.startBarrier()
        while try !ready.test() { try poll() }
        start = Date.timeIntervalSinceReferenceDate
        lastProgress = start
        lastSeen = Array(repeating: start, count: workers)
        lastListened = start
        while finals.count < workers { try poll() }
        progress.finish()
        let recordsWritten = writeRecords()
        return finalSaveFailed || !recordsWritten ? 1 : 0
    }

    /// Handles every message that has arrived; otherwise sleeps a moment and checks liveness
    /// and signals.
    private func poll() throws {
        excuseDeafness()
        if let message = try world.arrived() {
            let bytes = Data(try world.receive(message))
            let now = Date.timeIntervalSinceReferenceDate
            if message.source > 0 { lastSeen[message.source - 1] = now }
            if message.tag != MessageTag.heartbeat.rawValue { lastProgress = now }
            try handle(tag: MessageTag(rawValue: message.tag), bytes: bytes, from: message.source)
            return
        }
        let now = excuseDeafness()
        if StopSignal.isRaised && !stopSent {
            stopSent = true
            progress.note("signal received: stopping all workers at the next step boundary")
            for worker in 0..<workers { try world.send([], to: worker + 1, tag: MessageTag.stop.rawValue) }
        }
        if start > 0 { checkLiveness(now) }
        usleep(2000)
    }

    private func handle(tag: MessageTag?, bytes: Data, from source: Int) throws {
        let decoder = JSONDecoder.lenient
        switch tag {
        case .step:
            let report = try decoder.decode(StepReport.self, from: bytes)
            position[report.worker] = (report.step + 1, 2, "finished step \(report.step + 1)")
            pending[report.step, default: []].append(report)
            for span in report.spans { records.addSpan(span, worker: report.worker, step: report.step + 1) }
            if pending[report.step]?.count == workers { complete(index: report.step) }
        case .beat:
            let beat = try decoder.decode(Beat.self, from: bytes)
            // Ordered within a step: its exchange (1), its end (2), then an evaluation or checkpoint after it (3).
            position[beat.worker] = (beat.step, beat.phase == "exchange" ? 1 : 3,
                                     "\(beat.phase == "exchange" ? "waiting in the gradient exchange of" : beat.phase + " at") step \(beat.step)")
            if beat.phase.hasPrefix("final evaluation: ") { progress.note(beat.phase) }
        case .failure:
            let failure = try decoder.decode(Failure.self, from: bytes)
            progress.finish()
            world.abort("worker \(failure.worker) (rank \(source) on \(host(source))) failed: \(failure.message)", code: failure.exitCode)
        case .evaluation:
            let report = try decoder.decode(EvaluationReport.self, from: bytes)
            evaluations.append(report)
            var line: [String: Any] = ["step": report.step, "split": report.split]
            if report.final { line["final"] = true }
            if let weights = report.weightsOfStep { line["weights_of_step"] = weights }
            for (key, value) in report.metrics { line[key] = value }
            appendMetrics(line)
            let shown = report.metrics.filter { $0.key != "count" }.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
            let when = report.weightsOfStep.map { "weights of step \($0), restored by early stopping" } ?? "step \(report.step)"
            progress.note("\(report.final ? "final \(report.split)" : report.split) (\(when)): " + shown.joined(separator: ", "))
        case .final:
            let report = try decoder.decode(FinalReport.self, from: bytes)
            finals[report.worker] = report
        case .checkpoint:
            let report = try decoder.decode(ShardReport.self, from: bytes)
            records.addSpan(report.span, worker: report.worker, step: report.step)
            shardReports[report.step, default: []].append(report)
            if shardReports[report.step]?.count == workers { commitCheckpoint(step: report.step) }
        case .heartbeat:
            break
        case .stop, nil:
            throw TrainingError.plan("unexpected message tag from rank \(source)")
        }
    }

    /// Every worker reported its shard of the checkpoint at `step`: commit the manifest (with a
    /// snapshot of the metrics so far) and apply retention — or, if a shard failed, say so
    /// loudly, remove the partial directory and keep the previous checkpoint.
    private func commitCheckpoint(step: Int) {
        guard let reports = shardReports.removeValue(forKey: step)?.sorted(by: { $0.worker < $1.worker }), let first = reports.first else { return }
        let final = step == plan.steps || StopSignal.isRaised || stopSent
        let previous = committed.map { "the previous checkpoint, \(CheckpointStore.name(step: $0)), is intact" } ?? "there is no earlier checkpoint"
        do {
            let shards = reports.compactMap(\.shard)
            let failures = reports.filter { $0.shard == nil }.map { "worker \($0.worker): \($0.error ?? "no shard")" }
            guard failures.isEmpty else { throw CheckpointError.io(path: checkpoints.directory(step: step).path, operation: "save", reason: failures.joined(separator: "; ")) }
            let metrics = try checkpoints.snapshot(records.directory.appendingPathComponent("metrics.jsonl"), step: step)
            let manifest = Manifest(step: step, epoch: first.epoch, cursor: first.cursor, workers: workers, frameElements: Shard.frameElements,
                                    identity: plan.identity, config: effectiveYAML, arenas: first.arenas, scalars: first.scalars,
                                    tensors: first.tensors, metrics: metrics, shards: shards)
            try checkpoints.commit(manifest)
            committed = step
            try? records.writeTimeline(workers: workers)  // kept up to date, so that a resume after a crash still has it
            let removed = checkpoints.applyRetention(newest: step, keepLast: plan.config.checkpoint.keepLast, keepEvery: plan.config.checkpoint.keepEvery)
            let stored = shards.map(\.bytes).reduce(0, +), raw = first.arenas.map(\.count).reduce(0, +) * 4
            let seconds = reports.map(\.span.duration).max() ?? 0
            progress.note(String(format: "checkpoint %@: %.1f MB (%.2f× smaller), %.2f s%@", CheckpointStore.name(step: step), Double(stored) / 1e6,
                                 Double(raw) / Double(max(stored, 1)), seconds, removed.isEmpty ? "" : "; removed \(removed.map { CheckpointStore.name(step: $0) }.joined(separator: ", "))"))
        } catch {
            checkpoints.remove(step: step)
            if final { finalSaveFailed = true }
            progress.note("CHECKPOINT AT STEP \(step) FAILED: \(error); \(previous)\(final ? "" : "; training goes on and tries again at the next save")")
        }
    }

    /// Appends a line to `metrics.jsonl`; when that fails (a full disk) training goes on, the
    /// first failure is shown, and the job exits 1 at the end saying how many lines were lost.
    private func appendMetrics(_ line: [String: Any]) {
        do { try records.appendMetrics(line) } catch {
            if lostMetricsLines == 0 { progress.note("METRICS LOST: \(error); training goes on, and the lines of later steps are written once there is room") }
            lostMetricsLines += 1
        }
    }

    /// All workers reported the step of index `index`: one metrics line and a progress update,
    /// numbered as everywhere else by the steps done (the first step is step 1, as after it
    /// checkpoint step-1 and an evaluation "at step 1" would be).
    private func complete(index: Int) {
        let step = index + 1
        guard let reports = pending.removeValue(forKey: index), let first = reports.first else { return }
        let samples = reports.map(\.samples).reduce(0, +)
        let loss = reports.map(\.lossSum).reduce(0, +) / Double(max(samples, 1))
        func slowest(_ name: String) -> Double {
            reports.map { $0.spans.filter { $0.name == name }.reduce(0) { $0 + $1.duration } }.max() ?? 0
        }
        let ends = reports.compactMap { $0.spans.last.map { $0.start + $0.duration } }
        let begins = reports.compactMap { $0.spans.first?.start }
        let seconds = (ends.max() ?? 0) - (begins.min() ?? 0)
        let elapsed = Date.timeIntervalSinceReferenceDate - start
        var line: [String: Any] = [
            "step": step, "epoch": first.epoch, "loss": loss, "lr": first.learningRate, "grad_norm": first.gradientNorm,
            "samples": samples, "step_s": seconds, "samples_per_s": Double(samples) / max(seconds, 1e-9), "time_s": elapsed,
            "data_wait_s": slowest("data-wait"), "compute_s": slowest("compute"), "exchange_s": slowest("exchange"),
            "exchange_overlapped_s": reports.map(\.overlappedExchange).max() ?? 0, "optimizer_s": slowest("optimizer"),
        ]
        for (group, coefficient) in first.coefficients ?? [:] { line["coefficient.\(group)"] = coefficient }
        appendMetrics(line)
        completed.append((step, loss, seconds, samples))
        slowestStep = max(slowestStep, seconds)
        if step > (plan.resume?.step ?? 0) + 1 {  // this session's first step carries start-up costs
            shares.data += slowest("data-wait")
            shares.exchange += slowest("exchange")
            shares.overlapped += reports.map(\.overlappedExchange).max() ?? 0
            shares.step += seconds
        }
        progress.update(step, detail: String(format: "epoch %d · loss %.4f · %.0f samples/s", first.epoch, loss, Double(samples) / max(seconds, 1e-9)))
    }

    /// Shifts the liveness clocks by the time since the coordinator last listened, beyond a
    /// quarter of a second (committing a checkpoint on a slow disk; the whole VM stalled): the
    /// workers are not blamed for heartbeats it did not read. Returns now.
    @discardableResult
    private func excuseDeafness() -> Double {
        let now = Date.timeIntervalSinceReferenceDate
        let deaf = now - lastListened
        lastListened = now
        if start > 0, deaf > 0.25 {
            lastSeen = lastSeen.map { $0 + deaf }
            lastProgress += deaf
        }
        return now
    }

    private func host(_ rank: Int) -> String { hosts.indices.contains(rank) ? hosts[rank] : "?" }

    /// Ends the job if a worker went silent (no message, not even a heartbeat, for
    /// `liveness.timeout_s`), or if nobody made progress for that long and ten times the slowest
    /// step — naming the silent workers, or else the ones that fell behind.
    private func checkLiveness(_ now: Double) {
        let timeout = plan.config.liveness.timeoutS
        let silent = lastSeen.indices.filter { now - lastSeen[$0] > timeout }
        func named(_ workers: [Int]) -> String {
            workers.map { "worker \($0) (rank \($0 + 1) on \(host($0 + 1)), last \(position[$0].text))" }.joined(separator: ", ")
        }
        if !silent.isEmpty {
            world.abort("\(named(silent)) stopped answering: nothing, not even a heartbeat, for \(Int(timeout)) s (liveness.timeout_s). Ending the job.")
        }
        guard now - lastProgress > max(timeout, 10 * slowestStep) else { return }
        let latest = position.map { ($0.step, $0.phase) }.max { $0 < $1 } ?? (0, 0)
        let behind = position.indices.filter { (position[$0].step, position[$0].phase) < latest }
        let suspects = behind.isEmpty ? Array(position.indices) : behind
        let others = position.indices.filter { !suspects.contains($0) }
        let waiting = others.isEmpty ? "" : "; the others are \(position[others[0]].text)"
        world.abort("no progress for \(Int(now - lastProgress)) s although every worker is alive: suspect \(named(suspects))\(waiting). Ending the job.")
    }

    /// Writes `summary.json` first (it matters most), then the timeline and the loss plot, each
    /// attempted even if another failed, and prints the final summary. Returns whether all were written.
    private func writeRecords() -> Bool {
        let hashes = Set(finals.values.map(\.parameterSHA256))
        // Worker 0's report has the task's figures; every worker reports before this is called.
        guard let final = finals[0] ?? finals.values.first else { return false }
        let session = completed.filter { $0.step > (plan.resume?.step ?? 0) }  // this session's steps
        let steps = session.map(\.seconds).dropFirst().sorted()
        let median = steps.isEmpty ? session.first?.seconds ?? 0 : steps[steps.count / 2]
        let tail = completed.suffix(10).map(\.loss)
        var evaluation = [String: Any](), validation = [String: Any]()
        for report in evaluations where report.final {
            for (key, value) in report.metrics where key != "count" {
                if report.split == "test" { evaluation[key] = value } else { validation[key] = value }
            }
        }
        for (key, value) in final.evaluation { evaluation[key] = value.isFinite ? value : NSNull() }
        var summary: [String: Any] = [
            "task": plan.config.task, "run_dir": plan.runDirectory, "workers": workers, "final_step": final.steps,
            "steps_planned": plan.steps, "stopped_early": final.stoppedEarly,
            "loss": ["first": completed.first?.loss ?? Double.nan, "last": completed.last?.loss ?? Double.nan,
                     "last_10_mean": tail.isEmpty ? Double.nan : tail.reduce(0, +) / Double(tail.count)],
            "evaluation": evaluation, "validation": validation,
            "parameters": ["count": final.parameterCount, "sha256": final.parameterSHA256, "workers_agree": hashes.count == 1],
            "timing": ["wall_s": Date.timeIntervalSinceReferenceDate - start, "median_step_s": median,
                       "samples_per_s": Double(session.map(\.samples).reduce(0, +)) / max(session.map(\.seconds).reduce(0, +), 1e-9),
                       "data_wait_share": shares.data / max(shares.step, 1e-9), "exchange_wait_share": shares.exchange / max(shares.step, 1e-9),
                       "exchange_overlapped_share": shares.overlapped / max(shares.step, 1e-9)],
            "exchange": plan.config.exchange.algorithm.rawValue, "hosts": hosts,
        ]
        if var provenance = (try? JSONSerialization.jsonObject(with: JSONEncoder.compact.encode(plan.provenance))) as? [String: Any] {
            provenance["ended"] = RunRecords.timestamp()
            provenance["resumed_from"] = plan.resume.map { ["checkpoint": $0.checkpoint, "step": $0.step] as [String: Any] }
            summary["provenance"] = provenance
        }
        var stopNote = final.stoppedEarly ? " (stopped early by a signal)" : ""
        if let early = final.earlyStopping {
            let best = Int(early["early_stopping.best_step"] ?? 0)
            summary["early_stopping"] = ["best_step": best, "best_validation_loss": early["early_stopping.best_loss"] ?? 0,
                                         "patience": plan.config.evaluation.patience]
            stopNote = " (early stopping: no better validation loss in \(plan.config.evaluation.patience) evaluations; weights of step \(best) restored)"
        }
        var failures = [String]()
        func attempt(_ body: () throws -> Void) { do { try body() } catch { failures.append("\(error)") } }
        attempt { try records.write("summary.json", try JSONSerialization.data(withJSONObject: RunRecords.jsonSafe(summary), options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) }
        attempt { try records.writeTimeline(workers: workers) }
        let plot = records.directory.appendingPathComponent("loss_curve.png").path
        let bestStep = final.earlyStopping?["early_stopping.best_step"].flatMap { Int(exactly: $0) }
        attempt { do { try lossPlot(bestStep: bestStep).write(to: URL(fileURLWithPath: plot)) } catch { throw TrainingError.records("cannot write \(plot): \(error)") } }
        if lostMetricsLines > 0 { failures.append("\(lostMetricsLines) lines of metrics.jsonl could not be written") }

        let figures = figureLines(evaluation.compactMapValues { $0 as? Double }).joined(separator: "\n")
        Console.output("""
            finished \(final.steps)/\(plan.steps) steps\(stopNote) in \(Console.clock(Date.timeIntervalSinceReferenceDate - start)): \
            loss \(String(format: "%.4f", completed.first?.loss ?? .nan)) → \(String(format: "%.4f", completed.last?.loss ?? .nan))\(figures.isEmpty ? "" : "\ntest split:\n" + figures)
            median step \(String(format: "%.1f", median * 1e3)) ms; waiting on data \(String(format: "%.1f", 100 * shares.data / max(shares.step, 1e-9))) %, \
            on the exchange \(String(format: "%.1f", 100 * shares.exchange / max(shares.step, 1e-9))) % (+\(String(format: "%.1f", 100 * shares.overlapped / max(shares.step, 1e-9))) % during backward)
            parameters: \(final.parameterCount) floats, sha256 \(final.parameterSHA256)\(hashes.count == 1 ? " (all \(workers) workers agree)" : " — WORKERS DISAGREE: \(hashes.count) different hashes")
            records: \(plan.runDirectory)/{config.yaml, run_plan.json, metrics.jsonl, timeline.json, loss_curve.png/.svg, summary.json}

            """)
        for failure in failures { Console.error("RECORDS INCOMPLETE: \(failure)\n") }
        return failures.isEmpty
    }

    /// The loss curve: training loss per step (numbered as metrics and progress number them),
    /// validation loss at each evaluation (not again for weights restored by early stopping:
    /// their point is already there), and a dashed line at early stopping's best step when there is one.
    private func lossPlot(bestStep: Int?) -> Chart {
        var series = [Series.line("train loss", completed.map { (Double($0.step), $0.loss) })]
        let validation = evaluations.filter { $0.split == "validation" && $0.weightsOfStep == nil }.compactMap { e in
            e.metrics["loss"].map { (x: Double(e.step), y: $0) }
        }
        if !validation.isEmpty { series.append(Series("validation loss", validation, style: .lineAndMarkers)) }
        return Chart(title: "\(plan.config.task): loss on \(workers) worker\(workers == 1 ? "" : "s")", xLabel: "step", yLabel: "loss",
                     series: series, markers: bestStep.map { [Marker(x: Double($0), label: "best step \($0)")] } ?? [])
    }
}
