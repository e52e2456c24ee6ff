import Autograd
import NN
import TestSupport
import Tensors
import XCTest

/// `Module.setTraining`: one call reaches every dropout and batch norm of a nested model.
final class ModuleTreeTests: XCTestCase {
    /// Linear → BatchNorm1d → Dropout, twice over: a block inside a model.
    final class Block: Module {
        let linear: Linear, norm: BatchNorm1d, dropout = Dropout(0.5)
        init(_ arena: ParameterArena, _ name: String, _ features: Int) {
            linear = Linear(arena, "\(name).linear", features, features)
            norm = BatchNorm1d(arena, "\(name).norm", features)
        }
        var children: [any Module] { [linear, norm, dropout] }
        func callAsFunction(_ x: Variable, key: RandomKey) -> Variable { dropout(norm(linear(x)).relu(), key: key) }
    }

    final class Model: Module {
        let blocks: [Block], head: Linear, headDropout = Dropout(0.2)
        init(_ arena: ParameterArena) {
            blocks = [Block(arena, "block0", 4), Block(arena, "block1", 4)]
            head = Linear(arena, "head", 4, 2)
        }
        var children: [any Module] { blocks + [head, headDropout] }
        func callAsFunction(_ x: Variable, key: RandomKey) -> Variable {
            headDropout(head(blocks.reduce(x) { $1($0, key: key) }), key: key)
        }
    }

    func testOneCallFlipsEveryModalLayer() {
        let model = Model(ParameterArena())
        let modal = model.modules.compactMap { $0 as? any ModalModule }
        XCTAssertEqual(model.modules.count, 1 + 2 * 4 + 2, "the model, two blocks of three layers, head and its dropout")
        XCTAssertEqual(modal.count, 5, "two batch norms, three dropouts")
        for training in [false, true, false] {
            model.setTraining(training)
            XCTAssertTrue(modal.allSatisfy { $0.isTraining == training }, "every modal layer in mode \(training)")
        }
        model.blocks[1].setTraining(true)
        XCTAssertEqual(modal.map(\.isTraining), [false, false, true, true, false], "a subtree alone")
    }

    func testEvaluationIsDeterministic() {
        let arena = ParameterArena(seed: 3)
        let model = Model(arena)
        arena.seal()
        let x = Variable(randomTensor([6, 4], dtype: .float32))
        func run(_ sample: UInt32) -> [Double] { model(x, key: RandomKey(seed: 1, stream: 0, sample: sample)).value.scalars }
        XCTAssertNotEqual(run(1), run(2), "training: dropout keyed by sample")
        model.setTraining(false)
        let statistics = arena.buffers.scalars
        XCTAssertEqual(run(1), run(2), "evaluation: no dropout, running statistics")
        XCTAssertEqual(arena.buffers.scalars, statistics, "evaluation leaves the running statistics alone")
    }
}
