/// A quick end-to-end check of this communicator's collectives, for smoke runs and diagnosis.
extension Communicator {
    /// What `selfCheck` found: how many results it compared and which were wrong.
    public struct SelfCheckReport: Sendable {
        public var checks = 0
        public var failures: [String] = []
    }

    /// Runs every reduction op for every element type (lengths 0, 1, 1001 and `largeCount`), a
    /// non-blocking all-reduce, an all-gather, a reduce-scatter and a byte gather and broadcast,
    /// and compares each result with its closed form. A collective; every rank gets the same
    /// number of checks, and its own failures.
    public func selfCheck(largeCount: Int = 1 << 20) throws(CommunicatorError) -> SelfCheckReport {
        var report = SelfCheckReport()
        for count in [0, 1, 1001, largeCount] {
            try checkReductions(Float.self, count: count, into: &report)
            try checkReductions(Double.self, count: count, into: &report)
            try checkReductions(Int32.self, count: count, into: &report)
            try checkReductions(Int64.self, count: count, into: &report)
        }
        try checkOthers(into: &report)
        return report
    }

    /// Rank r contributes (r + 1)·m(i) with m(i) = i mod 7 + 1, so every op has a closed form.
    private func checkReductions<T: CollectiveElement>(
        _: T.Type, count: Int, into report: inout SelfCheckReport
    ) throws(CommunicatorError) {
        let n = T(exactly: size)!, r = T(exactly: rank + 1)!
        let rankSum = T(exactly: size * (size + 1) / 2)!
        for op in ReduceOp.allCases {
            for blocking in [true, false] {
                var values = (0..<count).map { r * T(exactly: $0 % 7 + 1)! }
                if blocking {
                    try allreduce(&values, op: op)
                } else {
                    try values.withUnsafeMutableBufferPointer { (buffer) throws(CommunicatorError) in
                        try startAllreduce(buffer, op: op).wait()
                    }
                }
                let expected: (T) -> T = switch op {
                case .sum: { rankSum * $0 }
                case .max: { n * $0 }
                case .min: { $0 }
                case .average: { T.mean(ofSum: rankSum * $0, count: self.size) }
                }
                let wrong = values.indices.first { values[$0] != expected(T(exactly: $0 % 7 + 1)!) }
                report.checks += 1
                if let i = wrong {
                    report.failures.append(
                        "\(blocking ? "" : "non-blocking ")allreduce \(op) \(T.scalarKind) × \(count): element \(i) is \(values[i]), expected \(expected(T(exactly: i % 7 + 1)!))")
                }
            }
        }
    }

    private func checkOthers(into report: inout SelfCheckReport) throws(CommunicatorError) {
        func expect(_ ok: Bool, _ what: @autoclosure () -> String) {
            report.checks += 1
            if !ok { report.failures.append(what()) }
        }
        let gathered = try allgather([Int64(rank), Int64(rank * 10)])
        expect(gathered == (0..<size).flatMap { [Int64($0), Int64($0 * 10)] }, "allgather gave \(gathered)")

        let length = 3 * size + 1
        let part = try reduceScatter((0..<length).map { Double($0) }, op: .sum)
        let range = Communicator.partition(count: length, parts: size)[rank]
        expect(part == range.map { Double($0 * size) }, "reduce-scatter gave \(part) for elements \(range)")

        let blob = [UInt8](repeating: UInt8(truncatingIfNeeded: rank), count: rank)
        let blobs = try gatherBytes(blob, root: 0)
        let expectedBlobs = (0..<size).map { [UInt8](repeating: UInt8(truncatingIfNeeded: $0), count: $0) }
        expect(rank == 0 ? blobs == expectedBlobs : blobs == nil, "gatherBytes gave \(blobs ?? [])")
        let sent = try broadcastBytes(rank == 0 ? Array("hello from rank 0".utf8) : [], root: 0)
        expect(sent == Array("hello from rank 0".utf8), "broadcastBytes gave \(sent.count) bytes")
    }
}
