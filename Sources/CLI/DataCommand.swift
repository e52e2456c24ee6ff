import ArgumentParser
import Cohorts
import Foundation
import Plotting
import Terminal

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
        @Option(help: "Number of patients (1…1000000).")
        var patients: Int
        @Option(help: "Tile edge in pixels (8…1024).")
        var tileSize = 64
        @Option(help: "Random seed.")
        var seed: UInt64 = 0
        @Option(help: "Number of cancer types (1…64).")
        var cancerTypes = 3
        @Option(help: "Number of genes (8…100000).")
        var genes = 1000
        @Option(help: "Tiles per patient (0…10000).")
        var tilesPerPatient = 8
        @Option(help: "Patients per HDF5 shard.")
        var patientsPerShard = 256
        @Flag(help: "Also write one spatial spot (expression of the tile's own cells) per tile.")
        var spots = false
        @Flag(help: "Replace an existing cohort in --out.")
        var overwrite = false

        func validate() throws {
            try checkRanges([("--patients", patients, 1...1_000_000), ("--tile-size", tileSize, 8...1024), ("--cancer-types", cancerTypes, 1...64),
                             ("--genes", genes, 8...100_000), ("--tiles-per-patient", tilesPerPatient, 0...10_000),
                             ("--patients-per-shard", patientsPerShard, 1...Int.max)])
            guard cancerTypes <= patients else { throw ValidationError("--cancer-types (\(cancerTypes)) must not exceed --patients (\(patients)): every type needs a patient") }
        }

        func run() throws {
            let directory = URL(fileURLWithPath: out)
            try CohortWriter.checkTarget(directory, overwrite: overwrite)
            let simulator = TissueSimulator(patients: patients, cancerTypes: cancerTypes, genes: genes, tilesPerPatient: tilesPerPatient,
                                            tileSize: tileSize, spots: spots, seed: seed)
            let clock = ContinuousClock(), start = clock.now
            let manifest = try withProgress("simulating", total: patients, unit: "patients") { bar in
                try simulator.write(to: directory, patientsPerShard: patientsPerShard, overwrite: overwrite) { done, _ in
                    bar.update(done, detail: String(format: "%.0f tiles/s", Double(done * tilesPerPatient) / max((clock.now - start).seconds, 1e-9)))
                }
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
            try requireValidCohort(directory)
            let manifest = try CohortManifest.load(from: URL(fileURLWithPath: directory))
            print("\(directory): valid (schema \(manifest.schemaVersion); \(manifest.patients) patients, \(manifest.tiles) tiles, \(manifest.genes) genes, \(manifest.shards.count) shard(s))")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarise a cohort (patients, genes, cancer types, survival, tiles) and write a contact sheet of tiles.",
            discussion: """
                The cohort is validated first, as by `data validate` (exit status 2 if it is not valid).
                  transcriptile data inspect demo-cohort --sheet demo-tiles.png
                """)

        @Argument(help: "Cohort directory (holding cohort.json).")
        var directory: String
        @Option(help: "Contact sheet to write, as PNG and an SVG beside it (default: DIR/contact-sheet.png; \"none\" to skip).")
        var sheet: String?
        @Option(help: "Tiles on the contact sheet (1…1024).")
        var tiles = 64

        func validate() throws {
            if let sheet, sheet != "none" {
                guard sheet.hasSuffix(".png") else { throw ValidationError("--sheet names a .png file (its .svg goes beside it), got '\(sheet)'") }
                try OutputPath.checkFile(sheet, "--sheet")
            }
            guard (1...1024).contains(tiles) else { throw ValidationError("--tiles must be in 1…1024, got \(tiles); use --sheet none for no contact sheet") }
        }

        func run() throws {
            try requireValidCohort(directory)
            let reader = try CohortReader(directory: URL(fileURLWithPath: directory))
            for line in try CohortSummary(reader: reader).lines { print(line) }
            let path = sheet ?? URL(fileURLWithPath: directory).appendingPathComponent("contact-sheet.png").path
            guard path != "none", let size = reader.manifest.tileSize, reader.tiles > 0 else { return }
            // Tiles spread evenly over the cohort, each captioned with its patient and cancer type.
            let shown = min(tiles, reader.tiles)
            let ids = try reader.patientIDs(), types = try reader.cancerTypes(), names = try reader.layout().cancerTypes
            let owners = try reader.tilePatients()
            let cells = try (0..<shown).map { i -> ImageGrid.Tile in
                let tile = i * reader.tiles / shown, patient = owners[tile]
                let type = names.indices.contains(types[patient]) ? names[types[patient]] : "?"
                return ImageGrid.Tile(width: size, height: size, pixels: try reader.tile(tile), caption: "\(ids[patient]) · \(type)")
            }
            let title = "\(URL(fileURLWithPath: directory).lastPathComponent): \(shown) of \(reader.tiles) tiles"
            let files = try ImageGrid(title: title, tiles: cells, columns: 8, cellSize: Double(max(size, 128))).write(to: URL(fileURLWithPath: path))
            print("contact sheet: \(files.png.path) and \(files.svg.lastPathComponent) (\(shown) tiles)")
        }
    }
}

/// Validates the cohort in `directory` (`CohortValidator`): prints every problem as `data
/// validate` does and exits with status 2 if there is any. Commands that read a cohort they did
/// not write call this first, so that no bad count or index in it reaches them.
func requireValidCohort(_ directory: String) throws {
    let problems = try CohortValidator(directory: URL(fileURLWithPath: directory)).validate()
    guard problems.isEmpty else {
        for problem in problems { printError("invalid: \(problem)") }
        printError("\(directory): \(problems.count) problem(s)")
        throw ExitCode(2)
    }
}

/// Throws a usage error (exit status 2) for the first option whose value is outside its range.
func checkRanges(_ options: [(name: String, value: Int, range: ClosedRange<Int>)]) throws {
    for (name, value, range) in options where !range.contains(value) {
        let bounds = range.upperBound == .max ? "≥ \(range.lowerBound)" : "in \(range.lowerBound)…\(range.upperBound)"
        throw ValidationError("\(name) must be \(bounds), got \(value)")
    }
}
