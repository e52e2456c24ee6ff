import COpenSlide
import Foundation

/// A whole-slide image or a plain picture that tiles can be cut from.
public protocol SlideSource {
    var path: String { get }
    /// Full-resolution size in pixels.
    var width: Int { get }
    var height: Int { get }
    /// Objective magnification of the full-resolution level, if the file records it.
    var objectivePower: Double? { get }
    /// The region at full-resolution coordinates (x, y, width, height), shrunk by `downsample`,
    /// and the pyramid level it was read from.
    func region(x: Int, y: Int, width: Int, height: Int, downsample: Double) throws -> (image: RGBImage, level: Int)
}

/// A slide read through OpenSlide (Aperio SVS, Hamamatsu, Leica, MIRAX, generic tiled TIFF, …).
public final class OpenSlideSource: SlideSource {
    public let path: String
    public let width: Int, height: Int
    public let objectivePower: Double?
    private let handle: OpaquePointer

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw CohortError(file: path, "slide not found") }
        guard let handle = openslide_open(path) else {
            throw CohortError(file: path, "OpenSlide does not recognise this file as a slide (supported: SVS, NDPI, SCN, MRXS, TIFF, …)")
        }
        if let message = openslide_get_error(handle) {
            openslide_close(handle)
            throw CohortError(file: path, "OpenSlide cannot read it: \(String(cString: message))")
        }
        self.path = path
        self.handle = handle
        var w: Int64 = 0, h: Int64 = 0
        openslide_get_level0_dimensions(handle, &w, &h)
        (width, height) = (Int(w), Int(h))
        objectivePower = openslide_get_property_value(handle, copenslide_property_objective_power()).flatMap { Double(String(cString: $0)) }
    }

    deinit { openslide_close(handle) }

    public func region(x: Int, y: Int, width w: Int, height h: Int, downsample: Double) throws -> (image: RGBImage, level: Int) {
        let level = openslide_get_best_level_for_downsample(handle, downsample)
        let levelDownsample = openslide_get_level_downsample(handle, level)
        let lw = max(1, Int((Double(w) / levelDownsample).rounded())), lh = max(1, Int((Double(h) / levelDownsample).rounded()))
        var argb = [UInt32](repeating: 0, count: lw * lh)
        openslide_read_region(handle, &argb, Int64(x), Int64(y), level, Int64(lw), Int64(lh))
        if let message = openslide_get_error(handle) {
            throw CohortError(file: path, "reading region (\(x), \(y)) \(w)×\(h) failed: \(String(cString: message))")
        }
        // Premultiplied ARGB → RGB over a white background (transparent = outside the scanned area).
        var pixels = [UInt8](repeating: 255, count: lw * lh * 3)
        for i in 0..<argb.count {
            let p = argb[i], alpha = p >> 24
            guard alpha > 0 else { continue }
            let white = 255 - alpha
            pixels[3 * i] = UInt8(min(255, (p >> 16 & 0xFF) + white))
            pixels[3 * i + 1] = UInt8(min(255, (p >> 8 & 0xFF) + white))
            pixels[3 * i + 2] = UInt8(min(255, (p & 0xFF) + white))
        }
        let image = RGBImage(width: lw, height: lh, pixels: pixels)
        let target = (max(1, Int((Double(w) / downsample).rounded())), max(1, Int((Double(h) / downsample).rounded())))
        return (image.resized(width: target.0, height: target.1), Int(level))
    }
}

/// A PNG or JPEG picture as a one-level slide.
public struct PictureSource: SlideSource {
    public let path: String
    public let picture: RGBImage
    public let objectivePower: Double?
    public var width: Int { picture.width }
    public var height: Int { picture.height }

    /// Whether a file name looks like a picture rather than a slide.
    public static func handles(_ path: String) -> Bool {
        [".png", ".jpg", ".jpeg"].contains { path.lowercased().hasSuffix($0) }
    }

    public init(path: String, objectivePower: Double?) throws {
        (self.path, self.picture, self.objectivePower) = (path, try RGBImage(contentsOf: path), objectivePower)
    }

    public func region(x: Int, y: Int, width w: Int, height h: Int, downsample: Double) throws -> (image: RGBImage, level: Int) {
        let crop = picture.crop(x: x, y: y, width: w, height: h)
        return (crop.resized(width: max(1, Int((Double(w) / downsample).rounded())), height: max(1, Int((Double(h) / downsample).rounded()))), 0)
    }
}

/// Cuts tissue tiles from a slide: a tissue mask by Otsu's threshold on the saturation of a
/// thumbnail, a grid of tiles of `tileSize` pixels at `magnification`, kept where the mask covers
/// at least `minTissue` of the tile, at most `maxTiles` per slide (an even, seeded subsample).
public struct SlideTiler: Sendable {
    public var tileSize: Int
    public var magnification: Double
    public var minTissue: Double = 0.5
    public var maxTiles: Int = 1000
    public var seed: UInt64 = 0
    /// Longest side of the thumbnail the mask is computed on.
    public var thumbnailSide = 2048

    public init(tileSize: Int, magnification: Double, minTissue: Double = 0.5, maxTiles: Int = 1000, seed: UInt64 = 0) {
        (self.tileSize, self.magnification, self.minTissue, self.maxTiles, self.seed) = (tileSize, magnification, minTissue, maxTiles, seed)
    }

    /// The result for one slide: tiles (with full-resolution top-left corners) and the mask stats.
    public struct Result {
        public var tiles: [TileRecord]
        public var candidates: Int
        public var tissueFraction: Double
        public var threshold: Int
    }

