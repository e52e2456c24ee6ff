import Foundation
import Tensors

/// One committed checkpoint, opened for reading: its manifest parsed and checked (nothing is
/// read from the shards until asked). `verify()` checks every file's size and XXH64;
/// `read` decodes only the frames that overlap the elements asked for (resharding).
public final class CheckpointReader {
    public let directory: URL
    public let manifest: Manifest
    private var inputs: [String: FileIO.Input] = [:]
    private lazy var codec = FrameCodec()

    public init(directory: URL) throws {
        self.directory = directory
        let file = directory.appendingPathComponent("manifest.json")
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw FileManager.default.fileExists(atPath: file.path)
                ? CheckpointError.invalid(path: directory.path, reason: "cannot read manifest.json: \(error.localizedDescription)")
                : CheckpointError.invalid(path: directory.path, reason: "no manifest.json (an interrupted save)")
        }
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw CheckpointError.invalid(path: directory.path, reason: "manifest.json does not parse: \(decodingSummary(error))")
        }
        let problems = manifest.problems()
        guard problems.isEmpty else { throw CheckpointError.invalid(path: directory.path, reason: "manifest.json: " + problems.joined(separator: "; ")) }
    }

    /// Checks that every shard (and the metrics snapshot) exists, is a regular file of the
    /// recorded size and has the recorded XXH64.
    public func verify() throws {
        let files = manifest.shards.map { Manifest.FileRecord(file: $0.file, bytes: $0.bytes, xxh64: $0.xxh64) } + (manifest.metrics.map { [$0] } ?? [])
        for record in files {
            let input = try open(record.file)
            guard input.size == record.bytes else {
                throw CheckpointError.invalid(path: directory.path, reason: "\(record.file) has \(input.size) bytes, the manifest says \(record.bytes) (truncated or replaced)")
            }
            let digest = try input.xxh64()
            guard digest == record.xxh64 else {
                throw CheckpointError.invalid(path: directory.path, reason: "\(record.file): XXH64 \(digest) differs from the manifest's \(record.xxh64) (corrupted)")
            }
        }
        for shard in manifest.shards {
            var header = [UInt8](repeating: 0, count: Shard.headerBytes)
            try header.withUnsafeMutableBytes { (bytes: UnsafeMutableRawBufferPointer) throws in try open(shard.file).read(offset: 0, into: bytes) }
            guard Array(header[0..<8]) == Shard.magic else { throw CheckpointError.invalid(path: directory.path, reason: "\(shard.file) is not a shard (no TSCKSHRD header)") }
        }
    }

    /// Decodes every frame of every shard (one frame's worth of memory at a time): checks the
    /// zstd content checksums and frame structure beyond `verify`'s file checksums.
    public func verifyFrames() throws {
        var scratch = [Float]()
        for shard in manifest.shards {
            for frame in shard.frames { try decode(frame, of: shard, into: &scratch) }
        }
    }

    /// Elements `range` of `arena` into `values` (`range.count` floats), decoding only the
    /// frames that overlap it; each frame's checksum is verified as it decodes.
    public func read(arena: String, range: Range<Int>, into values: UnsafeMutableBufferPointer<Float>) throws {
        guard values.count == range.count else {
            throw CheckpointError.invalid(path: directory.path, reason: "internal: \(range.count) elements of '\(arena)' asked into a buffer of \(values.count)")
        }
        var scratch = [Float]()
        var covered = 0
        for shard in manifest.shards {
            for frame in shard.frames where frame.arena == arena {
                let frameRange = frame.start..<(frame.start + frame.count)
                guard frameRange.overlaps(range) else { continue }
                try decode(frame, of: shard, into: &scratch)
                let overlap = frameRange.clamped(to: range)
                scratch.withUnsafeBufferPointer { decoded in
                    guard let target = values.baseAddress, let source = decoded.baseAddress else { return }
                    (target + (overlap.lowerBound - range.lowerBound)).update(from: source + (overlap.lowerBound - frame.start), count: overlap.count)
                }
                covered += overlap.count
            }
        }
        guard covered == range.count else {
            throw CheckpointError.invalid(path: directory.path, reason: "arena '\(arena)' has \(covered) of the \(range.count) elements \(range) asked for")
        }
    }

    /// One frame's values into `scratch[0..<frame.count]` (grown as needed; the manifest's
    /// checks bound a frame's size, so this never allocates more than a frame).
    private func decode(_ frame: Manifest.Frame, of shard: Manifest.ShardRecord, into scratch: inout [Float]) throws {
        let input = try open(shard.file)
        var bytes = [UInt8](repeating: 0, count: frame.bytes)
        try bytes.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) throws in try input.read(offset: frame.offset, into: raw) }
        if scratch.count < frame.count { scratch = [Float](repeating: 0, count: frame.count) }
        let failure = bytes.withUnsafeBytes { raw in
            scratch.withUnsafeMutableBufferPointer { codec.decode(raw, into: UnsafeMutableBufferPointer(rebasing: $0[0..<frame.count])) }
        }
        if let failure {
            throw CheckpointError.invalid(path: directory.path, reason: "\(shard.file): the frame of '\(frame.arena)' at byte \(frame.offset) does not decode: \(failure)")
        }
    }

    private func open(_ file: String) throws -> FileIO.Input {
        if let input = inputs[file] { return input }
        do {
            let input = try FileIO.Input(directory.appendingPathComponent(file).path)
            inputs[file] = input
            return input
        } catch let CheckpointError.io(_, _, reason) {
            throw CheckpointError.invalid(path: directory.path, reason: "\(file): \(reason)")
        }
    }
}
