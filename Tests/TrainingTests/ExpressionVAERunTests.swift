import Cohorts
import Foundation
import TestSupport
import XCTest

/// The rna-vae task (RNA-CDM's β-VAE) in whole runs under mpirun, then `transcriptile evaluate`
/// and `encode` on its checkpoint.
extension TrainingRunTests {
    /// The shared test config with the task and model swapped for a small VAE.
    private func vaeConfig(_ extra: String = "") throws -> URL {
        let file = try config(extra)
        let text = try String(contentsOf: file, encoding: .utf8)
            .replacingOccurrences(of: "task: cancer-type", with: "task: rna-vae")
            .replacingOccurrences(of: "model: {hidden: [32], dropout: 0.2}", with: "model: {hidden: [64, 32], latent: 8, dropout: 0.2}")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Trains on 2 workers until early stopping ends it, and checks the figures the issue asks
    /// for: k-NN accuracy of cancer type from the latent near the simulator's ceiling, silhouette,
    /// reconstruction; the PCA plot; `evaluate` reproduces them from the checkpoint and `encode`
    /// writes μ and log σ² per patient.
    func testVAETrainsStopsEarlyAndItsLatentSeparatesCancerTypes() throws {
        let file = try vaeConfig()
        let (result, run) = try train(file, workers: 2, ["train.steps=400", "evaluation.every_steps=10", "evaluation.patience=3",
                                                         "optimizer.name=adam", "optimizer.lr=0.003", "optimizer.weight_decay=0"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("early stopping: no better validation loss in 3 evaluations; weights of step"), result.output)
        let summary = try json(run.appendingPathComponent("summary.json"))
        let evaluation = try XCTUnwrap(summary["evaluation"] as? [String: Any])
        let knn = try XCTUnwrap(evaluation["knn_accuracy"] as? Double), silhouette = try XCTUnwrap(evaluation["silhouette"] as? Double)
        XCTAssertGreaterThan(knn, 0.85, "cancer types from the latent (the simulated types differ in their cell-type mix)")
        XCTAssertGreaterThan(silhouette, 0.05)
        XCTAssertLessThan(try XCTUnwrap(evaluation["reconstruction_mse"] as? Double), 1, "better than predicting the mean (z-scores: 1)")
        XCTAssertGreaterThan(try XCTUnwrap(evaluation["gene_correlation_mean"] as? Double), 0.1)
        let early = try XCTUnwrap(summary["early_stopping"] as? [String: Any])
        let best = try XCTUnwrap(early["best_step"] as? Int), final = try XCTUnwrap(summary["final_step"] as? Int)
        XCTAssertEqual(final, best + 30, "stopped three evaluations after the best")
        // The stopping step's validation is printed once as itself, and once as the final figures
        // of the restored weights, labelled so (not as two different "validation at step N").
        XCTAssertTrue(result.stderr.contains("final validation (weights of step \(best), restored by early stopping)"), result.stderr)
        XCTAssertEqual(result.stderr.components(separatedBy: "validation (step \(final))").count, 2, result.stderr)
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let finals = lines.filter { $0["final"] as? Bool == true }
        XCTAssertEqual(finals.map { $0["split"] as? String }, ["validation", "test"])
        XCTAssertEqual(finals.map { $0["weights_of_step"] as? Int }, [best, best])
        // One name, one value: summary.json's figures are the final lines' figures.
        let test = try XCTUnwrap(finals.last)
        XCTAssertEqual(evaluation["loss_reconstruction"] as? Double, test["loss_reconstruction"] as? Double)
        XCTAssertNil(test["reconstruction_mse"], "the loss term has its own name")
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("latent_pca.png").path))

        let cli = ProcessRunner.product("transcriptile")
        let evaluate = try ProcessRunner.run(cli, ["evaluate", "--checkpoint", run.path])
        XCTAssertEqual(evaluate.status, 0, evaluate.output)
        let again = try XCTUnwrap(try json(run.appendingPathComponent("evaluation/evaluation.json"))["evaluation"] as? [String: Any])
        // The same figures from the checkpoint (up to BLAS summation order: the CLI runs on more threads).
        XCTAssertEqual(try XCTUnwrap(again["knn_accuracy"] as? Double), knn, accuracy: 1e-9, "evaluate reproduces the end of the run")
        XCTAssertEqual(try XCTUnwrap(again["silhouette"] as? Double), silhouette, accuracy: 1e-6)

        let latents = run.appendingPathComponent("latents.h5").path
        let encode = try ProcessRunner.run(cli, ["encode", "--checkpoint", run.path, "--out", latents])
        XCTAssertEqual(encode.status, 0, encode.output)
        let encoded = try HDF5File.open(latents)
        XCTAssertEqual(try encoded.info("/mu").shape, [160, 8])
        XCTAssertEqual(try encoded.info("/log_variance").shape, [160, 8])
        XCTAssertEqual(try encoded.readStrings("/patient_id").count, 160)
        XCTAssertEqual(try encoded.read("/cancer_type", as: Int32.self).count, 160)
        XCTAssertEqual(try encoded.stringAttribute("/", "cancer_types"), ["TYPE0", "TYPE1", "TYPE2"])
        let refused = try ProcessRunner.run(cli, ["encode", "--checkpoint", run.path, "--out", latents])
        XCTAssertEqual(refused.status, 2, "an existing file is not replaced without --overwrite\n" + refused.output)
    }

    /// Interrupted after a checkpoint and resumed, a run with early stopping and BatchNorm ends
    /// with the weights of the uninterrupted run: the best weights, the counters and the
    /// running statistics travel in the checkpoint.
    func testVAEWithEarlyStoppingResumesBitwiseIdentically() throws {
        let file = try vaeConfig("checkpoint: {every_steps: 20}")
        let sets = ["train.steps=200", "evaluation.every_steps=10", "evaluation.patience=4"]
        let (whole, wholeRun) = try train(file, workers: 2, sets)
        XCTAssertEqual(whole.status, 0, whole.output)
        let copy = Self.scratch.appendingPathComponent("vae-resume-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: wholeRun, to: copy)
        let store = copy.appendingPathComponent("checkpoints")
        let steps = try FileManager.default.contentsOfDirectory(atPath: store.path).filter { $0.hasPrefix("step-") }.sorted()
        XCTAssertGreaterThan(steps.count, 1, "\(steps)")
        for later in steps.dropFirst() { try FileManager.default.removeItem(at: store.appendingPathComponent(later)) }
        try FileManager.default.removeItem(at: copy.appendingPathComponent("summary.json"))
        let (resumed, _) = try train(file, workers: 2, runDirectory: copy.lastPathComponent, sets)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resuming from"), resumed.output)
        XCTAssertEqual(try parameterHash(copy), try parameterHash(wholeRun), "resumed weights equal uninterrupted ones")
        XCTAssertEqual(try json(copy.appendingPathComponent("summary.json"))["final_step"] as? Int,
                       try json(wholeRun.appendingPathComponent("summary.json"))["final_step"] as? Int, "stopped at the same step")
    }
}
