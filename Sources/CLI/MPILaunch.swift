import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The mpirun command of a training job (DESIGN §2) — its arguments and the environment it
/// needs — decided from what the user asked and what this machine is, with no side effects,
/// so that `transcriptile train --dry-run` prints exactly what a real start runs.
///
///     OPENBLAS_NUM_THREADS=T … mpirun PLACEMENT -x … -np 1 transcriptile-coordinator --config RUN.yaml … : -np N transcriptile-worker
///
/// Placement: each worker is bound to `threads_per_rank` cores (`--map-by slot:PE=T --bind-to
/// core`, or the profile's), and the coordinator, one rank more and mostly asleep, may share
/// the cores of one worker (`overload-allowed`: Open MPI 4.1 binds every rank of a job alike,
/// so it cannot leave rank 0 alone unbound). Without a hostfile, when this machine has fewer
/// cores than the workers' threads or than ranks, nothing is bound and mpirun oversubscribes.
/// With a hostfile, its slots decide: the coordinator needs one slot more than the workers.
struct MPILaunch {
    /// Variables set for mpirun (and passed on to every rank where named by `-x`), in order.
    var environment: [(name: String, value: String)]
    /// mpirun's argument vector; `arguments[0]` is `mpirun`.
    var arguments: [String]

    /// One line a shell runs as it is: `NAME=value … mpirun …`, every word quoted where needed.
    var commandLine: String {
        (environment.map { "\($0.name)=\(Self.quoted($0.value))" } + arguments.map(Self.quoted)).joined(separator: " ")
    }

    /// What the user asked for (the command line, the profile and hostfile already read).
    struct Request {
        var config: String
        var workers: Int
        /// `threads_per_rank`, resolved (`--set`, the config, the profile, 1).
        var threads: Int
        var overrides: [String]
        var runDirectory: String?
        var resume: String
        var profile: ClusterProfile?
        var hostfile: String?
        var mpiArguments: [String]
        /// The folder holding `transcriptile-coordinator` and `transcriptile-worker`.
        var binaries: String
    }

    /// What this machine and this process are.
    struct Host {
        /// Cores this process may run on (its affinity), as `nproc` counts them.
        var cores: Int
        var isRoot: Bool
        /// Yama restricts ptrace (`/proc/sys/kernel/yama/ptrace_scope` > 0).
        var ptraceRestricted: Bool
        var environment: [String: String]
        var stderrIsTerminal: Bool
        var terminalColumns: Int?

