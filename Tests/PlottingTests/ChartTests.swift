import Foundation
import Plotting
import XCTest

/// Charts rendered to real files and read back: sizes, colours where the data are, whole
/// markers at the extremes, well-formed SVG, and inputs that must not crash.
final class ChartTests: XCTestCase {
    private let blue: UInt32 = 0x0072B2, vermillion: UInt32 = 0xD55E00

    func testWritesPNGAndSVGBesideEachOther() throws {
        let directory = try temporaryDirectory(self)
        let chart = Chart(title: "Latent μ, β² — PCA (–)", xLabel: "step", yLabel: "loss",
                          series: [.line("train loss", (1...200).map { (Double($0), 2 / sqrt(Double($0))) })])
        let files = try chart.write(to: directory.appendingPathComponent("curve.png"))
        XCTAssertEqual(files.png.lastPathComponent, "curve.png")
        XCTAssertEqual(files.svg.lastPathComponent, "curve.svg")
        let bitmap = try Bitmap(png: files.png.path)
        XCTAssertEqual([bitmap.width, bitmap.height], [1600, 1000])
        XCTAssertGreaterThan(bitmap.matching(blue).count, 1000, "the line is drawn in the palette's first colour")
        // Title text: dark pixels in the band above the plot.
        XCTAssertTrue(bitmap.pixels[0..<(bitmap.width * 60)].contains { Bitmap.close($0, 0x262626, 40) }, "no title drawn")

        let svg = try parseSVG(files.svg)
        XCTAssertEqual(svg.root["element"], "svg")
        XCTAssertEqual(svg.root["width"], "800pt")
        // Pango sets text as glyph outlines: one symbol per distinct glyph, μ β ² — – included.
        XCTAssertGreaterThanOrEqual(svg.glyphs, Set("Latent μ, β² — PCA (–)steplosstrain0123456789").count - 1)
    }

    func testMarkersAtTheExtremesAreDrawnWhole() throws {
        let directory = try temporaryDirectory(self)
        var chart = Chart(title: "extremes", xLabel: "x", yLabel: "y",
                          series: [.scatter("", [(0, 0), (10, 5), (20, 10)])], legend: .hidden)
        chart.width = 400
        chart.height = 300
        let bitmap = try Bitmap(png: try chart.write(to: directory.appendingPathComponent("extremes")).png.path)
        let dots = bitmap.matching(blue, tolerance: 2)
        let maxX = try XCTUnwrap(dots.map(\.x).max()), minY = try XCTUnwrap(dots.map(\.y).min())
        // The marker at the largest x (which is also the largest y: the top right one).
        let corner = dots.filter { $0.x > maxX - 20 && $0.y < minY + 20 }
        let xs = corner.map(\.x), ys = corner.map(\.y)
        let (width, height) = (xs.max()! - xs.min()! + 1, ys.max()! - ys.min()! + 1)
        // A radius of 3.6 pt at 2 px/pt, less the white ring: a whole disc is ~13 px across; a clipped one half that.
        XCTAssertGreaterThanOrEqual(width, 11, "marker at max x clipped: \(width) × \(height) px")
        XCTAssertGreaterThanOrEqual(height, 11, "marker at max y clipped: \(width) × \(height) px")
        XCTAssertLessThanOrEqual(abs(width - height), 1, "marker not round: \(width) × \(height) px")
        XCTAssertGreaterThan(corner.count, 90)
        XCTAssertLessThan(maxX, bitmap.width - 2 * 16, "marker inside the figure's margin")
        XCTAssertGreaterThan(minY, 2 * 16)
    }

