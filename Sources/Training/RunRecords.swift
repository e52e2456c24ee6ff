import Checkpoints
import Foundation

/// The files of a run directory (DESIGN §8): `config.yaml`, `run_plan.json`, `metrics.jsonl`
/// (one line per step and per evaluation), `timeline.json` (Chrome trace), `loss_curve.png`
/// and `summary.json`. A resumed run keeps what came before: the metrics of the steps up to its
/// checkpoint, and the timeline of every earlier session (one trace process per session).
final class RunRecords {
    let directory: URL
    private let metrics: FileHandle
    /// This session's timeline events, each encoded once as it arrives and joined by commas: the
    /// timeline is rewritten at every checkpoint, so its cost must not grow with re-encoding.
    private var events = Data()
    /// The timeline of earlier sessions (a resumed run), encoded likewise, and this session's trace process.
    private var earlierEvents = Data()
    private var session = 1
    private var sessionName = "run"

    /// The files a run writes (besides `checkpoints/`, `evaluation*/` and `previous-*/`).
    static let recordNames: Set = ["config.yaml", "run_plan.json", "metrics.jsonl", "timeline.json", "summary.json",
                                   "loss_curve.png", "loss_curve.svg", "latent_pca.png", "latent_pca.svg",
                                   "confusion_matrix.png", "confusion_matrix.svg", "survival_by_risk.png", "survival_by_risk.svg"]

    /// Makes sure a new run may write into `directory`: it must be new, empty, or hold an earlier
    /// start of a run that left no checkpoint — whose records are then moved into
    /// `previous-<time>/` beside it (returned), never overwritten. A directory with the user's own
    /// files, a run with checkpoints (resume it instead) or a file are refused.
    @discardableResult
    static func checkUnused(_ directory: URL) throws -> URL? {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            // It will be created: everything above it that exists must be a directory.
            var above = directory.deletingLastPathComponent()
            while !manager.fileExists(atPath: above.path, isDirectory: &isDirectory) && above.path != "/" { above = above.deletingLastPathComponent() }
            guard isDirectory.boolValue else { throw TrainingError.plan("--run-dir \(directory.path) lies below \(above.path), which is a file; choose a directory path") }
            return nil
        }
        guard isDirectory.boolValue else { throw TrainingError.plan("--run-dir \(directory.path) is a file; give a directory (new or empty) for the run's records") }
        let entries = ((try? manager.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix("previous-") }.sorted()
        if entries.isEmpty { return nil }
        guard entries.contains("run_plan.json") else {
            let shown = entries.prefix(5).joined(separator: ", ") + (entries.count > 5 ? ", …" : "")
            throw TrainingError.plan("--run-dir \(directory.path) holds files that are not a run's records (\(shown)); a run writes only into a new or empty directory or resumes its own — choose another --run-dir (nothing was written)")
        }
        guard !CheckpointStore(runDirectory: directory).hasCommitted else {
            throw TrainingError.plan("\(directory.path) already holds a run with checkpoints; resume it (--resume auto) or choose another --run-dir")
        }
        // An earlier start that committed no checkpoint (it failed, or saving was off): keep its
        // records, and any uncommitted checkpoint directories, beside the new run's.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let aside = directory.appendingPathComponent("previous-\(formatter.string(from: Date()))")
        do {
            try manager.createDirectory(at: aside, withIntermediateDirectories: false)
            for name in entries where recordNames.contains(name) || name == "checkpoints" || name.hasPrefix("evaluation") {
                try manager.moveItem(at: directory.appendingPathComponent(name), to: aside.appendingPathComponent(name))
            }
        } catch {
            throw TrainingError.plan("\(directory.path) holds an earlier start's records that could not be moved aside to \(aside.lastPathComponent): \(error.localizedDescription); choose another --run-dir")
        }
        return aside
    }

    /// Opens the run directory: a new run creates it (after `checkUnused`); a resumed run
    /// (`history`: the metrics snapshot of the checkpoint at `step` it continues from) replaces
    /// `metrics.jsonl` with that snapshot, dropping the lines of steps that will be run again, and
    /// keeps the earlier sessions' timeline when the checkpoint is this directory's own.
    init(directory: URL, history: URL? = nil, resumedAt step: Int? = nil, keepingTimeline: Bool = false) throws {
        self.directory = directory
        let manager = FileManager.default
        let metricsFile = directory.appendingPathComponent("metrics.jsonl")
        if history == nil { try Self.checkUnused(directory) }  // the plan did so already; a no-op unless a file appeared since
        do {
            try manager.createDirectory(at: directory, withIntermediateDirectories: true)
            let lines = try history.map { Self.resumedHistory(try Data(contentsOf: $0), upTo: step ?? .max) } ?? Data()
            try lines.write(to: metricsFile, options: .atomic)
            metrics = try FileHandle(forWritingTo: metricsFile)
            try metrics.seekToEnd()
        } catch {
            throw TrainingError.plan("cannot create the run records in \(directory.path): \(error.localizedDescription)")
        }
        if let step {
            sessionName = "resumed at step \(step)"
            if keepingTimeline { keepEarlierTimeline(upTo: step) }
        }
    }

