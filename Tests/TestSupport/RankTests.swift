import Foundation

/// Multi-rank tests: the test bundle runs itself under real `mpirun`.
///
/// A launcher test (in a plain `swift test` process) calls `launch(_:ranks:)`, which starts
/// `launch/mpirun -np N <this test bundle> <Module.Class>` with `TRANSCRIPTILE_RANK_TESTS=1`.
/// In those rank processes the class's tests run for real; everywhere else they skip.
public enum RankTests {
    static let variable = "TRANSCRIPTILE_RANK_TESTS"

    /// Whether this process is one rank of a job started by `launch`.
    public static var isRankProcess: Bool {
        ProcessInfo.processInfo.environment[variable] == "1"
    }

    /// Runs the XCTest class `testClass` (as `Module.Class`) on `ranks` ranks and returns the job's
    /// result. Each rank prints XCTest's own summary line. `via` runs launch/mpirun through
    /// another command (e.g. `launch/testcluster exec h1`); `mpiArguments` go to mpirun (e.g.
    /// `--hostfile F`).
    public static func launch(_ testClass: String, ranks: Int, timeout: TimeInterval = 300,
                              via prefix: [String] = [], mpiArguments: [String] = []) throws -> ProcessRunner.Result {
        let mpirun = ProcessRunner.repositoryRoot.appendingPathComponent("launch/mpirun").path
        let command = prefix + [mpirun] + mpiArguments
            + ["-x", variable, "-np", "\(ranks)", ProcessRunner.productsFolder.path + "/TranscriptilePackageTests.xctest", testClass]
        return try ProcessRunner.run(command[0], Array(command.dropFirst()), environment: [variable: "1"], timeout: timeout)
    }

    /// Each test case's outcomes over all ranks, from XCTest's "Test Case '…' passed (…)" lines:
    /// name → outcome ("passed", "failed", "skipped") → number of ranks.
    public static func outcomes(in result: ProcessRunner.Result) -> [String: [String: Int]] {
        var outcomes = [String: [String: Int]]()
        for line in result.stdout.split(separator: "\n") where line.hasPrefix("Test Case '") {
            let parts = line.dropFirst("Test Case '".count).split(separator: "'", maxSplits: 1)
            guard parts.count == 2, let outcome = parts[1].split(separator: " ").first, outcome != "started" else { continue }
            outcomes[String(parts[0]), default: [:]][String(outcome), default: 0] += 1
        }
        return outcomes
    }
}
