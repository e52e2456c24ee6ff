import ArgumentParser
import Distributed

/// All-reduce latency and bandwidth by message size, as OSU and nccl-tests report them.
struct AllreduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "All-reduce latency and bus bandwidth by message size.",
        discussion: """
            For each size (doubling from --min-bytes to --max-bytes) the result is first checked
            against its closed form ("wrong" column), then timed: --repeats batches of
            iterations, each batch's time the slowest rank's, reported as the median.
              algbw = bytes / time        busbw = algbw · 2(n−1)/n   (n ranks)
            busbw is comparable across rank counts: it is the bandwidth each link must carry in a
            ring all-reduce.

            Without --algorithm, plain MPI_Allreduce of --type is timed. With it, float32
            gradients go through the training runtime's gradient exchange in buckets of
            --bucket-mb: mpi (MPI_Iallreduce per bucket), hierarchical (shared-memory window in
            a node, MPI between nodes), reproducible (exact fixed-point sums), or all (the three
            and plain MPI_Allreduce, each with its speed-up over MPI_Allreduce). Example:
              launch/mpirun -np 2 .build/release/transcriptile bench allreduce \\
                  --algorithm all --min-bytes 4M
            """)

    enum ElementType: String, ExpressibleByArgument, CaseIterable {
        case float, double, int32, int64

        var byteWidth: Int { self == .float || self == .int32 ? 4 : 8 }
    }

    @Option(help: "Smallest message in bytes (suffixes K, M, G).")
    var minBytes = ByteCount(4)
    @Option(help: "Largest message in bytes (suffixes K, M, G).")
    var maxBytes = ByteCount(64 << 20)
    @Option(help: "Element type: \(ElementType.allCases.map(\.rawValue).joined(separator: ", ")).")
    var type: ElementType = .float
    @Option(help: "Reduction: \(ReduceOp.allCases.map(\.rawValue).joined(separator: ", ")).")
    var op: ReduceOp = .sum
    @Option(help: "Timed batches per size; the median is reported.")
    var repeats = 5
    @Option(help: "Target seconds per timed batch (sets the iterations per batch).")
    var batchSeconds = 0.02
    @Flag(help: "Start each all-reduce non-blocking and wait for it (MPI_Iallreduce).")
    var nonBlocking = false
    @Option(help: "Time the training gradient exchange instead: mpi, hierarchical, reproducible or all.")
    var algorithm: AlgorithmChoice?
    @Option(help: "Bucket size in MB for --algorithm.")
    var bucketMB = 4.0
    @Option(help: "With --algorithm: treat every N ranks of a machine as a node of their own, to time the cross-node path on one machine.")
    var ranksPerNode: Int?
    @OptionGroup var output: BenchOutputOptions

    func validate() throws {
        guard minBytes.bytes > 0, minBytes.bytes <= maxBytes.bytes else {
            throw ValidationError("need 0 < --min-bytes ≤ --max-bytes, got \(minBytes) and \(maxBytes)")
        }
        let width = type.byteWidth
        guard maxBytes.bytes / width <= Int(Int32.max) else {
            throw ValidationError("--max-bytes \(maxBytes) is too large: one MPI call carries at most \(Int32.max) elements of \(width) bytes")
        }
        guard repeats > 0 else { throw ValidationError("--repeats must be ≥ 1, got \(repeats)") }
        guard batchSeconds > 0 && batchSeconds <= 60 else { throw ValidationError("--batch-seconds must be in (0, 60], got \(batchSeconds)") }
        if algorithm != nil {
            guard type == .float, op == .sum, !nonBlocking else {
                throw ValidationError("--algorithm exchanges float sums: drop --type, --op and --non-blocking")
            }
            guard bucketMB > 0 && bucketMB <= 4096 else { throw ValidationError("--bucket-mb must be in (0, 4096], got \(bucketMB)") }
        }
        if let ranksPerNode {
            guard algorithm != nil else { throw ValidationError("--ranks-per-node applies to the gradient exchange: add --algorithm") }
            guard ranksPerNode > 0 else { throw ValidationError("--ranks-per-node must be > 0, got \(ranksPerNode)") }
        }
    }

    func run() throws {
        if let algorithm { return try compareExchanges(algorithm.algorithms) }
        switch type {
        case .float: try measure(Float.self)
        case .double: try measure(Double.self)
        case .int32: try measure(Int32.self)
        case .int64: try measure(Int64.self)
        }
    }

    private func measure<T: CollectiveElement>(_: T.Type) throws {
        let world = try Communicator.world()
        let nodes = try world.allreduce(Int32(try world.splitByNode().rank == 0 ? 1 : 0), op: .sum)
        let width = MemoryLayout<T>.stride
        let sizes = sequence(first: max(minBytes.bytes, width)) { $0 * 2 }.prefix { $0 <= maxBytes.bytes }
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: maxBytes.bytes / width)
        defer { buffer.deallocate() }
        let table = BenchTable(
            bench: "allreduce", json: output.json, isPrinter: world.rank == 0,
            title: "all-reduce of \(T.scalarKind) \(op), in place\(nonBlocking ? ", non-blocking" : ""), \(world.size) ranks on \(nodes) node(s); medians of \(repeats) batches, each the slowest rank's",
            columns: [
                .init(header: "size(B)", key: "bytes"), .init(header: "count", key: "count"),
                .init(header: "iters", key: "iterations"), .init(header: "time(us)", key: "time_us"),
                .init(header: "algbw(GB/s)", key: "algbw_gbps"), .init(header: "busbw(GB/s)", key: "busbw_gbps"),
                .init(header: "wrong", key: "wrong"),
            ])
        if world.size == 1 {
            table.note("one rank: busbw is 0 by definition; run under launch/mpirun -np N for N ranks")
        }
        for bytes in sizes {
            let message = UnsafeMutableBufferPointer(rebasing: buffer[0..<(bytes / width)])
            let wrong = try checkedReduction(message, world)
            let (seconds, iterations) = try timed(message, world)
            let algbw = Double(bytes) / seconds / 1e9
            let busbw = algbw * 2 * Double(world.size - 1) / Double(world.size)
            table.row(
                case: "\(T.scalarKind)-\(op)-\(bytes)B",
                values: [bytes, message.count, iterations, seconds * 1e6, algbw, busbw, wrong],
                value: busbw, unit: "GB/s")
        }
    }

    private func allreduce<T: CollectiveElement>(_ message: UnsafeMutableBufferPointer<T>, _ world: Communicator) throws {
        if nonBlocking {
            try world.startAllreduce(message, op: op).wait()
        } else {
            try world.allreduce(message, op: op)
        }
    }

    /// Reduces rank-dependent values once and counts the elements that differ from the closed
    /// form (summed over ranks). Values are small integers, exact in every type.
    private func checkedReduction<T: CollectiveElement>(_ message: UnsafeMutableBufferPointer<T>, _ world: Communicator) throws -> Int64 {
        let n = world.size
        let value = T(exactly: world.rank + 1)!
        message.initialize(repeating: value)
        try allreduce(message, world)
        let expected: T = switch op {
        case .sum: T(exactly: n * (n + 1) / 2)!
        case .max: T(exactly: n)!
        case .min: 1
        case .average: T.mean(ofSum: T(exactly: n * (n + 1) / 2)!, count: n)
        }
        let wrong = Int64(message.lazy.filter { $0 != expected }.count)
        return try world.allreduce(wrong, op: .sum)
    }

    /// Zeros are reduced so repeated sums cannot overflow; the work does not depend on values.
    private func timed<T: CollectiveElement>(_ message: UnsafeMutableBufferPointer<T>, _ world: Communicator) throws -> (Double, Int) {
        message.initialize(repeating: .zero)
        return try timedBatches(world) { try allreduce(message, world) }
    }

    /// Median seconds per call of `reduce` over `repeats` batches, and the iterations in a batch.
    private func timedBatches(_ world: Communicator, _ reduce: () throws -> Void) throws -> (Double, Int) {
        let clock = ContinuousClock()
        func batch(_ iterations: Int) throws -> Double {
            try world.barrier()
            let start = clock.now
            for _ in 0..<iterations { try reduce() }
            return try world.allreduce((clock.now - start).seconds, op: .max) / Double(iterations)
        }
        _ = try batch(2)  // warm-up: connections, page faults
        let once = try batch(3)
        let iterations = max(1, min(10_000, Int(batchSeconds / max(once, 1e-9))))
        var times = [Double]()
        for _ in 0..<repeats { times.append(try batch(iterations)) }
        times.sort()
        return (times[times.count / 2], iterations)
    }
}

