import Foundation

/// A matrix of values as coloured cells, with row and column labels and a colour bar (e.g. a
/// confusion matrix, gene × cluster means, correlations). Rows may differ in length: missing
/// and non-finite cells are drawn grey. Labels that would overlap are thinned (every k-th shown).
public struct HeatMap: Sendable {
    public var title: String
    /// Rows of values, top row first.
    public var values: [[Double]]
    public var rowLabels: [String]
    public var columnLabels: [String]
    public var xLabel: String
    public var yLabel: String
    /// The colour bar's label (what the values are).
    public var valueLabel: String
    public var colorMap: ColorMap
    /// The values mapped to the ends of the colour map (default: the finite values' range;
    /// symmetric about zero for `.diverging`).
    public var range: ClosedRange<Double>?
    /// Print each value in its cell (when the cells are large enough for it).
    public var showValues: Bool
    /// Text to print in the cells instead of their values (e.g. counts), rows like `values`;
    /// printed when the cells are large enough, whatever `showValues` says.
    public var cellLabels: [[String]]?
    public var width: Double
    public var height: Double

    public init(title: String, values: [[Double]], rowLabels: [String] = [], columnLabels: [String] = [],
                xLabel: String = "", yLabel: String = "", valueLabel: String = "", colorMap: ColorMap = .viridis,
                showValues: Bool = false, width: Double = 800, height: Double = 600) {
        (self.title, self.values, self.rowLabels, self.columnLabels) = (title, values, rowLabels, columnLabels)
        (self.xLabel, self.yLabel, self.valueLabel, self.colorMap) = (xLabel, yLabel, valueLabel, colorMap)
        (self.showValues, self.width, self.height) = (showValues, width, height)
    }

    /// Writes `base.png` and `base.svg` (see `PlotFiles`); throws `PlotError`.
    @discardableResult
    public func write(to base: URL, scale: Double = 2) throws -> PlotFiles { try render(to: base, scale: scale) }

    /// The values at the colour map's two ends.
    var limits: (low: Double, high: Double) {
        var low: Double, high: Double
        if let range {
            (low, high) = (range.lowerBound, range.upperBound)
        } else {
            let finite = values.joined().filter(\.isFinite)
            (low, high) = (finite.min() ?? 0, finite.max() ?? 1)
            if colorMap == .diverging { (low, high) = (-max(abs(low), abs(high)), max(abs(low), abs(high))) }
        }
        // One value (or an infinite range): ± 10 % around it, as an axis would show it.
        guard low < high, low.isFinite, high.isFinite else {
            let around = Ticks.paddedRange([low, high].filter(\.isFinite), padding: 0)
            return (around.lowerBound, around.upperBound)
        }
        return (low, high)
    }

    /// Where `value` lies between the limits (0…1 inside them); halves, so no span overflows.
    func position(_ value: Double, _ limits: (low: Double, high: Double)) -> Double {
        (value / 2 - limits.low / 2) / (limits.high / 2 - limits.low / 2)
    }
}

extension HeatMap: Figure {
    var size: Size { Size(width: width, height: height) }