    /// The tiles of one slide. Throws, naming the slide, when its objective power is missing,
    /// not finite and > 0, or below `magnification`, or a tile's full-resolution edge is not a
    /// positive `Int`. `progress` is called with (tiles read, tiles kept) after each tile.
    public func tiles(of slide: SlideSource, progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        guard let objective = slide.objectivePower else {
            throw CohortError(file: slide.path, "records no objective power: give the scan magnification (--source-magnification)")
        }
        guard objective.isFinite, objective > 0 else {
            throw CohortError(file: slide.path, "records objective power \(objective)×: a scan magnification must be finite and > 0 "
                + "(give pictures --source-magnification; re-export a slide whose metadata is damaged)")
        }
        guard magnification <= objective * 1.0001 else {
            throw CohortError(file: slide.path, "scanned at \(objective)×: cannot tile at \(magnification)× (choose ≤ \(objective)×)")
        }
        let downsample = objective / magnification
        let edge = (Double(tileSize) * downsample).rounded()  // tile edge at full resolution
        guard let footprint = Int(exactly: edge), footprint >= 1 else {
            throw CohortError(file: slide.path, "a \(tileSize)-px tile at \(magnification)× spans \(edge) px of this \(objective)× scan: "
                + "choose a magnification between 1× and \(objective)×")
        }
        let maskScale = max(1, Double(max(slide.width, slide.height)) / Double(thumbnailSide))
        let thumbnail = try slide.region(x: 0, y: 0, width: slide.width, height: slide.height, downsample: maskScale).image
        let (mask, threshold) = Self.tissueMask(thumbnail)
        // Summed-area table of the mask: tissue fraction of any rectangle in O(1).
        let mw = thumbnail.width, mh = thumbnail.height
        var integral = [Int](repeating: 0, count: (mw + 1) * (mh + 1))
        for y in 0..<mh {
            var row = 0
            for x in 0..<mw {
                row += mask[y * mw + x] ? 1 : 0
                integral[(y + 1) * (mw + 1) + x + 1] = integral[y * (mw + 1) + x + 1] + row
            }
        }
        var kept = [(x: Int, y: Int)](), candidates = 0
        for y in stride(from: 0, through: slide.height - footprint, by: footprint) {
            for x in stride(from: 0, through: slide.width - footprint, by: footprint) {
                candidates += 1
                let x0 = min(mw - 1, Int(Double(x) / maskScale)), y0 = min(mh - 1, Int(Double(y) / maskScale))
                let x1 = max(x0 + 1, min(mw, Int(Double(x + footprint) / maskScale))), y1 = max(y0 + 1, min(mh, Int(Double(y + footprint) / maskScale)))
                let tissue = integral[y1 * (mw + 1) + x1] - integral[y0 * (mw + 1) + x1] - integral[y1 * (mw + 1) + x0] + integral[y0 * (mw + 1) + x0]
                if Double(tissue) >= minTissue * Double((x1 - x0) * (y1 - y0)) { kept.append((x, y)) }
            }
        }
        if kept.count > maxTiles {  // seeded even subsample, kept in grid order
            let name = URL(fileURLWithPath: slide.path).lastPathComponent  // a different subsample per slide
            var generator = SplitMix(seed: name.utf8.reduce(seed ^ 0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 })
            kept = Array(kept.indices.shuffled(using: &generator).prefix(maxTiles).sorted().map { kept[$0] })
        }
        var tiles = [TileRecord]()
        for corner in kept {
            let (image, level) = try slide.region(x: corner.x, y: corner.y, width: footprint, height: footprint, downsample: downsample)
            tiles.append(TileRecord(image: image.width == tileSize ? image : image.resized(width: tileSize, height: tileSize), x: corner.x, y: corner.y, level: level))
            progress?(tiles.count, kept.count)
        }
        let tissue = Double(mask.filter { $0 }.count) / Double(max(mask.count, 1))
        return Result(tiles: tiles, candidates: candidates, tissueFraction: tissue, threshold: threshold)
    }

    /// Tissue where HSV saturation exceeds Otsu's threshold, capped at 40/255 so that a slide
    /// that is all tissue is not split into pale and dark tissue.
    public static func tissueMask(_ image: RGBImage) -> (mask: [Bool], threshold: Int) {
        var saturation = [UInt8](repeating: 0, count: image.width * image.height)
        var histogram = [Int](repeating: 0, count: 256)
        for i in saturation.indices {
            let r = Int(image.pixels[3 * i]), g = Int(image.pixels[3 * i + 1]), b = Int(image.pixels[3 * i + 2])
            let high = max(r, g, b), low = min(r, g, b)
            let s = high == 0 ? 0 : (high - low) * 255 / high
            saturation[i] = UInt8(s)
            histogram[s] += 1
        }
        let threshold = min(otsu(histogram), 40)
        return (saturation.map { Int($0) > threshold }, threshold)
    }

    /// Otsu's threshold: the level maximising the between-class variance of a histogram.
    static func otsu(_ histogram: [Int]) -> Int {
        let total = Double(histogram.reduce(0, +))
        let sum = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset * $1.element) }
        var weightBelow = 0.0, sumBelow = 0.0, best = (variance: -1.0, level: 0)
        for level in 0..<256 {
            weightBelow += Double(histogram[level])
            guard weightBelow > 0, weightBelow < total else { continue }
            sumBelow += Double(level * histogram[level])
            let meanBelow = sumBelow / weightBelow, meanAbove = (sum - sumBelow) / (total - weightBelow)
            let variance = weightBelow * (total - weightBelow) * (meanBelow - meanAbove) * (meanBelow - meanAbove)
            if variance > best.variance { best = (variance, level) }
        }
        return best.level
    }
}

/// SplitMix64: a small seeded generator for reproducible subsampling.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
