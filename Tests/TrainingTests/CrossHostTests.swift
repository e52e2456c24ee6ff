import Foundation
import TestSupport
import XCTest

/// Runs across hosts: `launch/testcluster` makes three hosts of this machine (network namespaces,
/// one hostname each, TCP between them), and the real `launch/train` runs on them. Skipped, with
/// one line saying why, where the tests are not run as root.
final class CrossHostTests: XCTestCase {
    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-crosshost-tests-\(getpid())")
    static let cluster = ProcessRunner.repositoryRoot.appendingPathComponent("launch/testcluster").path
    static let hostfile = "/run/transcriptile-testcluster/hostfile"
    /// Liveness of the fault runs.
    static let liveness = 10.0
    /// The documented bound (Docs/Running.md): the first of liveness and Open MPI's keepalive
    /// (~30 s) to notice, plus 10 s of abort grace; and 15 s of slack for this busy machine.
    static let bound = 30.0 + 10 + 15

    override class func setUp() {
        guard getuid() == 0 else { return }
        try? FileManager.default.removeItem(at: scratch)
        let result = try? ProcessRunner.run(
            ProcessRunner.product("transcriptile"),
            ["data", "simulate", "--out", scratch.appendingPathComponent("cohort").path, "--patients", "160", "--cancer-types", "3",
             "--genes", "200", "--tiles-per-patient", "0", "--seed", "5"])
        precondition(result?.status == 0, result?.output ?? "cannot run transcriptile")
    }

    override class func tearDown() {
        _ = try? ProcessRunner.run(cluster, ["down"])
        try? FileManager.default.removeItem(at: scratch)
    }

