import Foundation

/// A slice of an arena that one worker writes: elements `start ..< start + values.count`.
public struct ShardSlice {
    public var arena: String
    public var start: Int
    public var values: UnsafeBufferPointer<Float>
    public init(arena: String, start: Int, values: UnsafeBufferPointer<Float>) { (self.arena, self.start, self.values) = (arena, start, values) }
}

/// The shard files of a checkpoint: a 16-byte header, then zstd frames (Docs/Checkpoints.md).
public enum Shard {
    /// `TSCKSHRD`, then the format version and the worker (both UInt32, little-endian).
    static let magic = Array("TSCKSHRD".utf8)
    static let headerBytes = 16
    /// Elements per frame: 4 MiB of floats, large enough for zstd, small enough to reshard finely.
    public static let frameElements = 1 << 20

    public static func fileName(worker: Int) -> String { String(format: "shard-%04d.tzst", worker) }

    /// Writes `slices` as `worker`'s shard in `directory`, flushed to the device; returns its
    /// record for the manifest. Any failure (a full disk) throws naming the file.
    public static func write(_ slices: [ShardSlice], worker: Int, in directory: URL, level: Int32 = 1,
                             frameElements: Int = Shard.frameElements) throws -> Manifest.ShardRecord {
        let name = fileName(worker: worker)
        let output = try FileIO.Output(creating: directory.appendingPathComponent(name).path)
        var header = magic
        for value in [UInt32(Manifest.currentVersion), UInt32(worker)] { withUnsafeBytes(of: value.littleEndian) { header += $0 } }
        try header.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in try output.write(bytes) }
        let codec = FrameCodec(level: level)
        var frames = [Manifest.Frame]()
        for slice in slices {
            for first in stride(from: 0, to: slice.values.count, by: frameElements) {
                let count = min(frameElements, slice.values.count - first)
                let frame = try codec.encode(UnsafeBufferPointer(rebasing: slice.values[first..<(first + count)]))
                frames.append(.init(arena: slice.arena, start: slice.start + first, count: count, offset: output.written, bytes: frame.count))
                try output.write(frame)
            }
        }
        let sha256 = try output.finish()
        return .init(file: name, worker: worker, bytes: output.written, sha256: sha256, frames: frames)
    }
}
