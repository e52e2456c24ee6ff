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
