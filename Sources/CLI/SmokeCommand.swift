import ArgumentParser
import Distributed

/// The demo job until the training pipeline lands: checks every collective on every rank.
struct Smoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check MPI collectives end to end on every rank (run under launch/mpirun).",
        discussion: """
            Each rank reports its host and node-local rank; then all-reduce (sum, max, min,
            average; Float, Double, Int32, Int64; blocking and non-blocking; lengths 0, 1, 1001
            and --large), all-gather, reduce-scatter and byte gather/broadcast are compared with
            their closed forms. Exits 1 if any rank saw a wrong result.
            """)

    @Option(help: "Elements in the largest all-reduce checked.")
    var large: Int = 1 << 20

    func validate() throws {
        guard (0...(1 << 28)).contains(large) else { throw ValidationError("--large must be in 0…\(1 << 28) elements, got \(large)") }
    }

    func run() throws {
        let world = try Communicator.world()
        let node = try world.splitByNode()
        let host = try Communicator.processorName()
        let lines = try world.gatherBytes(
            Array("rank \(world.rank) of \(world.size) on \(host) (node-local rank \(node.rank) of \(node.size))".utf8),
            root: 0)
        lines?.forEach { print(String(decoding: $0, as: UTF8.self)) }

        let clock = ContinuousClock()
        let start = clock.now
        let report = try world.selfCheck(largeCount: large)
        let elapsed = clock.now - start
        let failures = try world.gatherBytes(Array(report.failures.joined(separator: "\n").utf8), root: 0)
        let failed = try world.allreduce(Int32(report.failures.count), op: .sum)
        if let failures {
            for (rank, text) in failures.enumerated() where !text.isEmpty {
                print("rank \(rank) FAILED:\n" + String(decoding: text, as: UTF8.self))
            }
            let verdict = failed == 0 ? "all passed" : "\(failed) FAILED"
            print("smoke: \(report.checks) collective checks on each of \(world.size) ranks: \(verdict) in \(Int(elapsed.seconds * 1000)) ms")
        }
        if failed > 0 { throw ExitCode.failure }
    }
}
