import Distributed
import XCTest

/// In a plain test process MPI starts as a singleton: one rank, every collective still works,
/// and argument errors surface as typed errors before MPI is called.
final class SingleRankTests: XCTestCase {
    func testSingletonWorld() throws {
        let world = try Communicator.world()
        XCTAssertTrue(world === (try Communicator.world()), "one world per process")
        XCTAssertGreaterThanOrEqual(world.size, 1)
        XCTAssertTrue(MPIRuntime.isStarted)
        XCTAssertFalse(MPIRuntime.isFinalized)
        XCTAssertFalse(try Communicator.processorName().isEmpty)
    }

    func testSingletonCollectivesAreIdentities() throws {
        let world = try Communicator.world()
        try XCTSkipIf(world.size != 1, "runs as a singleton only")
        var values: [Float] = [1, -2, 3.5]
        for op in ReduceOp.allCases {
            try world.allreduce(&values, op: op)
            XCTAssertEqual(values, [1, -2, 3.5])
        }
        XCTAssertEqual(try world.allgather([Int64(7)]), [7])
        XCTAssertEqual(try world.reduceScatter([1.0, 2.0], op: .sum), [1.0, 2.0])
        XCTAssertEqual(try world.gatherBytes([1, 2], root: 0), [[1, 2]])
    }

    func testMismatchedLengthsThrowBeforeMPI() throws {
        let world = try Communicator.world()
        let input: [Float] = [1, 2, 3]
        var output = [Float](repeating: 0, count: 2)
        try input.withUnsafeBufferPointer { i in
            try output.withUnsafeMutableBufferPointer { o in
                XCTAssertThrowsError(try world.allreduce(i, into: o, op: .sum)) { error in
                    XCTAssertEqual(error as? CommunicatorError, .lengthMismatch(call: "MPI_Allreduce", detail: "input has 3 elements, output 2"))
                }
                XCTAssertThrowsError(try world.allgather(i, into: o)) { error in
                    guard case .lengthMismatch(call: "MPI_Allgather", _)? = error as? CommunicatorError else {
                        return XCTFail("expected lengthMismatch from MPI_Allgather, got \(error)")
                    }
                }
                XCTAssertThrowsError(try world.allgather(inPlace: o, parts: [0..<1])) { error in
                    guard case .lengthMismatch(call: "MPI_Allgatherv", _)? = error as? CommunicatorError else {
                        return XCTFail("expected lengthMismatch from MPI_Allgatherv, got \(error)")
                    }
                }
                XCTAssertThrowsError(try world.reduceScatter(i, into: o, counts: [2, 1], op: .sum)) { error in
                    guard case .lengthMismatch(call: "MPI_Reduce_scatter", _)? = error as? CommunicatorError else {
                        return XCTFail("expected lengthMismatch from MPI_Reduce_scatter, got \(error)")
                    }
                }
            }
        }
    }

    func testBadRootsAndColorsThrow() throws {
        let world = try Communicator.world()
        var values: [Double] = [1]
        XCTAssertThrowsError(try world.broadcast(&values, root: world.size)) { error in
            XCTAssertEqual(error as? CommunicatorError, .invalidRank(call: "MPI_Bcast", rank: world.size, size: world.size))
        }
        XCTAssertThrowsError(try world.gatherBytes([], root: -1))
        XCTAssertThrowsError(try world.split(color: -3, key: 0)) { error in
            guard case .invalidArgument(call: "MPI_Comm_split", _)? = error as? CommunicatorError else {
                return XCTFail("expected invalidArgument, got \(error)")
            }
        }
    }

    func testErrorMessagesNameTheCall() {
        let errors: [CommunicatorError] = [
            .mpi(call: "MPI_Allreduce", code: 15, message: "MPI_ERR_TRUNCATE: message truncated"),
            .lengthMismatch(call: "MPI_Allgather", detail: "x"),
            .invalidRank(call: "MPI_Bcast", rank: 5, size: 2),
            .countTooLarge(call: "MPI_Allreduce", count: 1 << 33),
        ]
        for error in errors {
            XCTAssertTrue(error.description.hasPrefix("MPI_"), error.description)
        }
    }

    func testPartitionIsBalancedAndContiguous() {
        XCTAssertEqual(Communicator.partition(count: 10, parts: 3), [0..<4, 4..<7, 7..<10])
        XCTAssertEqual(Communicator.partition(count: 2, parts: 4), [0..<1, 1..<2, 2..<2, 2..<2])
        XCTAssertEqual(Communicator.partition(count: 0, parts: 2), [0..<0, 0..<0])
    }

    /// Sums up to the edge of the fixed-point range (just below 2⁵¹), of either sign, come back
    /// exact; values under the scale's quantum round to zero.
    func testReproducibleSumsAreExactAcrossTheFixedPointRange() throws {
        let world = try Communicator.world()
        try XCTSkipIf(world.size != 1, "runs as a singleton only")
        let terms = 8
        let exchange = try GradientExchange(algorithm: .reproducible, workers: world, count: 5, bucketElements: 5,
                                            microBatchesPerWorker: terms)
        exchange.beginStep()
        let largest = Float(2).nextDown  // sets the scale to 2⁴⁷ for eight terms: their sum reaches 2⁵¹ − 2²⁷
        for m in 0..<terms {
            let values: [Float] = [-largest, largest, m.isMultiple(of: 2) ? 1.5 : -1.5, 0.75 + 0x1p-20, 0x1p-50]
            for i in values.indices { exchange.gradients[i] += values[i] }
            if m < terms - 1 { exchange.setAsideMicroBatch() }
        }
        try exchange.finish()
        XCTAssertEqual(Array(exchange.gradients), [-8 * largest, 8 * largest, 0, 6 + 0x1p-17, 0])
    }

    /// Each chunk of a bucket gets its own fixed-point grid: tiny gradients beside a chunk of
    /// large ones keep their precision instead of rounding to zero on the large ones' grid.
    func testReproducibleSumsRoundEachChunkOnItsOwnGrid() throws {
        let world = try Communicator.world()
        try XCTSkipIf(world.size != 1, "runs as a singleton only")
        let count = 3 * 2048
        let exchange = try GradientExchange(algorithm: .reproducible, workers: world, count: count, bucketElements: count,
                                            microBatchesPerWorker: 2)
        let values = (0..<count).map { i -> Float in
            let tiny = Float(i + 1) * 0x1p-90, large = Float(i) + 0.5
            return (2048..<4096).contains(i) ? large : tiny
        }
        exchange.beginStep()
        for i in 0..<count { exchange.gradients[i] = values[i] }
        exchange.setAsideMicroBatch()
        for i in 0..<count { exchange.gradients[i] = values[i] }
        try exchange.finish()
        XCTAssertEqual(Array(exchange.gradients), values.map { 2 * $0 }, "every sum is exact: two equal terms")
    }
}
