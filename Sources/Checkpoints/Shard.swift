import Dispatch
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
    ///
    /// Pipelined so that compressing, hashing and writing overlap: `threads` frames are
    /// compressed at once while the previous group is hashed on one thread and written (directly
    /// to the device where the file system allows) on another.
    /// The file is the same byte for byte whatever `threads` is.
    public static func write(_ slices: [ShardSlice], worker: Int, in directory: URL, frameElements: Int = Shard.frameElements, threads: Int = 1) throws -> Manifest.ShardRecord {
        let name = fileName(worker: worker)
        nonisolated(unsafe) let output = try FileIO.Output(creating: directory.appendingPathComponent(name).path, direct: true)
        var header = magic
        for value in [UInt32(Manifest.currentVersion), UInt32(worker)] { withUnsafeBytes(of: value.littleEndian) { header += $0 } }
        try header.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in try output.write(bytes) }

        let pieces = slices.flatMap { slice in
            stride(from: 0, to: slice.values.count, by: frameElements).map { first in
                (arena: slice.arena, start: slice.start + first,
                 values: UnsafeBufferPointer(rebasing: slice.values[first..<min(first + frameElements, slice.values.count)]))
            }
        }
        let lanes = max(1, threads)
        // Two sets of codecs: one group compresses into a set while the other set's frames are written.
        let codecs = (0..<2).map { _ in (0..<lanes).map { _ in FrameCodec() } }
        let writer = DispatchQueue(label: "transcriptile.shard-writer"), hasher = DispatchQueue(label: "transcriptile.shard-hasher")
        let writing = DispatchGroup()
        nonisolated(unsafe) var writeError: Error?
        nonisolated(unsafe) var hash = XXH64()
        header.withUnsafeBytes { hash.update($0) }
        // On every way out, the writer has finished with the frames, which live in the codecs.
        defer { writing.wait(); withExtendedLifetime(codecs) {} }
        var frames = [Manifest.Frame](), offset = output.written
        for (index, first) in stride(from: 0, to: pieces.count, by: lanes).enumerated() {
            // Each lane touches only its own codec and piece, and the writer only the frames it is given.
            nonisolated(unsafe) let group = Array(pieces[first..<min(first + lanes, pieces.count)])
            nonisolated(unsafe) let set = codecs[index % 2]
            nonisolated(unsafe) var encoded = [Result<[UnsafeRawBufferPointer], Error>](repeating: .failure(CancellationError()), count: group.count)
            encoded.withUnsafeMutableBufferPointer { results in
                nonisolated(unsafe) let results = results
                DispatchQueue.concurrentPerform(iterations: group.count) { lane in
                    results[lane] = Result { try set[lane].encode(group[lane].values) }
                }
            }
            nonisolated(unsafe) let bytes = try encoded.map { try $0.get() }
            writing.wait()
            if let writeError { throw writeError }
            for (piece, frame) in zip(group, bytes) {
                let size = frame.reduce(0) { $0 + $1.count }
                frames.append(.init(arena: piece.arena, start: piece.start, count: piece.values.count, offset: offset, bytes: size))
                offset += size
            }
            writer.async(group: writing) {
                do { for part in bytes.joined() { try output.write(part) } } catch { writeError = error }
            }
            hasher.async(group: writing) { for part in bytes.joined() { hash.update(part) } }
        }
        writing.wait()
        if let writeError { throw writeError }
        try output.finish()
        return .init(file: name, worker: worker, bytes: output.written, xxh64: hash.finalize().canonicalHex, frames: frames)
    }
}
