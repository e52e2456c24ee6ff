import Autograd
import Models
import NN
import TestSupport
import Tensors
import XCTest

/// The tile CNN against PyTorch (Tests/Fixtures/make_model_fixtures.py, `tile_classifier()`),
/// its modes, its config, and the tile input: scaling and the eight dihedral transforms.
final class TileClassifierTests: XCTestCase {
    func testMatchesPyTorch() throws {
        let fixture = try Fixture("tile_classifier")
        let arena = ParameterArena()
        let model = TileClassifier(arena, config: .init(depth: 2, width: 4, dropout: 0), classes: 3)
        arena.seal()
        XCTAssertEqual(arena.entries.map(\.name).sorted(), fixture.names("parameters"), "parameter names")
        XCTAssertEqual(arena.bufferEntries.map(\.name).sorted(), fixture.names("buffers"), "buffer names")
        for name in fixture.names("parameters") {
            arena.values(of: arena.entry(named: name)!).assign(fixture.tensor("parameters", name).scalars)
        }
        let xTensor = fixture.tensor("inputs", "x")
        let x = Variable(xTensor, gradient: Tensor(zeros: xTensor.shape))
        let logits = model(x, key: RandomKey(seed: 0, stream: 0))
        assertClose(logits.value, fixture.tensor("output"), "logits")
        logits.backward(seed: fixture.tensor("upstream"))
        assertClose(x.grad!, fixture.tensor("input_grads", "x"), absolute: 1e-6, relative: 2e-3, "dL/dx")
        for name in fixture.names("parameter_grads") {
            assertClose(arena.gradients(of: arena.entry(named: name)!), fixture.tensor("parameter_grads", name),
                        absolute: 1e-6, relative: 2e-3, "dL/d\(name)")
        }
        for (index, entry) in arena.bufferEntries.enumerated() {
            let offset = entry.offset
            let value = Tensor(shape: entry.shape, values: Array(arena.buffers.scalars[offset..<(offset + entry.count)]))
            assertClose(value, fixture.tensor("buffers", entry.name), "buffer \(index): \(entry.name)")
        }
    }

    func testOneCallSwitchesModesAndEvaluationIsDeterministic() {
        let arena = ParameterArena(seed: 2)
        let model = TileClassifier(arena, config: .init(depth: 3, width: 4, dropout: 0.5), classes: 4)
        arena.seal()
        let modal = model.modules.compactMap { $0 as? any ModalModule }
        XCTAssertEqual(modal.count, 3 + 1, "a batch norm per stage and the dropout")
        let tiles = Variable(randomTensor([2, 3, 8, 8], dtype: .float32))
        func logits(_ sample: UInt32) -> [Double] { model(tiles, key: RandomKey(seed: 1, stream: 0, sample: sample)).value.scalars }
        XCTAssertNotEqual(logits(1), logits(2), "training: dropout")
        model.setTraining(false)
        XCTAssertTrue(modal.allSatisfy { !$0.isTraining })
        XCTAssertEqual(logits(1), logits(2), "evaluation")
        XCTAssertEqual(model(Variable(randomTensor([1, 3, 9, 11], dtype: .float32)), key: RandomKey(seed: 0, stream: 0)).shape, [1, 4],
                       "any tile size from 2^depth, odd sides rounded down by the pools")
    }

    func testConfigDefaultsAndProblemsNameTheirKeys() {
        let defaults = TileClassifier.Config()
        XCTAssertEqual([defaults.depth, defaults.width], [3, 16])
        XCTAssertEqual(defaults.dropout, 0.1)
        XCTAssertEqual((0..<5).map(defaults.channels(stage:)), [16, 32, 64, 128, 128], "doubling, capped at 8 × width")
        XCTAssertEqual(defaults.smallestTile, 8)
        XCTAssertEqual(defaults.problems(), [])
        let problems = TileClassifier.Config(depth: 0, width: 0, dropout: 1).problems()
        for key in ["depth:", "width:", "dropout:"] {
            XCTAssertTrue(problems.contains { $0.hasPrefix(key) }, "\(key) in \(problems)")
        }
        XCTAssertEqual(TileClassifier.Config(depth: 17, width: 1 << 14, dropout: -0.1).problems().count, 3)
    }

    // MARK: Tile input

    /// `grid` (a tile of side `size`, one value per pixel) as `transform` turns it.
    private func apply(_ transform: TileTransform, _ grid: [Int], size: Int) -> [Int] {
        (0..<(size * size)).map { i in
            let (r, c) = transform.source(row: i / size, column: i % size, size: size)
            return grid[r * size + c]
        }
    }

