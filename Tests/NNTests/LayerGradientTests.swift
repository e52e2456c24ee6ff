import Autograd
import NN
import TestSupport
import Tensors
import XCTest

/// Every layer and loss against central differences in Double: inputs and parameters.
final class LayerGradientTests: XCTestCase {
    private func checkLayer(_ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line,
                            _ build: (ParameterArena) -> ([Variable]) -> Variable) {
        let arena = ParameterArena(dtype: .float64, seed: 3)
        let forward = build(arena)
        arena.seal()
        checkGradients(inputs, arena: arena, file: file, line: line, forward)
    }

    func testLinearAndEmbedding() {
        checkLayer([randomTensor([2, 3, 5])]) { arena in let fc = Linear(arena, "fc", 5, 4); return { fc($0[0]) } }
        checkLayer([]) { arena in let e = Embedding(arena, "emb", count: 6, dim: 3); return { _ in e([4, 0, 4]) } }
    }

    func testConvolutions() {
        checkLayer([randomTensor([2, 4, 5, 5])]) { arena in
            let conv = Conv2d(arena, "conv", 4, 6, kernel: 3, stride: 2, padding: 1, groups: 2)
            return { conv($0[0]) }
        }
        // 3×3, stride 1: Winograd's F(2×2, 3×3), over an odd output edge.
        checkLayer([randomTensor([2, 5, 5, 4])]) { arena in
            let conv = Conv2d(arena, "conv", 5, 7, kernel: 3, padding: 1)
            return { conv($0[0]) }
        }
    }

    func testNormalizations() {
        checkLayer([randomTensor([2, 4, 3, 3], scale: 2)]) { arena in let n = GroupNorm(arena, "gn", groups: 2, channels: 4); return { n($0[0]) } }
        checkLayer([randomTensor([3, 7], scale: 3)]) { arena in let n = LayerNorm(arena, "ln", 7); return { n($0[0]) } }
        checkLayer([randomTensor([6, 4], scale: 2)]) { arena in let n = BatchNorm1d(arena, "bn", 4); return { n($0[0]) } }
    }

    /// The blocked attention against the plain softmax(q·kᵀ·scale)·v, across block edges (70
    /// queries > one block of 64, 300 keys > two blocks of 128), and its gradients by finite
    /// differences (Float forward too: the online softmax in single precision).
    func testBlockAttentionMatchesThePlainOneAndItsGradients() {
        for dtype in [DType.float64, .float32] {
            let q = randomTensor([3, 70, 8], seed: 1, dtype: dtype), k = randomTensor([3, 300, 8], seed: 2, scale: 2, dtype: dtype)
            let v = randomTensor([3, 300, 8], seed: 3, dtype: dtype)
            let blocked = blockAttention(Variable(q), Variable(k), Variable(v), scale: 0.7).value
            let plain = (Variable(q).matmul(Variable(k), transposeOther: true) * 0.7).softmax().matmul(Variable(v)).value
            assertClose(blocked, plain, absolute: dtype == .float64 ? 1e-12 : 1e-5, "\(dtype)")
        }
        checkGradients([randomTensor([2, 70, 4], seed: 4), randomTensor([2, 140, 4], seed: 5, scale: 2), randomTensor([2, 140, 4], seed: 6)]) {
            blockAttention($0[0], $0[1], $0[2], scale: 0.9)
        }
    }

    func testAttention() {
        checkLayer([randomTensor([2, 3, 4])]) { arena in
            let attention = MultiHeadAttention(arena, "attn", dim: 4, heads: 2)
            return { attention($0[0]) }
        }
        checkLayer([randomTensor([2, 3, 4]), randomTensor([2, 2, 5], seed: 9)]) { arena in
            let attention = MultiHeadAttention(arena, "attn", dim: 4, heads: 2, contextDim: 5)
            return { attention($0[0], context: $0[1]) }
        }
        let keyMask = [[true, false, true, true], [false, false, false, false]]
        checkLayer([randomTensor([2, 3, 4]), randomTensor([2, 4, 5], seed: 9)]) { arena in
            let attention = MultiHeadAttention(arena, "attn", dim: 4, heads: 2, contextDim: 5)
            return { attention($0[0], context: $0[1], keyMask: keyMask) }
        }
    }

