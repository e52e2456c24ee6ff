import Foundation

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

    /// Runs `executable` with `arguments`; after `timeout` seconds it is terminated and the
    /// result has status 124 (as timeout(1) reports). Open MPI's variables are removed — an MPI
    /// singleton in the test process exports some (`OMPI_MCA_ess`, `PMIX_*`, …), and a nested
    /// mpirun that inherits them exits at once — so the child starts a job of its own.
    public static func run(
        _ executable: String, _ arguments: [String], environment extra: [String: String] = [:],
        timeout: TimeInterval = 300
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        process.environment = childEnvironment(extra)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let outData = Collector(out.fileHandleForReading), errData = Collector(err.fileHandleForReading)
        try process.run()
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            finished.wait()
        }
        return Result(
            status: timedOut ? 124 : process.terminationStatus,
            stdout: outData.text(), stderr: errData.text() + (timedOut ? "\n[timed out after \(timeout) s]" : ""))
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

/// Drains a pipe on a background thread so a chatty child never blocks on a full pipe.
private final class Collector: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func text() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}
