import Foundation

/// Where a chart's parts go, in points: the plot area, its axes and the legend's box.
private struct ChartLayout {
    var plot: Rect
    var x: Axis
    var y: Axis
    var legend: Rect?

    /// The page position of a data point; nil where an axis cannot show it.
    func place(_ point: (x: Double, y: Double)) -> (x: Double, y: Double)? {
        guard let fx = x.fraction(point.x), let fy = y.fraction(point.y) else { return nil }
        return (plot.x + fx * plot.width, plot.bottom - fy * plot.height)
    }
}

extension Chart: Figure {
    var size: Size { Size(width: width, height: height) }

    func draw(on canvas: Canvas) {
        let layout = self.layout(canvas)
        let plot = layout.plot
        drawAxes(layout, canvas)
        canvas.save()
        // Padding keeps the data inside the plot; the clip only guards explicit ranges.
        canvas.clip(plot)
        for marker in markers {
            guard let fx = layout.x.fraction(marker.x) else { continue }
            let x = plot.x + fx * plot.width
            canvas.line(from: (x, plot.y), to: (x, plot.bottom), marker.color, width: 1.3, dash: [5, 4])
        }
        for (index, series) in series.enumerated() where series.style != .markers {
            for run in runs(series, layout) { canvas.polyline(run, color(index), width: series.strokeWidth) }
        }
        for (index, series) in series.enumerated() {
            let color = color(index)
            if series.style == .markers || series.style == .lineAndMarkers {
                for point in series.points.compactMap(layout.place) {
                    canvas.circle(at: point, radius: Theme.markerRadius, color, ring: Theme.background)
                }
            }
            for tick in series.ticks.compactMap(layout.place) {
                canvas.line(from: (tick.x, tick.y - 5), to: (tick.x, tick.y + 5), color, width: 1.3)
            }
        }
        canvas.restore()
        for marker in markers {
            guard let fx = layout.x.fraction(marker.x) else { continue }
            let width = canvas.measure(marker.label, Theme.caption).width
            let x = min(max(plot.x + fx * plot.width, plot.x + width / 2), plot.right - width / 2)
            canvas.text(marker.label, Theme.caption, at: (x, plot.y - 3), anchor: (0.5, 1), color: marker.color)
        }
        if let box = layout.legend { drawLegend(in: box, canvas) }
    }

    private func color(_ index: Int) -> Color { series[index].color ?? Color.palette(index) }

    private var named: [Int] { series.indices.filter { !series[$0].name.isEmpty } }

    // MARK: layout

    private func layout(_ canvas: Canvas) -> ChartLayout {
        let margin = Theme.margin
        let titleHeight = title.isEmpty ? 0 : canvas.measure(title, Theme.title).height + 8
        let markerHeight = markers.isEmpty ? 0 : canvas.measure("0", Theme.caption).height + 4
        let top = margin + titleHeight + markerHeight
        let tickHeight = canvas.measure("0", Theme.tick).height
        let xLabelHeight = xLabel.isEmpty ? 0 : canvas.measure(xLabel, Theme.label).height + 4
        let bottom = height - margin - xLabelHeight - tickHeight - Theme.tickLength - 3

        let ys = series.flatMap { $0.points.map(\.y) + $0.ticks.map(\.y) }
        let xs = series.flatMap { $0.points.map(\.x) + $0.ticks.map(\.x) } + markers.map(\.x)
        let y = Axis(values: ys, range: yRange, log: logY, target: max(2, Int((bottom - top) / 70)))
        let tickWidth = y.labels.map { canvas.measure($0, Theme.tick).width }.max() ?? 0
        let yLabelWidth = yLabel.isEmpty ? 0 : canvas.measure(yLabel, Theme.label).height + 8
        let left = margin + yLabelWidth + tickWidth + Theme.tickLength + 4
        let legendSize = legend == .hidden || named.isEmpty ? nil : self.legendSize(canvas)

        func frame(outside: Bool) -> ChartLayout {
            let right = width - margin - 10 - (outside ? (legendSize?.width ?? 0) + 12 : 0)
            let plot = Rect(x: left, y: top, width: max(right - left, 10), height: max(bottom - top, 10))
            // Fewer x ticks until their labels stand apart.
            var target = max(2, Int(plot.width / 100)), x: Axis
            repeat {
                x = Axis(values: xs, range: xRange, log: false, target: target)
                target -= 1
            } while target >= 2 && !labelsFit(x, length: plot.width, canvas)
            var layout = ChartLayout(plot: plot, x: x, y: y, legend: nil)
            if outside, let legendSize {
                layout.legend = Rect(x: plot.right + 12, y: plot.y, width: legendSize.width, height: legendSize.height)
            }
            return layout
        }

        guard let legendSize else { return frame(outside: false) }
        if legend == .automatic {
            var inside = frame(outside: false)
            if let corner = freeCorner(inside, legendSize) {
                inside.legend = corner
                return inside
            }
        }
        return frame(outside: true)
    }