    /// Masking a key is leaving it out of the context; an all-true mask changes nothing; a sample
    /// with every key masked gets the output bias, and no gradient reaches its context.
    func testAttentionKeyMask() {
        let arena = ParameterArena(dtype: .float64, seed: 4)
        let attention = MultiHeadAttention(arena, "attn", dim: 4, heads: 2, contextDim: 5)
        arena.seal()
        arena.values(of: arena.entry(named: "attn.output.bias")!).assign([0.5, -1, 2, 0.25])
        let x = Variable(randomTensor([2, 3, 4])), context = randomTensor([2, 4, 5], seed: 9)
        let masked = attention(x, context: Variable(context), keyMask: [[true, false, true, true], [true, true, true, true]]).value
        let kept = Tensor.concatenate([context.slice(axis: 1, 0..<1), context.slice(axis: 1, 2..<4)], axis: 1).slice(axis: 0, 0..<1)
        assertClose(masked.slice(axis: 0, 0..<1), attention(x.slice(axis: 0, 0..<1), context: Variable(kept)).value,
                    absolute: 1e-12, "masked key = key left out")
        assertClose(masked.slice(axis: 0, 1..<2), attention(x, context: Variable(context)).value.slice(axis: 0, 1..<2),
                    absolute: 1e-12, "all-true mask = no mask")

        let contextVariable = Variable(context, gradient: Tensor(zeros: context.shape, dtype: .float64))
        let none = attention(x, context: contextVariable, keyMask: [[true, true, true, true], [false, false, false, false]])
        none.sum().backward()
        let bias = Tensor(shape: [1, 3, 4], values: (0..<3).flatMap { _ in [0.5, -1, 2, 0.25] }, dtype: .float64)
        assertClose(none.value.slice(axis: 0, 1..<2), bias, absolute: 1e-15, "nothing to attend to: the output bias")
        XCTAssertEqual(contextVariable.grad!.slice(axis: 0, 1..<2).scalars, Array(repeating: 0, count: 20))
        XCTAssertTrue(contextVariable.grad!.scalars.allSatisfy(\.isFinite))
    }

    func testDropoutIsDeterministicScaledAndDifferentiable() {
        let dropout = Dropout(0.25)
        let key = RandomKey(seed: 1, stream: 0, step: 3, sample: 11)
        checkGradients([randomTensor([4, 5])]) { dropout($0[0], key: key) }
        let ones = Variable(Tensor(repeating: 1, shape: [10_000]))
        let y = dropout(ones, key: key).value.scalars
        XCTAssertEqual(y, dropout(ones, key: key).value.scalars, "same key, same mask")
        XCTAssertEqual(Double(y.filter { $0 == 0 }.count) / 1e4, 0.25, accuracy: 0.015)
        XCTAssertEqual(Set(y.filter { $0 != 0 }), [Double(Float(1 / 0.75))], "kept elements scaled by 1/(1 − p)")
        dropout.isTraining = false
        XCTAssertEqual(dropout(ones, key: key).value.scalars, ones.value.scalars)
    }

    func testLosses() {
        let target = randomTensor([4, 3], seed: 7), labels01 = Tensor(shape: [4, 3], values: (0..<12).map { Double($0 % 2) }, dtype: .float64)
        checkGradients([randomTensor([4, 3])]) { Loss.meanSquaredError($0[0], Variable(target)) }
        checkGradients([randomTensor([4, 3], scale: 4)]) { Loss.binaryCrossEntropyWithLogits($0[0], labels01) }
        checkGradients([randomTensor([4, 5], scale: 3)]) { Loss.crossEntropy($0[0], labels: [4, 0, 2, 2]) }
        checkGradients([randomTensor([4, 3]), randomTensor([4, 3], seed: 8)]) { Loss.gaussianKL(mean: $0[0], logVariance: $0[1]) }
    }

    func testCoxWithTiesAndExtremeRisks() {
        let times: [Double] = [5, 3, 3, 8, 1, 3, 8, 2], events = [true, true, false, true, false, true, true, false]
        checkGradients([randomTensor([8], scale: 2)]) { Loss.coxPartialLikelihood(risk: $0[0], times: times, events: events) }
        // Risks of ±800 would overflow a naive exp-sum; log-sum-exp keeps loss and gradient finite.
        let extreme = Tensor(shape: [8], values: [800.0, -800, 0, 400, -400, 799, 1, -1], dtype: .float32)
        let risk = Variable(extreme, gradient: Tensor(zeros: [8]))
        let loss = Loss.coxPartialLikelihood(risk: risk, times: times, events: events)
        loss.backward()
        XCTAssertTrue(loss.value.scalars[0].isFinite)
        XCTAssertTrue(risk.grad!.scalars.allSatisfy(\.isFinite))
        let none = Loss.coxPartialLikelihood(risk: Variable(extreme), times: times, events: Array(repeating: false, count: 8))
        XCTAssertEqual(none.value.scalars, [0], "no events: nothing to rank")
    }

    func testInitialisationIsDeterministicBySeed() {
        func weights(_ seed: UInt64) -> [Double] {
            let arena = ParameterArena(seed: seed)
            _ = Linear(arena, "fc", 100, 50)
            arena.seal()
            return arena.values.scalars
        }
        XCTAssertEqual(weights(1), weights(1))
        XCTAssertNotEqual(weights(1), weights(2))
        let w = weights(1).prefix(5000)
        XCTAssertLessThanOrEqual(w.map(abs).max()!, 0.1, "U(−1/√100, 1/√100)")
        XCTAssertEqual(w.reduce(0, +) / 5000, 0, accuracy: 0.005)
    }
}
