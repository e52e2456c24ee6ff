import ArgumentParser
import Cohorts
import Foundation

/// `transcriptile data …`: make, check and describe cohorts (Docs/DataFormat.md).
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Make and check cohorts: HDF5 shards of RNA, tiles, survival and spots.",
        subcommands: [Simulate.self, Validate.self, Inspect.self, ImportExpression.self, ImportH5AD.self, TileSlides.self, ImportSpatial.self])
}

extension DataCommand {
    struct Simulate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a synthetic cohort whose RNA, tiles and survival share causes (with ground truth).",
            discussion: """
                Each patient gets cell-type fractions (tumour, lymphocyte, stroma, necrosis) drawn per \
                cancer type; bulk RNA counts follow a signature matrix times the fractions with \
                negative-binomial noise; tiles are H&E-like images whose nuclei follow tile-level \
                fractions around the patient's; survival follows a Cox model on the fractions with \
                censoring. The fractions are stored under /truth. The same seed gives the same bytes.
                  transcriptile data simulate --out demo-cohort --patients 200 --seed 1
                """)

        @Option(help: "Cohort directory to create: new or empty (or a cohort, with --overwrite).")
        var out: String
        @Option(help: "Number of patients.")
        var patients: Int
        @Option(help: "Tile edge in pixels.")
        var tileSize = 64
        @Option(help: "Random seed.")
        var seed: UInt64 = 0
        @Option(help: "Number of cancer types.")
        var cancerTypes = 3
        @Option(help: "Number of genes.")
        var genes = 1000
        @Option(help: "Tiles per patient.")
        var tilesPerPatient = 8
        @Option(help: "Patients per HDF5 shard.")
        var patientsPerShard = 256
        @Flag(help: "Also write one spatial spot (expression of the tile's own cells) per tile.")
        var spots = false
        @Flag(help: "Replace an existing cohort in --out.")
        var overwrite = false

        func validate() throws {
            for (name, value, minimum) in [("--patients", patients, 1), ("--tile-size", tileSize, 8), ("--cancer-types", cancerTypes, 1),
                                           ("--genes", genes, 8), ("--tiles-per-patient", tilesPerPatient, 0), ("--patients-per-shard", patientsPerShard, 1)]
            where value < minimum {
                throw ValidationError("\(name) must be ≥ \(minimum), got \(value)")
            }
        }

        func run() throws {
            let directory = URL(fileURLWithPath: out)
            try CohortWriter.checkTarget(directory, overwrite: overwrite)
            let simulator = TissueSimulator(patients: patients, cancerTypes: cancerTypes, genes: genes, tilesPerPatient: tilesPerPatient,
                                            tileSize: tileSize, spots: spots, seed: seed)
            let clock = ContinuousClock(), start = clock.now
            let manifest = try simulator.write(to: directory, patientsPerShard: patientsPerShard, overwrite: overwrite) { done in
                let seconds = (clock.now - start).seconds
                printError(String(format: "simulate: %d/%d patients, %.0f tiles/s", done, patients, Double(done * tilesPerPatient) / max(seconds, 1e-9)))
            }
            let seconds = (clock.now - start).seconds
            print("wrote \(out): \(manifest.patients) patients, \(manifest.tiles) tiles, \(genes) genes, \(manifest.shards.count) shard(s) in "
                + String(format: "%.1f s (%.0f tiles/s)", seconds, Double(manifest.tiles) / max(seconds, 1e-9)))
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a cohort against the format; list every problem with file, dataset and row.",
            discussion: "Exit status 0 when valid, 2 when any problem is found.")

        @Argument(help: "Cohort directory (holding cohort.json).")
        var directory: String

        func run() throws {
            let problems = try CohortValidator(directory: URL(fileURLWithPath: directory)).validate()
            guard problems.isEmpty else {
                for problem in problems { printError("invalid: \(problem)") }
                printError("\(directory): \(problems.count) problem(s)")
                throw ExitCode(2)
            }
            let manifest = try CohortManifest.load(from: URL(fileURLWithPath: directory))
            print("\(directory): valid (schema \(manifest.schemaVersion); \(manifest.patients) patients, \(manifest.tiles) tiles, \(manifest.genes) genes, \(manifest.shards.count) shard(s))")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarise a cohort (patients, genes, cancer types, survival, tiles) and write a contact sheet of tiles.",
            discussion: "  transcriptile data inspect demo-cohort --sheet demo-tiles.png")

        @Argument(help: "Cohort directory (holding cohort.json).")
        var directory: String
        @Option(help: "PNG contact sheet to write (default: DIR/contact-sheet.png; \"none\" to skip).")
        var sheet: String?
        @Option(help: "Tiles on the contact sheet (1…1024).")
        var tiles = 64

        func validate() throws {
            guard (1...1024).contains(tiles) else { throw ValidationError("--tiles must be in 1…1024, got \(tiles); use --sheet none for no contact sheet") }
        }

        func run() throws {
            let reader = try CohortReader(directory: URL(fileURLWithPath: directory))
            for line in try CohortSummary(reader: reader).lines { print(line) }
            let path = sheet ?? URL(fileURLWithPath: directory).appendingPathComponent("contact-sheet.png").path
            if path != "none", let image = try CohortSummary.contactSheet(reader, count: tiles) {
                try image.writePNG(to: path)
                print("contact sheet: \(path) (\(min(tiles, reader.tiles)) tiles)")
            }
        }
    }
}
