import Foundation
import Tensors
import Training
import XCTest

/// The latent figures on small cases worked out by hand.
final class LatentMetricsTests: XCTestCase {
    // Two clusters on a line: class 0 at 0, 1, 2 and class 1 at 10, 11.
    private let line: [Float] = [0, 1, 2, 10, 11]
    private let labels = [0, 0, 0, 1, 1]

    func testKNearestNeighboursVoteAndBreakTiesByTheNearest() {
        XCTAssertEqual(LatentMetrics.knnAccuracy(reference: line, referenceLabels: labels, queries: [1.5, 10.5], queryLabels: [0, 1], dimension: 1, k: 3), 1)
        // k = 2 at 9: neighbours 10 (class 1) and 11 (class 1) → 1; at 5.9 with k = 2: 2 (class 0, 3.9) and 10 (class 1, 4.1) tie → nearest, class 0.
        XCTAssertEqual(LatentMetrics.knnAccuracy(reference: line, referenceLabels: labels, queries: [9, 5.9], queryLabels: [1, 0], dimension: 1, k: 2), 1)
        XCTAssertEqual(LatentMetrics.knnAccuracy(reference: line, referenceLabels: labels, queries: [5.9], queryLabels: [1], dimension: 1, k: 2), 0)
    }

    func testSilhouetteMatchesTheDefinition() {
        // Point 0: a = (1 + 2) / 2 = 1.5, b = (10 + 11) / 2 = 10.5 → 9 / 10.5; and so on.
        let s: [Double] = [
            (10.5 - 1.5) / 10.5, (9.5 - 1) / 9.5, (8.5 - 1.5) / 8.5,
            (9 - 1) / 9, (10 - 1) / 10,
        ]
        XCTAssertEqual(LatentMetrics.silhouette(line, labels: labels, dimension: 1), s.reduce(0, +) / 5, accuracy: 1e-12)
        XCTAssertTrue(LatentMetrics.silhouette(line, labels: [0, 0, 0, 0, 0], dimension: 1).isNaN, "one class: undefined")
    }

    func testPrincipalComponentsFindTheLongAxis() {
        // Points along (3, 4)/5 with a little spread along (−4, 3)/5.
        var points = [Float]()
        for (t, u) in [(-2.0, 0.1), (-1.0, -0.1), (0.0, 0.1), (1.0, -0.1), (2.0, 0.1), (3.0, -0.1)] {
            points += [Float(0.6 * t - 0.8 * u), Float(0.8 * t + 0.6 * u)]
        }
        let (scores, explained) = LatentMetrics.principalComponents(points, dimension: 2)
        XCTAssertGreaterThan(explained[0], 0.99)
        XCTAssertEqual(explained[0] + explained[1], 1, accuracy: 1e-9)
        XCTAssertEqual(scores.map { $0[0] }, [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], accuracy: 0.01, "scores on PC1, centred, sign fixed")
    }

    func testColumnCorrelations() {
        // Column 0: b = 2a + 1 → r = 1; column 1: b = −a → r = −1; column 2: constant → nan.
        let a: [Float] = [1, 1, 5, 2, 2, 5, 3, 3, 5]
        let b: [Float] = [3, -1, 7, 5, -2, 7, 7, -3, 7]
        let r = LatentMetrics.columnCorrelations(a, b, columns: 3)
        XCTAssertEqual(r[0], 1, accuracy: 1e-12)
        XCTAssertEqual(r[1], -1, accuracy: 1e-12)
        XCTAssertTrue(r[2].isNaN)
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, message, file: file, line: line) }
}

/// The Fréchet distance against closed forms: one dimension, diagonal covariances, and a
/// rotation of both sets (which exercises the eigensolver off the diagonal).
final class FrechetDistanceTests: XCTestCase {
    private func gaussian(_ n: Int, means: [Double], scales: [Double], seed: UInt64) -> [Float] {
        let z = RandomKey(seed: seed, stream: 0).normal(n * means.count)
        return (0..<(n * means.count)).map { Float(means[$0 % means.count] + scales[$0 % means.count] * z[$0]) }
    }

    func testClosedFormsAndRotationInvariance() {
        let a = gaussian(4000, means: [1, 0, -2], scales: [1, 2, 0.5], seed: 1)
        let b = gaussian(4000, means: [0, 0, -2], scales: [2, 2, 1], seed: 2)
        XCTAssertEqual(FrechetDistance.squared(a, a, dimension: 3), 0, accuracy: 1e-9, "a set against itself")
        // |μ₁ − μ₂|² + Σ (σ₁ − σ₂)² = 1 + 1 + 0 + 0.25, up to sampling error.
        XCTAssertEqual(FrechetDistance.squared(a, b, dimension: 3), 2.25, accuracy: 0.15)
        let one = gaussian(20000, means: [3], scales: [2], seed: 3), other = gaussian(20000, means: [0], scales: [1], seed: 4)
        XCTAssertEqual(FrechetDistance.squared(one, other, dimension: 1), 9 + 1, accuracy: 0.2)
        let (c, s) = (cos(0.7), sin(0.7))
        func rotate(_ x: [Float]) -> [Float] {
            stride(from: 0, to: x.count, by: 3).flatMap { i -> [Float] in
                let (u, v, w) = (Double(x[i]), Double(x[i + 1]), Double(x[i + 2]))
                return [Float(c * u - s * v), Float(s * u + c * v), Float(w)]
            }
        }
        XCTAssertEqual(FrechetDistance.squared(rotate(a), rotate(b), dimension: 3), FrechetDistance.squared(a, b, dimension: 3), accuracy: 1e-3)
    }

    func testEigenDecompositionReassemblesTheMatrix() {
        let m: [Double] = [4, 1, 0.5, 1, 3, -0.2, 0.5, -0.2, 2]
        let (values, vectors) = FrechetDistance.symmetricEigen(m, 3)
        for i in 0..<3 {
            for j in 0..<3 {
                let rebuilt = (0..<3).reduce(0.0) { $0 + vectors[i * 3 + $1] * values[$1] * vectors[j * 3 + $1] }
                XCTAssertEqual(rebuilt, m[i * 3 + j], accuracy: 1e-10)
            }
        }
        let root = FrechetDistance.symmetricSquareRoot(m, 3)
        let square = FrechetDistance.multiply(root, root, 3)
        for (x, y) in zip(square, m) { XCTAssertEqual(x, y, accuracy: 1e-10) }
    }
}