    private func labelsFit(_ axis: Axis, length: Double, _ canvas: Canvas) -> Bool {
        guard axis.ticks.count >= 2, let a = axis.fraction(axis.ticks[0]), let b = axis.fraction(axis.ticks[1]) else { return true }
        let widest = axis.labels.map { canvas.measure($0, Theme.tick).width }.max() ?? 0
        return widest + 12 <= abs(b - a) * length
    }

    /// The first corner of the plot (top right, top left, bottom right, bottom left) where a
    /// legend of `size` covers no point, line or marker; nil if none is free.
    private func freeCorner(_ layout: ChartLayout, _ size: Size) -> Rect? {
        let plot = layout.plot, inset = 8.0
        guard size.width < plot.width / 2, size.height < plot.height * 0.6 else { return nil }
        var drawn = [(x: Double, y: Double)]()
        for series in series {
            drawn += series.ticks.compactMap(layout.place)
            if series.style == .markers { drawn += series.points.compactMap(layout.place); continue }
            for run in runs(series, layout) {
                drawn.append(run[0])
                // Samples every 4 points along each segment, so a line crossing a corner counts.
                for (a, b) in zip(run, run.dropFirst()) {
                    let pieces = min(Int((hypot(b.x - a.x, b.y - a.y) / 4).rounded(.up)), 400)
                    for k in stride(from: 1, through: pieces, by: 1) {
                        let t = Double(k) / Double(pieces)
                        drawn.append((a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t))
                    }
                }
            }
        }
        for marker in markers {
            guard let fx = layout.x.fraction(marker.x) else { continue }
            drawn += stride(from: plot.y, through: plot.bottom, by: 4).map { (plot.x + fx * plot.width, $0) }
        }
        let xs = [plot.right - inset - size.width, plot.x + inset], ys = [plot.y + inset, plot.bottom - inset - size.height]
        for y in ys {
            for x in xs {
                let box = Rect(x: x, y: y, width: size.width, height: size.height)
                let guarded = Rect(x: box.x - 4, y: box.y - 4, width: box.width + 8, height: box.height + 8)
                if !drawn.contains(where: guarded.contains) { return box }
            }
        }
        return nil
    }

    /// The page points of a series' line, split where a point cannot be shown; a step series
    /// gets its corners (level to the next x, then the jump).
    private func runs(_ series: Series, _ layout: ChartLayout) -> [[(x: Double, y: Double)]] {
        var runs = [[(x: Double, y: Double)]](), current = [(x: Double, y: Double)]()
        var previous: (x: Double, y: Double)?
        for point in series.points {
            guard let placed = layout.place(point) else {
                if current.count > 1 { runs.append(current) }
                (current, previous) = ([], nil)
                continue
            }
            if series.style == .steps, let previous, let corner = layout.place((point.x, previous.y)) { current.append(corner) }
            current.append(placed)
            previous = point
        }
        if current.count > 1 { runs.append(current) }
        return runs
    }

    // MARK: axes and legend

