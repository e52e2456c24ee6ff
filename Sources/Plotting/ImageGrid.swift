import Foundation

/// RGB images in a grid of cells, each with a caption below it (contact sheets of tiles,
/// generated images beside real ones). Each image is scaled to fit its cell, keeping its aspect;
/// enlarged images keep sharp pixels. The figure's size follows from the cells.
public struct ImageGrid: Sendable {
    /// One cell: `pixels` holds `height` rows of `width` × 3 bytes (R, G, B), top row first.
    public struct Tile: Sendable {
        public var width: Int
        public var height: Int
        public var pixels: [UInt8]
        public var caption: String

        public init(width: Int, height: Int, pixels: [UInt8], caption: String = "") {
            (self.width, self.height, self.pixels, self.caption) = (width, height, pixels, caption)
        }
    }

    public var title: String
    public var tiles: [Tile]
    /// Cells per row (at most the number of tiles).
    public var columns: Int
    /// A cell's side in points.
    public var cellSize: Double

    public init(title: String, tiles: [Tile], columns: Int = 8, cellSize: Double = 96) {
        (self.title, self.tiles, self.columns, self.cellSize) = (title, tiles, columns, cellSize)
    }

    /// Writes `base.png` and `base.svg` (see `PlotFiles`); throws `PlotError.pixels` for a tile
    /// whose buffer does not match its size, `PlotError.size` if the grid is too large for a PNG.
    @discardableResult
    public func write(to base: URL, scale: Double = 2) throws -> PlotFiles {
        for (index, tile) in tiles.enumerated() {
            let (count, overflow) = tile.width.multipliedReportingOverflow(by: tile.height)
            guard tile.width > 0, tile.height > 0, !overflow, count <= Int.max / 3, tile.pixels.count == count * 3 else {
                throw PlotError.pixels(tile: index, bytes: tile.pixels.count, width: tile.width, height: tile.height)
            }
        }
        return try render(to: base, scale: scale)
    }

    private static let gap = 10.0

    private var grid: (columns: Int, rows: Int) {
        let columns = min(max(columns, 1), max(tiles.count, 1))
        return (columns, (tiles.count + columns - 1) / columns)
    }

    private var captioned: Bool { tiles.contains { !$0.caption.isEmpty } }

    /// Heights of the title's and a caption's line (the fonts' line heights, fixed here so that
    /// the size is known before a canvas exists).
    private var titleHeight: Double { title.isEmpty ? 0 : Theme.title.size * 1.25 + 10 }
    private var captionHeight: Double { captioned ? Theme.caption.size * 1.25 + 4 : 0 }
}

extension ImageGrid: Figure {
    var size: Size {
        let (columns, rows) = grid, cell = max(cellSize, 1)
        let width = 2 * Theme.margin + Double(columns) * cell + Double(columns - 1) * Self.gap
        let height = 2 * Theme.margin + titleHeight + Double(max(rows, 1)) * (cell + captionHeight) + Double(max(rows - 1, 0)) * Self.gap
        return Size(width: max(width, 240), height: height)
    }

    func draw(on canvas: Canvas) {
        let margin = Theme.margin, cell = max(cellSize, 1), size = self.size
        if !title.isEmpty { canvas.text(title, Theme.title, at: (margin, margin), maxWidth: size.width - 2 * margin) }
        let top = margin + titleHeight
        if tiles.isEmpty {
            canvas.text("no images", Theme.caption, at: (margin, top), color: Theme.muted)
            return
        }
        for (index, tile) in tiles.enumerated() {
            let column = index % grid.columns, row = index / grid.columns
            let x = margin + Double(column) * (cell + Self.gap), y = top + Double(row) * (cell + captionHeight + Self.gap)
            let fit = cell / Double(max(tile.width, tile.height))
            let (w, h) = (Double(tile.width) * fit, Double(tile.height) * fit)
            canvas.image(width: tile.width, height: tile.height, pixels: tile.pixels, in: Rect(x: x + (cell - w) / 2, y: y + (cell - h) / 2, width: w, height: h))
            if !tile.caption.isEmpty {
                canvas.text(tile.caption, Theme.caption, at: (x + cell / 2, y + cell + 3), anchor: (0.5, 0), maxWidth: cell + Self.gap - 2)
            }
        }
    }
}
