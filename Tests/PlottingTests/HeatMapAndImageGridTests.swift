import Foundation
import Plotting
import XCTest

/// Heat maps and image grids rendered to files and read back.
final class HeatMapAndImageGridTests: XCTestCase {
    func testHeatMapColoursCellsAndMarksMissingOnes() throws {
        let directory = try temporaryDirectory(self)
        let map = HeatMap(title: "Mean expression (log₂ TPM)", values: [[0, 1, 2, 3], [4, 5, .nan, 7], [8, 9, 10]],
                          rowLabels: ["BRCA", "LUAD", "KIRC"], columnLabels: ["TP53", "EGFR", "KRAS", "MYC"],
                          xLabel: "gene", yLabel: "cancer type", valueLabel: "log₂ TPM", showValues: true)
        let files = try map.write(to: directory.appendingPathComponent("heat"))
        let bitmap = try Bitmap(png: files.png.path)
        XCTAssertEqual([bitmap.width, bitmap.height], [1600, 1200])
        // The smallest value gets viridis' first colour, the largest its last; missing cells grey.
        XCTAssertGreaterThan(bitmap.matching(0x440154, tolerance: 2).count, 5000)
        XCTAssertGreaterThan(bitmap.matching(0xFDE725, tolerance: 2).count, 5000)
        XCTAssertGreaterThan(bitmap.matching(0xD9D9D9, tolerance: 1).count, 2 * 5000, "the NaN cell and the short row's end")
        _ = try parseSVG(files.svg)
    }

    func testDivergingMapIsSymmetricAboutZero() throws {
        let directory = try temporaryDirectory(self)
        // -0.5 … 1: the range becomes −1 … 1, so −0.5 is a pale blue, not the map's darkest.
        let map = HeatMap(title: "correlation", values: [[-0.5, 0], [0.5, 1]], colorMap: .diverging, width: 300, height: 300)
        let bitmap = try Bitmap(png: try map.write(to: directory.appendingPathComponent("div")).png.path)
        XCTAssertGreaterThan(bitmap.matching(0xB2182B, tolerance: 2).count, 1000, "1 is the darkest red")
        XCTAssertGreaterThan(bitmap.matching(0xF7F7F7, tolerance: 2).count, 1000, "0 is white-ish")
        XCTAssertLessThan(bitmap.matching(0x2166AC, tolerance: 2).count, 1000, "only the colour bar reaches the darkest blue")
    }

    func testDegenerateHeatMaps() throws {
        let directory = try temporaryDirectory(self)
        let cases: [[[Double]]] = [[], [[]], [[.nan, .infinity]], [[3]], [[1e308, -1e308]], Array(repeating: (0..<300).map(Double.init), count: 200)]
        for (index, values) in cases.enumerated() {
            let labels = (0..<300).map { "label \($0)" }
            let files = try HeatMap(title: "case \(index)", values: values, rowLabels: labels, columnLabels: labels, valueLabel: "v", showValues: true)
                .write(to: directory.appendingPathComponent("case\(index)"))
            XCTAssertGreaterThan(try Bitmap(png: files.png.path).inked, 500)
        }
        let ranges: [ClosedRange<Double>?] = [nil, 5...5, -.infinity ... .infinity, 0...1e308, -1e-300...1e-300]
        for (index, range) in ranges.enumerated() {
            for colorMap in [ColorMap.viridis, .diverging] {
                var map = HeatMap(title: "range \(index)", values: [[1, .nan, -3], [1e308, -.infinity]], colorMap: colorMap, showValues: true, width: 300, height: 200)
                map.range = range
                XCTAssertNoThrow(try map.write(to: directory.appendingPathComponent("range"), scale: 1), "\(String(describing: range))")
            }
        }
    }

    func testImageGridScalesTilesIntoCellsWithCaptions() throws {
        let directory = try temporaryDirectory(self)
        let red = ImageGrid.Tile(width: 8, height: 8, pixels: [UInt8](repeating: 0, count: 8 * 8 * 3).enumerated().map { $0.offset % 3 == 0 ? 255 : 0 }, caption: "tile 1 · BRCA")
        let green = ImageGrid.Tile(width: 16, height: 8, pixels: (0..<(16 * 8 * 3)).map { $0 % 3 == 1 ? 200 : 0 }, caption: "μ = 0.42")
        let grid = ImageGrid(title: "Contact sheet", tiles: [red, green, red], columns: 2, cellSize: 96)
        let files = try grid.write(to: directory.appendingPathComponent("sheet"))
        let bitmap = try Bitmap(png: files.png.path)
        // 2 columns of 96 pt, 10 pt apart, 16 pt margins: 234 pt wide, at 2 px/pt; at least 240 pt.
        XCTAssertEqual(bitmap.width, 480)
        let cell = 96 * 2
        XCTAssertEqual(Double(bitmap.matching(0xFF0000, tolerance: 0).count), Double(2 * cell * cell), accuracy: Double(cell * 8))
        XCTAssertEqual(Double(bitmap.matching(0x00C800, tolerance: 0).count), Double(cell * cell / 2), accuracy: Double(cell * 4))
        _ = try parseSVG(files.svg)
        XCTAssertNoThrow(try ImageGrid(title: "none", tiles: []).write(to: directory.appendingPathComponent("empty")))
    }

    func testImageGridRefusesABufferOfTheWrongSize() throws {
        let directory = try temporaryDirectory(self)
        let bad = ImageGrid.Tile(width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 47))
        XCTAssertThrowsError(try ImageGrid(title: "", tiles: [bad]).write(to: directory.appendingPathComponent("bad"))) { error in
            XCTAssertEqual(error as? PlotError, .pixels(tile: 0, bytes: 47, width: 4, height: 4))
        }
        let negative = ImageGrid.Tile(width: -1, height: 4, pixels: [])
        XCTAssertThrowsError(try ImageGrid(title: "", tiles: [negative]).write(to: directory.appendingPathComponent("neg")))
        let tooMany = ImageGrid(title: "", tiles: Array(repeating: ImageGrid.Tile(width: 1, height: 1, pixels: [0, 0, 0]), count: 5000), columns: 4)
        XCTAssertThrowsError(try tooMany.write(to: directory.appendingPathComponent("many"))) { error in
            guard case .size = error as? PlotError else { return XCTFail("\(error)") }
        }
    }
}
