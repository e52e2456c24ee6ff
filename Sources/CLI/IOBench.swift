import ArgumentParser
import Cohorts
import Foundation

/// `transcriptile bench io`: random tile reads and RNA rows through the cohort reader and the
/// prefetching loader.
struct IOBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "io",
        abstract: "Random tile reads/s and RNA rows/s through the cohort reader and loader.",
        discussion: """
            Without --cohort, simulates a temporary cohort (512 patients × 16 tiles of 64×64, 5000 \
            genes) and removes it afterwards. Reference (h5py on this machine, 64×64×3 tiles): \
            ~160 µs per random tile cold, 6–16 µs warm.
            """)

    @Option(help: "Cohort directory to read (default: a simulated temporary one).")
    var cohort: String?
    @Option(help: "Random reads per measurement.")
    var reads = 2000
    @Option(help: "Repeats (the median is reported).")
    var repeats = 3
    @OptionGroup var output: BenchOutputOptions

    func validate() throws {
        guard reads > 0 else { throw ValidationError("--reads must be ≥ 1, got \(reads)") }
        guard repeats > 0 else { throw ValidationError("--repeats must be ≥ 1, got \(repeats)") }
    }

    func run() throws {
        var temporary: URL?
        defer { if let temporary { try? FileManager.default.removeItem(at: temporary) } }
        let directory: URL
        if let cohort {
            directory = URL(fileURLWithPath: cohort)
        } else {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("transcriptile-io-\(getpid())")
            temporary = directory
            _ = try TissueSimulator(patients: 512, genes: 5000, tilesPerPatient: 16, tileSize: 64, seed: 1).write(to: directory)
        }
        let table = BenchTable(bench: "io", json: output.json, isPrinter: true, labelled: true,
                               title: "\(directory.lastPathComponent), medians of \(repeats)",
                               columns: [.init(header: "µs/item", key: "microseconds"), .init(header: "items/s", key: "per_second")])
        func measure(_ name: String, items: Int, _ body: () throws -> Void) rethrows {
            let median = try medianSeconds(repeats: repeats, body)
            table.row(case: name, values: [median / Double(items) * 1e6, Double(items) / median], value: Double(items) / median, unit: "items/s")
        }
        let manifest = try CohortManifest.load(from: directory)
        var generator = SystemRandomNumberGenerator()
        if manifest.tiles > 0 {
            let picks = (0..<reads).map { _ in Int.random(in: 0..<manifest.tiles, using: &generator) }
            try measure("random tile, fresh reader", items: reads) {
                let reader = try CohortReader(directory: directory)  // new HDF5 handles: no HDF5 chunk cache
                for tile in picks { _ = try reader.tile(tile) }
            }
            let reader = try CohortReader(directory: directory)
            try measure("random tile, open reader", items: reads) { for tile in picks { _ = try reader.tile(tile) } }
            let sampler = EpochSampler(samples: manifest.tiles, globalBatch: 64, seed: 1)
            try measure("loader tiles (batch 64, prefetch)", items: 64 * 20) {
                let loader = CohortLoader.tiles(directory: directory, subset: Array(0..<manifest.tiles), sampler: sampler, rank: 0, workers: 1, steps: 20)
                while try loader.next() != nil {}
            }
        }
        if manifest.genes > 0 {
            let reader = try CohortReader(directory: directory)
            let picks = (0..<reads).map { _ in Int.random(in: 0..<manifest.patients, using: &generator) }
            try measure("random RNA row (\(manifest.genes) genes)", items: reads) { for p in picks { _ = try reader.expression([p]) } }
            let normalizer = try ExpressionNormalizer(reader: reader, patients: Array(0..<manifest.patients))
            let sampler = EpochSampler(samples: manifest.patients, globalBatch: 128, seed: 1)
            try measure("loader RNA rows (batch 128, normalised)", items: 128 * 10) {
                let loader = CohortLoader.patients(directory: directory, subset: Array(0..<manifest.patients), sampler: sampler,
                                                   normalizer: normalizer, rank: 0, workers: 1, steps: 10)
                while try loader.next() != nil {}
            }
        }
    }
}
