import Autograd
import TestSupport
import Tensors
import XCTest

/// Every differentiable op against central differences, in Double.
final class GradientCheckTests: XCTestCase {
    let a = randomTensor([3, 4], seed: 1), b = randomTensor([3, 4], seed: 2)
    let row = randomTensor([4], seed: 3), column = randomTensor([3, 1], seed: 4)
    let positive = randomTensor([3, 4], seed: 5).map(.square).map(.affine(scale: 1, shift: 0.5))

    func testArithmeticWithBroadcasting() {
        checkGradients([a, b]) { $0[0] + $0[1] }
        checkGradients([a, row]) { $0[0] - $0[1] }
        checkGradients([a, column]) { $0[0] * $0[1] }
        checkGradients([a, positive]) { $0[0] / $0[1] }
        checkGradients([column, positive]) { $0[0] / $0[1] }
        checkGradients([a]) { -($0[0] * 3 + 2) - 1 }
    }

    func testUnaryFunctions() {
        for op: UnaryOp in [.negate, .exp, .square, .tanh, .sigmoid, .silu, .gelu, .softplus, .leakyReLU(slope: 0.2), .relu, .affine(scale: -2, shift: 1)] {
            checkGradients([a]) { $0[0].map(op) }
        }
        for op: UnaryOp in [.log, .sqrt, .power(1.5), .power(-0.5)] {
            checkGradients([positive]) { $0[0].map(op) }
        }
    }

    func testReductions() {
        checkGradients([a]) { $0[0].sum() }
        checkGradients([a]) { $0[0].sum(to: [4]) }
        checkGradients([a]) { $0[0].mean(to: [3, 1]) }
        checkGradients([a]) { $0[0].mean() }
    }

    func testMatmulEveryLayout() {
        let x = randomTensor([2, 3, 4], seed: 6), w = randomTensor([4, 5], seed: 7), wt = randomTensor([5, 4], seed: 8)
        let batched = randomTensor([2, 4, 5], seed: 9), batchedT = randomTensor([2, 5, 4], seed: 10)
        checkGradients([x, w]) { $0[0].matmul($0[1]) }
        checkGradients([x, wt]) { $0[0].matmul($0[1], transposeOther: true) }
        checkGradients([x, batched]) { $0[0].matmul($0[1]) }
        checkGradients([x, batchedT]) { $0[0].matmul($0[1], transposeOther: true) }
    }

    func testShapeOps() {
        let x = randomTensor([2, 3, 4], seed: 11)
        checkGradients([x]) { $0[0].reshaped([6, 4]) }
        checkGradients([x]) { $0[0].permuted([2, 0, 1]) }
        checkGradients([x]) { $0[0].slice(axis: 1, 1..<3) }
        checkGradients([x, randomTensor([2, 2, 4], seed: 12)]) { concatenate([$0[0], $0[1]], axis: 1) }
        checkGradients([a]) { $0[0].gatherRows([2, 0, 2]) }
    }

    func testSoftmaxFamily() {
        checkGradients([a]) { $0[0].softmax() }
        checkGradients([a]) { $0[0].logSoftmax() }
    }

    /// −∞ entries (masked keys) get no weight; a row of nothing but −∞ has no mass: 0, not NaN.
    func testSoftmaxOfMaskedRows() {
        let off = -Double.infinity
        let mask = Tensor(shape: [3, 3], values: [0, off, 0, off, off, off, 0, 0, 0], dtype: .float64)
        let logits = Tensor(shape: [3, 3], values: [1, 5, 2, 3, 4, 5, 0, 0, 0], dtype: .float64)
        let y = Tensor.binary(logits, mask, .add).softmax(), e = exp(1.0)
        assertClose(y, Tensor(shape: [3, 3], values: [1 / (1 + e), 0, e / (1 + e), 0, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3], dtype: .float64),
                    absolute: 1e-15, "softmax of masked rows")
        let dx = Tensor.softmaxBackward(output: y, gradient: randomTensor([3, 3], seed: 30)).scalars
        XCTAssertEqual(dx[1], 0, "a masked entry passes no gradient")
        XCTAssertEqual(Array(dx[3..<6]), [0, 0, 0], "a fully masked row passes no gradient")
        checkGradients([logits]) { ($0[0] + Variable(mask)).softmax() }
    }

