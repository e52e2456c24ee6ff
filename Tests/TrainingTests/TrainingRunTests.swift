import Foundation
import TestSupport
import XCTest

/// Whole training runs: `launch/train` starting a real coordinator and real workers under
/// mpirun on a simulated cohort.
final class TrainingRunTests: XCTestCase {
    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-training-tests-\(getpid())")
    static var cohort: URL { scratch.appendingPathComponent("cohort") }

    override class func setUp() {
        try? FileManager.default.removeItem(at: scratch)
        let result = try! ProcessRunner.run(
            ProcessRunner.product("transcriptile"),
            ["data", "simulate", "--out", cohort.path, "--patients", "160", "--cancer-types", "3", "--genes", "200",
             "--tiles-per-patient", "1", "--tile-size", "8", "--seed", "5"])
        precondition(result.status == 0, result.output)
    }

    override class func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    func config(_ extra: String = "") throws -> URL {
        let file = Self.scratch.appendingPathComponent("run-\(UUID().uuidString).yaml")
        try """
            task: cancer-type
            cohort: \(Self.cohort.path)
            model: {hidden: [32], dropout: 0.2}
            optimizer: {lr: 0.003}
            schedule: {warmup_steps: 3}
            train: {steps: 12, global_batch: 24, micro_batch: 8, seed: 3}
            evaluation: {every_steps: 5}
            liveness: {timeout_s: 5}
            \(extra)
            """.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    func train(_ config: URL, workers: Int, runDirectory: String? = nil, _ sets: [String] = [], resume: String = "auto",
               timeout: TimeInterval = 120) throws -> (ProcessRunner.Result, URL) {
        let directory = Self.scratch.appendingPathComponent(runDirectory ?? "run-\(UUID().uuidString)")
        let arguments = [config.path, "--workers", "\(workers)", "--run-dir", directory.path, "--resume", resume] + sets.flatMap { ["--set", $0] }
        let result = try ProcessRunner.run(
            ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path, arguments,
            environment: ["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path], timeout: timeout)
        return (result, directory)
    }

    func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    private func losses(_ directory: URL) throws -> [Double] {
        try String(contentsOf: directory.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap {
            let line = try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            return line["split"] == nil ? line["loss"] as? Double : nil
        }
    }

    func parameterHash(_ directory: URL) throws -> String {
        let parameters = try XCTUnwrap(try json(directory.appendingPathComponent("summary.json"))["parameters"] as? [String: Any])
        XCTAssertEqual(parameters["workers_agree"] as? Bool, true)
        return try XCTUnwrap(parameters["sha256"] as? String)
    }

    func testRunWritesEveryRecordAndTheSameSeedGivesTheSameLossCurve() throws {
        let file = try config()
        let (first, directory) = try train(file, workers: 2)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.stdout.contains("run directory: \(directory.path) (the effective config: config.yaml)"), first.stdout)
        XCTAssertLessThan(first.stdout.split(separator: "\n").count, 12, "a quiet terminal: no effective config on stdout\n" + first.stdout)
        XCTAssertTrue(first.stdout.contains("finished 12/12 steps"), first.stdout)
        XCTAssertTrue(first.stderr.contains("12/12 steps"), "progress on stderr\n" + first.stderr)
        for name in ["config.yaml", "run_plan.json", "metrics.jsonl", "timeline.json", "loss_curve.png", "loss_curve.svg", "summary.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path), name)
        }
        let curve = try losses(directory)
        XCTAssertEqual(curve.count, 12)
        XCTAssertLessThan(curve.last!, curve.first!, "the loss falls")
        let summary = try json(directory.appendingPathComponent("summary.json"))
        XCTAssertEqual(summary["final_step"] as? Int, 12)
        let evaluation = try XCTUnwrap(summary["evaluation"] as? [String: Any])
        XCTAssertNotNil(evaluation["accuracy"] as? Double)
        let trace = try json(directory.appendingPathComponent("timeline.json"))
        let events = try XCTUnwrap(trace["traceEvents"] as? [[String: Any]])
        for name in ["data-wait", "compute", "exchange", "optimizer"] {
            XCTAssertEqual(events.filter { $0["name"] as? String == name }.count, 24, "\(name): one span per step per worker")
        }
        let plan = try json(directory.appendingPathComponent("run_plan.json"))
        let split = try XCTUnwrap(plan["split"] as? [String: [Int]])
        XCTAssertEqual(Set(split["train"]! + split["validation"]! + split["test"]!).count, 160, "the split is recorded in the plan")

        let (again, second) = try train(file, workers: 2)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(try losses(second), curve, "the same seed gives the same loss curve")
        XCTAssertEqual(try parameterHash(second), try parameterHash(directory))

        let (refused, _) = try train(file, workers: 2, runDirectory: directory.lastPathComponent, resume: "none")
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("already holds a run"), refused.stderr)
        let (finished, _) = try train(file, workers: 2, runDirectory: directory.lastPathComponent)
        XCTAssertEqual(finished.status, 2, finished.output)
        XCTAssertTrue(finished.stderr.contains("is at step 12, the run has 12 steps: nothing left to train"), finished.stderr)
    }

    func testReproducibleExchangeGivesBitwiseIdenticalWeightsOnOneTwoAndThreeWorkers() throws {
        let file = try config("exchange: {algorithm: reproducible, bucket_mb: 0.01}")
        // A fixed train.micro_batch (8), and the default (0), which with `reproducible` depends on
        // the global batch alone (24 → micro-batches of 3), not on the worker count.
        for sets in [[String](), ["train.micro_batch=0"]] {
            var hashes = [String](), microBatches = Set<Int>()
            for workers in 1...3 {
                let (result, directory) = try train(file, workers: workers, sets)
                XCTAssertEqual(result.status, 0, result.output)
                hashes.append(try parameterHash(directory))
                microBatches.insert(try XCTUnwrap(try json(directory.appendingPathComponent("run_plan.json"))["micro_batch"] as? Int))
            }
            XCTAssertEqual(Set(hashes).count, 1, "\(sets): weights after 12 steps on 1, 2, 3 workers: \(hashes)")
            XCTAssertEqual(microBatches, sets.isEmpty ? [8] : [3], "\(sets)")
        }
    }

    func testBadConfigKeyStopsTheJobBeforeTraining() throws {
        let (result, directory) = try train(try config(), workers: 2, ["train.stpes=5"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.stderr.contains("--set train.stpes=5: unknown key 'train.stpes' (did you mean 'steps'?)"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path), "nothing was written")
    }

    func testCohortThatFailsValidationStopsTheJobBeforeTraining() throws {
        let broken = Self.scratch.appendingPathComponent("broken-cohort")
        try? FileManager.default.removeItem(at: broken)
        try FileManager.default.copyItem(at: Self.cohort, to: broken)
        let shard = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: broken.path).first { $0.hasSuffix(".h5") })
        let handle = try FileHandle(forWritingTo: broken.appendingPathComponent(shard))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        let (result, directory) = try train(try config(), workers: 2, ["cohort=\(broken.path)"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.stderr.contains("failed validation"), result.stderr)
        XCTAssertTrue(result.stderr.contains(shard), "names the file\n" + result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path))
    }

    /// A worker that stops answering (stopped, as a hung process would be) ends the job within
    /// the liveness bound, and the message names it.
    func testHungWorkerEndsTheJobNamingItsRank() throws {
        try assertWorkerLossEndsTheJob(signal: SIGSTOP) { result in
            XCTAssertTrue(result.stderr.contains("worker 1 (rank 2 on "), "names the rank and its host\n" + result.output)
            XCTAssertTrue(result.stderr.contains("stopped answering: nothing, not even a heartbeat, for 5 s"), result.output)
        }
    }

    /// The whole job frozen for longer than the liveness bound (a stalled VM, every rank
    /// descheduled) is not a silent worker: once it thaws, training goes on to its end.
    func testAStallOfTheWholeJobIsNotMistakenForASilentWorker() throws {
        let file = try config()
        let freezer = Thread {
            Thread.sleep(forTimeInterval: 3)
            let ranks = { (name: String) in
                ((try? ProcessRunner.run("/usr/bin/pgrep", ["-f", name]).stdout) ?? "").split(separator: "\n").compactMap { Int32($0) }
            }
            let workers = ranks("transcriptile-worker"), coordinator = ranks("transcriptile-coordinator")
            for pid in workers + coordinator { kill(pid, SIGSTOP) }
            Thread.sleep(forTimeInterval: 8)  // beyond liveness.timeout_s (5 s)
            // The coordinator thaws first: for a moment it hears nothing, as the workers have not yet.
            for pid in coordinator { kill(pid, SIGCONT) }
            Thread.sleep(forTimeInterval: 0.5)
            for pid in workers { kill(pid, SIGCONT) }
        }
        freezer.start()
        let (result, directory) = try train(file, workers: 2, ["train.steps=2500", "evaluation.every_steps=0"], timeout: 120)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(try json(directory.appendingPathComponent("summary.json"))["final_step"] as? Int, 2500, result.output)
    }

    /// A worker killed outright ends the job at once; mpirun names the rank.
    func testKilledWorkerEndsTheJobNamingItsRank() throws {
        try assertWorkerLossEndsTheJob(signal: SIGKILL) { result in
            XCTAssertTrue(result.output.contains("rank 2"), result.output)
        }
    }

    private func assertWorkerLossEndsTheJob(signal: Int32, _ check: (ProcessRunner.Result) -> Void) throws {
        let file = try config()
        let start = Date()
        let killer = Thread {
            // Worker 1 is world rank 2: the newest worker process once training is under way.
            Thread.sleep(forTimeInterval: 4)
            let pids = (try? ProcessRunner.run("/usr/bin/pgrep", ["-n", "-f", "transcriptile-worker"]).stdout) ?? ""
            if let pid = Int32(pids.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, signal) }
        }
        killer.start()
        let (result, _) = try train(file, workers: 2, ["train.steps=1000000", "evaluation.every_steps=0"], timeout: 90)
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertNotEqual(result.status, 124, "the job hung\n" + result.output)
        XCTAssertLessThan(Date().timeIntervalSince(start), 40, "ends within the liveness bound (5 s) plus start-up")
        check(result)
    }
}
