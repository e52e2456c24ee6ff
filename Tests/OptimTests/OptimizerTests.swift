import Autograd
import NN
import Optim
import TestSupport
import Tensors
import XCTest

/// Optimizers against 5 PyTorch steps of a tiny MLP, plus schedules, clipping and EMA.
final class OptimizerTests: XCTestCase {
    /// Trains fc1 → tanh → fc2 with MSE for 5 steps and compares all parameters after each step.
    private func replay(_ name: String, lr: Double, _ optimizer: inout some Optimizer) throws {
        let fixture = try Fixture("optimizer_" + name)
        let arena = ParameterArena()
        let fc1 = Linear(arena, "fc1", 4, 8), fc2 = Linear(arena, "fc2", 8, 3)
        arena.seal()
        for entry in arena.entries { arena.values(of: entry).assign(fixture.tensor("initial", entry.name).scalars) }
        let x = Variable(fixture.tensor("x")), y = Variable(fixture.tensor("y"))
        let steps = fixture.value("steps") as! [[String: Any]]
        for (step, expected) in steps.enumerated() {
            arena.zeroGradients()
            Loss.meanSquaredError(fc2(fc1(x).tanh()), y).backward()
            optimizer.step(parameters: arena.values, gradients: arena.gradients, lr: lr)
            for entry in arena.entries {
                let object = expected[entry.name] as! [String: Any]
                let want = Tensor(shape: object["shape"] as! [Int], values: object["data"] as! [Double])
                assertClose(arena.values(of: entry), want, absolute: 1e-6, relative: 1e-5, "\(name) step \(step + 1) \(entry.name)")
            }
        }
    }

    func testAdamMatchesPyTorch() throws {
        var adam = Adam()
        try replay("adam", lr: 1e-2, &adam)
        XCTAssertEqual(adam.stepCount, 5)
    }

    /// Parameter groups as runs of the flat buffer: each run updates exactly as the same
    /// optimizer would alone at its rate and decay, whatever the elements around it (the
    /// optimizers' eight-lane blocks start at every run's edge).
    func testRunsUpdateEachGroupAsItsOwnRateAndDecayWould() {
        let count = 37, runs = [UpdateRun(0..<11, lrScale: 0.5), UpdateRun(11..<20, lrScale: 1, decay: false), UpdateRun(20..<37, lrScale: 0)]
        for make in [{ Adam.adamW(weightDecay: 0.1) as any Optimizer }, { SGD(momentum: 0.9, weightDecay: 0.1) as any Optimizer }] {
            let start = randomTensor([count], seed: 4, dtype: .float32), gradient = randomTensor([count], seed: 5, dtype: .float32)
            let grouped = start.copy()
            var optimizer = make()
            for _ in 0..<3 { optimizer.step(parameters: grouped, gradients: gradient, lr: 0.1, runs: runs) }
            for run in runs {
                let alone = start.slice(rows: run.range).copy()
                var reference: any Optimizer = make()
                if !run.decay { reference = reference is Adam ? Adam.adamW(weightDecay: 0) : SGD(momentum: 0.9) }
                for _ in 0..<3 { reference.step(parameters: alone, gradients: gradient.slice(rows: run.range).copy(), lr: 0.1 * run.lrScale) }
                XCTAssertEqual(grouped.slice(rows: run.range).floats, alone.floats, "\(type(of: optimizer)) run \(run.range)")
            }
            XCTAssertEqual(grouped.slice(rows: 20..<37).floats, start.slice(rows: 20..<37).floats, "lr_scale 0 freezes")
        }
    }

    func testAdamWMatchesPyTorch() throws {
        var adamW = Adam.adamW(weightDecay: 0.1)
        try replay("adamw", lr: 1e-2, &adamW)
    }

    func testSGDWithMomentumMatchesPyTorch() throws {
        var sgd = SGD(momentum: 0.9, weightDecay: 1e-3)
        try replay("sgd_momentum", lr: 5e-2, &sgd)
    }

    func testWarmupThenCosine() {
        let schedule = WarmupCosine(peak: 1e-3, warmupSteps: 10, totalSteps: 110, floor: 1e-5)
        XCTAssertEqual(schedule.learningRate(at: 0), 1e-4, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 9), 1e-3, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 10), 1e-3, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 60), (1e-3 + 1e-5) / 2, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 110), 1e-5, accuracy: 1e-12)
        XCTAssertEqual(schedule.learningRate(at: 500), 1e-5, accuracy: 1e-12)
    }

    func testClippingByGlobalNorm() {
        let g = Tensor(shape: [2], values: [3.0, 4.0])
        XCTAssertEqual(clipGradientNorm(g, maxNorm: 10), 5)
        XCTAssertEqual(g.scalars, [3, 4], "under the limit: untouched")
        XCTAssertEqual(clipGradientNorm(g, maxNorm: 1), 5)
        XCTAssertEqual(g.scalars[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(g.scalars[1], 0.8, accuracy: 1e-6)
    }

    func testExponentialMovingAverage() {
        let p = Tensor(shape: [2], values: [1.0, 2.0])
        let ema = ExponentialMovingAverage(of: p, decay: 0.9)
        p.assign([11, 12])
        ema.update(from: p)
        XCTAssertEqual(ema.shadow.scalars[0], 2, accuracy: 1e-6)
        XCTAssertEqual(ema.shadow.scalars[1], 3, accuracy: 1e-6)
    }
}
