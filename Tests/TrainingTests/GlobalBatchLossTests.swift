import Autograd
import Checkpoints
import Cohorts
import Foundation
import NN
import Tensors
import TestSupport
import Training
import XCTest

/// Losses over the whole global batch (`GlobalBatchTrainable`), under real mpirun: survival-cox's
/// risk sets span every worker's patients.
extension TrainingRunTests {
    /// One SGD step (lr 1; no momentum, decay or clipping) moves the weights by exactly minus the
    /// gradient: on 1, 2 and 3 workers that is the single-process gradient of the same global
    /// batch, and with the reproducible exchange the weights are bitwise the same on each.
    func testCoxLossOverTheGlobalBatchGivesTheSingleProcessGradientOnAnyWorkerCount() throws {
        let file = Self.scratch.appendingPathComponent("cox-\(UUID().uuidString).yaml")
        try """
            task: survival-cox
            cohort: \(Self.cohort.path)
            model: {hidden: [16], dropout: 0}
            optimizer: {name: sgd, lr: 1, momentum: 0, weight_decay: 0, clip_norm: 0}
            train: {steps: 1, global_batch: 30, micro_batch: 4, seed: 3}
            liveness: {timeout_s: 20}
            """.write(to: file, atomically: true, encoding: .utf8)
        var hashes = Set<String>()
        for workers in [1, 2, 3] {
            let (reproducible, directory) = try train(file, workers: workers, ["exchange.algorithm=reproducible"])
            XCTAssertEqual(reproducible.status, 0, reproducible.output)
            hashes.insert(try parameterHash(directory))
            let (ring, ringRun) = try train(file, workers: workers)
            XCTAssertEqual(ring.status, 0, ring.output)
            let (step, expected) = try singleProcessStep(ringRun)
            assertClose(step, expected, absolute: 2e-5, relative: 1e-3, "weights moved by the single-process gradient on \(workers) worker(s)")
        }
        XCTAssertEqual(hashes.count, 1, "reproducible: the same weights on 1, 2 and 3 workers")
    }

    /// The weights' change in `run`'s one step, and minus the gradient of survival-cox's loss
    /// over the run's first global batch computed here in one process, from the same start.
    private func singleProcessStep(_ run: URL) throws -> (step: Tensor, expected: Tensor) {
        let plan = try JSONDecoder().decode(RunPlan.self, from: Data(contentsOf: run.appendingPathComponent("run_plan.json")))
        let arena = ParameterArena(seed: UInt64(plan.config.train.seed))
        let task = try SurvivalCoxTask(model: .init(hidden: [16], dropout: 0), prepared: try plan.prepared.decode(SurvivalCoxTask.Prepared.self),
                                       arena: arena, cohort: try CohortReader(directory: Self.cohort),
                                       companions: .none(cohort: try CohortReader(directory: Self.cohort)))
        arena.seal()
        let start = arena.values.floats
        let sampler = EpochSampler(samples: plan.trainingSamples, globalBatch: 30, seed: UInt64(plan.config.train.seed))
        let loader = CohortLoader.patients(directory: Self.cohort, subset: plan.split.train, sampler: sampler, normalizer: task.normalizer,
                                           rank: 0, workers: 1, steps: 1)
        defer { loader.stop() }
        let batch = try XCTUnwrap(try loader.next())
        XCTAssertEqual(batch.count, 30)
        let rows = 0..<batch.count
        task.globalLoss(outputs: task.outputs(batch, rows: rows, key: RandomKey(seed: 0, stream: RandomStream.step)),
                        inputs: task.lossInputs(batch, rows: rows)).backward()
        var trained = [Float](repeating: 0, count: arena.count)
        let checkpoint = try CheckpointReader(directory: run.appendingPathComponent("checkpoints/step-00000001"))
        try trained.withUnsafeMutableBufferPointer { try checkpoint.read(arena: "parameters", range: 0..<arena.count, into: $0) }
        return (Tensor(shape: [arena.count], values: zip(trained, start).map { Double($0 - $1) }),
                Tensor(shape: [arena.count], values: arena.gradients.floats.map { -Double($0) }))
    }
}
