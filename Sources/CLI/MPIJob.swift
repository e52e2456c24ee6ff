import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A running training job: mpirun in a session of its own, watched until it ends.
///
/// - mpirun gets its own session (`POSIX_SPAWN_SETSID`), so a terminal's Ctrl-C reaches only
///   this process: a signalled mpirun exits 1 even after every rank stopped cleanly.
/// - The first SIGTERM, SIGINT or SIGHUP (Slurm's `--signal=B:TERM`, PBS, Ctrl-C, a closed
///   terminal) goes to the coordinator as SIGTERM, which stops every worker at the next step
///   boundary (a checkpoint, the records, exit 0). Without a local coordinator (a hostfile that
///   puts rank 0 elsewhere) mpirun gets it. A second signal aborts the job through mpirun.
/// - mpirun can outlive the job: after `MPI_Abort` it asks every host's daemon to kill its
///   ranks, and a daemon behind a cut link never answers (TCP retries for ~15 minutes). Once the
///   coordinator (rank 0, mpirun's child) has ended, mpirun gets `grace` seconds; then the whole
///   session (mpirun and every local rank) is killed and the job ends with status 1.
/// - mpirun's stderr (its own messages and every rank's) passes through `MPIOutputFilter`.
final class MPIJob: @unchecked Sendable {
    static let grace = 10.0

    private let lock = NSLock()
    private var mpirun: pid_t = 0
    private var coordinator: pid_t?
    private var signals = 0

    /// Runs `launch` with the mpirun at `path` and returns the job's exit status (that of
    /// mpirun, 128 + n when a signal n ended it, 1 when the watchdog ended it).
    func run(_ launch: MPILaunch, mpirun path: String) throws(LaunchError) -> Int32 {
        signal(SIGPIPE, SIG_IGN)  // a closed stderr must not end the watch
        let queue = DispatchQueue(label: "transcriptile.train.signals")
        let sources = [SIGTERM, SIGINT, SIGHUP].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in received() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        var output: [Int32] = [-1, -1]
        guard pipe(&output) == 0 else { throw .system(call: "pipe", errno: errno) }
        for descriptor in output { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        let pid: pid_t
        do {
            defer { close(output[1]) }
            pid = try Self.spawn(path, launch, stderr: output[1])
        } catch {
            close(output[0])
            throw error
        }
        lock.withLock { mpirun = pid }
        let filter = MPIOutputFilter(reading: output[0])

        var status: Int32 = 0
        var goneSince: Date?
        var lastLook = Date.distantPast
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done == -1 && errno != EINTR { throw .system(call: "waitpid", errno: errno) }
            usleep(200_000)
            // The coordinator: looked for once a second until found (rank 0 may run elsewhere).
            var rank0 = lock.withLock { coordinator }
            if rank0 == nil && Date().timeIntervalSince(lastLook) >= 1 {
                lastLook = Date()
                rank0 = findCoordinator(of: pid)
            }
            guard let rank0 else { continue }
            if Self.isRunning(rank0, childOf: pid) { continue }
            let since = goneSince ?? Date()
            goneSince = since
            if Date().timeIntervalSince(since) > Self.grace {
                Self.report("the coordinator ended \(Int(Self.grace)) s ago but mpirun has not (a host is unreachable?); ending the job")
                Self.killSession(pid)
                _ = waitpid(pid, &status, 0)
                filter.finish(within: 2)
                return 1
            }
        }
        filter.finish(within: 2)
        let killer = status & 0x7f
        return killer == 0 ? (status >> 8) & 0xff : 128 + killer
    }

    /// The coordinator among mpirun's children, remembered once found.
    private func findCoordinator(of mpirun: pid_t) -> pid_t? {
        let found = Self.children(of: mpirun).first { Self.programName($0) == "transcriptile-coordinator" }
        if let found { lock.withLock { coordinator = found } }
        return found
    }

    /// A signal to this process: the first stops the run cleanly, a second aborts it.
    private func received() {
        let (count, pid) = lock.withLock { signals += 1; return (signals, mpirun) }
        guard pid > 0 else { return }
        if count == 1 {
            let target = lock.withLock { coordinator } ?? findCoordinator(of: pid)
            kill(target ?? pid, SIGTERM)
        } else {
            Self.report("second signal: aborting the job")
            kill(pid, SIGTERM)
        }
    }

    // MARK: - Processes

    /// Starts mpirun in a new session, stdin from /dev/null, stderr into `stderr`, with the
    /// default action for every signal this process ignores or catches.
    private static func spawn(_ path: String, _ launch: MPILaunch, stderr: Int32) throws(LaunchError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for number in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | spawnSetSID))

        var environment = ProcessInfo.processInfo.environment
        for (name, value) in launch.environment { environment[name] = value }
        let argv = launch.arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let code = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard code == 0 else { throw .system(call: "posix_spawn \(path)", errno: code) }
        return pid
    }

    /// glibc's `POSIX_SPAWN_SETSID` (2.26+; the child calls setsid()), which Swift's Glibc module does not export.
    private static let spawnSetSID: Int32 = 0x80

    /// The fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ….
    private static func stat(_ pid: pid_t) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    private static func processes() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
    }

    private static func children(of parent: pid_t) -> [pid_t] {
        processes().filter { pid in stat(pid).flatMap { $0.count > 1 ? pid_t($0[1]) : nil } == parent }
    }

    /// The file name of the program `pid` runs (argv[0]'s last component).
    private static func programName(_ pid: pid_t) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        let first = data.prefix { $0 != 0 }
        return String(decoding: first, as: UTF8.self).split(separator: "/").last.map(String.init)
    }

    /// Whether `pid` still runs as `parent`'s child (not ended, not a zombie, not a new process).
    private static func isRunning(_ pid: pid_t, childOf parent: pid_t) -> Bool {
        guard let fields = stat(pid), fields.count > 1 else { return false }
        return fields[0] != "Z" && fields[0] != "X" && pid_t(fields[1]) == parent
    }

    /// SIGKILL to every process of the session `leader` leads (mpirun and its local ranks).
    private static func killSession(_ leader: pid_t) {
        for pid in processes() where stat(pid).flatMap({ $0.count > 3 ? pid_t($0[3]) : nil }) == leader {
            kill(pid, SIGKILL)
        }
        kill(-leader, SIGKILL)
        kill(leader, SIGKILL)
    }

    static func report(_ message: String) {
        MPIOutputFilter.write(Array("transcriptile train: \(message)\n".utf8))
    }
}
