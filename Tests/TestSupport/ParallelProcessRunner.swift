import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension ProcessRunner {
    /// `run` for many processes at once, from many threads. It starts the child with
    /// `posix_spawn` itself instead of Foundation's `Process`, whose `run()` on Linux (Swift
    /// 6.3.1) over-reads a `dirent` while scanning `/proc/self/fd` and crashes now and then —
    /// the more descriptors are open (pipes of processes in flight), the more often
    /// (swift-corelibs-foundation PR #5472). `directory` is the child's working directory
    /// (default: the repository root). A child ended by a signal reports 128 + the signal, as a
    /// shell does; a timeout reports 124.
    public static func runInParallel(
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
