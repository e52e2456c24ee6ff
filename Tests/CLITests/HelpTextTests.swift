import Foundation
import TestSupport
import XCTest

/// Every executable answers `--help` and `--version` without MPI, and help text reads well in an
/// 80-column terminal: an example command is never broken across lines.
final class HelpTextTests: XCTestCase {
    /// Lines that are commands to copy (after trimming).
    private static let commandStarts = ["transcriptile ", "transcriptile-", "launch/", "mpirun ", ".build/", "sbatch ", "qsub ", "srun "]

    private func help(_ executable: String, _ arguments: [String], columns: Int) throws -> ProcessRunner.Result {
        try ProcessRunner.run(ProcessRunner.product(executable), arguments + ["--help"], environment: ["COLUMNS": "\(columns)"], timeout: 60)
    }

    /// `transcriptile`'s commands, recursively, from the SUBCOMMANDS sections of `--help`.
    private func commands(_ path: [String] = []) throws -> [[String]] {
        let text = try help("transcriptile", path, columns: 400).stdout
        guard let section = text.components(separatedBy: "SUBCOMMANDS:").dropFirst().first else { return [path] }
        let names = section.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { return nil }
            return String(name)
        }.filter { $0 != "See" }
        return try [path] + names.flatMap { try commands(path + [$0]) }
    }

    func testExampleCommandsAreNeverBrokenAt80Columns() throws {
        var targets = try commands().map { ("transcriptile", $0) }
        targets += [("transcriptile-coordinator", []), ("transcriptile-worker", [])]
        XCTAssertGreaterThan(targets.count, 15)
        var broken = [String]()
        for (executable, path) in targets {
            let wide = try help(executable, path, columns: 400), narrow = try help(executable, path, columns: 80)
            XCTAssertEqual(narrow.status, 0, "\(executable) \(path) --help: \(narrow.output)")
            let narrowLines = Set(narrow.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
            for line in wide.stdout.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) })
            where Self.commandStarts.contains(where: line.hasPrefix) && !narrowLines.contains(line) {
                broken.append("\(([executable] + path).joined(separator: " ")): \(line)")
            }
        }
        XCTAssertTrue(broken.isEmpty, "example commands wrapped at 80 columns (shorten them):\n" + broken.joined(separator: "\n"))
    }

    func testEveryExecutableSaysItsVersionAndCommit() throws {
        for executable in ["transcriptile", "transcriptile-coordinator", "transcriptile-worker"] {
            let result = try ProcessRunner.run(ProcessRunner.product(executable), ["--version"], timeout: 60)
            XCTAssertEqual(result.status, 0, result.output)
            let line = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertNotNil(line.range(of: #"^\#(executable) \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(-modified)?|unknown)\)$"#, options: .regularExpression), line)
        }
    }

    /// The worker, run by hand, explains itself instead of waiting for a plan or aborting MPI.
    func testTheWorkerAloneOrWithAnArgumentSaysHowToStartARun() throws {
        let worker = ProcessRunner.product("transcriptile-worker")
        let help = try ProcessRunner.run(worker, ["--help"], timeout: 60)
        XCTAssertEqual(help.status, 0, help.output)
        XCTAssertTrue(help.stdout.contains("transcriptile train RUN.yaml --workers N"), help.stdout)
        XCTAssertFalse(help.output.contains("MPI_ABORT"), help.output)
        let stray = try ProcessRunner.run(worker, ["--config", "run.yaml"], timeout: 60)
        XCTAssertEqual(stray.status, 2, stray.output)
        XCTAssertTrue(stray.stderr.contains("unexpected argument '--config'"), stray.stderr)
        let alone = try ProcessRunner.run(worker, [], timeout: 60)
        XCTAssertEqual(alone.status, 2, alone.output)
        XCTAssertTrue(alone.stderr.contains("started alone"), alone.stderr)
        XCTAssertFalse(alone.output.contains("MPI_ABORT"), alone.output)
    }
}
