import Cohorts
import Foundation

/// A small chart rendered to PNG without a plotting library: axes with labelled ticks, lines
/// or dots per series, a legend and a title, in a built-in 3×5 pixel font (upper case, digits).
public struct Plot {
    public struct Series {
        public var name: String
        public var color: (UInt8, UInt8, UInt8)
        public var points: [(x: Double, y: Double)]
        /// Dots instead of a line (scatter plots, sparse evaluations).
        public var dots: Bool

        public init(name: String, color: (UInt8, UInt8, UInt8), points: [(x: Double, y: Double)], dots: Bool = false) {
            (self.name, self.color, self.points, self.dots) = (name, color, points, dots)
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 800, height = 500

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        (self.title, self.xLabel, self.yLabel, self.series) = (title, xLabel, yLabel, series)
    }

    /// Distinct colours for series.
    public static let palette: [(UInt8, UInt8, UInt8)] = [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
    ]

    public func render() -> RGBImage {
        var canvas = Canvas(width: width, height: height)
        let (left, right, top, bottom) = (80, width - 24, 40, height - 56)
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xs = finite.map(\.x), ys = finite.map(\.y)
        let xRange = Self.padded(xs.min() ?? 0, xs.max() ?? 1, margin: 0)
        let yRange = Self.padded(ys.min() ?? 0, ys.max() ?? 1, margin: 0.05)
        func px(_ x: Double) -> Int { left + Int(((x - xRange.0) / (xRange.1 - xRange.0) * Double(right - left)).rounded()) }
        func py(_ y: Double) -> Int { bottom - Int(((y - yRange.0) / (yRange.1 - yRange.0) * Double(bottom - top)).rounded()) }

        let grid: (UInt8, UInt8, UInt8) = (225, 225, 225), ink: (UInt8, UInt8, UInt8) = (40, 40, 40)
        for i in 0...4 {
            let fraction = Double(i) / 4
            let x = xRange.0 + fraction * (xRange.1 - xRange.0), y = yRange.0 + fraction * (yRange.1 - yRange.0)
            canvas.line(px(x), top, px(x), bottom, grid)
            canvas.line(left, py(y), right, py(y), grid)
            let xText = Self.label(x), yText = Self.label(y)
            canvas.text(xText, x: px(x) - Canvas.textWidth(xText) / 2, y: bottom + 8, ink)
            canvas.text(yText, x: left - 8 - Canvas.textWidth(yText), y: py(y) - 5, ink)
        }
        canvas.line(left, bottom, right, bottom, ink)
        canvas.line(left, top, left, bottom, ink)
        canvas.text(title, x: left, y: 12, ink)
        canvas.text(xLabel, x: (left + right - Canvas.textWidth(xLabel)) / 2, y: bottom + 30, ink)
        canvas.text(yLabel, x: 8, y: top - 18, ink)

        for (index, s) in series.enumerated() {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            if s.dots {
                for p in points { canvas.dot(px(p.x), py(p.y), radius: 3, s.color) }
            } else {
                for (a, b) in zip(points, points.dropFirst()) { canvas.line(px(a.x), py(a.y), px(b.x), py(b.y), s.color, thick: true) }
            }
            let legendY = top + 6 + index * 16
            canvas.dot(right - 150, legendY + 4, radius: 4, s.color)
            canvas.text(s.name, x: right - 140, y: legendY, ink)
        }
        return RGBImage(width: width, height: height, pixels: canvas.pixels)
    }

    public func writePNG(to path: String) throws { try render().writePNG(to: path) }

    private static func padded(_ low: Double, _ high: Double, margin: Double) -> (Double, Double) {
        guard high > low else { return (low - 1, high + 1) }
        let pad = (high - low) * margin
        return (low - pad, high + pad)
    }

    private static func label(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude != 0 && (magnitude >= 1e5 || magnitude < 1e-3) { return String(format: "%.1e", value).uppercased() }
        if magnitude >= 100 { return String(format: "%.0f", value) }
        return String(format: magnitude >= 10 ? "%.1f" : "%.3g", value)
    }
}

/// RGB pixels with the drawing primitives `Plot` needs.
private struct Canvas {
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        (self.width, self.height) = (width, height)
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard (0..<width).contains(x), (0..<height).contains(y) else { return }
        let i = (y * width + x) * 3
        (pixels[i], pixels[i + 1], pixels[i + 2]) = c
    }