    func testLossCurveWithValidationAndBestStep() throws {
        let directory = try temporaryDirectory(self)
        let train = (1...300).map { (x: Double($0), y: 1 / Double($0).squareRoot() + 0.1) }
        let validation = stride(from: 50, through: 300, by: 50).map { (x: Double($0), y: 0.25 + abs(Double($0) - 190) / 1000) }
        let chart = Chart(title: "cancer-type: loss on 2 workers", xLabel: "step", yLabel: "loss",
                          series: [.line("train loss", train), Series("validation loss", validation, style: .lineAndMarkers)],
                          markers: [Marker(x: 190, label: "best step 190")])
        let bitmap = try Bitmap(png: try chart.write(to: directory.appendingPathComponent("loss_curve")).png.path)
        XCTAssertGreaterThan(bitmap.matching(vermillion).count, 6 * 60, "validation markers")
        // The dashed marker: one column band of its grey, broken into dashes along the plot's height.
        let dashes = bitmap.matching(0x595959, tolerance: 2)
        let columns = Dictionary(grouping: dashes, by: \.x).filter { $0.value.count > 150 }
        XCTAssertFalse(columns.isEmpty, "no vertical marker line")
        XCTAssertLessThanOrEqual(columns.keys.max()! - columns.keys.min()!, 3, "one marker line expected")
        let ys = columns.values.first!.map(\.y).sorted()
        XCTAssertTrue(zip(ys, ys.dropFirst()).contains { $1 - $0 > 4 }, "the marker line should be dashed")
    }

    func testLogAxisAndKaplanMeier() throws {
        let directory = try temporaryDirectory(self)
        let log = Chart(title: "log", xLabel: "epoch", yLabel: "loss", series: [.line("a", [(1, 10), (2, 1), (3, 0.01), (4, 0), (5, -1)])], logY: true)
        XCTAssertGreaterThan(try Bitmap(png: try log.write(to: directory.appendingPathComponent("log")).png.path).matching(blue).count, 200)

        let curve = Series.kaplanMeier("low risk", times: [1, 2, 2, 3, 4, .nan], events: [true, true, false, true, false, true])
        XCTAssertEqual(curve.points.map(\.x), [0, 1, 2, 3, 4])
        XCTAssertEqual(curve.points.map(\.y), [1, 0.8, 0.6, 0.3, 0.3].map { $0 }, accuracy: 1e-12)
        XCTAssertEqual(curve.ticks.map(\.x), [2, 4])
        XCTAssertEqual(curve.ticks.map(\.y), [0.6, 0.3], accuracy: 1e-12)
        var chart = Chart(title: "Overall survival", xLabel: "months", yLabel: "survival probability",
                          series: [curve, .kaplanMeier("high risk", times: [0.5, 1, 1.5, 2], events: [true, true, false, true])])
        chart.yRange = 0...1
        let bitmap = try Bitmap(png: try chart.write(to: directory.appendingPathComponent("km")).png.path)
        XCTAssertGreaterThan(bitmap.matching(blue).count, 500)
        XCTAssertGreaterThan(bitmap.matching(vermillion).count, 500)
    }

