import CZstd

/// One frame of a shard: float32 values byte-shuffled (all first bytes, then all second bytes,
/// …) into one standard zstd frame (RFC 8878) with a content checksum, so every frame decodes
/// and verifies on its own with any zstd.
///
/// Only the fourth bytes (sign and exponent) are compressed: on trained weights and Adam moments
/// they compress 3×, while the three mantissa bytes are noise (ratio 1.00 measured) that zstd
/// spends two thirds of its time failing to compress. So the frame is assembled here: the
/// mantissa planes as raw blocks, then the blocks zstd made of the exponent plane, then XXH64.
final class FrameCodec {
    private let compressor: OpaquePointer
    private let decompressor: OpaquePointer
    private var shuffled = Scratch(), exponents = Scratch(), headers = Scratch()
    /// RFC 8878's largest block.
    private static let blockBytes = 128 << 10

    init() {
        compressor = ZSTD_createCCtx()
        decompressor = ZSTD_createDCtx()
        // Level 1's fast strategy with matches of 7 bytes or more from a 256-entry table: on
        // exponent bytes this is 1.6× faster than plain level 1, at a slightly better ratio
        // (3.25 against 3.04: fewer short matches, more of the bytes go to the Huffman coder).
        ZSTD_CCtx_setParameter(compressor, ZSTD_c_compressionLevel, 1)
        ZSTD_CCtx_setParameter(compressor, ZSTD_c_strategy, Int32(ZSTD_fast.rawValue))
        ZSTD_CCtx_setParameter(compressor, ZSTD_c_minMatch, 7)
        ZSTD_CCtx_setParameter(compressor, ZSTD_c_hashLog, 8)
        ZSTD_CCtx_setParameter(compressor, ZSTD_c_contentSizeFlag, 0)
        // Huffman coding of the literals does most of the work on exponent bytes; matches add
        // little. A large target length makes the fast strategy skip ahead where nothing
        // matches: ~1.4× faster at the same ratio. Since it would also turn the literals'
        // Huffman coding off, that is forced on first (literalCompressionMode, experimental
        // parameter 5 in zstd 1.5); a libzstd that refuses it keeps the settings above.
        let literalCompressionMode = ZSTD_c_experimentalParam5, huffman: Int32 = 1
        if ZSTD_isError(ZSTD_CCtx_setParameter(compressor, literalCompressionMode, huffman)) == 0 {
            ZSTD_CCtx_setParameter(compressor, ZSTD_c_targetLength, 256)
        }
    }

    deinit {
        ZSTD_freeCCtx(compressor)
        ZSTD_freeDCtx(decompressor)
    }

    /// The frame for `values` (at least one) as the pieces to write one after the other, valid
    /// until the next call: the mantissa planes are not copied again on their way to the file.
    func encode(_ values: UnsafeBufferPointer<Float>) throws -> [UnsafeRawBufferPointer] {
        let n = values.count, bytes = n * 4
        // Shard.write cuts slices into frames of ≥ 1 value; read frames are checked by Manifest.problems.
        precondition(n > 0, "a frame holds at least one value")
        let planes = shuffled.reserve(bytes)
        Self.shuffle(values, into: planes)
        // The exponent plane as a zstd frame of its own (no checksum, no content size), whose
        // blocks are taken over: they refer only to exponent bytes, and the last is marked last.
        let exponentFrame = exponents.reserve(ZSTD_compressBound(n))
        let compressed = ZSTD_compress2(compressor, exponentFrame.baseAddress, exponentFrame.count, planes.baseAddress! + 3 * n, n)
        if ZSTD_isError(compressed) != 0 { throw CheckpointError.io(path: "(memory)", operation: "compress a frame", reason: String(cString: ZSTD_getErrorName(compressed))) }

        let raw = 3 * n, rawBlocks = (raw + Self.blockBytes - 1) / Self.blockBytes
        let small = headers.reserve(9 + 3 * rawBlocks + 4)
        var at = 0
        func put(_ value: UInt32, bytes count: Int) -> UnsafeRawBufferPointer {
            withUnsafeBytes(of: value.littleEndian) { (small.baseAddress! + at).copyMemory(from: $0.baseAddress!, byteCount: count) }
            at += count
            return UnsafeRawBufferPointer(rebasing: small[(at - count)..<at])
        }
        var pieces = [put(0xFD2F_B528, bytes: 4)]  // magic
        pieces.append(put(0xA4, bytes: 1))  // descriptor: 4-byte content size, single segment, checksum, no dictionary
        pieces.append(put(UInt32(bytes), bytes: 4))
        for first in stride(from: 0, to: raw, by: Self.blockBytes) {
            let count = min(Self.blockBytes, raw - first)
            pieces.append(put(UInt32(count) << 3, bytes: 3))  // not last, raw
            pieces.append(UnsafeRawBufferPointer(rebasing: planes[first..<(first + count)]))
        }
        pieces.append(UnsafeRawBufferPointer(rebasing: exponentFrame[Self.headerBytes(ofFrame: exponentFrame)..<compressed]))
        pieces.append(put(UInt32(truncatingIfNeeded: XXH64.hash(UnsafeRawBufferPointer(planes))), bytes: 4))
        return pieces
    }

    /// Decodes `frame` into `values` (exactly `values.count` floats, checksum verified); on
    /// failure returns zstd's reason.
    func decode(_ frame: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) -> String? {
        let n = values.count, bytes = n * 4
        let planes = shuffled.reserve(bytes)
        let size = ZSTD_decompressDCtx(decompressor, planes.baseAddress, bytes, frame.baseAddress, frame.count)
        if ZSTD_isError(size) != 0 { return String(cString: ZSTD_getErrorName(size)) }
        guard size == bytes else { return "the frame holds \(size) bytes, the manifest says \(bytes)" }
        let words = UnsafeMutableRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt32.self)
        let p = planes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        for i in 0..<n {
            let word = UInt32(p[i]) | UInt32(p[n + i]) << 8 | UInt32(p[2 * n + i]) << 16 | UInt32(p[3 * n + i]) << 24
            words[i] = word.littleEndian
        }
        return nil
    }

    /// One pass over the words, four byte streams out (vectorises; a pass per plane does not).
    private static func shuffle(_ values: UnsafeBufferPointer<Float>, into planes: UnsafeMutableRawBufferPointer) {
        let n = values.count
        let words = UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt32.self)
        let out = planes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let (p0, p1, p2, p3) = (out, out + n, out + 2 * n, out + 3 * n)
        for i in 0..<n {
            let word = UInt32(littleEndian: words[i])
            p0[i] = UInt8(truncatingIfNeeded: word)
            p1[i] = UInt8(truncatingIfNeeded: word >> 8)
            p2[i] = UInt8(truncatingIfNeeded: word >> 16)
            p3[i] = UInt8(truncatingIfNeeded: word >> 24)
        }
    }

    /// The size of a zstd frame header (magic number included), from its descriptor byte.
    private static func headerBytes(ofFrame frame: UnsafeMutableRawBufferPointer) -> Int {
        let descriptor = Int(frame[4]), singleSegment = descriptor >> 5 & 1 == 1
        let dictionaryBytes = [0, 1, 2, 4][descriptor & 3]
        let contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]
        return 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes
    }
}

/// A growable byte buffer that is never cleared: every use writes what it then reads.
private struct Scratch: ~Copyable {
    private var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// The first `count` bytes, reallocated (contents dropped) when the buffer is smaller.
    mutating func reserve(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if buffer.count < count {
            buffer.deallocate()
            buffer = .allocate(byteCount: count, alignment: 64)
        }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
    }

    deinit { buffer.deallocate() }
}
