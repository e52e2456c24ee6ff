import Distributed
import TestSupport
import XCTest

/// Runs on every rank of a real `mpirun` job (see `MultiRankLaunchTests`); skipped otherwise.
/// Rank r contributes (r + 1)·m(i), m(i) = i mod 7 + 1, so every result has a closed form.
final class CollectiveRankTests: XCTestCase {
    var world: Communicator!

    override func setUpWithError() throws {
        try XCTSkipUnless(RankTests.isRankProcess, "runs only under mpirun, started by MultiRankLaunchTests")
        world = try Communicator.world()
    }

    private func contribution<T: CollectiveElement>(_: T.Type, count: Int) -> [T] {
        (0..<count).map { T(exactly: world.rank + 1)! * T(exactly: $0 % 7 + 1)! }
    }

    private func expected<T: CollectiveElement>(_: T.Type, _ op: ReduceOp, count: Int) -> [T] {
        let n = world.size, rankSum = T(exactly: n * (n + 1) / 2)!
        return (0..<count).map { i in
            let m = T(exactly: i % 7 + 1)!
            return switch op {
            case .sum: rankSum * m
            case .max: T(exactly: n)! * m
            case .min: m
            case .average: T.mean(ofSum: rankSum * m, count: n)
            }
        }
    }

    private func checkEveryOp<T: CollectiveElement>(_ type: T.Type) throws {
        for count in [0, 1, 7, 1001] {
            for op in ReduceOp.allCases {
                let want = expected(T.self, op, count: count)
                var array = contribution(T.self, count: count)
                try world.allreduce(&array, op: op)
                XCTAssertEqual(array, want, "in-place \(op) \(T.self) × \(count)")

                let input = contribution(T.self, count: count)
                var output = [T](repeating: .zero, count: count)
                try input.withUnsafeBufferPointer { i in
                    try output.withUnsafeMutableBufferPointer { o in try world.allreduce(i, into: o, op: op) }
                }
                XCTAssertEqual(output, want, "out-of-place \(op) \(T.self) × \(count)")

                var polled = contribution(T.self, count: count)
                try polled.withUnsafeMutableBufferPointer { buffer in
                    let request = try world.startAllreduce(buffer, op: op)
                    while try !request.test() {}
                    XCTAssertTrue(request.isComplete)
                }
                XCTAssertEqual(polled, want, "non-blocking \(op) \(T.self) × \(count)")
            }
            let scalar = try world.allreduce(T(exactly: world.rank + 1)!, op: .max)
            XCTAssertEqual(scalar, T(exactly: world.size)!)
        }
    }

    func testAllreduceFloat() throws { try checkEveryOp(Float.self) }
    func testAllreduceDouble() throws { try checkEveryOp(Double.self) }
    func testAllreduceInt32() throws { try checkEveryOp(Int32.self) }
    func testAllreduceInt64() throws { try checkEveryOp(Int64.self) }

    func testAllreduceOf64MegabytesEveryType() throws {
        func check<T: CollectiveElement>(_: T.Type) throws {
            let count = (64 << 20) / MemoryLayout<T>.stride
            for op in [ReduceOp.sum, .average] {
                var values = contribution(T.self, count: count)
                try world.allreduce(&values, op: op)
                XCTAssertEqual(values, expected(T.self, op, count: count), "64 MB \(op) of \(T.self)")
            }
        }
        try check(Float.self)
        try check(Double.self)
        try check(Int32.self)
        try check(Int64.self)
    }

    func testRequestsCompleteInOrderAndOnRelease() throws {
        var a = contribution(Double.self, count: 1001), b = contribution(Double.self, count: 33)
        try a.withUnsafeMutableBufferPointer { pa in
            try b.withUnsafeMutableBufferPointer { pb in
                let first = try world.startAllreduce(pa, op: .sum)
                let second = try world.startAllreduce(pb, op: .average)
                try CollectiveRequest.waitAll([first, second])
                do { _ = try world.startAllreduce(pb, op: .max) }  // dropped: deinit waits for it
            }
        }
        XCTAssertEqual(a, expected(Double.self, .sum, count: 1001))
        XCTAssertEqual(b, expected(Double.self, .average, count: 33).map { $0 })
    }

    func testBroadcastFromEveryRoot() throws {
        for root in 0..<world.size {
            var values: [Double] = world.rank == root ? [1.5, -2, Double(root), 4, 5] : Array(repeating: 0, count: 5)
            try world.broadcast(&values, root: root)
            XCTAssertEqual(values, [1.5, -2, Double(root), 4, 5])
            var empty = [Int32]()
            try world.broadcast(&empty, root: root)
            XCTAssertEqual(empty, [])
        }
    }

