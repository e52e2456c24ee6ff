import Checkpoints
import Foundation
import TestSupport
import XCTest

/// What a worker trains beside the weights, under real mpirun: the EMA of the weights (in
/// checkpoints, resharded, used by evaluate and encode), another run's weights as a start
/// (`train.init_from`), and parameter groups (`optimizer.groups`).
extension TrainingRunTests {
    private func arena(_ name: String, of run: URL, step: Int) throws -> [Float] {
        let reader = try CheckpointReader(directory: run.appendingPathComponent(String(format: "checkpoints/step-%08d", step)))
        let count = try XCTUnwrap(reader.manifest.arenas.first { $0.name == name }?.count, "no arena \(name)")
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try reader.read(arena: name, range: 0..<count, into: $0) }
        return values
    }

    /// The EMA is checkpointed beside the weights; until `start_step` it copies them; with
    /// ZeRO-1 it is partitioned like the moments and resumes on another worker count as if
    /// never interrupted; evaluate uses it by default and the trained weights on request.
    func testEMAOfTheWeightsIsCheckpointedReshardedAndUsedByEvaluate() throws {
        let file = try config("exchange: {algorithm: reproducible, zero_stage: 1}\ncheckpoint: {every_steps: 6}")
        let ema = ["train.ema.decay=0.9", "train.ema.start_step=4"]
        let (whole, run) = try train(file, workers: 3, ema)
        XCTAssertEqual(whole.status, 0, whole.output)
        let average = try arena("ema", of: run, step: 12), weights = try arena("parameters", of: run, step: 12)
        XCTAssertEqual(average.count, weights.count)
        XCTAssertNotEqual(average, weights, "an average lags the weights")
        let (copying, copyRun) = try train(file, workers: 2, ["train.ema.decay=0.9", "train.ema.start_step=12"])
        XCTAssertEqual(copying.status, 0, copying.output)
        XCTAssertEqual(try arena("ema", of: copyRun, step: 12), try arena("parameters", of: copyRun, step: 12), "until start_step the EMA copies the weights")

        let resumed = Self.scratch.appendingPathComponent("ema-resumed-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: run, to: resumed)
        try FileManager.default.removeItem(at: resumed.appendingPathComponent("checkpoints/step-00000012"))
        try FileManager.default.removeItem(at: resumed.appendingPathComponent("summary.json"))
        let (second, _) = try train(file, workers: 2, runDirectory: resumed.lastPathComponent, ema)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(try arena("ema", of: resumed, step: 12), average, "the EMA resumed from 3 ZeRO-1 partitions on 2 workers")
        XCTAssertEqual(try parameterHash(resumed), try parameterHash(run))

        let cli = ProcessRunner.product("transcriptile")
        let byDefault = try ProcessRunner.run(cli, ["evaluate", "--checkpoint", run.path, "--out", Self.scratch.appendingPathComponent("ema-eval-\(UUID().uuidString)").path])
        XCTAssertEqual(byDefault.status, 0, byDefault.output)
        XCTAssertTrue(byDefault.stdout.contains("(EMA of the weights)"), byDefault.stdout)
        let trained = try ProcessRunner.run(cli, ["evaluate", "--checkpoint", run.path, "--weights", "trained", "--out", Self.scratch.appendingPathComponent("ema-eval-\(UUID().uuidString)").path])
        XCTAssertEqual(trained.status, 0, trained.output)
        XCTAssertTrue(trained.stdout.contains("(trained weights)"), trained.stdout)
        XCTAssertNotEqual(byDefault.stdout.split(separator: "\n").dropFirst().joined(), trained.stdout.split(separator: "\n").dropFirst().joined(), "different weights, different figures")

        let (plain, plainRun) = try train(try config(), workers: 2)
        XCTAssertEqual(plain.status, 0, plain.output)
        let refused = try ProcessRunner.run(cli, ["evaluate", "--checkpoint", plainRun.path, "--weights", "ema"])
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("holds no EMA of the weights (the run's train.ema.decay was 0); use --weights trained"), refused.stderr)
    }

    /// `train.init_from` loads every tensor of the same name and shape from another run (here
    /// with every group's learning rate scaled to 0, so the weights must stay exactly those
    /// loaded); a model with another head keeps that head initialised and says so; a path that
    /// is no run, and a group pattern that matches nothing, are refused before training.
    func testInitFromAnotherRunAndParameterGroups() throws {
        let (source, sourceRun) = try train(try config(), workers: 2)
        XCTAssertEqual(source.status, 0, source.output)
        let file = try config()
        let frozen = ["train.seed=9", "train.init_from=\(sourceRun.path)", "optimizer.groups=[{match: ['*'], lr_scale: 0}]"]
        let (copy, copyRun) = try train(file, workers: 2, frozen)
        XCTAssertEqual(copy.status, 0, copy.output)
        XCTAssertTrue(copy.stdout.contains("starting from \(sourceRun.path)/checkpoints/step-00000012 (a cancer-type run at step 12): 6 of 6 tensors loaded"), copy.stdout)
        XCTAssertEqual(try parameterHash(copyRun), try parameterHash(sourceRun), "lr_scale 0 on every parameter keeps the loaded weights")

        let (tuned, tunedRun) = try train(file, workers: 2, frozen + ["optimizer.groups=[{match: ['output.*'], weight_decay: false}]"])
        XCTAssertEqual(tuned.status, 0, tuned.output)
        XCTAssertNotEqual(try parameterHash(tunedRun), try parameterHash(sourceRun), "fine-tuned")

        let (survival, _) = try train(file, workers: 2, frozen + ["task=survival-cox", "optimizer.groups=[]"])
        XCTAssertEqual(survival.status, 0, survival.output)
        XCTAssertTrue(survival.stdout.contains("4 of 6 tensors loaded; initialised afresh: output.weight (shape [1, 32] here, [3, 32] there), output.bias (shape [1] here, [3] there)"), survival.stdout)

        let (missing, _) = try train(file, workers: 2, frozen + ["train.init_from=/nonexistent/run"])
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.stderr.contains("train.init_from: /nonexistent/run is neither a checkpoint"), missing.stderr)
        let (unmatched, _) = try train(file, workers: 2, frozen + ["optimizer.groups=[{match: ['encoder.*'], lr_scale: 0.1}]"])
        XCTAssertEqual(unmatched.status, 2, unmatched.output)
        XCTAssertTrue(unmatched.stderr.contains("optimizer.groups[0].match: 'encoder.*' matches no parameter of cancer-type; its parameters: hidden0.weight"), unmatched.stderr)
        let (misspelt, _) = try train(file, workers: 2, frozen + ["optimizer.groups=[{match: ['*'], lr_scal: 0}]"])
        XCTAssertEqual(misspelt.status, 2, misspelt.output)
        XCTAssertTrue(misspelt.stderr.contains("unknown key 'optimizer.groups[0].lr_scal'"), misspelt.stderr)
    }
}