    func testSegmentOps() {
        let offsets = [0, 3, 3, 4, 7]  // an empty and a one-row segment
        checkGradients([randomTensor([7], seed: 31, scale: 2)]) { $0[0].segmentSoftmax(offsets: offsets) }
        checkGradients([randomTensor([7, 2], seed: 32, scale: 2)]) { $0[0].segmentSoftmax(offsets: offsets) }
        checkGradients([randomTensor([7], seed: 33), randomTensor([7, 5], seed: 34)]) {
            segmentWeightedSum(weights: $0[0], values: $0[1], offsets: offsets)
        }
        checkGradients([randomTensor([7, 3], seed: 35), randomTensor([7, 5], seed: 36)]) {
            segmentWeightedSum(weights: $0[0], values: $0[1], offsets: offsets)
        }
        // Taken twice: the second backward adds into gradients that already hold the first's.
        checkGradients([randomTensor([7, 2], seed: 35), randomTensor([7, 5], seed: 36)]) { x in
            let pooled = { segmentWeightedSum(weights: x[0], values: x[1], offsets: offsets) }
            return pooled() * pooled()
        }
        // Attention-MIL pooling: scores → softmax per bag and head → weighted sum of the tiles.
        checkGradients([randomTensor([7, 2], seed: 37), randomTensor([7, 5], seed: 38)]) {
            segmentWeightedSum(weights: $0[0].segmentSoftmax(offsets: offsets), values: $0[1], offsets: offsets)
        }
    }

    /// Against per-segment references: each segment's softmax is the row softmax of its rows
    /// transposed, and its weighted sum the product wᵀ·v of its rows; scores of ±1000 stay finite.
    func testSegmentOpsMatchPerSegmentReferences() {
        let offsets = [0, 4, 4, 5, 9]
        let scores = randomTensor([9, 2], seed: 39, scale: 1000), values = randomTensor([9, 3], seed: 40)
        let weights = scores.segmentSoftmax(offsets: offsets)
        let pooled = Tensor.segmentWeightedSum(weights: weights, values: values, offsets: offsets)
        XCTAssertEqual(pooled.shape, [4, 2, 3])
        for b in 0..<4 {
            let rows = offsets[b]..<offsets[b + 1]
            assertClose(weights.slice(axis: 0, rows).permuted([1, 0]), scores.slice(axis: 0, rows).permuted([1, 0]).softmax(),
                        absolute: 1e-15, "segment \(b) softmax")
            let reference = rows.isEmpty ? Tensor(zeros: [2, 3], dtype: .float64)
                : Tensor.matmul(weights.slice(axis: 0, rows), values.slice(axis: 0, rows), transposeA: true)
            assertClose(pooled.slice(axis: 0, b..<(b + 1)).reshaped([2, 3]), reference, absolute: 1e-12, "segment \(b) weighted sum")
        }
        assertClose(weights.sum(to: [1, 2]), Tensor(shape: [1, 2], values: [3.0, 3], dtype: .float64), absolute: 1e-12,
                    "each of the 3 non-empty segments sums to 1 per head")
    }

    func testSpatialOps() {
        let image = randomTensor([2, 4, 6, 6], seed: 13)
        for geometry in [
            Conv2dGeometry(inChannels: 4, outChannels: 3, kernel: 3, padding: 1),
            Conv2dGeometry(inChannels: 4, outChannels: 4, kernel: 3, stride: 2, padding: 1, groups: 2),
            Conv2dGeometry(inChannels: 4, outChannels: 2, kernel: 1),
            Conv2dGeometry(inChannels: 4, outChannels: 6, kernel: 3, groups: 2),  // stride 1, no padding
            Conv2dGeometry(inChannels: 4, outChannels: 2, kernel: 5, padding: 1),
        ] {
            checkGradients([image, randomTensor(geometry.weightShape, seed: 14)]) { $0[0].conv2d($0[1], geometry) }
        }
        // Stride 1 on a non-square image, grouped, padding past k − 1 (dX by col2im) and not.
        for geometry in [
            Conv2dGeometry(inChannels: 4, outChannels: 6, kernel: 3, padding: 2, groups: 2),
            Conv2dGeometry(inChannels: 4, outChannels: 6, kernel: 3, padding: 3, groups: 2),
        ] {
            checkGradients([randomTensor([2, 4, 5, 7], seed: 20), randomTensor(geometry.weightShape, seed: 21),
                            randomTensor([6], seed: 22)]) { $0[0].conv2d($0[1], bias: $0[2], geometry) }
        }
        let geometry = Conv2dGeometry(inChannels: 4, outChannels: 3, kernel: 3, stride: 2, padding: 1)
        checkGradients([image, randomTensor(geometry.weightShape, seed: 15), randomTensor([3], seed: 16)]) {
            $0[0].conv2d($0[1], bias: $0[2], geometry)
        }
        // Fused GroupNorm, with a non-trivial affine so that γ enters dx.
        checkGradients([randomTensor([2, 4, 3, 3], seed: 17, scale: 2), randomTensor([4], seed: 18), randomTensor([4], seed: 19)]) {
            $0[0].groupNorm(groups: 2, weight: $0[1], bias: $0[2], epsilon: 1e-5)
        }
        checkGradients([image]) { $0[0].averagePool(kernel: 2, stride: 2) }
        checkGradients([image]) { $0[0].maxPool(kernel: 2, stride: 2) }
        checkGradients([image]) { $0[0].upsampleNearest(2) }
        checkGradients([image]) { $0[0].upsampleBilinear(2) }
        checkGradients([randomTensor([1, 2, 3, 5], seed: 23)]) { $0[0].upsampleBilinear(3) }
    }

