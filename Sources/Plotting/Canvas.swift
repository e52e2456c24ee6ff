import CCairo
import Foundation

/// A cairo context with the few primitives the figures need: paths, rectangles, circles,
/// text set by Pango, and RGB images. Coordinates are points, y downwards.
///
/// cairo errors are sticky: after one failure every later call on the context does nothing.
/// So drawing does not throw; each primitive notes the first call that left the context (or a
/// surface it made) in error, and `finish()` throws it as `PlotError.cairo` with that call's name.
final class Canvas {
    private let context: OpaquePointer  // cairo_t *
    private let options: OpaquePointer  // cairo_font_options_t *
    private var failure: (call: String, status: cairo_status_t)?
    private let path: String

    /// A context on `surface` (which it references, so the caller may release its own).
    init(surface: OpaquePointer, path: String) {
        context = cairo_create(surface)
        self.path = path
        // Unhinted metrics: text measures the same on the PNG and on the SVG, so both lay out alike.
        options = cairo_font_options_create()
        cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF)
        cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE)
        cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY)
        note("cairo_create", cairo_status(context))
        note("cairo_font_options_create", cairo_font_options_status(options))
        cairo_set_line_join(context, CAIRO_LINE_JOIN_ROUND)
        cairo_set_line_cap(context, CAIRO_LINE_CAP_BUTT)
    }

    deinit {
        cairo_font_options_destroy(options)
        cairo_destroy(context)
    }

    /// Throws the first failure noted while drawing.
    func finish() throws {
        note("cairo drawing", cairo_status(context))
        if let failure { throw PlotError.cairo(call: failure.call, message: PlotError.message(failure.status), path: path) }
    }

    private func note(_ call: String, _ status: cairo_status_t) {
        if failure == nil, status != CAIRO_STATUS_SUCCESS { failure = (call, status) }
    }

    private func check(_ call: String) { note(call, cairo_status(context)) }

    // MARK: state

    func scale(_ factor: Double) { cairo_scale(context, factor, factor); check("cairo_scale") }
    func save() { cairo_save(context) }
    func restore() { cairo_restore(context); check("cairo_restore") }

    /// Limits drawing to `rect` until the matching `restore()`.
    func clip(_ rect: Rect) {
        cairo_rectangle(context, rect.x, rect.y, rect.width, rect.height)
        cairo_clip(context)
        check("cairo_clip")
    }

    private func setColor(_ color: Color, alpha: Double = 1) {
        cairo_set_source_rgba(context, color.red, color.green, color.blue, alpha)
    }

    // MARK: shapes

    func fill(_ rect: Rect, _ color: Color, alpha: Double = 1) {
        setColor(color, alpha: alpha)
        cairo_rectangle(context, rect.x, rect.y, rect.width, rect.height)
        cairo_fill(context)
        check("cairo_fill")
    }

    func stroke(_ rect: Rect, _ color: Color, width: Double) {
        setColor(color)
        cairo_set_line_width(context, width)
        cairo_set_dash(context, nil, 0, 0)
        cairo_rectangle(context, rect.x, rect.y, rect.width, rect.height)
        cairo_stroke(context)
        check("cairo_stroke")
    }

    /// A line through `points`; `dash` gives on/off lengths in points (empty: solid).
    func polyline(_ points: [(x: Double, y: Double)], _ color: Color, width: Double, dash: [Double] = [], alpha: Double = 1) {
        guard let first = points.first else { return }
        setColor(color, alpha: alpha)
        cairo_set_line_width(context, width)
        dash.withUnsafeBufferPointer { cairo_set_dash(context, $0.baseAddress, Int32($0.count), 0) }
        cairo_move_to(context, first.x, first.y)
        for point in points.dropFirst() { cairo_line_to(context, point.x, point.y) }
        cairo_stroke(context)
        check("cairo_stroke")
    }

    func line(from a: (x: Double, y: Double), to b: (x: Double, y: Double), _ color: Color, width: Double, dash: [Double] = []) {
        polyline([a, b], color, width: width, dash: dash)
    }

    /// A filled disc, with an optional ring (drawn outside-in: the ring separates overlapping markers).
    func circle(at center: (x: Double, y: Double), radius: Double, _ color: Color, ring: Color? = nil, ringWidth: Double = 0.8) {
        cairo_new_sub_path(context)
        cairo_arc(context, center.x, center.y, radius, 0, 2 * Double.pi)
        setColor(color)
        if let ring {
            cairo_fill_preserve(context)
            setColor(ring)
            cairo_set_line_width(context, ringWidth)
            cairo_set_dash(context, nil, 0, 0)
            cairo_stroke(context)
        } else {
            cairo_fill(context)
        }
        check("cairo_arc")
    }

    /// Fills `rect` with a vertical gradient through `stops` (offset 0 at the bottom, 1 at the top).
    func gradient(_ rect: Rect, stops: [(offset: Double, color: Color)]) {
        let pattern = cairo_pattern_create_linear(rect.x, rect.y + rect.height, rect.x, rect.y)
        defer { cairo_pattern_destroy(pattern) }
        note("cairo_pattern_create_linear", cairo_pattern_status(pattern))
        for stop in stops { cairo_pattern_add_color_stop_rgb(pattern, stop.offset, stop.color.red, stop.color.green, stop.color.blue) }
        cairo_set_source(context, pattern)
        cairo_rectangle(context, rect.x, rect.y, rect.width, rect.height)
        cairo_fill(context)
        check("cairo_fill")
    }

    // MARK: images

    /// Draws an RGB image (`pixels`: rows of width × 3 bytes, top row first; the caller checked
    /// the count) scaled into `rect`. Enlarged images keep sharp pixels; reduced ones are filtered.
    func image(width: Int, height: Int, pixels: [UInt8], in rect: Rect) {
        let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(clamping: width), Int32(clamping: height))
        defer { cairo_surface_destroy(surface) }
        note("cairo_image_surface_create", cairo_surface_status(surface))
        guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS, let data = cairo_image_surface_get_data(surface),
              pixels.count >= width * height * 3 else { return }
        cairo_surface_flush(surface)
        let stride = Int(cairo_image_surface_get_stride(surface))
        pixels.withUnsafeBufferPointer { source in
            for y in 0..<height {
                // RGB24 stores each pixel as a native-endian 32-bit 0x00RRGGBB.
                let row = UnsafeMutableRawPointer(data + y * stride).assumingMemoryBound(to: UInt32.self)
                for x in 0..<width {
                    let i = (y * width + x) * 3
                    row[x] = UInt32(source[i]) << 16 | UInt32(source[i + 1]) << 8 | UInt32(source[i + 2])
                }
            }
        }
        cairo_surface_mark_dirty(surface)
        save()
        cairo_rectangle(context, rect.x, rect.y, rect.width, rect.height)
        cairo_clip(context)
        cairo_translate(context, rect.x, rect.y)
        cairo_scale(context, rect.width / Double(max(width, 1)), rect.height / Double(max(height, 1)))
        cairo_set_source_surface(context, surface, 0, 0)
        let enlarged = rect.width >= Double(width)
        cairo_pattern_set_filter(cairo_get_source(context), enlarged ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD)
        cairo_paint(context)
        check("cairo_paint")
        restore()
    }

    // MARK: text

    /// The logical size of `text` set in `font` (at most `maxWidth` wide when given: longer text is ellipsised).
    func measure(_ text: String, _ font: Font, maxWidth: Double? = nil) -> Size {
        withLayout(text, font, maxWidth: maxWidth, otherwise: Size(width: 0, height: font.size)) { size($0) }
    }

    /// Sets `text` with its anchor point at `at`: `anchor` is the point of the text's box that lands
    /// there, as fractions of its width and height ((0, 0) top left, (0.5, 1) bottom centre).
    /// `angle` rotates about that point (radians, clockwise on the page; −π/2 reads upwards).
    @discardableResult
    func text(_ text: String, _ font: Font, at point: (x: Double, y: Double), anchor: (x: Double, y: Double) = (0, 0),
              color: Color = Theme.ink, angle: Double = 0, maxWidth: Double? = nil) -> Size {
        withLayout(text, font, maxWidth: maxWidth, otherwise: Size(width: 0, height: font.size)) { layout in
            let box = size(layout)
            save()
            cairo_translate(context, point.x, point.y)
            cairo_rotate(context, angle)
            cairo_move_to(context, -anchor.x * box.width, -anchor.y * box.height)
            setColor(color)
            pango_cairo_update_layout(context, layout)
            pango_cairo_show_layout(context, layout)
            check("pango_cairo_show_layout")
            restore()
            return box
        }
    }

    private func size(_ layout: OpaquePointer) -> Size {
        var width: Int32 = 0, height: Int32 = 0
        pango_layout_get_size(layout, &width, &height)
        let scale = Double(ccairo_pango_scale())
        return Size(width: Double(width) / scale, height: Double(height) / scale)
    }

    /// Runs `body` on a Pango layout of `text`; `otherwise` if Pango could not make one.
    private func withLayout<T>(_ text: String, _ font: Font, maxWidth: Double?, otherwise: T, _ body: (OpaquePointer) -> T) -> T {
        guard let layout = pango_cairo_create_layout(context) else {
            note("pango_cairo_create_layout", CAIRO_STATUS_NO_MEMORY)
            return otherwise
        }
        defer { ccairo_layout_release(layout) }
        pango_cairo_context_set_font_options(pango_layout_get_context(layout), options)
        pango_layout_context_changed(layout)
        guard let description = pango_font_description_new() else {
            note("pango_font_description_new", CAIRO_STATUS_NO_MEMORY)
            return otherwise
        }
        defer { pango_font_description_free(description) }
        pango_font_description_set_family(description, Theme.fontFamily)
        pango_font_description_set_weight(description, font.bold ? PANGO_WEIGHT_SEMIBOLD : PANGO_WEIGHT_NORMAL)
        pango_font_description_set_absolute_size(description, font.size * Double(ccairo_pango_scale()))
        pango_layout_set_font_description(layout, description)
        if let maxWidth {
            pango_layout_set_width(layout, Int32(clamping: Int(max(maxWidth, 1) * Double(ccairo_pango_scale()))))
            pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END)
        }
        pango_layout_set_text(layout, text, -1)
        return body(layout)
    }
}

/// A point size and weight of the figures' one family (`Theme.fontFamily`).
struct Font {
    var size: Double
    var bold = false
}

struct Size {
    var width: Double, height: Double
}

struct Rect {
    var x: Double, y: Double, width: Double, height: Double
    var right: Double { x + width }
    var bottom: Double { y + height }

    func contains(_ point: (x: Double, y: Double)) -> Bool {
        point.x >= x && point.x <= right && point.y >= y && point.y <= bottom
    }
}