    /// Bresenham's line; `thick` adds the pixel below and to the right.
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8), thick: Bool = false) {
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var (x, y, error) = (x0, y0, dx + dy)
        while true {
            set(x, y, c)
            if thick { set(x + 1, y, c); set(x, y + 1, c) }
            if x == x1 && y == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    mutating func dot(_ cx: Int, _ cy: Int, radius: Int, _ c: (UInt8, UInt8, UInt8)) {
        for y in -radius...radius { for x in -radius...radius where x * x + y * y <= radius * radius { set(cx + x, cy + y, c) } }
    }

    static let scale = 2
    static func textWidth(_ text: String) -> Int { text.count * 4 * scale }

    /// Draws `text` (upper-cased) with its top-left corner at (x, y); unknown characters are blank.
    mutating func text(_ text: String, x: Int, y: Int, _ c: (UInt8, UInt8, UInt8)) {
        for (index, character) in text.uppercased().enumerated() {
            guard let rows = Self.glyphs[character] else { continue }
            for (row, bits) in rows.enumerated() {
                for (column, bit) in bits.enumerated() where bit == "#" {
                    for dy in 0..<Self.scale {
                        for dx in 0..<Self.scale {
                            set(x + (index * 4 + column) * Self.scale + dx, y + row * Self.scale + dy, c)
                        }
                    }
                }
            }
        }
    }

    /// 3×5 glyphs, rows top to bottom.
    static let glyphs: [Character: [String]] = {
        let table: [(Character, String)] = [
            ("0", "### #.# #.# #.# ###"), ("1", ".#. ##. .#. .#. ###"), ("2", "### ..# ### #.. ###"), ("3", "### ..# ### ..# ###"),
            ("4", "#.# #.# ### ..# ..#"), ("5", "### #.. ### ..# ###"), ("6", "### #.. ### #.# ###"), ("7", "### ..# ..# ..# ..#"),
            ("8", "### #.# ### #.# ###"), ("9", "### #.# ### ..# ###"), (".", "... ... ... ... .#."), ("-", "... ... ### ... ..."),
            ("+", "... .#. ### .#. ..."), (":", "... .#. ... .#. ..."), ("(", "..# .#. .#. .#. ..#"), (")", "#.. .#. .#. .#. #.."),
            ("/", "..# ..# .#. #.. #.."), ("%", "#.# ..# .#. #.. #.#"), ("_", "... ... ... ... ###"), (",", "... ... ... .#. #.."),
            ("A", ".#. #.# ### #.# #.#"), ("B", "##. #.# ##. #.# ##."), ("C", "### #.. #.. #.. ###"), ("D", "##. #.# #.# #.# ##."),
            ("E", "### #.. ##. #.. ###"), ("F", "### #.. ##. #.. #.."), ("G", "### #.. #.# #.# ###"), ("H", "#.# #.# ### #.# #.#"),
            ("I", "### .#. .#. .#. ###"), ("J", "..# ..# ..# #.# ###"), ("K", "#.# ##. #.. ##. #.#"), ("L", "#.. #.. #.. #.. ###"),
            ("M", "#.# ### ### #.# #.#"), ("N", "##. #.# #.# #.# #.#"), ("O", "### #.# #.# #.# ###"), ("P", "### #.# ### #.. #.."),
            ("Q", "### #.# #.# ### ..#"), ("R", "### #.# ##. #.# #.#"), ("S", "### #.. ### ..# ###"), ("T", "### .#. .#. .#. .#."),
            ("U", "#.# #.# #.# #.# ###"), ("V", "#.# #.# #.# #.# .#."), ("W", "#.# #.# ### ### #.#"), ("X", "#.# #.# .#. #.# #.#"),
            ("Y", "#.# #.# .#. .#. .#."), ("Z", "### ..# .#. #.. ###"),
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.0, $0.1.split(separator: " ").map(String.init)) })
    }()
}
