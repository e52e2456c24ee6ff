import Autograd
import Models
import NN
import TestSupport
import Tensors
import XCTest

/// RNA-CDM's β-VAE against PyTorch (Tests/Fixtures/make_pytorch_fixtures.py, `vae()`): the
/// loss, its terms, μ, and every parameter's and the input's gradient, in training mode.
final class ExpressionVAETests: XCTestCase {
    func testMatchesPyTorch() throws {
        let fixture = try Fixture("vae")
        let arena = ParameterArena()
        let vae = ExpressionVAE(arena, config: .init(hidden: [10, 6], latent: 3, dropout: 0, beta: 0.005, leakySlope: 0.01), genes: 12)
        arena.seal()
        XCTAssertEqual(arena.entries.map(\.name).sorted(), fixture.names("parameters"), "parameter names")
        for name in fixture.names("parameters") {
            arena.values(of: arena.entry(named: name)!).assign(fixture.tensor("parameters", name).scalars)
        }
        let xTensor = fixture.tensor("inputs", "x")
        let x = Variable(xTensor, gradient: Tensor(zeros: xTensor.shape))
        let terms = vae.loss(x, key: RandomKey(seed: 0, stream: 0), noise: fixture.tensor("inputs", "noise"))
        XCTAssertEqual(terms.total.value.scalars[0], fixture.tensor("output").scalars[0], accuracy: 1e-5)
        XCTAssertEqual(terms.reconstruction.value.scalars[0], fixture.value("reconstruction") as! Double, accuracy: 1e-5)
        XCTAssertEqual(terms.divergence.value.scalars[0], fixture.value("divergence") as! Double, accuracy: 1e-4)
        terms.total.backward()
        assertClose(x.grad!, fixture.tensor("input_grads", "x"), absolute: 1e-6, relative: 2e-3, "dL/dx")
        for name in fixture.names("parameter_grads") {
            assertClose(arena.gradients(of: arena.entry(named: name)!), fixture.tensor("parameter_grads", name),
                        absolute: 1e-6, relative: 2e-3, "dL/d\(name)")
        }
        vae.setTraining(false)
        let (mu, _) = GradMode.withoutGradients { vae.encode(Variable(xTensor), key: RandomKey(seed: 0, stream: 0)) }
        XCTAssertEqual(mu.shape, [6, 3], "evaluation uses running statistics, same shapes")
    }

    func testConfigProblemsNameTheirKeys() {
        let problems = ExpressionVAE.Config(hidden: [], latent: 0, dropout: 1, beta: -1, leakySlope: -0.1).problems()
        for key in ["hidden:", "latent:", "dropout:", "beta:", "leaky_slope:"] {
            XCTAssertTrue(problems.contains { $0.hasPrefix(key) }, "\(key) in \(problems)")
        }
    }
}
