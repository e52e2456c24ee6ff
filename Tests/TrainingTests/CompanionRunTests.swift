import Foundation
import TestSupport
import XCTest

/// Frozen companions under real mpirun: survival-cox reading a trained rna-vae's latent.
extension TrainingRunTests {
    func testCompanionIsFrozenRecordedInThePlanAndRefusedWhenItDoesNotFit() throws {
        let vaeConfig = Self.scratch.appendingPathComponent("vae-\(UUID().uuidString).yaml")
        try """
            task: rna-vae
            cohort: \(Self.cohort.path)
            model: {hidden: [32], latent: 8}
            train: {steps: 10, global_batch: 24, micro_batch: 8, seed: 3}
            liveness: {timeout_s: 20}
            """.write(to: vaeConfig, atomically: true, encoding: .utf8)
        let (vae, vaeRun) = try train(vaeConfig, workers: 2)
        XCTAssertEqual(vae.status, 0, vae.output)

        let file = Self.scratch.appendingPathComponent("cox-latent-\(UUID().uuidString).yaml")
        try """
            task: survival-cox
            cohort: \(Self.cohort.path)
            model: {hidden: [16], dropout: 0}
            train: {steps: 12, global_batch: 24, micro_batch: 8, seed: 3}
            companions: {rna_encoder: \(vaeRun.path)}
            liveness: {timeout_s: 20}
            """.write(to: file, atomically: true, encoding: .utf8)
        let (result, run) = try train(file, workers: 2)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("companion rna_encoder: \(vaeRun.path)/checkpoints/step-00000010 (a rna-vae run at step 10, trained weights, frozen)"), result.stdout)
        let plan = try json(run.appendingPathComponent("run_plan.json"))
        let companion = try XCTUnwrap((plan["companions"] as? [[String: Any]])?.first)
        XCTAssertEqual(companion["task"] as? String, "rna-vae")
        XCTAssertEqual(companion["step"] as? Int, 10)
        XCTAssertEqual((companion["config_sha256"] as? String)?.count, 64)
        XCTAssertEqual((companion["parameters_sha256"] as? String)?.count, 64)
        let summary = try json(run.appendingPathComponent("summary.json"))
        XCTAssertEqual((summary["parameters"] as? [String: Any])?["count"] as? Int, 8 * 16 + 16 + 2 * 16 + 16 + 1, "the MLP reads the 8-d latent; the VAE is not trained")
        XCTAssertNotNil((summary["evaluation"] as? [String: Any])?["c_index"] as? Double)
        let evaluated = try ProcessRunner.run(ProcessRunner.product("transcriptile"), ["evaluate", "--checkpoint", run.path])
        XCTAssertEqual(evaluated.status, 0, "evaluate builds the companion from the plan\n" + evaluated.output)

        let (missing, _) = try train(file, workers: 2, ["companions.rna_encoder=/nonexistent/vae"])
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.stderr.contains("companions.rna_encoder: /nonexistent/vae is neither a checkpoint"), missing.stderr)
        let (other, otherRun) = try train(try config(), workers: 2)
        XCTAssertEqual(other.status, 0, other.output)
        let (wrongTask, _) = try train(file, workers: 2, ["companions.rna_encoder=\(otherRun.path)"])
        XCTAssertEqual(wrongTask.status, 2, wrongTask.output)
        XCTAssertTrue(wrongTask.stderr.contains("companions.rna_encoder: \(otherRun.path) trained cancer-type; rna_encoder must be a rna-vae run"), wrongTask.stderr)
        let (unknown, _) = try train(file, workers: 2, ["companions.vae=\(vaeRun.path)"])
        XCTAssertEqual(unknown.status, 2, unknown.output)
        XCTAssertTrue(unknown.stderr.contains("unknown key 'companions.vae'"), unknown.stderr)

        let fewerGenes = Self.scratch.appendingPathComponent("cohort-100-genes")
        let simulated = try ProcessRunner.run(ProcessRunner.product("transcriptile"), [
            "data", "simulate", "--out", fewerGenes.path, "--patients", "60", "--cancer-types", "3", "--genes", "100", "--tiles-per-patient", "0", "--seed", "5"])
        XCTAssertEqual(simulated.status, 0, simulated.output)
        let (genes, _) = try train(file, workers: 2, ["cohort=\(fewerGenes.path)"])
        XCTAssertEqual(genes.status, 2, genes.output)
        XCTAssertTrue(genes.stderr.contains("companions.rna_encoder: \(vaeRun.path)") && genes.stderr.contains("has 100 genes, the run's cohort 200"), genes.stderr)
    }
}
