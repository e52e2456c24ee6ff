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
            let raw = UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt8.self)
            for plane in 0..<4 {
                let target = out.baseAddress! + plane * n
                for i in 0..<n { target[i] = raw[4 * i + plane] }
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
            let raw = UnsafeMutableRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt8.self)
            for plane in 0..<4 {
                let source = input.baseAddress! + plane * n
                for i in 0..<n { raw[4 * i + plane] = source[i] }
            }
        }
        return nil
    }
}