    func testEachTransformIsWhatItsNameSays() {
        // 1 2      rotate90 (counter-clockwise): 2 4 ; flipHorizontal: 2 1 ; transpose: 1 3
        // 3 4                                    1 3                   4 3              2 4
        let expected: [TileTransform: [Int]] = [
            .identity: [1, 2, 3, 4], .rotate90: [2, 4, 1, 3], .rotate180: [4, 3, 2, 1], .rotate270: [3, 1, 4, 2],
            .flipHorizontal: [2, 1, 4, 3], .flipVertical: [3, 4, 1, 2], .transpose: [1, 3, 2, 4], .antiTranspose: [4, 2, 3, 1],
        ]
        for transform in TileTransform.allCases {
            XCTAssertEqual(apply(transform, [1, 2, 3, 4], size: 2), expected[transform], "\(transform)")
        }
        let grid = Array(0..<25)
        func repeated(_ transform: TileTransform, _ times: Int) -> [Int] { (0..<times).reduce(grid) { x, _ in apply(transform, x, size: 5) } }
        XCTAssertEqual(repeated(.rotate90, 4), grid, "four quarter turns")
        XCTAssertEqual(repeated(.rotate90, 2), apply(.rotate180, grid, size: 5))
        XCTAssertEqual(repeated(.rotate90, 3), apply(.rotate270, grid, size: 5))
        for flip in [TileTransform.flipHorizontal, .flipVertical, .transpose, .antiTranspose, .rotate180] {
            XCTAssertEqual(repeated(flip, 2), grid, "\(flip) twice")
        }
        XCTAssertEqual(apply(.flipVertical, apply(.flipHorizontal, grid, size: 5), size: 5), apply(.rotate180, grid, size: 5))
        XCTAssertEqual(Set(TileTransform.allCases.map { apply($0, grid, size: 5) }).count, 8, "eight different transforms")
    }

    func testTransformsAreDrawnPerSampleFromTheKey() {
        let key = RandomKey(seed: 7, stream: RandomStream.step, step: 3, sample: 40)
        let batch = TileTransform.random(count: 64, key: key)
        XCTAssertEqual(batch, TileTransform.random(count: 64, key: key), "same key, same transforms")
        var later = key
        later.sample += 10
        XCTAssertEqual(Array(batch[10...]), TileTransform.random(count: 54, key: later), "a sample's transform follows its position")
        XCTAssertEqual(batch[5], TileTransform.random(RandomKey(seed: 7, stream: 0, step: 3, sample: 45)), "whatever the caller's stream")
        var counts = [TileTransform: Int]()
        for sample in 0..<4000 { counts[TileTransform.random(RandomKey(seed: 1, stream: 0, sample: UInt32(sample))), default: 0] += 1 }
        XCTAssertEqual(counts.count, 8)
        XCTAssertTrue(counts.values.allSatisfy { (400...600).contains($0) }, "about 500 each: \(counts)")
    }

    func testNormalizerScalesTurnsAndMeasures() {
        // Two 2×2 tiles, channels last; R = 10·pixel, G = 100 + pixel, B = 255 − pixel.
        let pixels = (0..<8).flatMap { (p: Int) -> [UInt8] in [UInt8(10 * p), UInt8(100 + p), UInt8(255 - p)] }
        let identity = TileNormalizer(mean: [0, 0, 0], std: [1.0 / 255, 1.0 / 255, 1.0 / 255])  // x = byte
        let plain = identity.tensor(pixels[...], size: 2)
        XCTAssertEqual(plain.shape, [2, 3, 2, 2])
        XCTAssertEqual(plain.scalars, [0, 10, 20, 30, 100, 101, 102, 103, 255, 254, 253, 252,
                                       40, 50, 60, 70, 104, 105, 106, 107, 251, 250, 249, 248])
        let turned = identity.tensor(pixels[...], size: 2, transforms: [.rotate90, .flipVertical], dtype: .float64)
        XCTAssertEqual(Array(turned.scalars[0..<4]), [10, 30, 0, 20], "tile 0's red plane turned counter-clockwise")
        XCTAssertEqual(Array(turned.scalars[16..<20]), [106, 107, 104, 105], "tile 1's green plane upside down")

        let measured = TileNormalizer(measuring: [Array(pixels[0..<12]), Array(pixels[12...])])
        XCTAssertEqual(measured.mean[0], 35.0 / 255, accuracy: 1e-12)
        XCTAssertEqual(measured.std[1], (5.25).squareRoot() / 255, accuracy: 1e-9)
        let scaled = measured.tensor(pixels[...], size: 2, dtype: .float64).scalars
        for channel in 0..<3 {
            let values = (0..<2).flatMap { (tile: Int) -> ArraySlice<Double> in
                let start = tile * 12 + channel * 4
                return scaled[start..<(start + 4)]
            }
            XCTAssertEqual(values.reduce(0, +) / 8, 0, accuracy: 1e-9, "channel \(channel) centred")
            XCTAssertEqual(values.map { $0 * $0 }.reduce(0, +) / 8, 1, accuracy: 1e-9, "channel \(channel) scaled")
        }
        XCTAssertEqual(TileNormalizer(measuring: [[UInt8](repeating: 7, count: 12)]).std, [1, 1, 1], "a constant channel is not divided by 0")
    }
}