    func testGroupsGetOneColourEach() throws {
        let series = Series.groups([(0, 0), (1, 1), (2, 2), (3, 3)], labels: ["b", "a", "b", "c"])
        XCTAssertEqual(series.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(series.map(\.points.count), [1, 2, 1])
        XCTAssertEqual(series.map(\.color), [Color.palette(0), Color.palette(1), Color.palette(2)])
        let directory = try temporaryDirectory(self)
        let chart = Chart(title: "PCA", xLabel: "PC1 (41 %)", yLabel: "PC2 (12 %)", series: series, legend: .outside)
        let bitmap = try Bitmap(png: try chart.write(to: directory.appendingPathComponent("groups")).png.path)
        XCTAssertGreaterThan(bitmap.matching(0x009E73).count, 90, "the third group's colour")
    }

    func testDegenerateDataRendersWithoutCrashing() throws {
        let directory = try temporaryDirectory(self)
        let big = Double.greatestFiniteMagnitude
        let cases: [(String, [Series])] = [
            ("empty", []),
            ("empty-series", [.line("nothing", [])]),
            ("one-point", [.line("one", [(3, 4)]), .scatter("one", [(3, 4)])]),
            ("nan", [.line("nan", [(.nan, .nan), (1, .nan), (.nan, 2)])]),
            ("infinite", [.line("inf", [(.infinity, 1), (1, .infinity), (-.infinity, -.infinity)])]),
            ("extreme", [.line("huge", [(-big, -big), (0, 0), (big, big)]), .scatter("tiny", [(1e-300, 1e-300), (2e-300, 3e-300)])]),
            ("constant", [.line("flat", (0..<50).map { (Double($0), 7) })]),
            ("gap", [.line("gap", [(0, 1), (1, 2), (2, .nan), (3, 1), (4, 0)])]),
        ]
        for (name, series) in cases {
            for logY in [false, true] {
                var chart = Chart(title: name, xLabel: "x", yLabel: "y", series: series, markers: [Marker(x: .nan, label: "nowhere")], logY: logY)
                chart.markers.append(Marker(x: 2, label: "two"))
                let files = try chart.write(to: directory.appendingPathComponent("\(name)-\(logY)"))
                let bitmap = try Bitmap(png: files.png.path)
                XCTAssertGreaterThan(bitmap.inked, 1000, "\(name): frame and labels drawn")
                _ = try parseSVG(files.svg)
            }
        }
        // Long labels are shortened, not drawn over each other.
        let long = String(repeating: "a very long axis label ", count: 20)
        _ = try Chart(title: long, xLabel: long, yLabel: long, series: [.line(long, [(0, 0), (1, 1)])], width: 200, height: 120)
            .write(to: directory.appendingPathComponent("long"))
    }

    func testRandomAwkwardDataNeverCrashes() throws {
        let directory = try temporaryDirectory(self)
        var generator = SystemRandomNumberGenerator()
        let awkward: [Double] = [.nan, .infinity, -.infinity, 0, -0.0, Double.leastNonzeroMagnitude, -1e-300, 1e308, -1e308, 1, -1, 42, 1e-9]
        func value() -> Double { Bool.random(using: &generator) ? awkward.randomElement(using: &generator)! : Double.random(in: -1e3...1e3, using: &generator) }
        let styles: [Series.Style] = [.line, .markers, .lineAndMarkers, .steps]
        for trial in 0..<150 {
            let series = (0..<Int.random(in: 0...3, using: &generator)).map { index in
                Series("s\(index)", (0..<Int.random(in: 0...12, using: &generator)).map { _ in (value(), value()) },
                       style: styles.randomElement(using: &generator)!, ticks: [(value(), value())])
            }
            var chart = Chart(title: "trial \(trial)", xLabel: "x", yLabel: "y", series: series, markers: [Marker(x: value(), label: "m")],
                              logY: Bool.random(using: &generator), width: 240, height: 160)
            let (a, b) = (value(), value())
            if Bool.random(using: &generator), a <= b { chart.xRange = a...b }
            if Bool.random(using: &generator), a <= b { chart.yRange = a...b }
            chart.legend = [.automatic, .outside, .hidden].randomElement(using: &generator)!
            XCTAssertNoThrow(try chart.write(to: directory.appendingPathComponent("trial"), scale: 1), "trial \(trial): \(chart)")
        }
    }

    func testBadSizesAndUnwritablePathsThrow() throws {
        let directory = try temporaryDirectory(self)
        let chart = Chart(title: "t", xLabel: "x", yLabel: "y", series: [.line("a", [(0, 0), (1, 1)])])
        for (width, height) in [(0.0, 100.0), (.nan, 100), (100, .infinity), (20000, 100)] {
            var sized = chart
            (sized.width, sized.height) = (width, height)
            XCTAssertThrowsError(try sized.write(to: directory.appendingPathComponent("bad"))) { error in
                guard case .size = error as? PlotError else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try chart.write(to: directory.appendingPathComponent("missing/plot"))) { error in
            guard case let .cairo(call, _, path) = error as? PlotError else { return XCTFail("\(error)") }
            XCTAssertEqual(call, "cairo_surface_write_to_png")
            XCTAssertTrue(path.hasSuffix("missing/plot.png"))
        }
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "counts differ: \(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
