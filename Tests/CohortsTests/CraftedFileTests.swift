import Cohorts
import Foundation
import TestSupport
import XCTest

/// Files whose headers declare sizes their bytes cannot hold (corrupt or crafted): each is refused
/// with an error naming the file before anything is allocated from the declared size. The files
/// are real ones (written by `HDF5File` and `RGBImage`, or a fixture) with a header field patched.
final class CraftedFileTests: XCTestCase {
    private let data = ProcessRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/data").path
    private var path: String!

    override func setUpWithError() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("crafted-\(UUID().uuidString)").path
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: path) }

    /// Replaces every little-endian 8-byte occurrence of each key with its value (HDF5 stores a
    /// dataset's dimensions, and its maximum dimensions, as such words).
    private func patchWords(_ words: [UInt64: UInt64]) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for (old, new) in words {
            let pattern = withUnsafeBytes(of: old.littleEndian) { [UInt8]($0) }, replacement = withUnsafeBytes(of: new.littleEndian) { [UInt8]($0) }
            var found = 0
            for i in 0...(bytes.count - 8) where bytes[i..<(i + 8)].elementsEqual(pattern) {
                bytes.replaceSubrange(i..<(i + 8), with: replacement)
                found += 1
            }
            XCTAssertGreaterThan(found, 0, "dimension \(old) not found in the file")
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func assertRefused(_ expected: String, _ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue(error is CohortError, "\(type(of: error))", file: file, line: line)
            XCTAssertTrue("\(error)".hasSuffix(expected), "\(error)", file: file, line: line)
        }
    }

    func testHDF5DimensionsBeyondTheFileAreRefused() throws {
        do {  // the file closes at the end of this scope
            let file = try HDF5File.create(path)
            try file.write("/ids", [Int32](repeating: 7, count: 12_345), shape: [12_345], chunk: [1000])
            try file.write("/grid", [UInt8](repeating: 1, count: 301 * 303), shape: [301, 303], chunk: [100, 100])
        }
        try patchWords([12_345: 1 << 40, 301: 1 << 33, 303: 1 << 33])
        let file = try HDF5File.open(path)
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let tooLarge = "/ids: declares [1099511627776] = 1099511627776 elements of 4 bytes, more than a file of \(size) bytes can hold "
            + "(at most 2048× its size, or 64 MiB): the file is corrupt (re-export or re-download it)"
        assertRefused(tooLarge) { try file.info("/ids") }
        assertRefused(tooLarge) { try file.read("/ids", as: Int32.self) }
        assertRefused(tooLarge) { try file.readRows("/ids", 0..<1, as: Int32.self) }
        assertRefused("/grid: declares dimensions [8589934592, 8589934592] whose product overflows: the file is corrupt (re-export or re-download it)") {
            try file.read("/grid", as: UInt8.self)
        }
    }

    /// A 1×1 PNG with the IHDR width and height patched (and its CRC recomputed).
    private func pngClaiming(width: UInt32, height: UInt32) throws {
        try RGBImage(width: 1, height: 1, fill: 9).writePNG(to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.replaceSubrange(16..<24, with: [width, height].flatMap { withUnsafeBytes(of: $0.bigEndian) { [UInt8]($0) } })
        bytes.replaceSubrange(29..<33, with: withUnsafeBytes(of: crc32(bytes[12..<29]).bigEndian) { [UInt8]($0) })
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func testImagesDeclaringTooManyPixelsAreRefused() throws {
        try pngClaiming(width: 1_000_000, height: 1_000_000)
        assertRefused("PNG declares 1000000×1000000 pixels, more than the 268435456 (2^28) this program decodes: "
            + "downscale the image, or tile it as a slide (OpenSlide reads it in regions)") {
            try RGBImage(contentsOf: path)
        }
        // The fixture JPEG with its frame header (SOF0/SOF2: FF C0/C2, length, precision, height, width) patched.
        var jpeg = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(data)/spatial/section_ihc.jpg")))
        let frame = try XCTUnwrap((0..<(jpeg.count - 9)).first { jpeg[$0] == 0xFF && [0xC0, 0xC2].contains(jpeg[$0 + 1]) })
        jpeg.replaceSubrange((frame + 5)..<(frame + 9), with: [0x4E, 0x20, 0x4E, 0x20])  // 20000 × 20000
        try Data(jpeg).write(to: URL(fileURLWithPath: path))
        assertRefused("JPEG declares 20000×20000 pixels, more than the 268435456 (2^28) this program decodes: "
            + "downscale the image, or tile it as a slide (OpenSlide reads it in regions)") {
            try RGBImage(contentsOf: path)
        }
    }
}

/// CRC-32 (ISO 3309, as PNG chunks use it).
private func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
