import TestSupport
import Tensors
import XCTest

/// Fast kernels against plain reference loops, and the RNG against published vectors.
final class KernelTests: XCTestCase {
    func testBroadcastingArithmetic() {
        let a = Tensor(shape: [2, 3], values: [1.0, 2, 3, 4, 5, 6])
        let row = Tensor(shape: [3], values: [10.0, 20, 30])
        let column = Tensor(shape: [2, 1], values: [100.0, 200])
        XCTAssertEqual(Tensor.binary(a, row, .add).floats, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual(Tensor.binary(a, column, .multiply).floats, [100, 200, 300, 800, 1000, 1200])
        XCTAssertEqual(Tensor.binary(row, a, .subtract).floats, [9, 18, 27, 6, 15, 24])
        XCTAssertEqual(Tensor.binary(column, row, .add).shape, [2, 3])
        XCTAssertEqual(a.sum(to: [3]).floats, [5, 7, 9])
        XCTAssertEqual(a.sum(to: [2, 1]).floats, [6, 15])
        XCTAssertEqual(a.sum(to: []).floats, [21])
    }

    func testMatmulMatchesNaiveProduct() {
        for dtype in [DType.float32, .float64] {
            let a = randomTensor([2, 3, 5, 4], seed: 1, dtype: dtype), b = randomTensor([4, 6], seed: 2, dtype: dtype)
            let batched = randomTensor([2, 3, 4, 6], seed: 3, dtype: dtype)
            assertClose(Tensor.matmul(a, b), naiveMatmul(a, b), "shared right operand")
            assertClose(Tensor.matmul(a, batched), naiveMatmul(a, batched), "batched")
            let bt = b.reshaped([4, 6]).permuted([1, 0])
            assertClose(Tensor.matmul(a, bt, transposeB: true), naiveMatmul(a, b), "transposed right operand")
            let at = a.permuted([0, 1, 3, 2])
            assertClose(Tensor.matmul(at, batched, transposeA: true), naiveMatmul(a, batched), "transposed left operand")
        }
    }

    /// Products large enough to be cut into pieces for two threads — by rows, by columns, with
    /// either operand transposed, batched, accumulating — match the naive product and are
    /// bitwise the single-threaded BLAS product.
    func testMatmulSplitAcrossThreadsIsTheOneThreadProduct() {
        let threads = BLASThreads.count
        defer { BLASThreads.set(threads) }
        let a = randomTensor([3, 400, 128], seed: 11, dtype: .float32), shared = randomTensor([128, 64], seed: 12, dtype: .float32)
        let wide = randomTensor([2, 40, 600], seed: 13, dtype: .float32), batched = randomTensor([2, 600, 160], seed: 14, dtype: .float32)
        let cases: [(String, () -> Tensor)] = [
            ("rows, shared right operand", { Tensor.matmul(a, shared) }),
            ("rows, transposed right operand", { Tensor.matmul(a, shared.permuted([1, 0]), transposeB: true) }),
            ("columns, batched", { Tensor.matmul(wide, batched) }),
            ("columns, both transposed", {
                Tensor.matmul(wide.permuted([0, 2, 1]), batched.permuted([0, 2, 1]), transposeA: true, transposeB: true)
            }),
            ("columns, accumulating", {
                let c = Tensor(repeating: 0.5, shape: [2, 40, 160])
                return Tensor.matmul(wide, batched, into: c, accumulate: true)
            }),
        ]
        for (name, product) in cases {
            BLASThreads.set(1)
            let alone = product()
            BLASThreads.set(2)
            let split = product()
            XCTAssertEqual(split.floats, alone.floats, name)
        }
        assertClose(Tensor.matmul(wide, batched), naiveMatmul(wide, batched), "columns, batched, against the naive product")
        assertClose(Tensor.matmul(a, shared), naiveMatmul(a, shared), "rows, against the naive product")
    }

    /// Dynamic pieces cover every index once, and a slot is never in two calls at once.
    func testParallelPiecesCoverEveryIndexOnce() {
        let threads = BLASThreads.count
        defer { BLASThreads.set(threads) }
        BLASThreads.set(2)
        for (count, pieces) in [(1000, 37), (5, 16), (64, 1), (0, 4)] {
            let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
            let busy = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2)
            defer { visits.deallocate(); busy.deallocate() }
            visits.initialize(repeating: 0)
            busy.initialize(repeating: 0)
            nonisolated(unsafe) let (v, b) = (visits, busy)
            nonisolated(unsafe) var overlapping = false, badSlot = false
            Parallel.forPieces(count, pieces: pieces, threads: 2) { slot, range in
                guard slot < 2 else { badSlot = true; return }
                b[slot] += 1
                if b[slot] != 1 { overlapping = true }
                for i in range { v[i] += 1 }
                b[slot] -= 1
            }
            XCTAssertFalse(badSlot || overlapping, "\(count) in \(pieces) pieces")
            XCTAssertEqual(Array(visits.prefix(count)), Array(repeating: 1, count: count), "\(count) in \(pieces) pieces")
        }
    }

