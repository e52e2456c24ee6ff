import TestSupport
import XCTest

/// Starts the rank-side test classes under real `mpirun` with 2 and 3 ranks (3 ranks on this
/// 2-core machine oversubscribe, which launch/mpirun handles).
final class MultiRankLaunchTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "this is a rank process; the launcher runs outside mpirun")
    }

    private func runCollectives(ranks: Int, _ testClass: String = "DistributedTests.CollectiveRankTests", atLeast: Int = 10) throws {
        let result = try RankTests.launch(testClass, ranks: ranks)
        XCTAssertEqual(result.status, 0, result.output)
        let outcomes = RankTests.outcomes(in: result)
        XCTAssertGreaterThanOrEqual(outcomes.count, atLeast, result.output)
        for (test, counts) in outcomes {
            XCTAssertEqual(counts, ["passed": ranks], "\(test) passes on every rank\n" + result.output)
        }
    }

    func testCollectivesOnTwoRanks() throws { try runCollectives(ranks: 2) }
    func testCollectivesOnThreeRanks() throws { try runCollectives(ranks: 3) }
    func testGradientExchangeOnTwoRanks() throws { try runCollectives(ranks: 2, "DistributedTests.ExchangeRankTests", atLeast: 3) }
    func testGradientExchangeOnThreeRanks() throws { try runCollectives(ranks: 3, "DistributedTests.ExchangeRankTests", atLeast: 3) }

    func testAbortingRankEndsTheJobAndIsNamed() throws {
        let result = try RankTests.launch("DistributedTests.AbortRankTests", ranks: 2, timeout: 60)
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertNotEqual(result.status, 124, "the job hung instead of aborting\n" + result.output)
        XCTAssertTrue(result.stderr.contains("rank 1 of 2 (on "), result.output)
        XCTAssertTrue(result.stderr.contains("aborting the job: deliberate failure in a test"), result.output)
    }
}
