import Foundation

/// The manifest of one checkpoint, `manifest.json` (DESIGN §7; every field in
/// Docs/Checkpoints.md). It is written last and atomically: a checkpoint exists once its
/// manifest does, and is valid once every file it names verifies.
public struct Manifest: Codable, Sendable, Equatable {
    public static let formatName = "transcriptile-checkpoint"
    public static let currentVersion = 2

    public var format = Manifest.formatName
    public var version = Manifest.currentVersion
    /// Optimizer steps taken; training resumes with step `step` (0-based).
    public var step: Int
    /// The sampler's position after the last step: the next sample is `cursor` of `epoch`.
    public var epoch: Int, cursor: Int
    /// ISO 8601 time of the commit.
    public var created: String
    /// Workers that wrote the shards (one shard each).
    public var workers: Int
    /// Elements per zstd frame (the last frame of a slice may be shorter).
    public var frameElements: Int
    /// `zstd+shuffle4`: float32 bytes grouped by significance, then zstd with content checksums.
    public var compression = "zstd+shuffle4"
    /// What a run must share to resume from this checkpoint (key → value), e.g. the task and model.
    public var identity: [String: String]
    /// The effective run config, as YAML.
    public var config: String
    public var arenas: [Arena]
    /// Scalar state, e.g. `optimizer.step_count`.
    public var scalars: [String: Double]
    /// Named views of the arenas (a model's layers): the tensor names of an export.
    public var tensors: [TensorView]
    /// The run's `metrics.jsonl` as of this step, copied beside the shards.
    public var metrics: FileRecord?
    public var shards: [ShardRecord]

    public init(step: Int, epoch: Int, cursor: Int, created: Date = Date(), workers: Int, frameElements: Int,
                identity: [String: String], config: String, arenas: [Arena], scalars: [String: Double],
                tensors: [TensorView], metrics: FileRecord?, shards: [ShardRecord]) {
        (self.step, self.epoch, self.cursor, self.workers, self.frameElements) = (step, epoch, cursor, workers, frameElements)
        self.created = ISO8601DateFormatter().string(from: created)
        (self.identity, self.config, self.arenas, self.scalars, self.tensors) = (identity, config, arenas, scalars, tensors)
        (self.metrics, self.shards) = (metrics, shards)
    }

    enum CodingKeys: String, CodingKey {
        case format, version, step, epoch, cursor, created, workers, compression, identity, config, arenas, scalars, tensors, metrics, shards
        case frameElements = "frame_elements"
    }

    /// One flat float32 buffer of the training state (parameters, optimizer moments, …).
    public struct Arena: Codable, Sendable, Equatable {
        public var name: String
        public var count: Int
        public var dtype = "float32"
        public init(name: String, count: Int) { (self.name, self.count) = (name, count) }
    }

    /// A named, shaped range of an arena.
    public struct TensorView: Codable, Sendable, Equatable {
        public var name: String
        public var arena: String
        public var offset: Int
        public var shape: [Int]
        public var count: Int { shape.reduce(1, *) }
        public init(name: String, arena: String, offset: Int, shape: [Int]) {
            (self.name, self.arena, self.offset, self.shape) = (name, arena, offset, shape)
        }
    }

    /// A file of the checkpoint with its size and XXH64 (16 hex digits, as `xxhsum -H64` prints).
    public struct FileRecord: Codable, Sendable, Equatable {
        public var file: String
        public var bytes: Int
        public var xxh64: String
        public init(file: String, bytes: Int, xxh64: String) { (self.file, self.bytes, self.xxh64) = (file, bytes, xxh64) }
    }

    /// One worker's shard: its slice of every arena as independently decodable frames.
    public struct ShardRecord: Codable, Sendable, Equatable {
        public var file: String
        public var worker: Int
        public var bytes: Int
        public var xxh64: String
        public var frames: [Frame]
    }

    /// Elements `start ..< start + count` of `arena`, stored at byte `offset` of the shard in `bytes` bytes.
    public struct Frame: Codable, Sendable, Equatable {
        public var arena: String
        public var start: Int
        public var count: Int
        public var offset: Int
        public var bytes: Int
    }

    /// The manifest's own problems, without touching the shards: format and version, names that
    /// could leave the directory, frames that do not tile every arena exactly once.
    public func problems() -> [String] {
        var problems = [String]()
        if format != Self.formatName { problems.append("format is '\(format)', not '\(Self.formatName)'") }
        if version != Self.currentVersion { problems.append("format version \(version); this build reads version \(Self.currentVersion)") }
        if compression != "zstd+shuffle4" { problems.append("unknown compression '\(compression)'") }
        if step < 0 || epoch < 0 || cursor < 0 || workers < 1 || frameElements < 1 {
            problems.append("step \(step), epoch \(epoch), cursor \(cursor), workers \(workers), frame_elements \(frameElements): must be non-negative (workers and frame_elements positive)")
        }
        let files = shards.map(\.file) + (metrics.map { [$0.file] } ?? [])
        for file in files where !Self.isPlainFileName(file) {
            problems.append("file name '\(file)' is not a plain file name inside the checkpoint directory")
        }
        if Set(files).count != files.count { problems.append("a file is named twice") }
        let counts = Dictionary(arenas.map { ($0.name, $0.count) }, uniquingKeysWith: { a, _ in a })
        if counts.count != arenas.count { problems.append("an arena is named twice") }
        for arena in arenas where arena.dtype != "float32" || arena.count < 0 {
            problems.append("arena '\(arena.name)': \(arena.count) elements of \(arena.dtype); expected float32")
        }
        for arena in arenas {
            let frames = shards.flatMap(\.frames).filter { $0.arena == arena.name }.sorted { $0.start < $1.start }
            var next = 0
            for frame in frames {
                guard frame.start == next, frame.count > 0 else {
                    problems.append("arena '\(arena.name)': frames do not tile it (a frame starts at \(frame.start), expected \(next))")
                    break
                }
                next += frame.count
            }
            if next != arena.count && !problems.contains(where: { $0.hasPrefix("arena '\(arena.name)'") }) {
                problems.append("arena '\(arena.name)': frames cover \(next) of \(arena.count) elements")
            }
        }
        for shard in shards {
            for frame in shard.frames where counts[frame.arena] == nil || frame.offset < 0 || frame.bytes <= 0 || frame.offset + frame.bytes > shard.bytes {
                problems.append("\(shard.file): a frame of arena '\(frame.arena)' lies outside the file or names an unknown arena")
                break
            }
        }
        for view in tensors where counts[view.arena].map({ view.offset < 0 || view.offset + view.count > $0 }) ?? true {
            problems.append("tensor '\(view.name)' lies outside arena '\(view.arena)'")
        }
        return problems
    }

    /// Letters, digits, `.`, `_` and `-`, not starting with a dot: nothing that names another directory.
    public static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 255 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }
}

extension JSONEncoder {
    static var manifest: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