        static func current() -> Host {
            let scope = (try? String(contentsOfFile: "/proc/sys/kernel/yama/ptrace_scope", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
            var size = winsize()
            let columns = ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : nil
            return Host(cores: max(1, ProcessInfo.processInfo.activeProcessorCount), isRoot: geteuid() == 0,
                        ptraceRestricted: !scope.isEmpty && scope != "0", environment: ProcessInfo.processInfo.environment,
                        stderrIsTerminal: isatty(STDERR_FILENO) != 0, terminalColumns: columns)
        }
    }

    /// mpirun options that place ranks: given through `--mpi-arg`, they replace ours.
    static let placementOptions: Set<String> = [
        "--map-by", "-map-by", "--bind-to", "-bind-to", "--rankfile", "-rankfile", "-rf", "--cpus-per-proc", "-cpus-per-proc",
        "--cpus-per-rank", "-cpus-per-rank", "--npernode", "-npernode", "--ppr", "-ppr",
    ]
    /// mpirun options that name the hosts: then slots decide, and nothing is oversubscribed for us.
    static let hostOptions: Set<String> = [
        "--hostfile", "-hostfile", "--machinefile", "-machinefile", "--host", "-host", "-H", "--default-hostfile", "--rankfile", "-rf",
    ]

    /// The launch for `request` on `host`.
    static func plan(_ request: Request, on host: Host) -> MPILaunch {
        let ranks = request.workers + 1
        let userPlaces = request.mpiArguments.contains { placementOptions.contains($0) || $0.hasPrefix("--map-by=") || $0.hasPrefix("--bind-to=") }
        let hostsGiven = request.hostfile != nil || request.mpiArguments.contains { hostOptions.contains($0) }
        let fits = ranks <= host.cores && request.workers * request.threads <= host.cores

        var arguments = ["mpirun"]
        if !hostsGiven && ranks > host.cores && !request.mpiArguments.contains("--oversubscribe") {
            arguments.append("--oversubscribe")
        }
        if !userPlaces {
            if !hostsGiven && !fits {
                arguments += ["--bind-to", "none"]  // oversubscribed ranks are not bound
            } else {
                arguments += ["--map-by", request.profile?.mapBy ?? "slot:PE=\(request.threads)"]
                arguments += ["--bind-to", sharable(request.profile?.bindTo ?? "core")]
            }
        }
        if let hostfile = request.hostfile { arguments += ["--hostfile", hostfile] }
        arguments += request.mpiArguments

        var environment = [(name: String, value: String)]()
        func set(_ name: String, _ value: String, keepUsers: Bool = true) {
            environment.append((name, keepUsers ? host.environment[name] ?? value : value))
        }
        if host.isRoot {
            set("OMPI_ALLOW_RUN_AS_ROOT", "1")
            set("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        }
        if host.ptraceRestricted { set("OMPI_MCA_btl_vader_single_copy_mechanism", "none") }
        set("OMPI_MCA_oob_tcp_keepalive_time", "10")
        set("OMPI_MCA_oob_tcp_keepalive_intvl", "5")
        set("OMPI_MCA_oob_tcp_keepalive_probes", "4")
        set("OPENBLAS_NUM_THREADS", "\(request.threads)", keepUsers: false)
        // OpenBLAS's idle threads spin on sched_yield for ~2^28 cycles before they sleep, taking
        // the cores our own kernels and a rank's loader need between GEMMs; 2^4 lets them sleep
        // at once (the diffusion step: −17 % quiet, −25 % beside a bursty process; Benchmarks.md).
        set("OPENBLAS_THREAD_TIMEOUT", "4")
        set("TRANSCRIPTILE_PROGRESS", host.stderrIsTerminal ? "live" : "lines")
        if let columns = host.environment["COLUMNS"] ?? host.terminalColumns.map(String.init) { set("COLUMNS", columns) }
        // OPENBLAS_CORETYPE: a kernel choice the user made (a CPU OpenBLAS does not recognise) reaches every host.
        for name in ["OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "TRANSCRIPTILE_PROGRESS", "COLUMNS", "OPENBLAS_CORETYPE"]
        where environment.contains(where: { $0.name == name }) {
            arguments += ["-x", name]
        }

        var coordinator = ["--config", request.config, "--resume", request.resume] + request.overrides.flatMap { ["--set", $0] }
        if let runDirectory = request.runDirectory { coordinator += ["--run-dir", runDirectory] }
        arguments += ["-np", "1", request.binaries + "/transcriptile-coordinator"] + coordinator
        arguments += [":", "-np", "\(request.workers)", request.binaries + "/transcriptile-worker"]
        return MPILaunch(environment: environment, arguments: arguments)
    }

    /// A binding that lets the coordinator share a worker's cores: `core` → `core:overload-allowed`.
    static func sharable(_ bindTo: String) -> String {
        if bindTo == "none" || bindTo.hasPrefix("none:") || bindTo.contains("overload-allowed") { return bindTo }
        return bindTo + (bindTo.contains(":") ? ",overload-allowed" : ":overload-allowed")
    }

    /// `word` as a shell reads it back: bare when it holds only safe characters, else in single quotes.
    static func quoted(_ word: String) -> String {
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_-+=:,./")
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `threads_per_rank` from `--set` (the last one), else a top-level `threads_per_rank:` of the
    /// config text, else the profile's, else 1 — and where the value came from. A value that is
    /// not a number is returned as it is, for the config loader to report with its line.
    static func threads(overrides: [String], configText: String, profile: ClusterProfile?) -> (value: String, source: String) {
        if let set = overrides.last(where: { $0.hasPrefix("threads_per_rank=") }) {
            return (String(set.dropFirst("threads_per_rank=".count)), "--set")
        }
        if let value = ClusterProfile.topLevelValue("threads_per_rank", in: configText) { return (value, "the config") }
        if let value = profile?.threads { return ("\(value)", "the profile") }
        return ("1", "the default")
    }
}

/// A cluster profile (`cluster-configs/profiles/*.yaml`): how ranks sit on a node.
struct ClusterProfile {
    var threads: Int?
    var mapBy: String?
    var bindTo: String?

    static let keys = ["threads_per_rank", "map_by", "bind_to"]

    /// Reads `path`: top-level `key: value` lines of the three keys; comments and blank lines
    /// pass; anything else is an error naming the line.
    init(file path: String) throws(LaunchError) {
        let text = try LaunchError.readText(path, what: "profile", hint: "a profile is YAML with threads_per_rank, map_by, bind_to (cluster-configs/profiles/)")
        var values = [String: String]()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, Self.keys.contains(parts[0]), !line.hasPrefix(" ") else {
                throw .badInput("profile \(path):\(index + 1): '\(raw.trimmingCharacters(in: .whitespaces))' is not one of \(Self.keys.map { "\($0): …" }.joined(separator: ", ")) (see cluster-configs/profiles/)")
            }
            let value = Self.unquoted(parts[1])
            guard !value.isEmpty, !value.contains(" ") else { throw .badInput("profile \(path):\(index + 1): \(parts[0]) needs one value, got '\(parts[1])'") }
            values[parts[0]] = value
        }
        guard !values.isEmpty else { throw .badInput("profile \(path) sets none of \(Self.keys.joined(separator: ", ")) (see cluster-configs/profiles/)") }
        if let value = values["threads_per_rank"] {
            guard let threads = Int(value), (1...1024).contains(threads) else {
                throw .badInput("profile \(path): threads_per_rank must be an integer in 1…1024, got '\(value)'")
            }
            self.threads = threads
        }
        mapBy = values["map_by"]
        bindTo = values["bind_to"]
    }

    /// The value of a top-level `key: value` line of YAML text (the last one), comments and
    /// quotes removed; nil when absent.
    static func topLevelValue(_ key: String, in text: String) -> String? {
        text.split(separator: "\n").last { $0.hasPrefix(key + ":") }.map { line in
            let value = line.dropFirst(key.count + 1).split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            return unquoted(value.trimmingCharacters(in: .whitespaces))
        }
    }

    private static func unquoted(_ value: String) -> String {
        value.count >= 2 && (value.hasPrefix("\"") && value.hasSuffix("\"") || value.hasPrefix("'") && value.hasSuffix("'"))
            ? String(value.dropFirst().dropLast()) : value
    }
}

/// An Open MPI hostfile: `HOST [slots=N] [max_slots=M]` lines, `#` comments.
struct Hostfile {
    /// The slots of all hosts, when every line gives `slots=`; nil when Open MPI decides (cores).
    var slots: Int?

    init(file path: String) throws(LaunchError) {
        let text = try LaunchError.readText(path, what: "hostfile", hint: "a hostfile has lines 'HOST slots=N'")
        var hosts = 0, slots: Int? = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").split(whereSeparator: \.isWhitespace)
            guard !words.isEmpty else { continue }
            hosts += 1
            var given: Int?
            for word in words.dropFirst() {
                let pair = word.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2, ["slots", "max_slots", "max-slots", "count", "cpu"].contains(pair[0]), let number = Int(pair[1]), number >= 0 else {
                    throw .badInput("hostfile \(path):\(index + 1): '\(word)' is not slots=N (lines are 'HOST slots=N')")
                }
                if ["slots", "count", "cpu"].contains(pair[0]) { given = number }
            }
            slots = given.flatMap { given in slots.map { $0 + given } }
        }
        guard hosts > 0 else { throw .badInput("hostfile \(path) lists no hosts (lines are 'HOST slots=N')") }
        self.slots = slots
    }
}

/// Why `transcriptile train` cannot start or run a job.
enum LaunchError: Error, CustomStringConvertible {
    /// Something the user gave is wrong: exit 2, the message says what to do.
    case badInput(String)
    /// A system call failed: exit 1.
    case system(call: String, errno: Int32)

    var exitCode: Int32 {
        switch self {
        case .badInput: 2
        case .system: 1
        }
    }

    var description: String {
        switch self {
        case let .badInput(message): message
        case let .system(call, code): "\(call) failed: \(String(cString: strerror(code)))"
        }
    }

    /// The text of the file at `path`, or an error naming it (missing, a directory, unreadable).
    static func readText(_ path: String, what: String, hint: String) throws(LaunchError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .badInput("no \(what) file \(path) (\(hint))") }
        guard !isDirectory.boolValue else { throw .badInput("\(what) \(path) is a directory, not a file (\(hint))") }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .badInput("\(what) \(path) is not readable as text (\(hint))")
        }
        return text
    }
}
