import Foundation
import TestSupport
import XCTest

/// The cluster templates' arithmetic: each runs under bash with a scheduler's environment
/// faked (Slurm's or PBS's variables, stub `scontrol` and `module` commands) and `DRY_RUN=1`,
/// and the command it would start is checked — workers = nodes × tasks per node, one
/// coordinator, a hostfile whose first node has one slot more for it, threads = CPUs per task,
/// the binding flags — for the numbers in the template's own header and for others.
final class ClusterTemplateTests: XCTestCase {
    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-cluster-template-tests-\(getpid())")
    static let root = ProcessRunner.repositoryRoot
    static let demo = root.appendingPathComponent("cluster-configs/runs/demo-cancer-type.yaml").path
    static var stubs: String { scratch.appendingPathComponent("stubs").path }
    static var moduleLog: String { scratch.appendingPathComponent("module.log").path }

    override class func setUp() {
        try? FileManager.default.removeItem(at: scratch)
        try? FileManager.default.createDirectory(atPath: stubs, withIntermediateDirectories: true)
        // `scontrol show hostnames node[001-003]`, and a `module` that notes what it was asked.
        let scontrol = """
            #!/bin/bash
            [ "$1 $2" = "show hostnames" ] || { echo "stub scontrol: $*" >&2; exit 1; }
            [[ "$3" =~ ^([a-z]+)\\[([0-9]+)-([0-9]+)\\]$ ]] || { echo "$3"; exit 0; }
            for ((i = 10#${BASH_REMATCH[2]}; i <= 10#${BASH_REMATCH[3]}; i++)); do
              printf '%s%0*d\\n' "${BASH_REMATCH[1]}" "${#BASH_REMATCH[2]}" "$i"
            done
            """
        let module = "#!/bin/sh\necho \"$*\" >> \(moduleLog)\n"
        for (name, text) in [("scontrol", scontrol), ("module", module)] {
            let path = stubs + "/" + name
            try? text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
    }

    override class func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
    }

    /// Runs `cluster-configs/TEMPLATE` under bash from the repository root with `environment`.
    private func template(_ name: String, _ arguments: [String], _ environment: [String: String]) throws -> ProcessRunner.Result {
        try? FileManager.default.removeItem(atPath: Self.moduleLog)
        let base = ["PATH": Self.stubs + ":/usr/bin:/bin", "TMPDIR": Self.scratch.path, "DRY_RUN": "1",
                    "TRANSCRIPTILE": ProcessRunner.product("transcriptile")]
        return try ProcessRunner.run("/bin/bash", [Self.root.appendingPathComponent("cluster-configs/" + name).path] + arguments,
                                     environment: base.merging(environment) { $1 }, directory: Self.root, timeout: 30)
    }

    private func slurm(nodes: Int, tasks: Int, cpus: Int) -> [String: String] {
        ["SLURM_NNODES": "\(nodes)", "SLURM_JOB_NODELIST": String(format: "node[001-%03d]", nodes), "SLURM_NTASKS_PER_NODE": "\(tasks)",
         "SLURM_CPUS_PER_TASK": "\(cpus)", "SLURM_JOB_ID": "42"]
    }

    /// The value of `#SBATCH --name=V` / `#PBS -l …name=V` in a template's header.
    private func directive(_ name: String, in template: String) throws -> Int {
        let text = try String(contentsOf: Self.root.appendingPathComponent("cluster-configs/" + template), encoding: .utf8)
        let directives = text.split(separator: "\n").filter { $0.hasPrefix("#SBATCH ") || $0.hasPrefix("#PBS ") }.joined(separator: "\n")
        let match = try XCTUnwrap(directives.firstMatch(of: try Regex("[-: ]\(name)=([0-9]+)")), "\(template) sets \(name)")
        return try XCTUnwrap(Int(match.output[1].substring ?? ""))
    }