    override func setUpWithError() throws {
        continueAfterFailure = false
        guard getuid() == 0 else { throw XCTSkip("cross-host tests need root (launch/testcluster makes network namespaces); run launch/test as root") }
        // Root without the right to make namespaces (a restricted container): say so and skip.
        let probe = "tc-probe-\(getpid())"
        let made = try ProcessRunner.run("/usr/bin/env", ["ip", "netns", "add", probe])
        guard made.status == 0 else { throw XCTSkip("cross-host tests need network namespaces, and `ip netns add` failed here: \(made.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        _ = try ProcessRunner.run("/usr/bin/env", ["ip", "netns", "del", probe])
        let up = try ProcessRunner.run(Self.cluster, ["up", "3", "--slots", "2"], timeout: 60)
        XCTAssertEqual(up.status, 0, up.output)
    }

    override func tearDownWithError() throws {
        let down = try ProcessRunner.run(Self.cluster, ["down"], timeout: 60)
        XCTAssertEqual(down.status, 0, down.output)
    }

    /// A small run config: the β-VAE (BatchNorm statistics cross hosts too), every step saved
    /// when asked, a short liveness bound.
    func config(_ extra: String = "") throws -> URL {
        let file = Self.scratch.appendingPathComponent("run-\(UUID().uuidString).yaml")
        try """
            task: rna-vae
            cohort: \(Self.scratch.appendingPathComponent("cohort").path)
            model: {hidden: [256, 128], latent: 16}
            optimizer: {name: adam, lr: 0.002, weight_decay: 0, clip_norm: 0}
            train: {steps: 12, global_batch: 30, micro_batch: 6, seed: 4}
            exchange: {algorithm: reproducible, bucket_mb: 0.05}
            liveness: {timeout_s: \(Self.liveness)}
            \(extra)
            """.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// `launch/train` started on host h1 (where mpirun then runs) over `hostfile`. The hosts
    /// share this machine's cores, so ranks are not bound (a profile says so).
    func trainArguments(_ config: URL, workers: Int, runDirectory: URL, hostfile: String = CrossHostTests.hostfile, _ sets: [String] = []) -> [String] {
        let profile = Self.scratch.appendingPathComponent("unbound.yaml")
        try? "threads_per_rank: 1\nmap_by: slot\nbind_to: none\n".write(to: profile, atomically: true, encoding: .utf8)
        return ["exec", "h1", ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path, config.path, "--workers", "\(workers)",
                "--hostfile", hostfile, "--profile", profile.path, "--run-dir", runDirectory.path] + sets.flatMap { ["--set", $0] }
    }

    func train(_ config: URL, workers: Int, runDirectory: URL, hostfile: String = CrossHostTests.hostfile, _ sets: [String] = [],
               timeout: TimeInterval = 180) throws -> ProcessRunner.Result {
        try ProcessRunner.run(Self.cluster, trainArguments(config, workers: workers, runDirectory: runDirectory, hostfile: hostfile, sets),
                              environment: ["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path], timeout: timeout)
    }

    func summary(_ directory: URL) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("summary.json"))) as? [String: Any])
    }

    func parameterHash(_ directory: URL) throws -> String {
        let parameters = try XCTUnwrap(try summary(directory)["parameters"] as? [String: Any])
        XCTAssertEqual(parameters["workers_agree"] as? Bool, true)
        return try XCTUnwrap(parameters["sha256"] as? String)
    }

    /// A hostfile of some of the cluster's hosts (by number), `slots` each.
    func hostfile(_ hosts: [Int], slots: Int = 2) throws -> String {
        let lines = try String(contentsOfFile: Self.hostfile, encoding: .utf8).split(separator: "\n")
        let file = Self.scratch.appendingPathComponent("hosts-\(hosts.map(String.init).joined())-\(slots)")
        try hosts.map { lines[$0 - 1].replacingOccurrences(of: "slots=2", with: "slots=\(slots)") }.joined(separator: "\n")
            .appending("\n").write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// Every exchange algorithm on 2 and 3 hosts with 1 and 2 ranks each, inside one job: the
    /// rank tests of the exchange (sums against a serial reference, reproducible bit-identical
    /// over 1…3 ranks) with Open MPI's real node layout, where node leaders talk over TCP.
    func testEveryExchangeAlgorithmAcrossHosts() throws {
        for (hosts, slots) in [(2, 1), (2, 2), (3, 1)] {
            let file = try hostfile(Array(1...hosts), slots: slots)
            let result = try RankTests.launch("DistributedTests.ExchangeRankTests", ranks: hosts * slots, timeout: 240,
                                              via: [Self.cluster, "exec", "h1"], mpiArguments: ["--hostfile", file])
            XCTAssertEqual(result.status, 0, "\(hosts) hosts × \(slots) ranks\n" + result.output)
            let outcomes = RankTests.outcomes(in: result)
            XCTAssertGreaterThanOrEqual(outcomes.count, 3, result.output)
            for (test, counts) in outcomes {
                XCTAssertEqual(counts, ["passed": hosts * slots], "\(test) passes on every rank of \(hosts) hosts × \(slots)\n" + result.output)
            }
        }
    }

    /// Training across three hosts gives the weights of training on one host (reproducible
    /// exchange, fixed micro-batches); saved on three hosts, the run resumes on two and ends at
    /// the same weights.
    func testRunAcrossHostsMatchesOneHostAndResumesOnFewerHosts() throws {
        let file = try config("checkpoint: {every_steps: 6}")
        let single = Self.scratch.appendingPathComponent("single-\(UUID().uuidString)")
        let local = try train(file, workers: 2, runDirectory: single, hostfile: try hostfile([1], slots: 3))
        XCTAssertEqual(local.status, 0, local.output)

        let across = Self.scratch.appendingPathComponent("across-\(UUID().uuidString)")
        let three = try train(file, workers: 5, runDirectory: across)
        XCTAssertEqual(three.status, 0, three.output)
        XCTAssertEqual(try summary(across)["hosts"] as? [String], ["h1", "h1", "h2", "h2", "h3", "h3"], "ranks 0…5 on three hosts")
        XCTAssertEqual(try parameterHash(across), try parameterHash(single), "3 hosts × 2 ranks and one host end with the same weights")

        // Cut back to the checkpoint of step 6 and resume on hosts 1 and 3.
        let resumed = Self.scratch.appendingPathComponent("resumed-\(UUID().uuidString)")
        try copyRun(across, atStep: 6, to: resumed)
        let two = try train(file, workers: 3, runDirectory: resumed, hostfile: try hostfile([1, 3]))
        XCTAssertEqual(two.status, 0, two.output)
        XCTAssertTrue(two.stdout.contains("resuming from"), two.output)
        XCTAssertEqual(try parameterHash(resumed), try parameterHash(single), "resumed on 2 hosts × (2, 2) − coordinator")
    }

    /// The faults: host 2 killed (every process on it) or its link cut (a dead switch port),
    /// once mid-step and once mid-save. Each ends the job within the documented bound naming
    /// host 2 (and the rank, where the coordinator notices first), leaves the last committed
    /// checkpoint valid, and the run resumes on hosts 1 and 3.
    func testHostKilledMidStep() throws { try assertHostLoss(.kill, midSave: false) }
    func testHostKilledMidSave() throws { try assertHostLoss(.kill, midSave: true) }
    func testLinkCutMidStep() throws { try assertHostLoss(.cut, midSave: false) }
    func testLinkCutMidSave() throws { try assertHostLoss(.cut, midSave: true) }

    enum Fault { case kill, cut }

    private func assertHostLoss(_ fault: Fault, midSave: Bool) throws {
        // Mid-save: a model whose shard takes a while, saved at every step, so the fault lands
        // in a save; mid-step: saves every 20 steps, so it lands in a step.
        let file = try config(midSave ? "checkpoint: {every_steps: 1, keep_last: 2}" : "checkpoint: {every_steps: 20, keep_last: 2}")
        let directory = Self.scratch.appendingPathComponent("fault-\(UUID().uuidString)")
        let sets = ["train.steps=100000"] + (midSave ? ["model.hidden=[2048,2048]"] : [])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.cluster)
        process.arguments = trainArguments(file, workers: 5, runDirectory: directory, sets)
        process.environment = ProcessRunner.childEnvironment(["TRANSCRIPTILE_BIN": ProcessRunner.productsFolder.path])
        let log = Self.scratch.appendingPathComponent("fault-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()

        // Wait until checkpoints are being committed, then strike host 2.
        let checkpoints = directory.appendingPathComponent("checkpoints")
        let started = Date()
        while Date().timeIntervalSince(started) < 120 && process.isRunning {
            if (try? String(contentsOf: checkpoints.appendingPathComponent("LATEST"), encoding: .utf8)) != nil { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTAssertTrue(process.isRunning, "the run ended before the fault:\n" + ((try? String(contentsOf: log, encoding: .utf8)) ?? ""))
        Thread.sleep(forTimeInterval: midSave ? 0.15 : 1.5)
        let struck = Date()
        switch fault {
        case .kill: _ = try ProcessRunner.run("/bin/sh", ["-c", "kill -9 $(ip netns pids tc-h2)"])
        case .cut: _ = try ProcessRunner.run(Self.cluster, ["cut", "h2"])
        }
        let deadline = Date().addingTimeInterval(Self.bound + 60)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        let seconds = Date().timeIntervalSince(struck)
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try output.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        XCTAssertNotEqual(process.terminationStatus, 0, text)
        XCTAssertLessThan(seconds, Self.bound, "\(fault) of host 2 ended the job after \(Int(seconds)) s; the bound is \(Int(Self.bound)) s\n" + text)
        let address = try String(contentsOfFile: Self.hostfile, encoding: .utf8).split(separator: "\n")[1].split(separator: " ")[0]
        XCTAssertTrue(text.contains("on h2") || text.contains("node \(address)"), "names the lost host (its name, or its address as the hostfile gives it)\n" + text)
        print("CrossHostTests: \(fault) \(midSave ? "mid-save" : "mid-step"): the job ended \(String(format: "%.1f", seconds)) s after the fault")

        _ = try ProcessRunner.run(Self.cluster, ["heal", "h2"])
        let verify = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["checkpoint", "verify", directory.path])
        XCTAssertTrue(verify.stdout.contains("valid"), "the last committed checkpoint verifies\n" + verify.output)

        // Resume on the surviving hosts (a few more steps, then done).
        let latest = try XCTUnwrap(Int(String(contentsOf: checkpoints.appendingPathComponent("LATEST"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(5)))
        let resumed = try train(file, workers: 3, runDirectory: directory, hostfile: try hostfile([1, 3]),
                                (midSave ? ["model.hidden=[2048,2048]"] : []) + ["train.steps=\(latest + 2)"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(try summary(directory)["final_step"] as? Int, latest + 2, resumed.output)
    }
}
