import CZstd

/// One frame of a shard: float32 values byte-shuffled (all first bytes, then all second bytes,
/// …: the exponent bytes sit together and compress) and compressed as one zstd frame with a
/// content checksum, so every frame decodes and verifies on its own.
final class FrameCodec {
    private let compressor: OpaquePointer
    private let decompressor: OpaquePointer
    private var shuffled: [UInt8] = []
    private var compressed: [UInt8] = []

    init(level: Int32) {
        compressor = ZSTD_createCCtx()
        decompressor = ZSTD_createDCtx()
        ZSTD_CCtx_setParameter(compressor, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(compressor, ZSTD_c_checksumFlag, 1)
    }

    deinit {
        ZSTD_freeCCtx(compressor)
        ZSTD_freeDCtx(decompressor)
    }

    /// The frame for `values`, valid until the next call.
    func encode(_ values: UnsafeBufferPointer<Float>) throws -> UnsafeRawBufferPointer {
        let n = values.count, bytes = n * 4
        if shuffled.count < bytes { shuffled = [UInt8](repeating: 0, count: bytes) }
        let bound = ZSTD_compressBound(bytes)
        if compressed.count < bound { compressed = [UInt8](repeating: 0, count: bound) }
        shuffled.withUnsafeMutableBufferPointer { out in
            // One pass over the words, four byte streams out (vectorises; a pass per plane does not).
            let words = UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt32.self)
            let (p0, p1, p2, p3) = (out.baseAddress!, out.baseAddress! + n, out.baseAddress! + 2 * n, out.baseAddress! + 3 * n)
            for i in 0..<n {
                let word = UInt32(littleEndian: words[i])
                p0[i] = UInt8(truncatingIfNeeded: word)
                p1[i] = UInt8(truncatingIfNeeded: word >> 8)
                p2[i] = UInt8(truncatingIfNeeded: word >> 16)
                p3[i] = UInt8(truncatingIfNeeded: word >> 24)
            }
        }
        let size = compressed.withUnsafeMutableBytes { out in
            shuffled.withUnsafeBytes { input in ZSTD_compress2(compressor, out.baseAddress, out.count, input.baseAddress, bytes) }
        }
        if ZSTD_isError(size) != 0 { throw CheckpointError.io(path: "(memory)", operation: "compress a frame", reason: String(cString: ZSTD_getErrorName(size))) }
        return compressed.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[0..<size]) }
    }

    /// Decodes `frame` into `values` (exactly `values.count` floats, checksum verified); on
    /// failure returns zstd's reason.
    func decode(_ frame: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) -> String? {
        let n = values.count, bytes = n * 4
        if shuffled.count < bytes { shuffled = [UInt8](repeating: 0, count: bytes) }
        let size = shuffled.withUnsafeMutableBytes { out in ZSTD_decompressDCtx(decompressor, out.baseAddress, bytes, frame.baseAddress, frame.count) }
        if ZSTD_isError(size) != 0 { return String(cString: ZSTD_getErrorName(size)) }
        guard size == bytes else { return "the frame holds \(size) bytes, the manifest says \(bytes)" }
        shuffled.withUnsafeBufferPointer { input in
            let words = UnsafeMutableRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt32.self)
            let (p0, p1, p2, p3) = (input.baseAddress!, input.baseAddress! + n, input.baseAddress! + 2 * n, input.baseAddress! + 3 * n)
            for i in 0..<n {
                let word = UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(p3[i]) << 24
                words[i] = word.littleEndian
            }
        }
        return nil
    }
}
