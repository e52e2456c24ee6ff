import Distributed
import TestSupport
import XCTest

/// The gradient exchange on every rank of a real `mpirun` job (see `MultiRankLaunchTests`).
/// Every rank can compute every rank's gradients (seeded by rank and micro-batch), so each
/// result is checked against a serial reference.
final class ExchangeRankTests: XCTestCase {
    var world: Communicator!

    override func setUpWithError() throws {
        try XCTSkipUnless(RankTests.isRankProcess, "runs only under mpirun, started by MultiRankLaunchTests")
        world = try Communicator.world()
    }

    /// Gradient values spanning many binades, with a few exact zeros.
    private func gradient(rank: Int, microBatch: Int, count: Int) -> [Float] {
        var state = UInt64(rank * 1000 + microBatch + 1) &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { i in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let unit = Float(state >> 40) / Float(1 << 24) - 0.5
            return i % 97 == 0 ? 0 : unit * Float(sign: .plus, exponent: Int(state >> 59) - 8, significand: 1)
        }
    }

    /// Node layouts to run each exchange under: the real one (one machine), every rank a node of
    /// its own, and nodes of two ranks (with three ranks: one node of two and one of one).
    private let layouts: [Int?] = [nil, 1, 2]

    /// Runs one step: `microBatches` per rank, the last one reported final in uneven ranges.
    private func exchanged(_ algorithm: ExchangeAlgorithm, count: Int, microBatches: (Int) -> Int, maxPerRank: Int,
                           ranksPerNode: Int?) throws -> [Float] {
        let exchange = try GradientExchange(algorithm: algorithm, workers: world, count: count, bucketElements: 333,
                                            microBatchesPerWorker: maxPerRank, ranksPerNode: ranksPerNode)
        for round in 0..<2 {  // twice: the second step reuses every buffer
            exchange.beginStep()
            let mine = microBatches(world.rank)
            for m in 0..<mine {
                let values = gradient(rank: world.rank, microBatch: m, count: count)
                for i in 0..<count { exchange.gradients[i] += values[i] }
                if m < mine - 1 { exchange.setAsideMicroBatch() }
            }
            if mine > 0 {
                for start in stride(from: count, to: 0, by: -250) { try exchange.gradientFinal(max(0, start - 250)..<start) }
            }
            try exchange.finish()
            if round == 0 { exchange.gradients.update(repeating: 0) }
        }
        return Array(exchange.gradients)
    }

    func testEveryAlgorithmSumsEveryRanksMicroBatches() throws {
        let count = 5000
        let perRank = { (rank: Int) in rank == 1 ? 1 : 2 }  // uneven: rank 1 has one micro-batch
        var reference = [Double](repeating: 0, count: count)
        for rank in 0..<world.size {
            for m in 0..<perRank(rank) {
                for (i, v) in gradient(rank: rank, microBatch: m, count: count).enumerated() { reference[i] += Double(v) }
            }
        }
        for algorithm in ExchangeAlgorithm.allCases {
            for ranksPerNode in layouts {
                let sums = try exchanged(algorithm, count: count, microBatches: perRank, maxPerRank: 2, ranksPerNode: ranksPerNode)
                let label = "\(algorithm), \(ranksPerNode.map { "nodes of \($0)" } ?? "one node")"
                for i in 0..<count {
                    XCTAssertEqual(Double(sums[i]), reference[i], accuracy: 1e-5 * max(1, abs(reference[i])), "\(label): element \(i)")
                }
                let agreed = try world.allgather(sums)
                for rank in 0..<world.size { XCTAssertEqual(Array(agreed[(rank * count)..<((rank + 1) * count)]), sums, "\(label): every rank holds the same sums") }
            }
        }
    }

    /// The same six micro-batches spread over 1, 2 or 3 ranks, on one node or several, give
    /// bitwise the same sums. Buckets span several chunks (each with its own fixed-point grid),
    /// spread over the ranks of a node.
    func testReproducibleSumsDoNotDependOnHowMicroBatchesAreSpread() throws {
        let count = 9000, total = 6, bucket = 4500
        // The serial reference: all six micro-batches on one rank, summed in the other order.
        let serial = try Communicator.world().split(color: world.rank, key: 0)!
        let alone = try GradientExchange(algorithm: .reproducible, workers: serial, count: count, bucketElements: bucket, microBatchesPerWorker: total)
        alone.beginStep()
        for (k, m) in (0..<total).reversed().enumerated() {
            let values = gradient(rank: 0, microBatch: m, count: count)
            for i in 0..<count { alone.gradients[i] += values[i] }
            if k < total - 1 { alone.setAsideMicroBatch() }
        }
        try alone.finish()
        let spread = Communicator.partition(count: total, parts: world.size)
        let mine = spread[world.rank]
        for ranksPerNode in layouts {
            let exchange = try GradientExchange(algorithm: .reproducible, workers: world, count: count, bucketElements: bucket,
                                                microBatchesPerWorker: spread.map(\.count).max()!, ranksPerNode: ranksPerNode)
            exchange.beginStep()
            for (k, m) in mine.enumerated() {
                let values = gradient(rank: 0, microBatch: m, count: count)
                for i in 0..<count { exchange.gradients[i] += values[i] }
                if k < mine.count - 1 { exchange.setAsideMicroBatch() }
            }
            try exchange.finish()
            XCTAssertEqual(Array(exchange.gradients).map(\.bitPattern), Array(alone.gradients).map(\.bitPattern),
                           ranksPerNode.map { "nodes of \($0)" } ?? "one node")
        }
    }

    /// A non-finite value turns its chunk (here its whole bucket) into NaN on every rank.
    func testNonFiniteGradientsBecomeNaNEverywhere() throws {
        for ranksPerNode in layouts {
            let exchange = try GradientExchange(algorithm: .reproducible, workers: world, count: 10, bucketElements: 4, ranksPerNode: ranksPerNode)
            exchange.beginStep()
            for i in 0..<10 { exchange.gradients[i] = 1 }
            if world.rank == 0 { exchange.gradients[5] = .infinity }
            try exchange.finish()
            XCTAssertTrue((2..<6).allSatisfy { exchange.gradients[$0].isNaN }, "the bucket holding the infinity")
            XCTAssertEqual(exchange.gradients[0], Float(world.size), "other buckets are unaffected")
            XCTAssertEqual(exchange.gradients[9], Float(world.size), "other buckets are unaffected")
        }
    }
}