    /// Checks an mpirun command for `nodes` × `tasks` workers of `threads` threads, and returns its hostfile's lines.
    private func assertMPIRun(_ output: String, workers: Int, threads: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let command = try LaunchCommand(output)
        XCTAssertEqual(command.workers.prefix(2), ["-np", "\(workers)"], command.line, file: file, line: line)
        XCTAssertEqual(command.coordinator.prefix(2), ["-np", "1"], command.line, file: file, line: line)
        XCTAssertTrue(command.coordinator[2].hasSuffix("/transcriptile-coordinator"), command.line, file: file, line: line)
        XCTAssertEqual(command.environment["OPENBLAS_NUM_THREADS"], "\(threads)", command.line, file: file, line: line)
        XCTAssertEqual(command.coordinator.filter { $0.hasPrefix("threads_per_rank=") }.last, "threads_per_rank=\(threads)", command.line, file: file, line: line)
        XCTAssertEqual(command.value(after: "--map-by"), "slot:PE=\(threads)", command.line, file: file, line: line)
        XCTAssertEqual(command.value(after: "--bind-to"), "core:overload-allowed", command.line, file: file, line: line)
        XCTAssertTrue(command.options.contains("--oversubscribe"), "the coordinator's extra rank where the scheduler gives the slots\n" + command.line,
                      file: file, line: line)
        let hostfile = try XCTUnwrap(command.value(after: "--hostfile"), command.line, file: file, line: line)
        let hosts = try String(contentsOfFile: hostfile, encoding: .utf8).split(separator: "\n").map(String.init)
        let slots = hosts.compactMap { $0.split(separator: "=").last.flatMap { Int($0) } }.reduce(0, +)
        XCTAssertEqual(slots, workers + 1, "a slot per worker and one for the coordinator: \(hosts)", file: file, line: line)
        return hosts
    }

    func testSlurmTemplateRunsNodesTimesTasksWorkersAndTheCoordinatorOnTheFirstNode() throws {
        let nodes = try directive("nodes", in: "slurm.sbatch"), tasks = try directive("ntasks-per-node", in: "slurm.sbatch")
        let cpus = try directive("cpus-per-task", in: "slurm.sbatch")
        XCTAssertEqual([nodes, tasks, cpus], [2, 4, 8], "the header's promise: 2 nodes × 4 workers × 8 threads")
        for (nodes, tasks, cpus) in [(nodes, tasks, cpus), (3, 4, 2), (1, 1, 1)] {
            let result = try template("slurm.sbatch", [Self.demo, "--set", "train.steps=7"], slurm(nodes: nodes, tasks: tasks, cpus: cpus))
            XCTAssertEqual(result.status, 0, result.output)
            let hosts = try assertMPIRun(result.stdout, workers: nodes * tasks, threads: cpus)
            XCTAssertEqual(hosts, (1...nodes).map { String(format: "node%03d slots=%d", $0, tasks + ($0 == 1 ? 1 : 0)) }, result.output)
            let command = try LaunchCommand(result.stdout)
            XCTAssertEqual(command.value(after: "--run-dir", in: command.coordinator), "runs/slurm-42", result.output)
            XCTAssertTrue(command.coordinator.contains("train.steps=7"), "extra arguments reach transcriptile train\n" + result.output)
            XCTAssertEqual(try String(contentsOfFile: Self.moduleLog, encoding: .utf8), "load openmpi\n")
        }
        let outside = try template("slurm.sbatch", [Self.demo], [:])
        XCTAssertEqual(outside.status, 2, outside.output)
        XCTAssertTrue(outside.stderr.contains("not inside a Slurm job"), outside.output)
    }

    func testSrunTemplateStartsOneMPMDStepWithTheCoordinatorFirst() throws {
        for (nodes, tasks, cpus) in [(2, 4, 8), (3, 2, 4)] {
            let result = try template("slurm-srun.sbatch", [Self.demo, "--set", "train.steps=7", "--resume", "none"],
                                      slurm(nodes: nodes, tasks: tasks, cpus: cpus))
            XCTAssertEqual(result.status, 0, result.output)
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let step = try XCTUnwrap(lines.first)
            let workers = nodes * tasks
            for flag in ["OPENBLAS_NUM_THREADS=\(cpus) ", "srun --mpi=pmix ", "--ntasks=\(workers + 1) ", "--distribution=arbitrary ", "--overcommit ",
                         "--cpus-per-task=\(cpus) ", "--cpu-bind=cores ", "--kill-on-bad-exit=1 ", "--multi-prog "] {
                XCTAssertTrue(step.contains(flag), "\(flag)\n" + result.output)
            }
            let coordinator = try XCTUnwrap(lines.first { $0.hasPrefix("0 ") }, result.output)
            XCTAssertTrue(coordinator.contains("/transcriptile-coordinator --config \(Self.demo) --resume none "), result.output)
            XCTAssertTrue(coordinator.contains("--set threads_per_rank=\(cpus) --set train.steps=7"), result.output)
            XCTAssertTrue(lines.contains { $0.hasPrefix("1-\(workers) /") && $0.hasSuffix("/transcriptile-worker") }, result.output)
            let hosts = lines.filter { $0.hasPrefix("node") }
            let expected = ["node001"] + (1...nodes).flatMap { node in Array(repeating: String(format: "node%03d", node), count: tasks) }
            XCTAssertEqual(hosts, expected, "one line per task, the coordinator's first\n" + result.output)
        }
        let spaced = try template("slurm-srun.sbatch", [Self.demo, "--run-dir", "my runs"], slurm(nodes: 2, tasks: 4, cpus: 8))
        XCTAssertEqual(spaced.status, 2, spaced.output)
        XCTAssertTrue(spaced.stderr.contains("no spaces"), spaced.output)
        let mpi = try template("slurm-srun.sbatch", [Self.demo, "--mpi-arg", "--report-bindings"], slurm(nodes: 2, tasks: 4, cpus: 8))
        XCTAssertEqual(mpi.status, 2, mpi.output)
        XCTAssertTrue(mpi.stderr.contains("slurm.sbatch"), mpi.output)
    }