    /// With the images claimed by two threads in whatever order they come, the convolution's
    /// gradients are bitwise the same on every run (each piece of the batch sums its own dW).
    func testConvolutionGradientsDoNotDependOnWhichThreadTookWhichImages() {
        let threads = BLASThreads.count
        defer { BLASThreads.set(threads) }
        BLASThreads.set(2)
        let geometry = Conv2dGeometry(inChannels: 8, outChannels: 8, kernel: 3, padding: 1)
        let x = randomTensor([16, 8, 12, 12], seed: 21, dtype: .float32), w = randomTensor(geometry.weightShape, seed: 22, dtype: .float32)
        let g = randomTensor([16, 8, 12, 12], seed: 23, dtype: .float32)
        func gradients() -> [Float] {
            let dx = Tensor(zeros: x.shape), dw = Tensor(zeros: w.shape)
            Tensor.conv2dBackward(x, w, gradient: g, geometry, gradInput: dx, gradWeight: dw)
            return dx.floats + dw.floats
        }
        let first = gradients()
        for run in 1..<20 {
            XCTAssertEqual(zip(gradients(), first).filter { $0 != $1 }.count, 0, "run \(run): gradient elements that differ from the first run's")
        }
    }

    private func naiveMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1]), n = b.shape[b.rank - 1]
        let batches = a.count / (m * k), x = a.scalars, y = b.scalars
        var out = [Double](repeating: 0, count: batches * m * n)
        for t in 0..<batches {
            let bOffset = b.rank == 2 ? 0 : t * k * n
            for i in 0..<m { for j in 0..<n { for p in 0..<k {
                out[(t * m + i) * n + j] += x[(t * m + i) * k + p] * y[bOffset + p * n + j]
            } } }
        }
        return Tensor(shape: Array(a.shape.dropLast()) + [n], values: out, dtype: a.dtype)
    }

    func testConvolutionMatchesDirectLoops() {
        for geometry in [
            Conv2dGeometry(inChannels: 4, outChannels: 6, kernel: 3, stride: 1, padding: 1),
            Conv2dGeometry(inChannels: 4, outChannels: 6, kernel: 3, stride: 2, padding: 1, groups: 2),
            Conv2dGeometry(inChannels: 4, outChannels: 2, kernel: 1),
            Conv2dGeometry(inChannels: 4, outChannels: 4, kernel: 4, stride: 2, padding: 0, groups: 4),
            Conv2dGeometry(inChannels: 4, outChannels: 6, kernel: 3, padding: 2, groups: 2),
            Conv2dGeometry(inChannels: 4, outChannels: 6, kernel: 5, padding: 2, groups: 2),  // stride 1, not 3×3: shifted rows
            Conv2dGeometry(inChannels: 4, outChannels: 3, kernel: 2),
        ] {
            let x = randomTensor([2, 4, 7, 6], seed: 4), w = randomTensor(geometry.weightShape, seed: 5)
            assertClose(Tensor.conv2d(x, w, geometry), directConv(x, w, geometry), absolute: 1e-10, relative: 1e-10, "\(geometry)")
        }
    }

    /// 3×3 stride-1 convolutions run Winograd's F(2×2, 3×3): the output, the input gradient
    /// (itself such a convolution) and the weight gradient are exact in Double (odd and even
    /// edges, paddings 0–2, groups, widths past a SIMD step, an image in chunks of tile rows) and
    /// within rounding in Float.
    func testWinogradConvolutionAndItsGradientsMatchDirectLoops() {
        for (geometry, size) in [
            (Conv2dGeometry(inChannels: 3, outChannels: 5, kernel: 3, padding: 1), (7, 6)),
            (Conv2dGeometry(inChannels: 8, outChannels: 6, kernel: 3, padding: 2, groups: 2), (5, 19)),
            (Conv2dGeometry(inChannels: 16, outChannels: 3, kernel: 3, padding: 0), (9, 4)),
            // 32 tile rows of 48 tiles at 64 channels in all: chunks of 21 and 11 tile rows.
            (Conv2dGeometry(inChannels: 32, outChannels: 32, kernel: 3, padding: 1), (63, 96)),
        ] {
            let (h, w) = size, (ho, wo) = (geometry.output(h), geometry.output(w))
            let x = randomTensor([2, geometry.inChannels, h, w], seed: 4), weights = randomTensor(geometry.weightShape, seed: 5)
            let g = randomTensor([2, geometry.outChannels, ho, wo], seed: 6)
            let dx = Tensor(zeros: x.shape, dtype: .float64), dw = Tensor(zeros: weights.shape, dtype: .float64)
            Tensor.conv2dBackward(x, weights, gradient: g, geometry, gradInput: dx, gradWeight: dw)
            let direct = directConv(x, weights, geometry)
            assertClose(Tensor.conv2d(x, weights, geometry), direct, absolute: 1e-12, relative: 1e-12, "\(geometry)")
            assertClose(dx, directInputGradient(g, weights, geometry, inputSize: size), absolute: 1e-12, relative: 1e-12, "dX \(geometry)")
            assertClose(dw, directWeightGradient(x, g, geometry), absolute: 1e-12, relative: 1e-12, "dW \(geometry)")
            let single = Tensor.conv2d(x.converted(to: .float32), weights.converted(to: .float32), geometry).converted(to: .float64)
            // Float rounding, measured against the output's scale (its RMS): the largest errors are 1–4·10⁻⁶ of it.
            let rms = (direct.scalars.map { $0 * $0 }.reduce(0, +) / Double(direct.count)).squareRoot()
            assertClose(single, direct, absolute: 1e-5 * rms, relative: 0, "\(geometry) in Float")
        }
    }

    /// Calls `body(x, w, y)` with the flat indices of input, weight and output for every tap of
    /// a convolution over a batch of `batch` images of `size` that reads inside the image.
    private func forEachTap(_ g: Conv2dGeometry, batch b: Int, size: (Int, Int), _ body: (Int, Int, Int) -> Void) {
        let (h, wd) = size, (ho, wo) = (g.output(h), g.output(wd)), cg = g.inChannels / g.groups, og = g.outChannels / g.groups
        for n in 0..<b { for o in 0..<g.outChannels { for oy in 0..<ho { for ox in 0..<wo {
            for c in 0..<cg { for i in 0..<g.kernel { for j in 0..<g.kernel {
                let iy = oy * g.stride - g.padding + i, ix = ox * g.stride - g.padding + j
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                body(((n * g.inChannels + o / og * cg + c) * h + iy) * wd + ix, ((o * cg + c) * g.kernel + i) * g.kernel + j,
                     ((n * g.outChannels + o) * ho + oy) * wo + ox)
            } } }
        } } } }
    }

    /// y[n, o, oy, ox] = Σ x[n, c, oy·s − p + i, ox·s − p + j]·w[o, c, i, j].
    private func directConv(_ x: Tensor, _ w: Tensor, _ g: Conv2dGeometry) -> Tensor {
        let (b, h, wd) = (x.shape[0], x.shape[2], x.shape[3]), xv = x.scalars, wv = w.scalars
        var out = [Double](repeating: 0, count: b * g.outChannels * g.output(h) * g.output(wd))
        forEachTap(g, batch: b, size: (h, wd)) { xi, wi, yi in out[yi] += xv[xi] * wv[wi] }
        return Tensor(shape: [b, g.outChannels, g.output(h), g.output(wd)], values: out, dtype: .float64)
    }

    /// dX[n, c, iy, ix] = Σ dY[n, o, oy, ox]·w[o, c, i, j] over the taps that read (iy, ix).
    private func directInputGradient(_ dy: Tensor, _ w: Tensor, _ g: Conv2dGeometry, inputSize: (Int, Int)) -> Tensor {
        let b = dy.shape[0], dv = dy.scalars, wv = w.scalars
        var dx = [Double](repeating: 0, count: b * g.inChannels * inputSize.0 * inputSize.1)
        forEachTap(g, batch: b, size: inputSize) { xi, wi, yi in dx[xi] += dv[yi] * wv[wi] }
        return Tensor(shape: [b, g.inChannels, inputSize.0, inputSize.1], values: dx, dtype: .float64)
    }

    /// dW[o, c, i, j] = Σ dY[n, o, oy, ox]·x[n, c, oy·s − p + i, ox·s − p + j].
    private func directWeightGradient(_ x: Tensor, _ dy: Tensor, _ g: Conv2dGeometry) -> Tensor {
        let xv = x.scalars, dv = dy.scalars
        var dw = [Double](repeating: 0, count: g.weightShape.reduce(1, *))
        forEachTap(g, batch: x.shape[0], size: (x.shape[2], x.shape[3])) { xi, wi, yi in dw[wi] += dv[yi] * xv[xi] }
        return Tensor(shape: g.weightShape, values: dw, dtype: .float64)
    }

    func testShapeOperations() {
        let x = Tensor(shape: [2, 3, 2], values: (0..<12).map(Double.init))
        XCTAssertEqual(x.permuted([2, 0, 1]).floats, [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11])
        XCTAssertEqual(x.permuted([2, 0, 1]).permuted(Tensor.inversePermutation([2, 0, 1])).floats, x.floats)
        XCTAssertEqual(x.slice(axis: 1, 1..<3).floats, [2, 3, 4, 5, 8, 9, 10, 11])
        let joined = Tensor.concatenate([x.slice(axis: 1, 0..<1), x.slice(axis: 1, 1..<3)], axis: 1)
        XCTAssertEqual(joined.floats, x.floats)
        XCTAssertEqual(x.reshaped([6, 2]).gatherRows([5, 0, 5]).floats, [10, 11, 0, 1, 10, 11])
        let target = Tensor(zeros: [3, 2])
        target.scatterAddRows(Tensor(shape: [2, 2], values: [1.0, 2, 3, 4]), [2, 2])
        XCTAssertEqual(target.floats, [0, 0, 0, 0, 4, 6])
    }

    func testSoftmaxIsStableAndNormalised() {
        let x = Tensor(shape: [2, 3], values: [1000.0, 1001, 1002, -5, 0, 5])
        let y = x.softmax().scalars
        XCTAssertEqual(y[0] + y[1] + y[2], 1, accuracy: 1e-6)
        XCTAssertEqual(y[2], 0.6652409, accuracy: 1e-6)
        XCTAssertEqual(x.logSoftmax().scalars[2], log(0.6652409), accuracy: 1e-4, "float32 ulp at 1000 is 6e-5")
    }

    func testFloatExpIsAccurateSaturatesAndPropagatesNaN() {
        for x in stride(from: Float(-87), through: 88, by: 0.37) {
            let want = Float(Double.exp(Double(x)))
            XCTAssertEqual(Float.fastExp(x), want, accuracy: want * 3e-7, "exp(\(x))")
        }
        XCTAssertEqual(Float.fastExp(-1000), Float.fastExp(-87.3))
        XCTAssertTrue(Float.fastExp(1000).isFinite)
        XCTAssertTrue(Float.fastExp(.nan).isNaN)
        XCTAssertTrue(Tensor(shape: [2], values: [Float.nan, 0]).map(.sigmoid).scalars[0].isNaN, "NaN reaches the loss, visibly")
    }

    func testFastTanhMatchesLibmOverTheWholeRange() {
        var x: Float = -20
        while x < 20 {
            let want = Float(Double.tanh(Double(x)))
            XCTAssertEqual(Float.fastTanh(x), want, accuracy: max(abs(want) * 1e-6, 1e-30), "tanh(\(x))")
            x += x.magnitude < 0.2 ? 1e-4 : 3e-3
        }
        XCTAssertEqual(Float.fastTanh(1e-30), 1e-30)
        XCTAssertEqual(Float.fastTanh(-1000), -1)
        XCTAssertTrue(Float.fastTanh(.nan).isNaN)
    }

    func testStandardizedRows() {
        let x = Tensor(shape: [2, 4], values: [1.0, 2, 3, 4, 10, 10, 10, 10], dtype: .float64)
        let (y, inverseStd, mean, variance) = x.standardizedRows(4, epsilon: 0)
        XCTAssertEqual(mean.scalars, [2.5, 10])
        XCTAssertEqual(variance.scalars, [1.25, 0])
        XCTAssertEqual(y.scalars[0], -1.5 / 1.25.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(inverseStd.scalars[0], 1 / 1.25.squareRoot(), accuracy: 1e-12)
    }

    func testPoolingAndUpsampling() {
        let x = Tensor(shape: [1, 1, 4, 4], values: (0..<16).map(Double.init))
        XCTAssertEqual(x.averagePool(kernel: 2, stride: 2).floats, [2.5, 4.5, 10.5, 12.5])
        let (m, argmax) = x.maxPool(kernel: 2, stride: 2)
        XCTAssertEqual(m.floats, [5, 7, 13, 15])
        XCTAssertEqual(argmax, [5, 7, 13, 15])
        let small = Tensor(shape: [1, 1, 2, 2], values: [1.0, 2, 3, 4])
        XCTAssertEqual(small.upsampleNearest(2).floats, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    /// The pointer kernels (and the 2×2 max-pool's vectorised rows) against plain loops over
    /// every window: overlapping and partial windows, odd sizes, ties, both dtypes.
    func testPoolingMatchesPlainLoops() {
        for dtype in [DType.float32, .float64] {
            for (shape, k, s) in [([2, 3, 10, 37], 2, 2), ([2, 3, 7, 9], 3, 2), ([1, 2, 6, 5], 2, 1), ([1, 2, 9, 9], 3, 3)] {
                let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3]), (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1)
                // Values on a coarse grid, so that windows hold ties.
                let x = Tensor(shape: shape, values: randomTensor(shape, seed: 4).scalars.map { ($0 * 2).rounded() }, dtype: dtype)
                let g = randomTensor([shape[0], shape[1], ho, wo], seed: 5, dtype: dtype)
                let (values, grads) = (x.scalars, g.scalars)
                var maxima = [Double](), argmax = [Int](), averages = [Double]()
                var maxGradient = [Double](repeating: 0, count: x.count), averageGradient = maxGradient
                for p in 0..<planes {
                    for oy in 0..<ho {
                        for ox in 0..<wo {
                            let window = (0..<k).flatMap { i in (0..<k).map { j in (p * h + oy * s + i) * w + ox * s + j } }
                            let best = window.dropFirst().reduce(window[0]) { values[$1] > values[$0] ? $1 : $0 }
                            let output = (p * ho + oy) * wo + ox
                            maxima.append(values[best])
                            argmax.append(best)
                            averages.append(window.map { values[$0] }.reduce(0, +) / Double(k * k))
                            maxGradient[best] += grads[output]
                            for i in window { averageGradient[i] += grads[output] / Double(k * k) }
                        }
                    }
                }
                let pooled = x.maxPool(kernel: k, stride: s), context = "\(dtype) \(shape) k \(k) s \(s)"
                XCTAssertEqual(pooled.output.scalars, maxima, context)
                XCTAssertEqual(pooled.argmax, argmax, context)
                assertClose(Tensor.maxPoolBackward(gradient: g, inputShape: shape, argmax: pooled.argmax),
                            Tensor(shape: shape, values: maxGradient, dtype: dtype), context)
                assertClose(x.averagePool(kernel: k, stride: s), Tensor(shape: g.shape, values: averages, dtype: dtype), context)
                assertClose(Tensor.averagePoolBackward(gradient: g, inputShape: shape, kernel: k, stride: s),
                            Tensor(shape: shape, values: averageGradient, dtype: dtype), context)
            }
            let small = randomTensor([2, 3, 4, 5], seed: 6, dtype: dtype), f = 3
            let big = small.upsampleNearest(f), values = small.scalars
            XCTAssertEqual(big.shape, [2, 3, 12, 15])
            XCTAssertEqual(big.scalars, (0..<big.count).map { i in
                let (p, y, x): (Int, Int, Int) = (i / 180, i / 15 % 12, i % 15)
                return values[(p * 4 + y / f) * 5 + x / f]
            })
            let upstream = randomTensor(big.shape, seed: 7, dtype: dtype).scalars
            var sums = [Double](repeating: 0, count: small.count)
            for (i, value) in upstream.enumerated() {
                let (p, y, x): (Int, Int, Int) = (i / 180, i / 15 % 12, i % 15)
                sums[(p * 4 + y / f) * 5 + x / f] += value
            }
            assertClose(Tensor.upsampleNearestBackward(gradient: Tensor(shape: big.shape, values: upstream, dtype: dtype), factor: f),
                        Tensor(shape: small.shape, values: sums, dtype: dtype), "upsampling backward \(dtype)")
        }
    }

    /// Known-answer vectors of Random123 (kat_vectors, philox4x32_10).
    func testPhiloxKnownAnswers() {
        func check(_ key: (UInt32, UInt32), _ counter: (UInt32, UInt32, UInt32, UInt32), _ expected: [UInt32]) {
            let philox = Philox(seed: UInt64(key.0) | UInt64(key.1) << 32)
            let r = philox.block(counter)
            XCTAssertEqual([r.0, r.1, r.2, r.3], expected)
        }
        check((0, 0), (0, 0, 0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        check((0xffff_ffff, 0xffff_ffff), (0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff),
              [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        check((0xa409_3822, 0x299f_31d0), (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
              [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testRandomKeysAreReproducibleAndDistributed() {
        let key = RandomKey(seed: 42, stream: 2, step: 7, sample: 3)
        XCTAssertEqual(key.uniform(10), key.uniform(10))
        XCTAssertNotEqual(key.uniform(4), RandomKey(seed: 42, stream: 2, step: 7, sample: 4).uniform(4))
        let normal = key.normal(100_000)
        let mean = normal.reduce(0, +) / 1e5, variance = normal.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 1e5
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
    }
}
