import ArgumentParser

/// `transcriptile bench …`: performance figures, as a human table or JSON lines.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure performance (run multi-rank benches under launch/mpirun).",
        discussion: "Every bench prints a table; with --json one JSON object per line instead.",
        subcommands: [AllreduceBench.self, CoreBench.self, IOBench.self, CheckpointBench.self, VAEBench.self])
}

/// Options every bench takes.
struct BenchOutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object per measurement instead of a table.")
    var json = false
}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}

/// A byte count written as 4, 64K, 16M or 1G (powers of 1024).
struct ByteCount: ExpressibleByArgument, CustomStringConvertible {
    var bytes: Int

    init(_ bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var text = argument.uppercased()
        if text.hasSuffix("B") { text.removeLast() }
        let scale = text.last.flatMap { units[$0] } ?? 1
        if scale != 1 { text.removeLast() }
        guard let value = Int(text), value >= 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        bytes = product
    }

    var description: String {
        for (suffix, scale) in [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return "\(bytes)"
    }
}
