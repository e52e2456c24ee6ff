import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `transcriptile train` and `launch/train`: the mpirun command it builds (read back from
/// `--dry-run` as a shell reads it), what it refuses before mpirun starts, and real jobs under
/// mpirun — a run, Open MPI's banners kept off the terminal, a killed worker named in one line,
/// a clean stop on a signal, an abort on a second, and the watchdog that ends a job whose
/// mpirun outlives the coordinator. Also the `--help` of every launch script.
final class TrainCommandTests: XCTestCase {
    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-train-command-tests-\(getpid())")
    static let demo = ProcessRunner.repositoryRoot.appendingPathComponent("cluster-configs/runs/demo-cancer-type.yaml").path
    static var cohort: String { scratch.appendingPathComponent("cohort").path }
    let transcriptile = ProcessRunner.product("transcriptile")
    let binaries = ProcessRunner.productsFolder.resolvingSymlinksInPath().path
    let cores = ProcessInfo.processInfo.activeProcessorCount

    override class func setUp() {
        try? FileManager.default.removeItem(at: scratch)
        try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override class func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
    }

    private func file(_ name: String, _ text: String) throws -> String {
        let path = Self.scratch.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `transcriptile train ARGUMENTS --dry-run`, read back.
    private func dryRun(_ arguments: [String], environment: [String: String] = [:]) throws -> LaunchCommand {
        let result = try ProcessRunner.run(transcriptile, ["train"] + arguments + ["--dry-run"], environment: environment,
                                           directory: Self.scratch, timeout: 30)
        XCTAssertEqual(result.status, 0, result.output)
        return try LaunchCommand(result.stdout)
    }

    // MARK: - The command

    func testPlacementFollowsThisMachinesCores() throws {
        if cores >= 2 {
            let bound = try dryRun([Self.demo, "--workers", "1"])
            XCTAssertEqual(bound.options, ["--map-by", "slot:PE=1", "--bind-to", "core:overload-allowed",
                                           "-x", "OPENBLAS_NUM_THREADS", "-x", "OPENBLAS_THREAD_TIMEOUT", "-x", "TRANSCRIPTILE_PROGRESS"], bound.line)
            XCTAssertEqual(bound.coordinator, ["-np", "1", binaries + "/transcriptile-coordinator", "--config", Self.demo, "--resume", "auto",
                                               "--set", "threads_per_rank=1"], bound.line)
            XCTAssertEqual(bound.workers, ["-np", "1", binaries + "/transcriptile-worker"], bound.line)
        }
        // A rank more than cores: oversubscribed, unbound.
        let crowded = try dryRun([Self.demo, "--workers", "\(cores)", "--run-dir", "somewhere", "--resume", "none"])
        XCTAssertEqual(Array(crowded.options.prefix(3)), ["--oversubscribe", "--bind-to", "none"], crowded.line)
        XCTAssertEqual(crowded.workers, ["-np", "\(cores)", binaries + "/transcriptile-worker"], crowded.line)
        XCTAssertEqual(crowded.value(after: "--run-dir", in: crowded.coordinator), "somewhere", crowded.line)
        XCTAssertEqual(crowded.value(after: "--resume", in: crowded.coordinator), "none", crowded.line)

        let greedy = try ProcessRunner.run(transcriptile, ["train", Self.demo, "--workers", "1", "--set", "threads_per_rank=\(cores + 1)", "--dry-run"])
        XCTAssertEqual(greedy.status, 2, greedy.output)
        XCTAssertTrue(greedy.stderr.contains("exceeds this machine's \(cores) cores"), greedy.output)
    }

    func testThreadsComeFromSetThenConfigThenProfile() throws {
        let hosts = try file("hosts-9", "localhost slots=9\n")
        let bare = try file("bare.yaml", "task: cancer-type\ncohort: \(Self.cohort)\ntrain: {steps: 5}\n")
        let three = try file("three.yaml", "task: cancer-type\ncohort: \(Self.cohort)\ntrain: {steps: 5}\nthreads_per_rank: 3  # the config's\n")
        let profile = try file("four.yaml", "# four threads\nthreads_per_rank: 4\nmap_by: ppr:2:node:PE=4\nbind_to: core\n")
        for (arguments, threads) in [([bare], 1), ([bare, "--profile", profile], 4), ([three, "--profile", profile], 3),
                                     ([three, "--profile", profile, "--set", "threads_per_rank=2"], 2)] {
            let command = try dryRun(arguments + ["--workers", "2", "--hostfile", hosts])
            XCTAssertEqual(command.environment["OPENBLAS_NUM_THREADS"], "\(threads)", command.line)
            XCTAssertEqual(command.coordinator.filter { $0.hasPrefix("threads_per_rank=") }, ["threads_per_rank=\(threads)"], command.line)
            let mapBy = arguments.contains(profile) ? "ppr:2:node:PE=4" : "slot:PE=\(threads)"
            XCTAssertEqual(command.value(after: "--map-by"), mapBy, command.line)
            XCTAssertEqual(command.value(after: "--bind-to"), "core:overload-allowed", command.line)
            XCTAssertEqual(command.value(after: "--hostfile"), hosts, command.line)
            XCTAssertFalse(command.options.contains("--oversubscribe"), "the hostfile's slots decide\n" + command.line)
        }
        let unbound = try file("unbound.yaml", "map_by: slot\nbind_to: none\n")
        let command = try dryRun([bare, "--workers", "2", "--hostfile", hosts, "--profile", unbound])
        XCTAssertEqual(command.value(after: "--bind-to"), "none", command.line)
        // Placement given to mpirun replaces ours.
        let own = try dryRun([bare, "--workers", "2", "--hostfile", hosts, "--mpi-arg", "--map-by", "--mpi-arg", "ppr:1:core"])
        XCTAssertEqual(own.options.filter { $0 == "--map-by" || $0 == "--bind-to" }, ["--map-by"], own.line)
        XCTAssertEqual(own.value(after: "--map-by"), "ppr:1:core", own.line)
    }

    func testEnvironmentSetsWhatMPINeedsAndKeepsTheUsersValues() throws {
        let plain = try dryRun([Self.demo, "--workers", "1"])
        var expected = ["OMPI_MCA_oob_tcp_keepalive_time": "10", "OMPI_MCA_oob_tcp_keepalive_intvl": "5", "OMPI_MCA_oob_tcp_keepalive_probes": "4",
                        "OPENBLAS_NUM_THREADS": "1", "OPENBLAS_THREAD_TIMEOUT": "4", "TRANSCRIPTILE_PROGRESS": "lines"]  // stderr is a pipe here
        if geteuid() == 0 { expected["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; expected["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
        for (name, value) in expected { XCTAssertEqual(plain.environment[name], value, name + "\n" + plain.line) }
        XCTAssertNil(plain.environment["COLUMNS"], plain.line)

        let users = try dryRun([Self.demo, "--workers", "1"], environment: [
            "OMPI_MCA_oob_tcp_keepalive_time": "30", "TRANSCRIPTILE_PROGRESS": "off", "COLUMNS": "77", "OPENBLAS_NUM_THREADS": "16",
            "OPENBLAS_THREAD_TIMEOUT": "28",
        ])
        XCTAssertEqual(users.environment["OMPI_MCA_oob_tcp_keepalive_time"], "30", users.line)
        XCTAssertEqual(users.environment["OMPI_MCA_oob_tcp_keepalive_intvl"], "5", users.line)
        XCTAssertEqual(users.environment["TRANSCRIPTILE_PROGRESS"], "off", users.line)
        XCTAssertEqual(users.environment["COLUMNS"], "77", users.line)
        XCTAssertEqual(users.environment["OPENBLAS_NUM_THREADS"], "1", "threads_per_rank decides\n" + users.line)
        XCTAssertEqual(users.environment["OPENBLAS_THREAD_TIMEOUT"], "28", users.line)
        XCTAssertTrue(users.line.contains("-x OPENBLAS_NUM_THREADS -x OPENBLAS_THREAD_TIMEOUT -x TRANSCRIPTILE_PROGRESS -x COLUMNS"), users.line)
    }

    func testDryRunPrintsOneLineAShellRuns() throws {
        let folder = Self.scratch.appendingPathComponent("it's a folder")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = folder.appendingPathComponent("run $HOME.yaml").path
        try FileManager.default.copyItem(atPath: Self.demo, toPath: config)
        let command = try dryRun([config, "--workers", "1", "--set", "model.hidden=[512, 128]", "--mpi-arg", "--report-bindings"])
        XCTAssertEqual(command.line.split(separator: "\n").count, 1, command.line)
        XCTAssertEqual(command.value(after: "--config", in: command.coordinator), config, command.line)
        XCTAssertTrue(command.coordinator.contains("model.hidden=[512, 128]"), command.line)
        XCTAssertTrue(command.options.contains("--report-bindings"), command.line)
    }

    func testBadInputIsRefusedBeforeMPIStarts() throws {
        func refused(_ arguments: [String], environment: [String: String] = [:], naming: [String], _ why: String) throws {
            let result = try ProcessRunner.run(transcriptile, ["train"] + arguments, environment: environment, directory: Self.scratch, timeout: 30)
            XCTAssertEqual(result.status, 2, why + "\n" + result.output)
            for name in naming { XCTAssertTrue(result.stderr.contains(name), "\(why): names \(name)\n" + result.output) }
            XCTAssertFalse(result.stderr.contains("transcriptile-coordinator:"), "\(why): refused before mpirun\n" + result.output)
        }
        let empty = Self.scratch.appendingPathComponent("no-binaries").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try refused([Self.demo, "--workers", "1"], environment: ["TRANSCRIPTILE_BIN": empty], naming: ["TRANSCRIPTILE_BIN", "transcriptile-coordinator"],
                    "no executables")
        try refused([Self.demo, "--workers", "1"], environment: ["PATH": "/nonexistent"], naming: ["mpirun", "launch/setup"], "no mpirun")
        try refused([Self.demo, "--workers", "2", "--set", "train.global_batch=abc"], naming: ["train.global_batch", "abc"], "a bad config")
        let hosts = try file("hosts-2", "# two slots\nlocalhost slots=2\n")
        try refused([Self.demo, "--workers", "2", "--hostfile", hosts], naming: ["3 slots", "gives 2", "one slot more"], "too few slots")
        let typo = try file("typo.yaml", "threads_per_rank: 2\nmap-by: core\n")
        try refused([Self.demo, "--workers", "1", "--profile", typo], naming: ["typo.yaml:2", "map-by"], "a profile's unknown key")
        let badHosts = try file("bad-hosts", "node1 slots=two\n")
        try refused([Self.demo, "--workers", "1", "--hostfile", badHosts], naming: ["bad-hosts:1", "slots=two"], "a hostfile's bad line")

        // A dry run needs no mpirun here (it may be printed for another machine), but says so.
        let dry = try ProcessRunner.run(transcriptile, ["train", Self.demo, "--workers", "1", "--dry-run"], environment: ["PATH": "/nonexistent"])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.stderr.contains("mpirun is not on PATH"), dry.output)
    }

    // MARK: - Jobs under mpirun

    private func simulateCohort() throws {
        guard !FileManager.default.fileExists(atPath: Self.cohort + "/cohort.json") else { return }
        let made = try ProcessRunner.run(transcriptile, ["data", "simulate", "--out", Self.cohort, "--patients", "120", "--cancer-types", "3",
                                                         "--genes", "100", "--tiles-per-patient", "0", "--seed", "3"], timeout: 120)
        XCTAssertEqual(made.status, 0, made.output)
    }

    private func train(_ runDirectory: String, _ sets: [String], timeout: TimeInterval = 120) throws -> ProcessRunner.Result {
        try ProcessRunner.run(transcriptile, ["train", Self.demo, "--workers", "2", "--run-dir", runDirectory, "--resume", "none",
                                              "--set", "cohort=\(Self.cohort)", "--set", "schedule.warmup_steps=1", "--set", "evaluation.every_steps=0"]
                                  + sets.flatMap { ["--set", $0] }, directory: Self.scratch, timeout: timeout)
    }

    private static let banners = ["-----", "Primary job", "mpirun detected", "MPI_ABORT was invoked", "more process", "orte_base_help_aggregate"]

    func testRunTrainsAndKeepsOpenMPIsBannersOffTheTerminal() throws {
        try simulateCohort()
        let run = Self.scratch.appendingPathComponent("run-\(UUID().uuidString)").path
        let result = try train(run, ["train.steps=6"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("finished 6/6 steps"), result.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/summary.json"), result.output)

        // The coordinator fails after mpirun started (the cohort is missing): its message is
        // the first line, and Open MPI adds nothing.
        let failed = try train(Self.scratch.appendingPathComponent("run-\(UUID().uuidString)").path,
                               ["train.steps=6", "cohort=\(Self.scratch.path)/no-such-cohort"])
        XCTAssertEqual(failed.status, 2, failed.output)
        let lines = failed.stderr.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("transcriptile-coordinator: ") == true && lines.first?.contains("no-such-cohort") == true, failed.output)
        for banner in Self.banners { XCTAssertFalse(failed.stderr.contains(banner), "Open MPI's banner (\(banner))\n" + failed.output) }
    }

    /// The processes of a running job, found by its run directory (on the coordinator's command line).
    private struct Job {
        var launcher: pid_t, mpirun: pid_t, coordinator: pid_t, workers: [pid_t]

        static func find(_ runDirectory: String, within seconds: Double = 60) -> Job? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let all = Proc.all()
                if let coordinator = all.first(where: { $0.arguments.first?.hasSuffix("transcriptile-coordinator") == true && $0.arguments.contains(runDirectory) }) {
                    let workers = all.filter { $0.parent == coordinator.parent && $0.arguments.first?.hasSuffix("transcriptile-worker") == true }
                    if let mpirun = all.first(where: { $0.pid == coordinator.parent }), workers.count == 2 {
                        return Job(launcher: mpirun.parent, mpirun: mpirun.pid, coordinator: coordinator.pid, workers: workers.map(\.pid))
                    }
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return nil
        }
    }

    /// Starts a long training job, does `act` to it once it trains, and returns how it ended.
    private func longJob(_ act: @escaping @Sendable (Job) -> Void) throws -> (ProcessRunner.Result, TimeInterval) {
        try simulateCohort()
        let run = Self.scratch.appendingPathComponent("long-\(UUID().uuidString)").path
        let acted = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var actedAt = Date.distantFuture
        Thread.detachNewThread {
            if let job = Job.find(run) {
                for _ in 0..<600 where !FileManager.default.fileExists(atPath: run + "/metrics.jsonl") { Thread.sleep(forTimeInterval: 0.05) }
                Thread.sleep(forTimeInterval: 0.5)
                actedAt = Date()
                act(job)
            }
            acted.signal()
        }
        let result = try train(run, ["train.steps=1000000"], timeout: 120)
        acted.wait()
        return (result, Date().timeIntervalSince(actedAt))
    }

    func testKilledWorkerIsNamedInOneLine() throws {
        let (result, _) = try longJob { job in kill(job.workers[0], SIGKILL) }
        XCTAssertEqual(result.status, 137, result.output)
        XCTAssertTrue(result.stderr.contains("transcriptile train: rank ") && result.stderr.contains("exited on signal 9"), result.output)
        XCTAssertTrue(result.stderr.contains("(worker "), result.output)
        for banner in Self.banners { XCTAssertFalse(result.stderr.contains(banner), "Open MPI's banner (\(banner))\n" + result.output) }
    }

    func testFirstSignalStopsCleanlyASecondAborts() throws {
        let (clean, _) = try longJob { job in kill(job.launcher, SIGTERM) }
        XCTAssertEqual(clean.status, 0, clean.output)
        XCTAssertTrue(clean.stdout.contains("stopped early by a signal"), clean.output)

        let (aborted, seconds) = try longJob { job in
            kill(job.launcher, SIGINT)
            usleep(20_000)
            kill(job.launcher, SIGTERM)
        }
        XCTAssertEqual(aborted.status, 1, aborted.output)
        XCTAssertTrue(aborted.stderr.contains("transcriptile train: second signal: aborting the job"), aborted.output)
        XCTAssertLessThan(seconds, 15, aborted.output)
    }

    /// mpirun that cannot end the job (here: stopped) after the coordinator died: the whole
    /// session goes 10 s later, status 1.
    func testWatchdogEndsAJobWhoseMpirunOutlivesTheCoordinator() throws {
        nonisolated(unsafe) var session: pid_t = 0
        let (result, seconds) = try longJob { job in
            session = job.mpirun
            kill(job.mpirun, SIGSTOP)
            kill(job.coordinator, SIGKILL)
        }
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.stderr.contains("the coordinator ended 10 s ago but mpirun has not"), result.output)
        XCTAssertGreaterThan(seconds, 9.5, result.output)
        XCTAssertLessThan(seconds, 20, result.output)
        XCTAssertNotEqual(session, 0)
        // SIGKILL is delivered at once, but a process takes a moment to finish exiting.
        var left = Proc.all().filter { $0.session == session && $0.state != "Z" }
        for _ in 0..<20 where !left.isEmpty {
            usleep(100_000)
            left = Proc.all().filter { $0.session == session && $0.state != "Z" }
        }
        XCTAssertEqual(left.map(\.arguments), [], "every process of the job's session is gone")
    }

    // MARK: - Scripts

    func testEveryLaunchScriptHasHelp() throws {
        for name in ["mpirun", "quickstart", "setup", "test", "testcluster", "train", "install"] {
            let script = ProcessRunner.repositoryRoot.appendingPathComponent("launch/" + name).path
            let help = try ProcessRunner.run(script, ["--help"], environment: ["TRANSCRIPTILE_BIN": binaries], timeout: 30)
            XCTAssertEqual(help.status, 0, "launch/\(name) --help\n" + help.output)
            XCTAssertTrue(help.stdout.contains("launch/\(name)"), "launch/\(name) --help shows how to call it\n" + help.output)
            XCTAssertTrue(help.stderr.isEmpty, "launch/\(name) --help\n" + help.output)
        }
        let train = try ProcessRunner.run(ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path, ["--help"],
                                          environment: ["TRANSCRIPTILE_BIN": binaries])
        XCTAssertTrue(train.stdout.contains("--workers <n>") && train.stdout.contains("--dry-run"), "transcriptile train's options\n" + train.output)
    }

    func testTrainScriptRunsTranscriptileTrain() throws {
        let script = ProcessRunner.repositoryRoot.appendingPathComponent("launch/train").path
        let none = try ProcessRunner.run(script, [])
        XCTAssertEqual(none.status, 2, none.output)
        XCTAssertTrue(none.stderr.contains("launch/train RUN.yaml --workers N"), none.output)
        let blank = try ProcessRunner.run(script, ["", "--workers", "1"])
        XCTAssertEqual(blank.status, 2, blank.output)
        XCTAssertTrue(blank.stderr.contains("config argument is empty"), blank.output)
        let nowhere = try ProcessRunner.run(script, [Self.demo, "--workers", "1"], environment: ["TRANSCRIPTILE_BIN": "/nonexistent"])
        XCTAssertEqual(nowhere.status, 2, "a wrong TRANSCRIPTILE_BIN is refused, not built\n" + nowhere.output)
        XCTAssertTrue(nowhere.stderr.contains("TRANSCRIPTILE_BIN=/nonexistent"), nowhere.output)
        let dry = try ProcessRunner.run(script, [Self.demo, "--workers", "1", "--dry-run"], environment: ["TRANSCRIPTILE_BIN": binaries])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertEqual(try LaunchCommand(dry.stdout).workers, ["-np", "1", binaries + "/transcriptile-worker"], dry.output)
    }
}

/// A command `transcriptile train --dry-run` printed, split as a shell splits it.
struct LaunchCommand {
    let line: String
    /// The assignments before `mpirun`.
    var environment = [String: String]()
    /// mpirun's options before the coordinator's `-np 1`.
    var options = [String]()
    /// `-np 1 …/transcriptile-coordinator ARGS…` and `-np N …/transcriptile-worker`.
    var coordinator = [String](), workers = [String]()

    init(_ output: String) throws {
        line = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let split = try ProcessRunner.run("/bin/bash", ["-c", "eval \"words=($1)\" && printf '%s\\0' \"${words[@]}\"", "-", line])
        guard split.status == 0 else { throw LaunchCommandError("a shell cannot read it: \(split.stderr)\n\(line)") }
        let words = split.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
        guard let mpirun = words.firstIndex(of: "mpirun"), let colon = words.firstIndex(of: ":"),
              let np = words[mpirun...].firstIndex(of: "-np") else { throw LaunchCommandError("not an MPMD mpirun command: \(line)") }
        for word in words[..<mpirun] {
            let pair = word.split(separator: "=", maxSplits: 1).map(String.init)
            environment[pair[0]] = pair.count > 1 ? pair[1] : ""
        }
        options = Array(words[(mpirun + 1)..<np])
        coordinator = Array(words[np..<colon])
        workers = Array(words[(colon + 1)...])
    }

    /// The word after `option` in `words` (mpirun's options by default).
    func value(after option: String, in words: [String]? = nil) -> String? {
        let words = words ?? options
        guard let index = words.lastIndex(of: option), index + 1 < words.count else { return nil }
        return words[index + 1]
    }
}

struct LaunchCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A process as /proc shows it.
struct Proc {
    var pid: pid_t, parent: pid_t, session: pid_t
    /// R, S, D, T, Z (a zombie: ended, not yet reaped), ….
    var state: String
    var arguments: [String]

    static func all() -> [Proc] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name in
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, let parent = pid_t(fields[1]), let session = pid_t(fields[3]) else { return nil }
            let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
            let arguments = command.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return Proc(pid: pid, parent: parent, session: session, state: String(fields[0]), arguments: arguments)
        }
    }
}