    func testPBSTemplateTakesItsWorkersFromTheNodefileAndPassesOptions() throws {
        let mpiprocs = try directive("mpiprocs", in: "pbs.pbs"), threads = try directive("ompthreads", in: "pbs.pbs")
        let ncpus = try directive("ncpus", in: "pbs.pbs"), nodes = try directive("select", in: "pbs.pbs")
        XCTAssertEqual(ncpus, mpiprocs * threads, "ncpus = mpiprocs × ompthreads")
        for (nodes, mpiprocs, threads) in [(nodes, mpiprocs, threads), (3, 2, 4)] {
            let nodefile = Self.scratch.appendingPathComponent("nodefile-\(nodes)-\(mpiprocs)").path
            try (1...nodes).flatMap { node in Array(repeating: "n\(node).cluster", count: mpiprocs) }.map { $0 + "\n" }.joined()
                .write(toFile: nodefile, atomically: true, encoding: .utf8)
            let environment = ["PBS_NODEFILE": nodefile, "OMP_NUM_THREADS": "\(threads)", "PBS_JOBID": "77.server", "PBS_O_WORKDIR": Self.root.path]
            // qsub -v CONFIG=…,ARGS=…
            let submitted = try template("pbs.pbs", [], environment.merging(["CONFIG": Self.demo, "ARGS": "--set train.steps=7 --resume none"]) { $1 })
            XCTAssertEqual(submitted.status, 0, submitted.output)
            let hosts = try assertMPIRun(submitted.stdout, workers: nodes * mpiprocs, threads: threads)
            XCTAssertEqual(hosts, (1...nodes).map { "n\($0).cluster slots=\(mpiprocs + ($0 == 1 ? 1 : 0))" }, submitted.output)
            let command = try LaunchCommand(submitted.stdout)
            XCTAssertEqual(command.value(after: "--run-dir", in: command.coordinator), "runs/pbs-77", submitted.output)
            XCTAssertEqual(command.value(after: "--resume", in: command.coordinator), "none", "ARGS reach transcriptile train\n" + submitted.output)
            XCTAssertTrue(command.coordinator.contains("train.steps=7"), submitted.output)
            // Arguments (qsub -- script args, or run by hand)
            let direct = try template("pbs.pbs", [Self.demo, "--set", "model.hidden=[64,32]"], environment)
            XCTAssertEqual(direct.status, 0, direct.output)
            XCTAssertTrue(try LaunchCommand(direct.stdout).coordinator.contains("model.hidden=[64,32]"), direct.output)
        }
        let outside = try template("pbs.pbs", [Self.demo], [:])
        XCTAssertEqual(outside.status, 2, outside.output)
        XCTAssertTrue(outside.stderr.contains("not inside a PBS job"), outside.output)
    }

    func testHostfileExampleGivesTheCoordinatorItsSlot() throws {
        let hosts = Self.root.appendingPathComponent("cluster-configs/hosts.example").path
        let transcriptile = ProcessRunner.product("transcriptile")
        let result = try ProcessRunner.run(transcriptile, ["train", Self.demo, "--workers", "8", "--hostfile", hosts, "--set", "threads_per_rank=8", "--dry-run"])
        XCTAssertEqual(result.status, 0, result.output)
        let command = try LaunchCommand(result.stdout)
        XCTAssertEqual(command.workers.prefix(2), ["-np", "8"], result.output)
        XCTAssertEqual(command.value(after: "--map-by"), "slot:PE=8", result.output)
        XCTAssertEqual(command.value(after: "--bind-to"), "core:overload-allowed", result.output)
        XCTAssertFalse(command.options.contains("--oversubscribe"), "a plain hostfile's slots suffice\n" + result.output)
        let tooMany = try ProcessRunner.run(transcriptile, ["train", Self.demo, "--workers", "9", "--hostfile", hosts, "--dry-run"])
        XCTAssertEqual(tooMany.status, 2, tooMany.output)
        XCTAssertTrue(tooMany.stderr.contains("need 10 slots") && tooMany.stderr.contains("gives 9"), tooMany.output)
    }
}
