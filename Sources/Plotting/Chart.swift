import Foundation

/// A chart on x–y axes: line curves, scatter markers, Kaplan–Meier step curves and labelled
/// vertical markers, with nice ticks, a light grid, a legend placed where it hides no data (or
/// outside), and axes padded so that nothing at the data's extremes is clipped.
///
///     var chart = Chart(title: "Loss", xLabel: "step", yLabel: "loss",
///                       series: [.line("train", points), .scatter("validation", evaluations)])
///     chart.markers = [Marker(x: 190, label: "best step 190")]
///     try chart.write(to: runDirectory.appendingPathComponent("loss_curve"))  // .png and .svg
///
/// Non-finite points are skipped (a line breaks there); on a log axis so are values ≤ 0. An
/// empty chart draws its frame, title and labels.
public struct Chart: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Vertical lines across the plot, each with a label at its top.
    public var markers: [Marker]
    /// A logarithmic y axis (ticks at powers of ten).
    public var logY: Bool
    /// The data ranges to show (default: the data's own); the axes add padding either way.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    public var legend: Legend
    /// Size in points (the SVG's size; the PNG has `scale` pixels per point).
    public var width: Double
    public var height: Double

    public init(title: String, xLabel: String, yLabel: String, series: [Series] = [], markers: [Marker] = [],
                logY: Bool = false, legend: Legend = .automatic, width: Double = 800, height: Double = 500) {
        (self.title, self.xLabel, self.yLabel, self.series, self.markers) = (title, xLabel, yLabel, series, markers)
        (self.logY, self.legend, self.width, self.height) = (logY, legend, width, height)
    }

    /// Writes `base.png` and `base.svg` (see `PlotFiles`); throws `PlotError`.
    @discardableResult
    public func write(to base: URL, scale: Double = 2) throws -> PlotFiles { try render(to: base, scale: scale) }
}

/// Where a chart's legend goes.
public enum Legend: Sendable {
    /// In the corner of the plot that covers no data, else outside on the right.
    case automatic
    /// Outside, right of the plot.
    case outside
    /// No legend.
    case hidden
}

/// A dashed vertical line at `x` with a label, e.g. early stopping's best step.
public struct Marker: Sendable {
    public var x: Double
    public var label: String
    public var color: Color

    public init(x: Double, label: String, color: Color = Color(hex: 0x595959)) {
        (self.x, self.label, self.color) = (x, label, color)
    }
}

/// One named set of points and how to draw it. A series without a name has no legend entry;
/// a series without a colour takes the palette's colour for its position.
public struct Series: Sendable {
    public enum Style: Sendable {
        /// Points joined by a line.
        case line
        /// A marker at each point.
        case markers
        /// Markers joined by a thin line (sparse measurements, e.g. evaluations).
        case lineAndMarkers
        /// A step function: level until the next point's x, then a vertical jump (survival curves).
        case steps
    }

    public var name: String
    public var points: [(x: Double, y: Double)]
    public var style: Style
    public var color: Color?
    /// Points marked with a short vertical tick (censored observations on a survival curve).
    public var ticks: [(x: Double, y: Double)]

    public init(_ name: String, _ points: [(x: Double, y: Double)], style: Style = .line, color: Color? = nil,
                ticks: [(x: Double, y: Double)] = []) {
        (self.name, self.points, self.style, self.color, self.ticks) = (name, points, style, color, ticks)
    }

    public static func line(_ name: String, _ points: [(x: Double, y: Double)], color: Color? = nil) -> Series {
        Series(name, points, style: .line, color: color)
    }

    public static func scatter(_ name: String, _ points: [(x: Double, y: Double)], color: Color? = nil) -> Series {
        Series(name, points, style: .markers, color: color)
    }

    /// One scatter series per distinct label (in sorted order, palette colours), for points coloured by group.
    public static func groups(_ points: [(x: Double, y: Double)], labels: [String]) -> [Series] {
        var byLabel = [String: [(x: Double, y: Double)]]()
        for (point, label) in zip(points, labels) { byLabel[label, default: []].append(point) }
        return byLabel.keys.sorted().enumerated().map { index, label in .scatter(label, byLabel[label] ?? [], color: Color.palette(index)) }
    }

    /// The Kaplan–Meier estimate of survival from `times` and whether each ended in the event
    /// (false: censored), as a step curve from (0, 1) — or from the earliest time, if negative —
    /// with a tick at each censored time. Non-finite times are skipped; S(t) = Π (1 − dᵢ / nᵢ)
    /// over event times tᵢ ≤ t, with dᵢ events among the nᵢ still at risk.
    public static func kaplanMeier(_ name: String, times: [Double], events: [Bool], color: Color? = nil) -> Series {
        let subjects = zip(times, events).filter { $0.0.isFinite }.sorted { $0.0 < $1.0 }
        var points = [(x: min(0, subjects.first?.0 ?? 0), y: 1.0)], ticks = [(x: Double, y: Double)]()
        var survival = 1.0, atRisk = subjects.count, i = 0
        while i < subjects.count {
            let time = subjects[i].0
            var events = 0, censored = 0
            while i < subjects.count && subjects[i].0 == time {
                if subjects[i].1 { events += 1 } else { censored += 1 }
                i += 1
            }
            if events > 0 {
                survival *= 1 - Double(events) / Double(atRisk)
                points.append((time, survival))
            }
            if censored > 0 { ticks.append((time, survival)) }
            atRisk -= events + censored
        }
        if let last = subjects.last?.0, last > points[points.count - 1].x { points.append((last, survival)) }
        return Series(name, points, style: .steps, color: color, ticks: ticks)
    }
}
