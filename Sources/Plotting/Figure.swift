import CCairo
import Foundation

/// Why a figure could not be written.
public enum PlotError: Error, CustomStringConvertible, Equatable {
    /// A cairo call failed (`call` names it; `message` is cairo's) while writing `path`.
    case cairo(call: String, message: String, path: String)
    /// The figure's size is not finite and positive, or its PNG would exceed cairo's 32767 pixels a side.
    case size(width: Double, height: Double)
    /// An image tile's buffer does not hold width × height × 3 bytes (or a side is not positive).
    case pixels(tile: Int, bytes: Int, width: Int, height: Int)

    public var description: String {
        switch self {
        case let .cairo(call, message, path): "\(call) failed writing \(path): \(message)"
        case let .size(width, height): "a figure of \(width) × \(height) points cannot be drawn (each side must be positive and, times the scale, at most 32767 pixels)"
        case let .pixels(tile, bytes, width, height): "image \(tile): \(bytes) bytes for \(width) × \(height) RGB pixels (needs \(width * height * 3))"
        }
    }

    static func message(_ status: cairo_status_t) -> String {
        cairo_status_to_string(status).map { String(cString: $0) } ?? "status \(status.rawValue)"
    }
}

/// The two files of one figure, side by side: a PNG to look at, an SVG to put in a talk or paper.
public struct PlotFiles: Sendable, Equatable {
    public let png: URL
    public let svg: URL
}

/// What every figure type does: says its size in points and draws itself.
protocol Figure {
    var size: Size { get }
    func draw(on canvas: Canvas)
}

extension Figure {
    /// Writes `base.png` (`scale` pixels per point) and `base.svg`. A `.png`, `.svg` or `.pdf`
    /// extension on `base` is dropped first, so `loss_curve` and `loss_curve.png` name the same pair.
    func render(to base: URL, scale: Double) throws -> PlotFiles {
        let stem = ["png", "svg", "pdf"].contains(base.pathExtension.lowercased()) ? base.deletingPathExtension() : base
        let files = PlotFiles(png: stem.appendingPathExtension("png"), svg: stem.appendingPathExtension("svg"))
        let size = self.size, pixels = (width: size.width * scale, height: size.height * scale)
        guard size.width.isFinite, size.height.isFinite, size.width >= 1, size.height >= 1, scale.isFinite, scale > 0,
              pixels.width >= 1, pixels.height >= 1, pixels.width <= 32767, pixels.height <= 32767 else {
            throw PlotError.size(width: size.width, height: size.height)
        }
        try writePNG(files.png.path, width: Int32(pixels.width.rounded(.up)), height: Int32(pixels.height.rounded(.up)), scale: scale)
        try writeSVG(files.svg.path, size: size)
        return files
    }

    private func writePNG(_ path: String, width: Int32, height: Int32, scale: Double) throws {
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height) else {
            throw PlotError.cairo(call: "cairo_image_surface_create", message: "no surface", path: path)
        }
        defer { cairo_surface_destroy(surface) }
        try check("cairo_image_surface_create", cairo_surface_status(surface), path)
        do {
            let canvas = Canvas(surface: surface, path: path)
            canvas.scale(scale)
            canvas.fill(Rect(x: 0, y: 0, width: size.width, height: size.height), Theme.background)
            draw(on: canvas)
            try canvas.finish()
        }
        cairo_surface_flush(surface)
        try check("cairo_surface_write_to_png", cairo_surface_write_to_png(surface, path), path)
    }

    private func writeSVG(_ path: String, size: Size) throws {
        guard let surface = cairo_svg_surface_create(path, size.width, size.height) else {
            throw PlotError.cairo(call: "cairo_svg_surface_create", message: "no surface", path: path)
        }
        defer { cairo_surface_destroy(surface) }
        try check("cairo_svg_surface_create", cairo_surface_status(surface), path)
        cairo_svg_surface_set_document_unit(surface, CAIRO_SVG_UNIT_PT)
        do {
            let canvas = Canvas(surface: surface, path: path)
            canvas.fill(Rect(x: 0, y: 0, width: size.width, height: size.height), Theme.background)
            draw(on: canvas)
            try canvas.finish()
        }
        // The SVG is written when the surface finishes; a full disk shows up here.
        cairo_surface_finish(surface)
        try check("cairo_surface_finish", cairo_surface_status(surface), path)
    }

    private func check(_ call: String, _ status: cairo_status_t, _ path: String) throws {
        guard status == CAIRO_STATUS_SUCCESS else { throw PlotError.cairo(call: call, message: PlotError.message(status), path: path) }
    }
}
