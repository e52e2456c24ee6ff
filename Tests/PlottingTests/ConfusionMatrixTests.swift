import Foundation
import Plotting
import XCTest

/// Confusion matrices rendered to files and read back.
final class ConfusionMatrixTests: XCTestCase {
    func testWritesAPNGOfTheRequestedSizeColouredByRowShares() throws {
        let directory = try temporaryDirectory(self)
        // BRCA: all right (share 1); LUAD: split evenly; KIRC: no samples (grey row).
        let matrix = ConfusionMatrix(title: "Cancer type, test tiles", classNames: ["BRCA", "LUAD", "KIRC"],
                                     truth: [0, 0, 0, 1, 1, 1, 1, 7], predicted: [0, 0, 0, 0, 1, 2, 2, 0], width: 500, height: 400)
        XCTAssertEqual(matrix.counts, [[3, 0, 0], [1, 1, 2], [0, 0, 0]], "the pair with class 7 is left out")
        let files = try matrix.write(to: directory.appendingPathComponent("confusion"))
        let bitmap = try Bitmap(png: files.png.path)
        XCTAssertEqual([bitmap.width, bitmap.height], [1000, 800])
        XCTAssertGreaterThan(bitmap.matching(0xFDE725, tolerance: 2).count, 2000, "BRCA's diagonal cell is viridis' top")
        XCTAssertGreaterThan(bitmap.matching(0x440154, tolerance: 2).count, 2 * 2000, "BRCA's two empty shares are its bottom")
        XCTAssertGreaterThan(bitmap.matching(0xD9D9D9, tolerance: 1).count, 3 * 2000, "KIRC's row is missing")
        let svg = try String(contentsOf: files.svg, encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<?xml"))
        _ = try parseSVG(files.svg)
    }

    func testDegenerateMatricesDraw() throws {
        let directory = try temporaryDirectory(self)
        let cases = [
            ConfusionMatrix(title: "", classNames: [], counts: []),
            ConfusionMatrix(title: "ragged", classNames: ["a"], counts: [[1, 2], [3]]),
            ConfusionMatrix(title: "huge", classNames: ["a", "b"], counts: [[Int.max, Int.max], [-1, 0]]),
            ConfusionMatrix(title: "many", classNames: (0..<80).map { "class \($0)" }, truth: Array(0..<80), predicted: Array(0..<80).reversed()),
        ]
        for (index, matrix) in cases.enumerated() {
            XCTAssertNoThrow(try matrix.write(to: directory.appendingPathComponent("case\(index)"), scale: 1), matrix.title)
        }
    }
}