    /// The metrics lines a resumed run continues from: those of steps up to `step`, without the
    /// final evaluations of an earlier end. Builds before 0.19 numbered training lines from 0;
    /// those are renumbered so that step n is the state after n updates.
    static func resumedHistory(_ data: Data, upTo step: Int) -> Data {
        let lines = data.split(separator: UInt8(ascii: "\n"))
        let objects = lines.map { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        let fromZero = objects.lazy.compactMap { $0 }.first { $0["split"] == nil }?["step"] as? Int == 0
        var kept = Data()
        for (line, object) in zip(lines, objects) {
            guard var object, object["final"] == nil else { continue }
            var text = Data(line)
            if fromZero, object["split"] == nil, let old = object["step"] as? Int {
                object["step"] = old + 1
                guard let renumbered = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { continue }
                text = renumbered
            }
            guard (object["step"] as? Int ?? 0) <= step else { continue }
            kept.append(text + Data("\n".utf8))
        }
        return kept
    }

    /// The objects of `metrics.jsonl`, in order.
    func metricsLines() -> [[String: Any]] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func write(_ name: String, _ data: Data) throws {
        let file = directory.appendingPathComponent(name)
        do { try data.write(to: file, options: .atomic) } catch {
            throw TrainingError.records("cannot write \(file.path): \(error.localizedDescription)")
        }
    }

    /// Appends one JSON object as a line of `metrics.jsonl`; throws when it cannot be written
    /// (a full disk), naming the file.
    /// A figure that is not finite (a diverged validation loss) is written as null: JSON has no
    /// NaN or infinity, and the line must not be lost for it.
    func appendMetrics(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object.mapValues(Self.jsonSafe), options: [.sortedKeys, .withoutEscapingSlashes])
        do { try metrics.write(contentsOf: data + Data("\n".utf8)) } catch {
            throw TrainingError.records("cannot append to \(directory.appendingPathComponent("metrics.jsonl").path): \(error.localizedDescription)")
        }
    }

    /// `value` with non-finite numbers (also inside arrays and objects) replaced by null.
    static func jsonSafe(_ value: Any) -> Any {
        switch value {
        case let x as Double: x.isFinite ? x : NSNull()
        case let object as [String: Any]: object.mapValues(jsonSafe)
        case let array as [Any]: array.map(jsonSafe)
        default: value
        }
    }

    /// Keeps the timeline events of earlier sessions up to `step` (those of steps run again
    /// after the checkpoint are dropped, as in metrics.jsonl); this session becomes the next.
    private func keepEarlierTimeline(upTo step: Int) {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("timeline.json")),
              let trace = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let old = trace["traceEvents"] as? [[String: Any]] else { return }
        for event in old {
            if let args = event["args"] as? [String: Any], let eventStep = args["step"] as? Int, eventStep > step { continue }
            Self.appendEvent(event, to: &earlierEvents)
        }
        session = (old.compactMap { $0["pid"] as? Int }.max() ?? 0) + 1
    }

    /// A span of `worker`'s time at `step` (steps numbered from 1) for the timeline.
    func addSpan(_ span: Span, worker: Int, step: Int) {
        Self.appendEvent(["name": span.name, "cat": "step", "ph": "X", "ts": span.start * 1e6, "dur": span.duration * 1e6,
                          "pid": session, "tid": worker + 1, "args": ["step": step]], to: &events)
    }

    private static func appendEvent(_ event: [String: Any], to list: inout Data) {
        guard let data = try? JSONSerialization.data(withJSONObject: jsonSafe(event), options: [.sortedKeys]) else { return }
        if !list.isEmpty { list.append(UInt8(ascii: ",")) }
        list.append(data)
    }

    /// Writes `timeline.json`: earlier sessions' rows, then this session's, one row per worker
    /// (world rank = worker + 1); each session is a process of the trace, named for its start.
    func writeTimeline(workers: Int) throws {
        let names: [[String: Any]] = [["name": "process_name", "ph": "M", "pid": session, "args": ["name": "session \(session): \(sessionName)"]],
                                      ["name": "process_sort_index", "ph": "M", "pid": session, "args": ["sort_index": session]]]
            + (0..<workers).map { ["name": "thread_name", "ph": "M", "pid": session, "tid": $0 + 1, "args": ["name": "worker \($0) (rank \($0 + 1))"]] }
        var list = earlierEvents
        for event in names { Self.appendEvent(event, to: &list) }
        if !events.isEmpty { list.append(UInt8(ascii: ",")); list.append(events) }
        try write("timeline.json", Data("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[".utf8) + list + Data("]}".utf8))
    }

    /// Now in UTC, ISO 8601 (e.g. 2026-12-02T09:15:00Z), for provenance.
    static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    deinit { try? metrics.close() }
}
