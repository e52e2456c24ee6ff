import Foundation
import TestSupport
import XCTest

/// Runs that used to lose work or crash: a checkpoint before the first validation with early
/// stopping on, a run directory left by a start that failed, an empty training split.
extension TrainingRunTests {
    /// Early stopping's best loss is +∞ until the first validation, which JSON cannot hold: the
    /// checkpoints saved before it (and the final one) must still be written and resume.
    func testCheckpointsBeforeTheFirstValidationWithEarlyStopping() throws {
        let file = try config()
        let sets = ["evaluation.every_steps=50", "evaluation.patience=2", "checkpoint.every_steps=4"]
        let (result, directory) = try train(file, workers: 2, sets)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertFalse(result.output.contains("FAILED"), result.output)
        let verify = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["checkpoint", "verify", directory.path])
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertEqual(verify.stdout.components(separatedBy: ": valid").count - 1, 3, "steps 4, 8 and 12\n" + verify.output)

        let resumed = Self.scratch.appendingPathComponent("resumed-\(UUID().uuidString)")
        try copyRun(directory, atStep: 4, to: resumed)
        let (again, _) = try train(file, workers: 2, runDirectory: resumed.lastPathComponent, sets)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(try parameterHash(resumed), try parameterHash(directory), "resumed from step 4")
    }

    /// A start that failed before any checkpoint leaves records; a rerun into the same directory
    /// moves them aside and trains. A directory of the user's own files is refused, untouched.
    func testRunDirectoryOfAFailedStartIsReusedAndTheUsersFilesAreNot() throws {
        let directory = Self.scratch.appendingPathComponent("failed-start-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for record in ["config.yaml", "run_plan.json", "metrics.jsonl"] {
            try "from the failed start".write(to: directory.appendingPathComponent(record), atomically: true, encoding: .utf8)
        }
        let (result, _) = try train(try config(), workers: 2, runDirectory: directory.lastPathComponent)
        XCTAssertEqual(result.status, 0, result.output)
        let aside = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("previous-") })
        XCTAssertEqual(try String(contentsOf: directory.appendingPathComponent("\(aside)/metrics.jsonl"), encoding: .utf8), "from the failed start")
        XCTAssertTrue(result.stderr.contains("moved them to"), result.stderr)

        let mine = Self.scratch.appendingPathComponent("mine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        try "{\"mine\": true}".write(to: mine.appendingPathComponent("summary.json"), atomically: true, encoding: .utf8)
        let (refused, _) = try train(try config(), workers: 2, runDirectory: mine.lastPathComponent)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("holds files that are not a run's records (summary.json)"), refused.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mine.path), ["summary.json"])
        XCTAssertEqual(try String(contentsOf: mine.appendingPathComponent("summary.json"), encoding: .utf8), "{\"mine\": true}")
    }

    /// Configs that used to trap in every worker now stop before training, naming the key.
    func testGeometryThatCannotTrainStopsBeforeTraining() throws {
        for (sets, message) in [
            (["schedule.warmup_steps=12"], "schedule.warmup_steps (12) must be shorter than the run (12 steps)"),
            (["train.split.train=0.001", "train.split.validation=0", "train.drop_last=false"], "the training split is empty"),
            (["train.global_batch=1", "train.micro_batch=1"], "train.global_batch (1) is smaller than the number of workers (2)"),
        ] {
            let (result, directory) = try train(try config(), workers: 2, sets)
            XCTAssertEqual(result.status, 2, "\(sets)\n" + result.output)
            XCTAssertTrue(result.stderr.contains(message), "\(sets)\n" + result.stderr)
            XCTAssertFalse(result.stderr.contains("Fatal error") || result.stderr.contains("Stack dump"), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path), "nothing was written")
        }
    }
}
