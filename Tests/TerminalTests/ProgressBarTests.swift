import Terminal
import XCTest

final class ProgressBarTests: XCTestCase {
    func testLineShowsCountPercentageDetailAndETA() {
        let bar = ProgressBar("training", total: 200, unit: "steps", style: .off)
        bar.update(50, detail: "loss 0.4121")
        let line = bar.text(live: false)
        XCTAssertTrue(line.hasPrefix("training  25%  50/200 steps · ETA "), line)
        XCTAssertTrue(line.hasSuffix(" · loss 0.4121"), line)
        XCTAssertTrue(bar.text(live: true).contains("[█████               ]"), bar.text(live: true))
    }

    func testFinishedLineShowsElapsedTimeInsteadOfETA() {
        let bar = ProgressBar("simulating", total: 3, unit: "shards", style: .off)
        bar.update(3)
        XCTAssertTrue(bar.text(live: false).hasSuffix("3/3 shards · in 0:00"), bar.text(live: false))
    }

    func testUnknownTotalShowsCountOnly() {
        let bar = ProgressBar("reading", total: 0, unit: "rows", style: .off)
        bar.advance(by: 7)
        bar.advance()
        XCTAssertEqual(bar.text(live: false), "reading  8 rows")
    }

    func testResumedWorkHasNoETAUntilNewWorkIsDone() {
        let bar = ProgressBar("training", total: 100, unit: "steps", first: 40, style: .off)
        XCTAssertTrue(bar.text(live: false).hasSuffix("40/100 steps · ETA —"), bar.text(live: false))
    }

    func testBarUsesEighthsOfACell() {
        XCTAssertEqual(ProgressBar.bar(0, width: 4), "[    ]")
        XCTAssertEqual(ProgressBar.bar(0.5, width: 4), "[██  ]")
        XCTAssertEqual(ProgressBar.bar(0.5625, width: 4), "[██▎ ]")
        XCTAssertEqual(ProgressBar.bar(1, width: 4), "[████]")
        XCTAssertEqual(ProgressBar.bar(7, width: 4), "[████]")
    }

    func testLongLinesAreCutToTheWidth() {
        XCTAssertEqual(ProgressBar.cut("abcdefghij", to: 6), "abcd…")
        XCTAssertEqual(ProgressBar.cut("abc", to: 6), "abc")
    }

    func testClock() {
        XCTAssertEqual(Console.clock(61), "1:01")
        XCTAssertEqual(Console.clock(3661), "1:01:01")
        XCTAssertEqual(Console.clock(.infinity), "—")
    }

    func testFigureLinesAreSortedAlignedAndCountsHaveNoDecimals() {
        XCTAssertEqual(figureLines(["silhouette": 0.35012, "patients": 120, "knn_accuracy": 1]),
                       ["  knn_accuracy            1", "  patients                120", "  silhouette              0.3501"])
        XCTAssertEqual(figureLines(["loss": .nan], indent: ""), ["loss                    nan"])
    }
}
