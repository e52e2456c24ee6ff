import Foundation
import TestSupport
import XCTest

/// The `transcriptile` executable as a user runs it.
final class CommandLineTests: XCTestCase {
    private let transcriptile = ProcessRunner.product("transcriptile")

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
    }

    func testUnknownFlagExitsTwoWithUsage() throws {
        let result = try ProcessRunner.run(transcriptile, ["--no-such-flag"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.stderr.contains("Usage: transcriptile"), result.output)
        XCTAssertTrue(result.stderr.contains("--no-such-flag"), result.output)
    }

    func testInvalidBenchOptionExitsTwoWithAdvice() throws {
        let result = try ProcessRunner.run(transcriptile, ["bench", "allreduce", "--min-bytes", "1M", "--max-bytes", "4K"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.stderr.contains("--min-bytes ≤ --max-bytes"), result.output)
        let unparsable = try ProcessRunner.run(transcriptile, ["bench", "allreduce", "--max-bytes", "lots"])
        XCTAssertEqual(unparsable.status, 2, unparsable.output)
        let tooLarge = try ProcessRunner.run(transcriptile, ["bench", "allreduce", "--max-bytes", "16G"])
        XCTAssertEqual(tooLarge.status, 2, tooLarge.output)
        XCTAssertTrue(tooLarge.stderr.contains("one MPI call carries at most"), tooLarge.output)
    }

    func testHelpExitsZeroAndExplains() throws {
        let result = try ProcessRunner.run(transcriptile, ["bench", "allreduce", "--help"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("busbw = algbw · 2(n−1)/n"), result.output)
    }

    func testAllreduceBenchPrintsJSONLinesOnTwoRanks() throws {
        let result = try ProcessRunner.mpirun(
            ranks: 2, transcriptile, ["bench", "allreduce", "--max-bytes", "64K", "--repeats", "2", "--json"])
        XCTAssertEqual(result.status, 0, result.output)
        let rows = try result.stdout.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(rows.map { $0["bytes"] as? Int }, (2...16).map { 1 << $0 }, "4 B … 64 KB, doubling, printed once")
        for row in rows {
            XCTAssertEqual(row["bench"] as? String, "allreduce")
            XCTAssertEqual(row["unit"] as? String, "GB/s")
            XCTAssertEqual(row["wrong"] as? Int, 0)
            let algbw = try XCTUnwrap(row["algbw_gbps"] as? Double), busbw = try XCTUnwrap(row["busbw_gbps"] as? Double)
            XCTAssertEqual(busbw, algbw, accuracy: 1e-9 + algbw * 1e-9, "2 ranks: 2(n−1)/n = 1")
            XCTAssertGreaterThan(try XCTUnwrap(row["time_us"] as? Double), 0)
        }
    }

    func testSmokeOnThreeRanksPassesAndNamesEveryRank() throws {
        let result = try ProcessRunner.mpirun(ranks: 3, transcriptile, ["smoke", "--large", "4096"])
        XCTAssertEqual(result.status, 0, result.output)
        for rank in 0..<3 { XCTAssertTrue(result.stdout.contains("rank \(rank) of 3 on "), result.output) }
        XCTAssertTrue(result.stdout.contains("all passed"), result.output)
    }
}
