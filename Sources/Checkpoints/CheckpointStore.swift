import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `checkpoints/` directory of a run: one `step-NNNNNNNN/` per checkpoint and `LATEST`
/// naming the newest committed one (DESIGN §7). Commits are atomic; retention never removes
/// the checkpoint just committed.
public struct CheckpointStore {
    public let root: URL

    public init(runDirectory: URL) { root = runDirectory.appendingPathComponent("checkpoints") }

    public static func name(step: Int) -> String { String(format: "step-%08d", step) }

    public func directory(step: Int) -> URL { root.appendingPathComponent(Self.name(step: step)) }

    /// Creates the directory a checkpoint's files go into (by every worker; no error if it exists).
    public func prepare(step: Int) throws {
        do { try FileManager.default.createDirectory(at: directory(step: step), withIntermediateDirectories: true) } catch {
            throw CheckpointError.io(path: directory(step: step).path, operation: "create", reason: error.localizedDescription)
        }
    }

    /// The step directories, newest first (committed or not).
    public func steps() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.compactMap { name in
            guard name.hasPrefix("step-"), name.count == 13 else { return nil }
            return Int(name.dropFirst(5))
        }.sorted(by: >)
    }

    /// Whether any step directory holds a manifest (a committed checkpoint, valid or not).
    public var hasCommitted: Bool {
        steps().contains { FileManager.default.fileExists(atPath: directory(step: $0).appendingPathComponent("manifest.json").path) }
    }

    /// Makes `manifest` the checkpoint of its step: written atomically into its directory
    /// (whose shards must all be in place), then `LATEST` updated the same way.
    public func commit(_ manifest: Manifest) throws {
        let data: Data
        do { data = try JSONEncoder.manifest.encode(manifest) } catch {
            throw CheckpointError.io(path: directory(step: manifest.step).path, operation: "encode the manifest of", reason: "\(error)")
        }
        try FileIO.writeAtomically(data, to: directory(step: manifest.step).appendingPathComponent("manifest.json"))
        try FileIO.writeAtomically(Data((Self.name(step: manifest.step) + "\n").utf8), to: root.appendingPathComponent("LATEST"))
    }

    /// The step `LATEST` names, if any.
    public func latest() -> Int? {
        guard let text = try? String(contentsOf: root.appendingPathComponent("LATEST"), encoding: .utf8) else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.hasPrefix("step-") ? Int(name.dropFirst(5)) : nil
    }

    /// Removes a directory of this store (a failed save, or one retention lets go).
    public func remove(step: Int) {
        try? FileManager.default.removeItem(at: directory(step: step))
    }

    /// After committing `newest`: keeps the `keepLast` newest committed checkpoints and those
    /// whose step is a multiple of `keepEvery` (when > 0); removes the rest, and the debris of
    /// interrupted saves older than `newest`. Returns the steps removed.
    @discardableResult
    public func applyRetention(newest: Int, keepLast: Int, keepEvery: Int) -> [Int] {
        var kept = 0, removed = [Int]()
        for step in steps() where step <= newest {
            let committed = FileManager.default.fileExists(atPath: directory(step: step).appendingPathComponent("manifest.json").path)
            if committed && kept < keepLast { kept += 1; continue }
            if committed && keepEvery > 0 && step % keepEvery == 0 { continue }
            remove(step: step)
            removed.append(step)
        }
        return removed
    }

    /// `path` as a checkpoint directory (verified), or else as a run directory: its newest
    /// valid checkpoint.
    public static func reader(at path: String) throws -> CheckpointReader {
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("manifest.json").path) {
            let reader = try CheckpointReader(directory: url)
            try reader.verify()
            return reader
        }
        guard let newest = CheckpointStore(runDirectory: url).newestValid().reader else {
            throw CheckpointError.notFound("\(path) is neither a checkpoint (no manifest.json) nor a run directory with a valid checkpoint")
        }
        return newest
    }

    /// The checkpoint to resume from: the newest that opens and verifies, with why each newer
    /// one was passed over. `nil` when there is none.
    public func newestValid() -> (reader: CheckpointReader?, rejected: [(step: Int, reason: String)]) {
        var rejected = [(step: Int, reason: String)]()
        for step in steps() {
            do {
                let reader = try CheckpointReader(directory: directory(step: step))
                try reader.verify()
                return (reader, rejected)
            } catch {
                rejected.append((step, "\(error)"))
            }
        }
        return (nil, rejected)
    }

    /// Moves checkpoints newer than `step` aside into `superseded/` (a run resumed from an older
    /// checkpoint would otherwise write over them); returns their new paths.
    public func supersede(after step: Int) throws -> [String] {
        let newer = steps().filter { $0 > step }
        guard !newer.isEmpty else { return [] }
        let aside = root.appendingPathComponent("superseded")
        var moved = [String]()
        for old in newer {
            let target = aside.appendingPathComponent("\(Self.name(step: old))-\(Int(Date().timeIntervalSince1970))")
            do {
                try FileManager.default.createDirectory(at: aside, withIntermediateDirectories: true)
                try FileManager.default.moveItem(at: directory(step: old), to: target)
            } catch {
                throw CheckpointError.io(path: directory(step: old).path, operation: "move aside", reason: error.localizedDescription)
            }
            moved.append(target.path)
        }
        return moved
    }
}

extension CheckpointStore {
    /// Copies `file` into the checkpoint of `step` (flushed to the device) and returns its record.
    public func snapshot(_ file: URL, step: Int) throws -> Manifest.FileRecord {
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw CheckpointError.io(path: file.path, operation: "read", reason: error.localizedDescription)
        }
        let output = try FileIO.Output(creating: directory(step: step).appendingPathComponent(file.lastPathComponent).path)
        try data.withUnsafeBytes { try output.write($0) }
        try output.finish()
        return Manifest.FileRecord(file: file.lastPathComponent, bytes: data.count, xxh64: data.withUnsafeBytes { XXH64.hash($0) }.canonicalHex)
    }
}
