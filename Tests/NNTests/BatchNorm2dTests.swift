import Autograd
import NN
import TestSupport
import Tensors
import XCTest

/// BatchNorm over [B, C, H, W] against PyTorch (Tests/Fixtures/make_model_fixtures.py,
/// `batchnorm2d()`), its gradients by finite differences, and the one-value rule.
final class BatchNorm2dTests: XCTestCase {
    func testMatchesPyTorch() throws {
        let fixture = try Fixture("batchnorm2d")
        let arena = ParameterArena()
        let norm = BatchNorm2d(arena, "norm", 4)
        arena.seal()
        XCTAssertEqual(arena.entries.map(\.name).sorted(), fixture.names("parameters"))
        XCTAssertEqual(arena.bufferEntries.map(\.name), ["norm.running_mean", "norm.running_var"])
        for name in fixture.names("parameters") {
            arena.values(of: arena.entry(named: name)!).assign(fixture.tensor("parameters", name).scalars)
        }
        let xTensor = fixture.tensor("inputs", "x")
        let x = Variable(xTensor, gradient: Tensor(zeros: xTensor.shape))
        let y = norm(x)
        assertClose(y.value, fixture.tensor("output"), "training output")
        y.backward(seed: fixture.tensor("upstream"))
        assertClose(x.grad!, fixture.tensor("input_grads", "x"), absolute: 1e-5, relative: 1e-4, "dL/dx")
        for name in fixture.names("parameter_grads") {
            assertClose(arena.gradients(of: arena.entry(named: name)!), fixture.tensor("parameter_grads", name),
                        absolute: 1e-5, relative: 1e-4, "dL/d\(name)")
        }
        assertClose(norm.runningMean.value, fixture.tensor("running_mean"), "running mean")
        assertClose(norm.runningVariance.value, fixture.tensor("running_var"), "running variance (unbiased)")

        norm.isTraining = false
        let evaluated = GradMode.withoutGradients { norm(Variable(fixture.tensor("eval_input"))) }
        assertClose(evaluated.value, fixture.tensor("eval_output"), "evaluation output")
    }

    func testGradients() {
        let arena = ParameterArena(dtype: .float64, seed: 4)
        let norm = BatchNorm2d(arena, "norm", 3)
        arena.seal()
        arena.values(of: norm.weight.entry).assign([0.5, -1.2, 2])
        arena.values(of: norm.bias.entry).assign([0.1, 0.3, -0.7])
        checkGradients([randomTensor([2, 3, 4, 3], scale: 2)], arena: arena) { norm($0[0]) }
    }

    /// One value per channel (B·H·W = 1) has no batch statistics: the running ones are used,
    /// as in evaluation, and stay as they were.
    func testOneValuePerChannelUsesRunningStatistics() {
        let arena = ParameterArena()
        let norm = BatchNorm2d(arena, "norm", 2)
        arena.seal()
        norm.runningMean.value.assign([1, -2])
        norm.runningVariance.value.assign([4, 0.25])
        let y = norm(Variable(Tensor(shape: [1, 2, 1, 1], values: [3, -1])))
        assertClose(y.value, Tensor(shape: [1, 2, 1, 1], values: [2 / (4 + 1e-5).squareRoot(), 1 / (0.25 + 1e-5).squareRoot()]), "standardised with the running statistics")
        XCTAssertEqual(norm.runningMean.value.scalars, [1, -2])
        XCTAssertEqual(norm.runningVariance.value.scalars, [4, 0.25])
    }
}
