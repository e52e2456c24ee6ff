import CCairo
import Foundation
import Plotting
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A PNG read back through cairo, to check what a figure drew.
struct Bitmap {
    let width: Int, height: Int
    /// 0xRRGGBB per pixel, rows top first.
    let pixels: [UInt32]

    init(png path: String) throws {
        guard let surface = cairo_image_surface_create_from_png(path) else { throw BitmapError(path: path, reason: "no surface") }
        defer { cairo_surface_destroy(surface) }
        guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS, let data = cairo_image_surface_get_data(surface) else {
            throw BitmapError(path: path, reason: String(cString: cairo_status_to_string(cairo_surface_status(surface))))
        }
        width = Int(cairo_image_surface_get_width(surface))
        height = Int(cairo_image_surface_get_height(surface))
        let stride = Int(cairo_image_surface_get_stride(surface))
        var pixels = [UInt32](repeating: 0, count: width * height)
        for y in 0..<height {
            let row = UnsafeRawPointer(data + y * stride).assumingMemoryBound(to: UInt32.self)
            for x in 0..<width { pixels[y * width + x] = row[x] & 0xFF_FFFF }
        }
        self.pixels = pixels
    }

    /// The pixels within `tolerance` (per channel) of `hex`.
    func matching(_ hex: UInt32, tolerance: Int = 3) -> [(x: Int, y: Int)] {
        pixels.indices.compactMap { i in Self.close(pixels[i], hex, tolerance) ? (i % width, i / width) : nil }
    }

    /// Pixels that are not white.
    var inked: Int { pixels.filter { $0 != 0xFF_FFFF }.count }

    static func close(_ a: UInt32, _ b: UInt32, _ tolerance: Int) -> Bool {
        [16, 8, 0].allSatisfy { abs(Int(a >> UInt32($0) & 0xFF) - Int(b >> UInt32($0) & 0xFF)) <= tolerance }
    }
}

struct BitmapError: Error {
    let path: String, reason: String
}

/// A fresh temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plotting-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    return directory
}

/// Parses the SVG as XML; returns its root element's attributes and how many glyph symbols it defines.
func parseSVG(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> (root: [String: String], glyphs: Int) {
    final class Reader: NSObject, XMLParserDelegate {
        var root: [String: String]?
        var glyphs = 0
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
            if root == nil { root = attributes.merging(["element": name]) { a, _ in a } }
            if name == "symbol" || name == "g", attributes["id"]?.hasPrefix("glyph") == true { glyphs += 1 }
        }
    }
    let parser = try XCTUnwrap(XMLParser(contentsOf: url), file: file, line: line)
    let reader = Reader()
    parser.delegate = reader
    XCTAssertTrue(parser.parse(), "\(url.lastPathComponent) is not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
    return (try XCTUnwrap(reader.root, file: file, line: line), reader.glyphs)
}