    private func drawAxes(_ layout: ChartLayout, _ canvas: Canvas) {
        let plot = layout.plot, length = Theme.tickLength
        let xTicks = zip(layout.x.ticks, layout.x.labels).compactMap { tick, label in layout.x.fraction(tick).map { (plot.x + $0 * plot.width, label) } }
        let yTicks = zip(layout.y.ticks, layout.y.labels).compactMap { tick, label in layout.y.fraction(tick).map { (plot.bottom - $0 * plot.height, label) } }
        for (x, _) in xTicks { canvas.line(from: (x, plot.y), to: (x, plot.bottom), Theme.grid, width: 0.8) }
        for (y, _) in yTicks { canvas.line(from: (plot.x, y), to: (plot.right, y), Theme.grid, width: 0.8) }
        // Left and bottom spines only.
        canvas.line(from: (plot.x, plot.y), to: (plot.x, plot.bottom + 0.5), Theme.axis, width: 1)
        canvas.line(from: (plot.x - 0.5, plot.bottom), to: (plot.right, plot.bottom), Theme.axis, width: 1)
        for (x, label) in xTicks {
            canvas.line(from: (x, plot.bottom), to: (x, plot.bottom + length), Theme.axis, width: 1)
            canvas.text(label, Theme.tick, at: (x, plot.bottom + length + 2), anchor: (0.5, 0), color: Theme.axis)
        }
        for (y, label) in yTicks {
            canvas.line(from: (plot.x - length, y), to: (plot.x, y), Theme.axis, width: 1)
            canvas.text(label, Theme.tick, at: (plot.x - length - 3, y), anchor: (1, 0.5), color: Theme.axis)
        }
        let margin = Theme.margin
        if !xLabel.isEmpty {
            canvas.text(xLabel, Theme.label, at: (plot.x + plot.width / 2, height - margin), anchor: (0.5, 1), maxWidth: plot.width)
        }
        if !yLabel.isEmpty {
            // Rotated to read upwards, centred on the plot and no longer than it: it cannot reach the title.
            canvas.text(yLabel, Theme.label, at: (margin, plot.y + plot.height / 2), anchor: (0.5, 0), angle: -Double.pi / 2, maxWidth: plot.height)
        }
        if !title.isEmpty {
            let center = plot.x + plot.width / 2, room = 2 * min(center - margin, width - margin - center)
            canvas.text(title, Theme.title, at: (center, margin), anchor: (0.5, 0), maxWidth: max(room, 40))
        }
    }

    private static let swatch = 22.0, padding = 8.0, textLimit = 220.0

    private func legendSize(_ canvas: Canvas) -> Size {
        let texts = named.map { canvas.measure(series[$0].name, Theme.legend, maxWidth: Self.textLimit) }
        let rowHeight = (texts.map(\.height).max() ?? 14) + 2
        let textWidth = texts.map(\.width).max() ?? 0
        return Size(width: 2 * Self.padding + Self.swatch + 6 + textWidth, height: 2 * Self.padding + rowHeight * Double(texts.count) - 2)
    }

    private func drawLegend(in box: Rect, _ canvas: Canvas) {
        canvas.fill(box, Theme.background, alpha: 0.9)
        canvas.stroke(box, Theme.grid, width: 0.8)
        let rowHeight = (box.height - 2 * Self.padding + 2) / Double(max(named.count, 1))
        for (row, index) in named.enumerated() {
            let series = series[index], color = color(index)
            let middle = box.y + Self.padding + rowHeight * Double(row) + (rowHeight - 2) / 2
            let start = box.x + Self.padding, end = start + Self.swatch
            if series.style != .markers { canvas.line(from: (start, middle), to: (end, middle), color, width: series.strokeWidth) }
            if series.style == .markers || series.style == .lineAndMarkers {
                canvas.circle(at: ((start + end) / 2, middle), radius: Theme.markerRadius, color, ring: Theme.background)
            }
            canvas.text(series.name, Theme.legend, at: (end + 6, middle), anchor: (0, 0.5), maxWidth: Self.textLimit)
        }
    }
}

private extension Series {
    /// Markers joined by a line get a thinner one: the markers carry the data.
    var strokeWidth: Double { style == .lineAndMarkers ? 1.2 : Theme.lineWidth }
}