extension AllreduceBench {
    /// `--algorithm`: one exchange algorithm, or all of them beside plain MPI_Allreduce.
    enum AlgorithmChoice: ExpressibleByArgument {
        case one(ExchangeAlgorithm), all

        init?(argument: String) {
            if argument == "all" { self = .all } else if let a = ExchangeAlgorithm(rawValue: argument) { self = .one(a) } else { return nil }
        }

        /// nil stands for plain MPI_Allreduce.
        var algorithms: [ExchangeAlgorithm?] {
            switch self {
            case let .one(algorithm): [algorithm]
            case .all: [nil] + ExchangeAlgorithm.allCases
            }
        }
    }

    /// Times each algorithm at each size; with plain MPI_Allreduce among them, each row also
    /// gives its speed-up over it.
    private func compareExchanges(_ algorithms: [ExchangeAlgorithm?]) throws {
        let world = try Communicator.world()
        let sizes = sequence(first: max(minBytes.bytes, 4)) { $0 * 2 }.prefix { $0 <= maxBytes.bytes }
        let table = BenchTable(
            bench: "allreduce", json: output.json, isPrinter: world.rank == 0, labelled: true,
            title: "gradient exchange of float32 sums, buckets of \(bucketMB) MB, \(world.size) ranks\(ranksPerNode.map { ", nodes of \($0) rank(s)" } ?? ""); medians of \(repeats) batches, each the slowest rank's",
            columns: [
                .init(header: "size(B)", key: "bytes"), .init(header: "time(us)", key: "time_us"),
                .init(header: "algbw(GB/s)", key: "algbw_gbps"), .init(header: "busbw(GB/s)", key: "busbw_gbps"),
                .init(header: "x MPI", key: "speedup_vs_mpi_allreduce"), .init(header: "wrong", key: "wrong"),
            ])
        for bytes in sizes {
            let plain = UnsafeMutableBufferPointer<Float>.allocate(capacity: bytes / 4)
            defer { plain.deallocate() }
            var plainSeconds: Double?
            for algorithm in algorithms {
                let message: UnsafeMutableBufferPointer<Float>, reduce: () throws -> Void
                if let algorithm {
                    let exchange = try GradientExchange(
                        algorithm: algorithm, workers: world, count: bytes / 4, bucketElements: max(1, Int(bucketMB * 1e6) / 4),
                        ranksPerNode: ranksPerNode)
                    message = exchange.gradients
                    reduce = { exchange.beginStep(); try exchange.finish() }
                } else {
                    message = plain
                    reduce = { try world.allreduce(plain, op: .sum) }
                }
                message.initialize(repeating: Float(world.rank + 1))
                try reduce()
                let expected = Float(world.size * (world.size + 1) / 2)
                let wrong = try world.allreduce(Int64(message.lazy.filter { $0 != expected }.count), op: .sum)
                message.initialize(repeating: 0)
                let (seconds, _) = try timedBatches(world, reduce)
                if algorithm == nil { plainSeconds = seconds }
                let algbw = Double(bytes) / seconds / 1e9
                let name = algorithm?.rawValue ?? "MPI_Allreduce"
                table.row(
                    case: "\(name)-\(bytes)B",
                    values: [bytes, seconds * 1e6, algbw, algbw * 2 * Double(world.size - 1) / Double(world.size),
                             plainSeconds.map { $0 / seconds } ?? Double.nan, wrong],
                    value: algbw, unit: "GB/s")
            }
        }
    }
}

extension ReduceOp: ExpressibleByArgument {}