    func testAllgatherOddAndZeroLengths() throws {
        for count in [0, 1, 3] {
            let mine = (0..<count).map { Int32(world.rank * 100 + $0) }
            let all = try world.allgather(mine)
            XCTAssertEqual(all, (0..<world.size).flatMap { r in (0..<count).map { Int32(r * 100 + $0) } })
        }
    }

    func testAllgatherInPlaceOverUnevenParts() throws {
        for length in [0, world.size - 1, 7 * world.size + 3] {
            let parts = Communicator.partition(count: length, parts: world.size)
            var values = [Float](repeating: -1, count: length)
            for i in parts[world.rank] { values[i] = Float(i) * 0.5 }
            try values.withUnsafeMutableBufferPointer { try world.allgather(inPlace: $0, parts: parts) }
            XCTAssertEqual(values, (0..<length).map { Float($0) * 0.5 }, "length \(length)")
        }
    }

    func testReduceScatterWithUnevenAndDefaultCounts() throws {
        let length = 5 * world.size + 2
        let values = (0..<length).map { Float($0) * Float(world.rank + 1) }
        let scale = Float(world.size * (world.size + 1) / 2)
        let part = try world.reduceScatter(values, op: .sum)
        let mine = Communicator.partition(count: length, parts: world.size)[world.rank]
        XCTAssertEqual(part, mine.map { Float($0) * scale })

        // Everything to the last rank, nothing to the others.
        let counts = (0..<world.size).map { $0 == world.size - 1 ? length : 0 }
        var output = [Float](repeating: -1, count: counts[world.rank])
        try values.withUnsafeBufferPointer { i in
            try output.withUnsafeMutableBufferPointer { o in try world.reduceScatter(i, into: o, counts: counts, op: .average) }
        }
        let average = (0..<length).map { Float($0) * scale / Float(world.size) }
        XCTAssertEqual(output, world.rank == world.size - 1 ? average : [])
    }

    func testByteBlobsOfEveryLength() throws {
        let root = world.size - 1
        let blob = [UInt8](repeating: UInt8(world.rank), count: world.rank * 3)
        let gathered = try world.gatherBytes(blob, root: root)
        if world.rank == root {
            XCTAssertEqual(gathered, (0..<world.size).map { [UInt8](repeating: UInt8($0), count: $0 * 3) })
        } else {
            XCTAssertNil(gathered)
        }
        let text = Array("plan: 1200 steps".utf8)
        XCTAssertEqual(try world.broadcastBytes(world.rank == root ? text : [9, 9], root: root), text)
        XCTAssertEqual(try world.broadcastBytes([], root: 0), [])
    }

    func testSplitByParityAndByNode() throws {
        let parity = world.rank % 2
        let half = try XCTUnwrap(try world.split(color: parity, key: -world.rank))
        let members = (0..<world.size).filter { $0 % 2 == parity }
        XCTAssertEqual(half.size, members.count)
        XCTAssertEqual(half.rank, members.count - 1 - members.firstIndex(of: world.rank)!, "key reverses the order")
        XCTAssertEqual(try half.allreduce(Int64(world.rank), op: .sum), Int64(members.reduce(0, +)))

        let onlyFirst = try world.split(color: world.rank == 0 ? 0 : nil, key: 0)
        XCTAssertEqual(onlyFirst?.size, world.rank == 0 ? 1 : nil)

        let node = try world.splitByNode()
        XCTAssertEqual(node.size, world.size, "one host: every rank shares memory")
        XCTAssertEqual(node.rank, world.rank)
    }

    func testSelfCheckPasses() throws {
        let report = try world.selfCheck(largeCount: 1 << 16)
        XCTAssertEqual(report.failures, [])
        XCTAssertEqual(report.checks, 4 * 4 * 4 * 2 + 4)
    }
}

/// Under mpirun: rank 1 aborts while the others wait in a barrier. The job must end.
final class AbortRankTests: XCTestCase {
    func testOneRankAbortsTheJob() throws {
        try XCTSkipUnless(RankTests.isRankProcess, "runs only under mpirun, started by MultiRankLaunchTests")
        let world = try Communicator.world()
        if world.rank == 1 { world.abort("deliberate failure in a test") }
        try world.barrier()
        XCTFail("rank \(world.rank) passed a barrier that rank 1 never entered")
    }
}