    func draw(on canvas: Canvas) {
        let margin = Theme.margin, rows = values.count, columns = values.map(\.count).max() ?? 0
        let lineHeight = canvas.measure("Ag", Theme.tick).height
        let titleHeight = title.isEmpty ? 0 : canvas.measure(title, Theme.title).height + 10
        let labelHeight = canvas.measure("Ag", Theme.label).height + 6
        let rowWidth = min(rowLabels.map { canvas.measure($0, Theme.tick).width }.max() ?? 0, width * 0.3)
        let bar = (gap: 18.0, width: 14.0), limits = self.limits
        let barTicks = Ticks.linear(limits.low, limits.high, target: 6), barLabels = Ticks.labels(barTicks)
        let barText = (barLabels.map { canvas.measure($0, Theme.tick).width }.max() ?? 0) + Theme.tickLength + 4
        let barTitle = valueLabel.isEmpty ? 0 : labelHeight

        let left = margin + (yLabel.isEmpty ? 0 : labelHeight) + rowWidth + (rowLabels.isEmpty ? 0 : 6)
        let right = width - margin - barTitle - barText - bar.width - bar.gap
        let gridWidth = max(right - left, 10), cellWidth = gridWidth / Double(max(columns, 1))
        // Column labels lie flat when they fit their cells, else they are turned to read upwards.
        let columnWidths = columnLabels.map { canvas.measure($0, Theme.tick).width }
        let upright = (columnWidths.max() ?? 0) + 4 > cellWidth
        let columnHeight = columnLabels.isEmpty ? 0 : (upright ? min(columnWidths.max() ?? 0, height * 0.3) : lineHeight) + 6
        let top = margin + titleHeight
        let bottom = height - margin - (xLabel.isEmpty ? 0 : labelHeight) - columnHeight
        let grid = Rect(x: left, y: top, width: gridWidth, height: max(bottom - top, 10))
        let cellHeight = grid.height / Double(max(rows, 1))

        let valueFont = Font(size: min(11, cellHeight * 0.45))
        let printValues = (showValues || cellLabels != nil) && cellWidth >= 26 && cellHeight >= 14
        for (r, row) in values.enumerated() {
            for c in 0..<columns {
                let value = c < row.count ? row[c] : .nan
                let cell = Rect(x: grid.x + Double(c) * cellWidth, y: grid.y + Double(r) * cellHeight, width: cellWidth, height: cellHeight)
                guard value.isFinite else { canvas.fill(cell, Theme.missing); continue }
                let color = colorMap.color(position(value, limits))
                // A hairline of overlap hides the seams antialiasing leaves between cells.
                canvas.fill(Rect(x: cell.x, y: cell.y, width: cellWidth + 0.3, height: cellHeight + 0.3), color)
                if printValues {
                    let label = cellLabels.map { r < $0.count && c < $0[r].count ? $0[r][c] : "" }
                        ?? String(format: "%.2g", value).replacingOccurrences(of: "-", with: "−")
                    canvas.text(label, valueFont, at: (cell.x + cellWidth / 2, cell.y + cellHeight / 2),
                                anchor: (0.5, 0.5), color: color.luminance < 0.45 ? Theme.background : Theme.ink, maxWidth: cellWidth - 2)
                }
            }
        }
        let rowEvery = max(Int((lineHeight / cellHeight).rounded(.up)), 1)
        for (r, label) in rowLabels.prefix(rows).enumerated() where r % rowEvery == 0 {
            canvas.text(label, Theme.tick, at: (grid.x - 6, grid.y + (Double(r) + 0.5) * cellHeight), anchor: (1, 0.5), color: Theme.axis, maxWidth: rowWidth)
        }
        let columnEvery = max(Int(((upright ? lineHeight : (columnWidths.max() ?? 0) + 4) / cellWidth).rounded(.up)), 1)
        for (c, label) in columnLabels.prefix(columns).enumerated() where c % columnEvery == 0 {
            let x = grid.x + (Double(c) + 0.5) * cellWidth
            if upright {
                canvas.text(label, Theme.tick, at: (x, grid.bottom + 6), anchor: (1, 0.5), color: Theme.axis, angle: -Double.pi / 2, maxWidth: columnHeight - 6)
            } else {
                canvas.text(label, Theme.tick, at: (x, grid.bottom + 6), anchor: (0.5, 0), color: Theme.axis)
            }
        }
        if !xLabel.isEmpty { canvas.text(xLabel, Theme.label, at: (grid.x + grid.width / 2, height - margin), anchor: (0.5, 1), maxWidth: grid.width) }
        if !yLabel.isEmpty {
            canvas.text(yLabel, Theme.label, at: (margin, grid.y + grid.height / 2), anchor: (0.5, 0), angle: -Double.pi / 2, maxWidth: grid.height)
        }
        if !title.isEmpty { canvas.text(title, Theme.title, at: (grid.x + grid.width / 2, margin), anchor: (0.5, 0), maxWidth: width - 2 * margin) }

        // The colour bar, its ticks and its label.
        let barRect = Rect(x: grid.right + bar.gap, y: grid.y, width: bar.width, height: grid.height)
        let anchors = colorMap.anchors
        canvas.gradient(barRect, stops: anchors.enumerated().map { (Double($0) / Double(anchors.count - 1), $1) })
        canvas.stroke(barRect, Theme.axis, width: 0.8)
        for (tick, label) in zip(barTicks, barLabels) {
            let y = barRect.bottom - position(tick, limits) * barRect.height
            guard y.isFinite else { continue }
            canvas.line(from: (barRect.right, y), to: (barRect.right + Theme.tickLength, y), Theme.axis, width: 1)
            canvas.text(label, Theme.tick, at: (barRect.right + Theme.tickLength + 3, y), anchor: (0, 0.5), color: Theme.axis)
        }
        if !valueLabel.isEmpty {
            canvas.text(valueLabel, Theme.label, at: (width - margin, barRect.y + barRect.height / 2), anchor: (0.5, 1),
                        angle: -Double.pi / 2, maxWidth: barRect.height)
        }
    }
}
