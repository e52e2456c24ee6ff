import ArgumentParser
import Foundation
import Training
#if canImport(Glibc)
import Glibc
#endif

/// `transcriptile train`: one coordinator and N workers under mpirun (DESIGN §2). It checks
/// everything it can before mpirun starts, builds the command (`MPILaunch`), and watches the
/// job (`MPIJob`).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a run config data-parallel: one coordinator and N workers under mpirun.",
        discussion: """
            Starts `mpirun -np 1 transcriptile-coordinator … : -np N transcriptile-worker` (both found beside this executable, or in TRANSCRIPTILE_BIN; mpirun from PATH). The global batch stays train.global_batch whatever N is.

            Threads: OPENBLAS_NUM_THREADS and the config's threads_per_rank are set to threads_per_rank from --set, the config, or the profile, in that order (default 1).

            Placement: each worker is bound to threads_per_rank cores (--map-by slot:PE=T --bind-to core:overload-allowed, or the profile's map_by and bind_to); the coordinator, one rank more and mostly asleep, may share one worker's cores. Without --hostfile, where this machine has too few cores, nothing is bound and mpirun oversubscribes. With --hostfile its slots decide: give the first host one slot more for the coordinator. --mpi-arg --map-by, --bind-to or --rankfile replace the placement.

            Environment: also set for mpirun are OMPI_ALLOW_RUN_AS_ROOT* (as root), Open MPI's TCP keepalive (10/5/4 s: a silent host ends the job in ~30 s), OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's idle threads sleep instead of spinning), TRANSCRIPTILE_PROGRESS and COLUMNS (this terminal's, for the coordinator's progress line); a value you set wins, except OPENBLAS_NUM_THREADS. OPENBLAS_CORETYPE, if set, is passed to every rank.

            Signals: the first SIGTERM, SIGINT or SIGHUP stops the run at the next step boundary with a checkpoint and its records (exit 0); a second aborts the job (exit 1). Once the coordinator has ended, mpirun gets 10 s before the job is killed (exit 1). Exit status: the job's (0; 1 a failure; 2 bad input; 128+n a rank killed by signal n).

            Examples:
              transcriptile train cluster-configs/runs/demo-cancer-type.yaml --workers 2
              transcriptile train RUN.yaml --workers 4 --set train.steps=200
              transcriptile train RUN.yaml --workers 8 --hostfile hosts \\
                  --set threads_per_rank=8
              transcriptile train RUN.yaml --workers 2 --dry-run
            Clusters (Slurm, PBS, hostfiles): cluster-configs/README.md, Docs/Running.md.
            """)

    @Argument(help: ArgumentHelp("The run config (YAML): what to train, e.g. cluster-configs/runs/demo-cancer-type.yaml.", valueName: "config"))
    var config: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Worker ranks (the coordinator is one rank more).", valueName: "n"))
    var workers: Int

    @Option(parsing: .unconditional, help: ArgumentHelp("Open MPI hostfile (multi-node): lines 'HOST slots=N'; placement follows its slots.", valueName: "file"))
    var hostfile: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Cluster profile: threads_per_rank, map_by, bind_to (cluster-configs/profiles/).", valueName: "file"))
    var profile: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Where the run's records go (default: run_dir of the config, else runs/<config name>).", valueName: "dir"))
    var runDir: String?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "auto (continue from the run directory's newest valid checkpoint, if any), none, or a checkpoint or run directory.", valueName: "what"))
    var resume = "auto"

    @Option(name: .customLong("set"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Override a config key (repeatable), e.g. --set train.steps=200, --set model.hidden=[512,128].", valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .customLong("mpi-arg"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Pass one argument to mpirun (repeatable), e.g. --mpi-arg --report-bindings.", valueName: "arg"))
    var mpiArguments: [String] = []

    @Flag(help: "Print the command (environment and mpirun arguments, one line a shell runs) and start nothing.")
    var dryRun = false

    func validate() throws {
        guard (1...999_999).contains(workers) else { throw ValidationError("--workers must be in 1…999999, got \(workers)") }
    }

    func run() throws {
        do {
            let host = MPILaunch.Host.current()
            let launch = try plan(on: host)
            let mpirun = Self.onPath("mpirun", in: host.environment["PATH"] ?? "/usr/bin:/bin")
            if dryRun {
                print(launch.commandLine)
                if mpirun == nil { printError("transcriptile train: note: mpirun is not on PATH here (\(Self.mpirunAdvice))") }
                return
            }
            guard let mpirun else { throw LaunchError.badInput("mpirun not found on PATH; \(Self.mpirunAdvice)") }
            let status = try MPIJob().run(launch, mpirun: mpirun)
            if status != 0 { throw ExitCode(status) }
        } catch let error as LaunchError {
            printError("transcriptile train: \(error)")
            throw ExitCode(error.exitCode)
        }
    }

    static let mpirunAdvice = "install Open MPI (launch/setup does on Debian and Ubuntu) or load the site's module (module load openmpi)"

    /// Reads and checks every input, then decides the command.
    func plan(on host: MPILaunch.Host) throws(LaunchError) -> MPILaunch {
        let profile = try profile.map { path throws(LaunchError) in try ClusterProfile(file: path) }
        let hosts = try hostfile.map { path throws(LaunchError) in try Hostfile(file: path) }
        let binaries = try Self.binaries(environment: host.environment)

        // threads_per_rank: --set, the config, the profile, 1; the config decides the workers'
        // threads, so a value from elsewhere is passed on to it.
        let configText = (try? LaunchError.readText(config, what: "config", hint: "")) ?? ""
        var overrides = overrides
        let threads = MPILaunch.threads(overrides: overrides, configText: configText, profile: profile)
        if threads.source != "--set", let value = Int(threads.value), (1...1024).contains(value) {
            overrides.append("threads_per_rank=\(value)")
        }
        // The config as the coordinator will read it: a bad one stops here, before mpirun.
        let effective: EffectiveConfig
        do { effective = try ConfigLoader.load(file: URL(fileURLWithPath: config), overrides: overrides) } catch { throw .badInput("\(error)") }
        let resolved = effective.config.threadsPerRank
        if hostfile == nil && resolved > host.cores && !mpiArguments.contains(where: MPILaunch.hostOptions.contains) {
            throw .badInput("threads_per_rank \(resolved) (from \(threads.source)) exceeds this machine's \(host.cores) cores; lower it, or give the cluster's --hostfile")
        }
        if let hostfile, let slots = hosts?.slots, workers + 1 > slots, !mpiArguments.contains("--oversubscribe") {
            throw .badInput("""
                --workers \(workers) and the coordinator need \(workers + 1) slots, but hostfile \(hostfile) gives \(slots); \
                give its first host one slot more for the coordinator (it is mostly asleep), or lower --workers
                """)
        }
        let request = MPILaunch.Request(
            config: config, workers: workers, threads: resolved, overrides: overrides, runDirectory: runDir, resume: resume,
            profile: profile, hostfile: hostfile, mpiArguments: mpiArguments, binaries: binaries)
        return MPILaunch.plan(request, on: host)
    }

    /// The folder of `transcriptile-coordinator` and `transcriptile-worker`: TRANSCRIPTILE_BIN,
    /// else this executable's own folder; absolute, as ranks on other hosts start there.
    static func binaries(environment: [String: String]) throws(LaunchError) -> String {
        let folder: String
        if let given = environment["TRANSCRIPTILE_BIN"], !given.isEmpty {
            folder = URL(fileURLWithPath: given).standardizedFileURL.path
        } else {
            folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
        }
        for name in ["transcriptile-coordinator", "transcriptile-worker"] where access(folder + "/" + name, X_OK) != 0 {
            let whence = environment["TRANSCRIPTILE_BIN"].flatMap { $0.isEmpty ? nil : "TRANSCRIPTILE_BIN=\($0)" } ?? "beside transcriptile"
            throw .badInput("no executable \(name) in \(folder) (\(whence)); build it (swift build -c release), or set TRANSCRIPTILE_BIN to the folder that holds it")
        }
        return folder
    }

    /// The first executable file `name` in the folders of `path`.
    static func onPath(_ name: String, in path: String) -> String? {
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/\(name)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }
}