    /// Fused BatchNorm in training, over [B, C, H, W] and over [B, F] (runs of one element), with
    /// channel means far from 0 and a non-trivial affine so that γ enters dx.
    func testBatchNorm() {
        for shape in [[3, 4, 2, 3], [6, 3]] {
            let x = randomTensor(shape, seed: 24, scale: 2).map(.affine(scale: 1, shift: 5))
            checkGradients([x, randomTensor([shape[1]], seed: 25), randomTensor([shape[1]], seed: 26)]) {
                $0[0].batchNorm(weight: $0[1], bias: $0[2], epsilon: 1e-5).output
            }
        }
    }

    /// The fused kernel (float32 split across threads, and Double) against the composition it
    /// replaced, in Double: permute to [C, B, H, W], standardise rows, affine, permute back.
    func testBatchNormMatchesComposedReference() {
        let shape = [8, 8, 32, 32], swap = [1, 0, 2, 3], perChannel = [8, 1, 1]
        let tensors = [randomTensor(shape, seed: 27, scale: 3).map(.affine(scale: 1, shift: -4)),
                       randomTensor([8], seed: 28), randomTensor([8], seed: 29)]
        let upstream = randomTensor(shape, seed: 30)
        // y, mean, variance, dx, dγ, dβ.
        func run(_ dtype: DType, fused: Bool) -> [Tensor] {
            let (x, gamma, beta) = (leaf(tensors[0], dtype), leaf(tensors[1], dtype), leaf(tensors[2], dtype))
            let (y, mean, variance): (Variable, Tensor, Tensor)
            if fused {
                (y, mean, variance) = x.batchNorm(weight: gamma, bias: beta, epsilon: 1e-5)
            } else {
                let (rows, m, v) = x.permuted(swap).standardizedRows(8 * 32 * 32, epsilon: 1e-5)
                (y, mean, variance) = (rows.permuted(swap) * gamma.reshaped(perChannel) + beta.reshaped(perChannel), m, v)
            }
            y.backward(seed: upstream.converted(to: dtype))
            return [y.value, mean, variance, x.grad!, gamma.grad!, beta.grad!].map { $0.converted(to: .float64) }
        }
        func leaf(_ t: Tensor, _ dtype: DType) -> Variable { Variable(t.converted(to: dtype), gradient: Tensor(zeros: t.shape, dtype: dtype)) }
        let reference = run(.float64, fused: false)
        for (dtype, tolerance) in [(DType.float32, 1e-4), (.float64, 1e-10)] {
            for (name, (actual, expected)) in zip(["y", "mean", "variance", "dx", "dγ", "dβ"], zip(run(dtype, fused: true), reference)) {
                assertClose(actual, expected, absolute: tolerance, relative: tolerance, "\(dtype) \(name)")
            }
        }
    }

    func testStandardizedRows() {
        checkGradients([randomTensor([3, 8], seed: 15, scale: 3)]) { $0[0].standardizedRows(8, epsilon: 1e-5).output }
        checkGradients([randomTensor([2, 12], seed: 16)]) { $0[0].standardizedRows(4, epsilon: 1e-3).output }
    }

    func testGradientsAccumulateAcrossBackwardPasses() {
        let gradient = Tensor(zeros: [3, 4], dtype: .float64)
        let x = Variable(a, gradient: gradient)
        (x * 2).sum().backward()
        (x * 3).sum().backward()
        XCTAssertEqual(gradient.scalars, Array(repeating: 5, count: 12), "micro-batches add into the same gradient")
    }

    func testNoGradModeRecordsNothing() {
        let x = Variable(a, gradient: Tensor(zeros: [3, 4], dtype: .float64))
        let y = GradMode.withoutGradients { x.exp().sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue((x.exp().sum()).requiresGrad)
    }

    func testSharedSubexpressionGetsBothContributions() {
        checkGradients([a]) { x in
            let t = x[0].tanh()
            return t * t + t
        }
    }
}
