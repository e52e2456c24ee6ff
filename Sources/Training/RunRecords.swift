import Foundation

/// The files of a run directory (DESIGN §8): `config.yaml`, `run_plan.json`, `metrics.jsonl`
/// (one line per step and per evaluation), `timeline.json` (Chrome trace), `loss_curve.png`
/// and `summary.json`.
final class RunRecords {
    let directory: URL
    private let metrics: FileHandle
    private var events: [[String: Any]] = []

    /// Refuses a directory that already holds a run's metrics: a new run never overwrites one.
    static func checkUnused(_ directory: URL) throws {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("metrics.jsonl").path) {
            throw TrainingError.plan("\(directory.path) already holds a run (metrics.jsonl); choose another --run-dir or remove it")
        }
    }

    /// Creates the run directory (after `checkUnused`).
    init(directory: URL) throws {
        self.directory = directory
        let manager = FileManager.default
        let metricsFile = directory.appendingPathComponent("metrics.jsonl")
        try Self.checkUnused(directory)
        do {
            try manager.createDirectory(at: directory, withIntermediateDirectories: true)
            manager.createFile(atPath: metricsFile.path, contents: nil)
            metrics = try FileHandle(forWritingTo: metricsFile)
        } catch {
            throw TrainingError.plan("cannot create the run directory \(directory.path): \(error.localizedDescription)")
        }
    }

    func write(_ name: String, _ data: Data) throws {
        try data.write(to: directory.appendingPathComponent(name), options: .atomic)
    }

    /// Appends one JSON object as a line of `metrics.jsonl`.
    func appendMetrics(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        metrics.write(data + Data("\n".utf8))
    }

    /// A span of `worker`'s time for the timeline.
    func addSpan(_ span: Span, worker: Int, step: Int) {
        events.append(["name": span.name, "cat": "step", "ph": "X", "ts": span.start * 1e6, "dur": span.duration * 1e6,
                       "pid": 1, "tid": worker + 1, "args": ["step": step]])
    }

    /// Writes `timeline.json`: one row per worker (world rank = worker + 1).
    func writeTimeline(workers: Int) throws {
        let names: [[String: Any]] = (0..<workers).map {
            ["name": "thread_name", "ph": "M", "pid": 1, "tid": $0 + 1, "args": ["name": "worker \($0) (rank \($0 + 1))"]]
        }
        let trace: [String: Any] = ["traceEvents": names + events, "displayTimeUnit": "ms"]
        try write("timeline.json", try JSONSerialization.data(withJSONObject: trace, options: [.sortedKeys]))
    }

    deinit { try? metrics.close() }
}
