import Foundation
import TestSupport
import XCTest

/// The records a user reads after a run: numbered one way, appended on resume, with provenance,
/// and a plan in one key style without opaque blobs.
extension TrainingRunTests {
    private func jsonLines(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testRecordsNumberStepsOneWayAndAResumeAppendsToThem() throws {
        let file = try config("checkpoint: {every_steps: 6}")
        let (first, directory) = try train(file, workers: 2, ["train.steps=6"])
        XCTAssertEqual(first.status, 0, first.output)
        let (second, _) = try train(file, workers: 2, runDirectory: directory.lastPathComponent)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.stdout.contains("resuming from \(directory.path)/checkpoints/step-00000006 at step 6"), second.stdout)

        // metrics.jsonl: steps 1…12 once each, evaluations at 5 and 10 and the final ones at 12.
        let lines = try jsonLines(directory.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(lines.filter { $0["split"] == nil }.compactMap { $0["step"] as? Int }, Array(1...12))
        let evaluations = lines.filter { $0["split"] != nil }
        XCTAssertEqual(evaluations.filter { $0["final"] == nil }.compactMap { $0["step"] as? Int }, [5, 10])
        XCTAssertEqual(evaluations.filter { $0["final"] as? Bool == true }.compactMap { $0["step"] as? Int }, [12, 12])
        XCTAssertTrue(second.stderr.contains("validation (step 10)"), second.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent("checkpoints/step-00000012").path))

        // timeline.json: both sessions, each a process of the trace, steps as in the metrics.
        let events = try XCTUnwrap(try json(directory.appendingPathComponent("timeline.json"))["traceEvents"] as? [[String: Any]])
        let spans = events.filter { $0["name"] as? String == "compute" }
        func steps(_ session: Int) -> Set<Int> {
            Set(spans.filter { $0["pid"] as? Int == session }.compactMap { ($0["args"] as? [String: Any])?["step"] as? Int })
        }
        XCTAssertEqual(steps(1), Set(1...6), "the first session's spans are kept")
        XCTAssertEqual(steps(2), Set(7...12), "the resumed session's spans are added")
        let sessions = events.filter { $0["name"] as? String == "process_name" }.compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
        XCTAssertEqual(sessions, ["session 1: run", "session 2: resumed at step 6"])

        // Provenance in the plan and the summary.
        let summary = try json(directory.appendingPathComponent("summary.json"))
        let provenance = try XCTUnwrap(summary["provenance"] as? [String: Any])
        XCTAssertEqual((provenance["hosts"] as? [String])?.count, 3)
        XCTAssertEqual(provenance["ranks"] as? Int, 3)
        for key in ["version", "commit", "command", "started", "ended"] {
            XCTAssertFalse((provenance[key] as? String ?? "").isEmpty, "provenance.\(key)")
        }
        XCTAssertEqual((provenance["resumed_from"] as? [String: Any])?["step"] as? Int, 6)
        XCTAssertTrue((provenance["command"] as? String ?? "").contains(file.path), "\(provenance)")

        // run_plan.json: snake_case keys like the config, the prepared data as plain JSON.
        let plan = try json(directory.appendingPathComponent("run_plan.json"))
        for key in ["run_dir", "micro_batch", "steps_per_epoch", "cohort_shape", "provenance"] { XCTAssertNotNil(plan[key], key) }
        for key in ["runDirectory", "microBatch", "stepsPerEpoch", "cohortShape"] { XCTAssertNil(plan[key], key) }
        let normalizer = try XCTUnwrap((plan["prepared"] as? [String: Any])?["normalizer"] as? [String: Any], "prepared is JSON, not base64")
        XCTAssertEqual((normalizer["mean"] as? [Double])?.count, 200)
        XCTAssertNotNil(normalizer["log_nonzero"] as? Bool)
        XCTAssertNotNil((plan["cohort_shape"] as? [String: Any])?["genes_sha256"] as? String)

        // config.yaml is the effective config: the run directory that was used.
        let stored = try String(contentsOf: directory.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertTrue(stored.contains("run_dir: \(directory.path)"), stored)
    }
}
