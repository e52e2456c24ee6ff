import CImageCodecs
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (the layout of `/tiles/pixels`).
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        // Decoders, crops and the renderer size pixels from width and height; files are checked before.
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)×\(height)×3")
        (self.width, self.height, self.pixels) = (width, height, pixels)
    }

    public init(width: Int, height: Int, fill: UInt8 = 0) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: fill, count: width * height * 3))
    }

    /// Reads a PNG or JPEG file (told apart by their signatures, whatever the extension).
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CohortError(file: path, "cannot be read (missing or not readable)")
        }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            self = try Self.decodePNG(bytes, path)
        } else if bytes.starts(with: [0xFF, 0xD8]) {
            self = try Self.decodeJPEG(bytes, path)
        } else {
            throw CohortError(file: path, "is neither PNG nor JPEG (first bytes \(bytes.prefix(4).map { String(format: "%02x", $0) }.joined()))")
        }
    }

    private static func decodePNG(_ bytes: [UInt8], _ path: String) throws -> RGBImage {
        var image = cimagecodecs_png_image()
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_memory(&image, bytes, bytes.count) != 0 else {
            throw CohortError(file: path, "is not a readable PNG: \(message(of: &image))")
        }
        image.format = cimagecodecs_png_format_rgb()
        try checkSize(Int(image.width), Int(image.height), "PNG", path)
        var pixels = [UInt8](repeating: 0, count: Int(image.width) * Int(image.height) * 3)
        guard png_image_finish_read(&image, nil, &pixels, 0, nil) != 0 else {
            throw CohortError(file: path, "is a damaged PNG: \(message(of: &image))")
        }
        return RGBImage(width: Int(image.width), height: Int(image.height), pixels: pixels)
    }

    /// The most pixels a decoded picture may have: 2^28 (768 MiB of RGB), checked against the
    /// header before the pixels are allocated. Larger scans are slides, read in regions by OpenSlide.
    public static let maximumPixels = 1 << 28

    private static func checkSize(_ width: Int, _ height: Int, _ format: String, _ path: String) throws {
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maximumPixels else {
            throw CohortError(file: path, "\(format) declares \(width)×\(height) pixels, more than the \(maximumPixels) (2^28) this program decodes: "
                + "downscale the image, or tile it as a slide (OpenSlide reads it in regions)")
        }
    }

    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func decodeJPEG(_ bytes: [UInt8], _ path: String) throws -> RGBImage {
        guard let handle = tjInitDecompress() else { throw CohortError(file: path, "TurboJPEG could not start") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        var input = bytes
        guard tjDecompressHeader3(handle, &input, UInt(bytes.count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw CohortError(file: path, "is not a readable JPEG: \(String(cString: tjGetErrorStr2(handle)))")
        }
        try checkSize(Int(width), Int(height), "JPEG", path)
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        guard tjDecompress2(handle, &input, UInt(bytes.count), &pixels, width, 0, height, Int32(TJPF_RGB.rawValue), 0) == 0 else {
            throw CohortError(file: path, "is a damaged JPEG: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }

    /// Writes a PNG file (atomically: a temporary file renamed into place).
    public func writePNG(to path: String) throws {
        var image = cimagecodecs_png_image()
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = cimagecodecs_png_format_rgb()
        var size = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, pixels, 0, nil) != 0 else {
            throw CohortError(file: path, "PNG encoding failed: \(Self.message(of: &image))")
        }
        var encoded = [UInt8](repeating: 0, count: size)
        guard png_image_write_to_memory(&image, &encoded, &size, 0, pixels, 0, nil) != 0 else {
            throw CohortError(file: path, "PNG encoding failed: \(Self.message(of: &image))")
        }
        try Data(encoded.prefix(size)).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The `width × height` region at (x, y); parts outside the image are white (slide background).
    public func crop(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        var out = RGBImage(width: w, height: h, fill: 255)
        for row in 0..<h where (0..<height).contains(y + row) {
            let columns = max(0, -x)..<min(w, width - x)
            guard !columns.isEmpty else { continue }
            let source = ((y + row) * width + x + columns.lowerBound) * 3, target = (row * w + columns.lowerBound) * 3
            out.pixels.replaceSubrange(target..<target + columns.count * 3, with: pixels[source..<source + columns.count * 3])
        }
        return out
    }

    /// Resized to `w × h` by area averaging (box filter) when shrinking, nearest pixel when growing.
    public func resized(width w: Int, height h: Int) -> RGBImage {
        if w == width && h == height { return self }
        var out = RGBImage(width: w, height: h)
        let sx = Double(width) / Double(w), sy = Double(height) / Double(h)
        for oy in 0..<h {
            let y0 = Int(Double(oy) * sy), y1 = max(y0 + 1, min(height, Int(Double(oy + 1) * sy)))
            for ox in 0..<w {
                let x0 = Int(Double(ox) * sx), x1 = max(x0 + 1, min(width, Int(Double(ox + 1) * sx)))
                var sum = (0, 0, 0)
                for y in y0..<y1 {
                    for x in x0..<x1 {
                        let i = (y * width + x) * 3
                        sum.0 += Int(pixels[i]); sum.1 += Int(pixels[i + 1]); sum.2 += Int(pixels[i + 2])
                    }
                }
                let n = (y1 - y0) * (x1 - x0), o = (oy * w + ox) * 3
                out.pixels[o] = UInt8((sum.0 + n / 2) / n)
                out.pixels[o + 1] = UInt8((sum.1 + n / 2) / n)
                out.pixels[o + 2] = UInt8((sum.2 + n / 2) / n)
            }
        }
        return out
    }
}
