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
        let positions = 0...Self.maxArenaElements
        if !positions.contains(step) || !positions.contains(epoch) || !positions.contains(cursor) || !(1...1 << 20).contains(workers)
            || !(1...Self.maxFrameElements).contains(frameElements) {
            problems.append("step \(step), epoch \(epoch), cursor \(cursor), workers \(workers), frame_elements \(frameElements): each must be in 0…2⁴⁰ (workers in 1…2²⁰, frame_elements in 1…\(Self.maxFrameElements))")
            return problems  // the checks below rely on these bounds
        }
        let files = shards.map(\.file) + (metrics.map { [$0.file] } ?? [])
        for file in files where !Self.isPlainFileName(file) {
            problems.append("file name '\(file)' is not a plain file name inside the checkpoint directory")
        }
        if Set(files).count != files.count { problems.append("a file is named twice") }
        let counts = Dictionary(arenas.map { ($0.name, $0.count) }, uniquingKeysWith: { a, _ in a })
        if counts.count != arenas.count { problems.append("an arena is named twice") }
        for arena in arenas where arena.dtype != "float32" || !(0...Self.maxArenaElements).contains(arena.count) {
            problems.append("arena '\(arena.name)': \(arena.count) elements of \(arena.dtype); expected float32 and 0…\(Self.maxArenaElements) elements")
        }
        // Every number below is bounded first, so no sum can overflow and nothing is allocated
        // from a manifest's word: a frame holds at most frame_elements values in a bounded size.
        for shard in shards {
            let outside = shard.frames.first { frame in
                counts[frame.arena] == nil || !(1...frameElements).contains(frame.count) || frame.start < 0 || frame.start > Self.maxArenaElements
                    || frame.offset < 0 || !(1...Self.maxFrameBytes(frame.count)).contains(frame.bytes) || shard.bytes < 0
                    || frame.offset > shard.bytes - frame.bytes
            }
            if let frame = outside {
                problems.append("\(shard.file): a frame of arena '\(frame.arena)' (elements \(frame.start)+\(frame.count), bytes \(frame.offset)+\(frame.bytes)) lies outside the file, exceeds frame_elements or names an unknown arena")
            }
        }
        guard problems.isEmpty else { return problems }
        for arena in arenas {
            let frames = shards.flatMap(\.frames).filter { $0.arena == arena.name }.sorted { $0.start < $1.start }
            var next = 0
            for frame in frames {
                guard frame.start == next, next <= arena.count else {
                    problems.append("arena '\(arena.name)': frames do not tile it (a frame starts at \(frame.start), expected \(next))")
                    break
                }
                next += frame.count
            }
            if next != arena.count && !problems.contains(where: { $0.hasPrefix("arena '\(arena.name)'") }) {
                problems.append("arena '\(arena.name)': frames cover \(next) of \(arena.count) elements")
            }
        }
        for view in tensors {
            var count = 1, overflow = false
            for dimension in view.shape {
                let (product, over) = count.multipliedReportingOverflow(by: dimension)
                (count, overflow) = (product, overflow || over || dimension < 0)
            }
            let fits = counts[view.arena].map { !overflow && view.offset >= 0 && view.offset <= $0 && count <= $0 - view.offset } ?? false
            if !fits { problems.append("tensor '\(view.name)' of shape \(view.shape) lies outside arena '\(view.arena)'") }
        }
        return problems
    }

    /// Bounds a manifest is checked against: 2²⁴ values per frame, 2⁴⁰ per arena (4 TiB).
    public static let maxFrameElements = 1 << 24
    public static let maxArenaElements = 1 << 40

    /// The most bytes a frame of `count` values can take: raw planes plus zstd's worst case, generously.
    public static func maxFrameBytes(_ count: Int) -> Int { 2 * 4 * count + 65_536 }

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
