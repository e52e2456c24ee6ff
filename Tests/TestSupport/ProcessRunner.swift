import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the project's executables and scripts from tests, with a time limit.
public enum ProcessRunner {
    /// The exit status and everything the process wrote to stdout and stderr.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// Both streams, for failure messages.
        public var output: String { "--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)" }
    }

    /// The repository root (this file is Tests/TestSupport/ProcessRunner.swift).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The folder holding the products of this build (the test bundle's own folder).
    public static var productsFolder: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The path of the executable this build made under `name`.
    public static func product(_ name: String) -> String {
        productsFolder.appendingPathComponent(name).path
    }

    /// Runs `executable` with `arguments` in `directory` (default: the repository root), stdin
    /// from /dev/null; after `timeout` seconds it gets SIGTERM (SIGKILL 10 s later) and the
    /// result has status 124 (as timeout(1) reports); a child ended by a signal reports 128 + the
    /// signal, as a shell does. Open MPI's variables are removed (`childEnvironment`). Safe to
    /// call from many threads at once: the child is started with `posix_spawn` rather than
    /// Foundation's `Process`, whose `run()` on Linux (Swift 6.3.1) over-reads a `dirent` while
    /// scanning `/proc/self/fd` and crashes now and then — the more descriptors are open, the
    /// more often (swift-corelibs-foundation PR #5472).
    public static func run(
        _ executable: String, _ arguments: [String], environment extra: [String: String] = [:],
        directory: URL? = nil, timeout: TimeInterval = 300
    ) throws -> Result {
        let environment = childEnvironment(extra)

        guard let addChdir else { throw SpawnError("posix_spawn_file_actions_addchdir_np is missing (glibc < 2.29)") }
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        _ = addChdir(&actions, (directory ?? repositoryRoot).path)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // The pipes are made and marked close-on-exec under one lock with the launch, so no other
        // thread's child inherits them (and holds them open past this child's end).
        var pid = pid_t()
        let spawned: Int32 = spawnLock.withLock {
            guard pipe(&out) == 0, pipe(&err) == 0 else { return errno }
            for descriptor in out + err { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, out[1], 1)
            posix_spawn_file_actions_adddup2(&actions, err[1], 2)
            return posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        for descriptor in [out[1], err[1]] where descriptor >= 0 { close(descriptor) }
        guard spawned == 0 else {
            for descriptor in [out[0], err[0]] where descriptor >= 0 { close(descriptor) }
            throw SpawnError("posix_spawn \(executable): \(String(cString: strerror(spawned)))")
        }
        let stdout = Reader(out[0]), stderr = Reader(err[0])

        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0, timedOut = false, killAt: Date? = nil
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid || (done == -1 && errno != EINTR) { break }
            if !timedOut, Date() > deadline {
                timedOut = true
                kill(pid, SIGTERM)
                killAt = Date().addingTimeInterval(10)
            }
            if let killAt, Date() > killAt { kill(pid, SIGKILL) }
            usleep(10_000)
        }
        let signal = status & 0x7f
        let code: Int32 = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        return Result(
            status: timedOut ? 124 : code,
            stdout: stdout.text(), stderr: stderr.text() + (timedOut ? "\n[timed out after \(timeout) s]" : ""))
    }

    /// This process's environment without Open MPI's variables, plus `extra`: what a child that
    /// may start an MPI job of its own needs.
    public static func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "PMIX_", "PRTE_", "ORTE_", "OPAL_"].contains { key.hasPrefix($0) }
        }.merging(extra) { _, new in new }
    }

    /// Runs `program` on `ranks` ranks through launch/mpirun.
    public static func mpirun(
        ranks: Int, _ program: String, _ arguments: [String], environment: [String: String] = [:],
        timeout: TimeInterval = 300
    ) throws -> Result {
        try run(
            repositoryRoot.appendingPathComponent("launch/mpirun").path,
            ["-np", "\(ranks)", program] + arguments, environment: environment, timeout: timeout)
    }
}

extension ProcessRunner {
    private static let spawnLock = NSLock()

    /// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), which Swift's Glibc module does not
    /// export.
    private static let addChdir: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
    }()

    struct SpawnError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// Reads a descriptor to its end on a thread of its own, then closes it.
private final class Reader: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ descriptor: Int32) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(descriptor, &buffer, buffer.count)
                if count > 0 { data.append(contentsOf: buffer[..<count]) } else if count == 0 || errno != EINTR { break }
            }
            close(descriptor)
            done.signal()
        }
    }

    func text() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}
