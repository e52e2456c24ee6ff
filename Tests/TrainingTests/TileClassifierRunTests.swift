import Foundation
import TestSupport
import XCTest

/// The first tile-level task under real mpirun: tiles as samples, split by patient, a CNN with
/// augmentation, accuracy per tile and per patient, and fine-tuning from another run.
extension TrainingRunTests {
    /// 150 patients of 3 types with 4 tiles of 16 px each and 50 genes, simulated once.
    func tileCohort() throws -> URL {
        let cohort = Self.scratch.appendingPathComponent("tile-cohort")
        guard !FileManager.default.fileExists(atPath: cohort.path) else { return cohort }
        let simulated = try ProcessRunner.run(ProcessRunner.product("transcriptile"), [
            "data", "simulate", "--out", cohort.path, "--patients", "150", "--cancer-types", "3", "--genes", "50",
            "--tiles-per-patient", "4", "--tile-size", "16", "--seed", "11"])
        XCTAssertEqual(simulated.status, 0, simulated.output)
        return cohort
    }

    func testTileClassifierLearnsCancerTypeFromTilesWellAboveChance() throws {
        let cohort = try tileCohort()
        let file = Self.scratch.appendingPathComponent("tiles-\(UUID().uuidString).yaml")
        try """
            task: tile-classifier
            cohort: \(cohort.path)
            model: {depth: 2, width: 8, dropout: 0}
            optimizer: {lr: 0.01, groups: [{match: ['*.bias', '*norm*'], weight_decay: false}]}
            schedule: {warmup_steps: 10}
            train: {steps: 120, global_batch: 32, seed: 2, ema: {decay: 0.9}}
            evaluation: {every_steps: 60}
            liveness: {timeout_s: 20}
            """.write(to: file, atomically: true, encoding: .utf8)
        let (result, run) = try train(file, workers: 2, timeout: 300)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("90/30/30 train/validation/test patients (360/120/120 tiles)"), result.stdout)
        let plan = try json(run.appendingPathComponent("run_plan.json"))
        XCTAssertEqual((plan["samples"] as? [String: Any])?["unit"] as? String, "tile")
        let evaluation = try XCTUnwrap(try json(run.appendingPathComponent("summary.json"))["evaluation"] as? [String: Any])
        let patient = try XCTUnwrap(evaluation["patient_accuracy"] as? Double), chance = try XCTUnwrap(evaluation["chance_accuracy"] as? Double)
        XCTAssertEqual(evaluation["patients"] as? Double, 30)
        XCTAssertEqual(evaluation["tiles"] as? Double, 120)
        XCTAssertGreaterThan(patient, chance + 0.3, "per-patient accuracy well above chance\n" + result.stdout)
        XCTAssertGreaterThan(try XCTUnwrap(evaluation["tile_accuracy"] as? Double), chance + 0.2, result.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("confusion_matrix.png").path))

        // Fine-tuning: the whole network starts from the first run's EMA.
        let (tuned, _) = try train(file, workers: 2, ["train.steps=12", "train.init_from=\(run.path)", "train.ema.decay=0"])
        XCTAssertEqual(tuned.status, 0, tuned.output)
        XCTAssertTrue(tuned.stdout.contains("(a tile-classifier run at step 120): 12 of 12 tensors loaded"), tuned.stdout)

        let smaller = Self.scratch.appendingPathComponent("tile-cohort-8px")
        let simulatedSmaller = try ProcessRunner.run(ProcessRunner.product("transcriptile"), [
            "data", "simulate", "--out", smaller.path, "--patients", "30", "--cancer-types", "3", "--genes", "50",
            "--tiles-per-patient", "2", "--tile-size", "8", "--seed", "12"])
        XCTAssertEqual(simulatedSmaller.status, 0, simulatedSmaller.output)
        let otherSize = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["evaluate", "--checkpoint", run.path, "--cohort", smaller.path,
                                                                                   "--out", Self.scratch.appendingPathComponent("eval-8px").path])
        XCTAssertEqual(otherSize.status, 2, otherSize.output)
        XCTAssertTrue(otherSize.stderr.contains("has tiles of 8 px; this model was trained on tiles of 16 px"), otherSize.stderr)

        let (tooDeep, _) = try train(file, workers: 2, ["model.depth=5"])
        XCTAssertEqual(tooDeep.status, 2, tooDeep.output)
        XCTAssertTrue(tooDeep.stderr.contains("tiles of 16 px are too small for model.depth 5"), tooDeep.stderr)
    }

    /// Bags of tiles with RNA, and gradient modulation: every step's coefficients are in
    /// metrics.jsonl (the dominant modality damped, the other 1), computed from statistics summed
    /// in fixed point, so with the reproducible exchange 1 and 2 workers end with the same weights.
    func testMultimodalTaskModulatesGradientsFromStatisticsOfTheWholeStep() throws {
        let file = Self.scratch.appendingPathComponent("multimodal-\(UUID().uuidString).yaml")
        try """
            task: multimodal-cancer-type
            cohort: \(try tileCohort().path)
            model: {depth: 2, width: 4, attention: 8, hidden: [16], features: 8, dropout: 0.1, max_tiles: 3, modulation: {alpha: 0.5, start_step: 2}}
            optimizer: {lr: 0.005}
            train: {steps: 16, global_batch: 16, micro_batch: 4, seed: 2}
            exchange: {algorithm: reproducible}
            liveness: {timeout_s: 20}
            """.write(to: file, atomically: true, encoding: .utf8)
        var hashes = Set<String>()
        for workers in [1, 2] {
            let (result, run) = try train(file, workers: workers, timeout: 300)
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertTrue(result.stdout.contains("90/30/30 train/validation/test patients (90/30/30 patients with tiles)"), result.stdout)
            hashes.insert(try parameterHash(run))
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
                .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.filter { $0["split"] == nil }
            XCTAssertEqual(lines.count, 16)
            for line in lines {
                let pathology = try XCTUnwrap(line["coefficient.pathology"] as? Double), omic = try XCTUnwrap(line["coefficient.omic"] as? Double)
                XCTAssertTrue((0...1).contains(pathology) && (0...1).contains(omic), "\(line)")
                XCTAssertEqual(max(pathology, omic), 1, "only the dominant modality is damped: \(line)")
                if (line["step"] as? Int ?? 0) <= 2 { XCTAssertEqual(min(pathology, omic), 1, "before modulation.start_step: \(line)") }
            }
            XCTAssertLessThan(lines.compactMap { line in ["coefficient.pathology", "coefficient.omic"].compactMap { line[$0] as? Double }.min() }.min() ?? 1, 1,
                              "some step damps a modality")
            let evaluation = try XCTUnwrap(try json(run.appendingPathComponent("summary.json"))["evaluation"] as? [String: Any])
            XCTAssertNotNil(evaluation["accuracy_pathology"] as? Double)
            XCTAssertNotNil(evaluation["accuracy_omic"] as? Double)
        }
        XCTAssertEqual(hashes.count, 1, "the same weights on 1 and 2 workers")
    }

    /// Tiles resume like patients: a checkpoint's (epoch, cursor) counts tiles, and a run saved
    /// by 2 workers and resumed by 3 ends with the weights of an uninterrupted run.
    func testTileRunResumesOnAnotherWorkerCount() throws {
        let file = Self.scratch.appendingPathComponent("tiles-resume-\(UUID().uuidString).yaml")
        try """
            task: tile-classifier
            cohort: \(try tileCohort().path)
            model: {depth: 2, width: 4}
            train: {steps: 12, global_batch: 24, seed: 4}
            exchange: {algorithm: reproducible}
            checkpoint: {every_steps: 6}
            liveness: {timeout_s: 20}
            """.write(to: file, atomically: true, encoding: .utf8)
        let (whole, run) = try train(file, workers: 2)
        XCTAssertEqual(whole.status, 0, whole.output)
        let copy = Self.scratch.appendingPathComponent("tiles-resumed-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: run, to: copy)
        try FileManager.default.removeItem(at: copy.appendingPathComponent("checkpoints/step-00000012"))
        try FileManager.default.removeItem(at: copy.appendingPathComponent("summary.json"))
        let (resumed, _) = try train(file, workers: 3, runDirectory: copy.lastPathComponent)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("at step 6"), resumed.output)
        XCTAssertEqual(try parameterHash(copy), try parameterHash(run), "resumed on 3 workers")
    }
}
