import ArgumentParser
import Cohorts
import Foundation
import Terminal

/// Options every importer shares: where the cohort goes and how it is cut into shards.
struct CohortOutputOptions: ParsableArguments {
    @Option(help: "Cohort directory to create: new or empty (or a cohort, with --overwrite).")
    var out: String
    @Option(help: "Patients per HDF5 shard.")
    var patientsPerShard = 256
    @Flag(help: "Replace an existing cohort in --out (only once the new one is complete).")
    var overwrite = false

    func validate() throws {
        try checkRanges([("--patients-per-shard", patientsPerShard, 1...Int.max)])
    }

    /// Every importer calls this first, before reading anything: a writer never replaces what
    /// is not a cohort (`CohortWriter.checkTarget`).
    func checkTarget() throws {
        try CohortWriter.checkTarget(URL(fileURLWithPath: out), overwrite: overwrite)
    }

    /// Prints the importer's notes, writes the cohort under a progress bar, then prints a
    /// one-line result and the importer's summary of what was used as what.
    func write(_ cohort: ImportedCohort, source: String) throws {
        for note in cohort.notes { printError("note: \(note)") }
        let manifest = try withProgress("writing", total: cohort.patients.count, unit: "patients") { bar in
            try cohort.write(to: URL(fileURLWithPath: out), source: source, patientsPerShard: patientsPerShard, overwrite: overwrite,
                             progress: { done, _ in bar.update(done) })
        }
        print("wrote \(out): \(manifest.patients) patients, \(manifest.genes) genes (\(manifest.expressionKind)), "
            + "\(manifest.cancerTypes.count) cancer type(s)\(manifest.survival ? ", survival" : "")"
            + "\(manifest.tiles > 0 ? ", \(manifest.tiles) tiles" : "")\(manifest.spots > 0 ? ", \(manifest.spots) spots" : ""), "
            + "\(manifest.shards.count) shard(s)")
        for line in cohort.summary { print("  " + line) }
    }
}

/// Runs `body` under one progress bar on stderr (live on a terminal, periodic lines in a log) and
/// finishes it; if `body` throws, a live bar's line is ended first so the error starts a line.
func withProgress<T>(_ label: String, total: Int, unit: String, _ body: (ProgressBar) throws -> T) throws -> T {
    let bar = ProgressBar(label, total: total, unit: unit)
    do {
        let result = try body(bar)
        bar.finish()
        return result
    } catch {
        if bar.style == .live { bar.finish() }
        throw error
    }
}

/// The names in a comma-separated option value, trimmed, without empty ones.
func nameList(_ value: String) -> [String] {
    value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// Throws a usage error unless `kind` is an expression kind.
func checkKind(_ kind: String) throws {
    guard CohortLayout.expressionKinds.contains(kind) else {
        throw ValidationError("--kind must be one of \(CohortLayout.expressionKinds.joined(separator: ", ")), got \"\(kind)\"")
    }
}

/// The help of every importer's --kind.
let kindHelp = ArgumentHelp(
    "What the values are: counts (whole numbers ≥ 0), tpm or fpkm (≥ 0), log (log2/log1p values, ≤ 64) or scaled (any finite value).",
    discussion: "log and scaled are stored and normalised alike (no log taken, then a z-score per gene); they differ only in what the importer accepts.")

/// The command line as typed, for a cohort's `source` field.
var invocation: String { (["transcriptile"] + CommandLine.arguments.dropFirst()).joined(separator: " ") }

extension DataCommand {
    struct ImportExpression: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-expression",
            abstract: "Import bulk RNA: GDC STAR-counts files, a samples × genes CSV/TSV, or an ARFF file.",
            discussion: """
                Exactly one source:
                  GDC/TCGA STAR counts (one TSV per sample) with the GDC sample sheet and clinical TSV:
                    transcriptile data import-expression --out brca --star downloads/ \\
                      --sample-sheet gdc_sample_sheet.tsv --clinical clinical.tsv --kind tpm
                  A samples × genes table (one row per sample) with optional labels (one per row):
                    transcriptile data import-expression --out khan --kind scaled \\
                      --table Khan_xtrain.csv --labels Khan_ytrain.csv \\
                      --table Khan_xtest.csv --labels Khan_ytest.csv
                  ARFF, naming the survival and cancer-type attributes:
                    transcriptile data import-expression --out gse7390 --kind log \\
                      --arff GSE7390.arff --survival-time t.tdm --event e.tdm --type-column er
                In an ARFF file or a table, numeric columns are genes except clinical ones, which are \
                left out and listed: names such as age, size, grade, stage, er, time, days, event, \
                status, survival (Docs/DataFormat.md has the list), nominal and text columns, and \
                whole-number columns with 2–5 levels among continuous genes. --keep brings a column \
                back, --exclude leaves out more. Every import ends with a summary of what was used as what.
                """)

        @OptionGroup var output: CohortOutputOptions
        @Option(help: kindHelp)
        var kind = "counts"

        @Option(parsing: .singleValue, help: "GDC STAR gene-counts file, or a directory searched for *.tsv (repeatable); --kind counts, tpm or fpkm reads column unstranded, tpm_unstranded or fpkm_unstranded.")
        var star: [String] = []
        @Option(help: "GDC sample sheet mapping STAR file names to cases (required with --star).")
        var sampleSheet: String?
        @Option(help: "GDC clinical TSV (survival from vital_status / days_to_death / days_to_last_follow_up).")
        var clinical: String?
        @Option(help: "Column giving the cancer type: of the --clinical TSV (default primary_diagnosis), an ARFF attribute, or a --table column.")
        var typeColumn: String?

        @Option(parsing: .singleValue, help: "Samples × genes CSV/TSV (repeatable; same genes in each).")
        var table: [String] = []
        @Option(parsing: .singleValue, help: "Labels file for the preceding --table (one cancer type per row).")
        var labels: [String] = []

        @Option(help: "ARFF file: numeric attributes become genes, except clinical ones (left out and listed).")
        var arff: String?
        @Option(help: "ARFF attribute or table column holding the survival time in days (finite, ≥ 0); with --event.")
        var survivalTime: String?
        @Option(help: "ARFF attribute or table column holding the event: 1, yes, true, dead, deceased, died, event = event; 0, no, false, alive, living, censored = censored.")
        var event: String?
        @Option(help: "Comma-separated ARFF attributes or table columns that are not genes, beyond those detected as clinical.")
        var exclude = ""
        @Option(help: "Comma-separated ARFF attributes or table columns detected as clinical that are genes after all.")
        var keep = ""
        @Option(help: "Cancer-type name when the source has no type column.")
        var cancerType = "unknown"

        func validate() throws {
            let sources = [!star.isEmpty, !table.isEmpty, arff != nil].filter { $0 }.count
            guard sources == 1 else { throw ValidationError("give exactly one source: --star, --table or --arff") }
            try checkKind(kind)
            if !star.isEmpty {
                if sampleSheet == nil { throw ValidationError("--star needs --sample-sheet (the gdc_sample_sheet*.tsv of the download)") }
                if GDCStarImport.valueColumns[kind] == nil { throw ValidationError("--star reads --kind counts, tpm or fpkm (STAR files hold no \(kind) values)") }
                if survivalTime != nil || event != nil || !exclude.isEmpty || !keep.isEmpty {
                    throw ValidationError("--survival-time, --event, --exclude and --keep apply to --arff and --table; with --star, survival comes from --clinical")
                }
                if typeColumn != nil && clinical == nil { throw ValidationError("--type-column with --star names a column of --clinical: give --clinical too") }
            }
            if (survivalTime == nil) != (event == nil) { throw ValidationError("give both --survival-time and --event, or neither") }
            if !labels.isEmpty && labels.count != table.count { throw ValidationError("give one --labels per --table (\(table.count) tables, \(labels.count) labels files)") }
            if !labels.isEmpty && typeColumn != nil { throw ValidationError("give the cancer type by --labels or by --type-column, not both") }
        }

        func run() throws {
            try output.checkTarget()
            let cohort: ImportedCohort
            let choice = ColumnChoice(survivalTime: survivalTime, event: event, cancerType: typeColumn, exclude: nameList(exclude), keep: nameList(keep))
            if let sampleSheet, !star.isEmpty {
                let files = try starFiles()
                cohort = try withProgress("reading", total: files.count, unit: "files") { bar in
                    try GDCStarImport.read(files: files, sampleSheet: sampleSheet, clinical: clinical, kind: kind,
                                           typeColumn: typeColumn ?? "primary_diagnosis", progress: { done, _ in bar.update(done) })
                }
            } else if let arff {
                cohort = try ARFFImport.read(path: arff, kind: kind, choice: choice, cancerType: cancerType)
            } else {
                let pairs = table.enumerated().map { (values: $0.element, labels: labels.isEmpty ? nil : labels[$0.offset]) }
                cohort = try ExpressionTableImport.read(tables: pairs, kind: kind, choice: choice, cancerType: cancerType)
            }
            try output.write(cohort, source: invocation)
        }

        /// The STAR files named, with directories expanded to their *.tsv files (sorted).
        private func starFiles() throws -> [String] {
            try star.flatMap { path -> [String] in
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CohortError(file: path, "does not exist") }
                guard isDirectory.boolValue else { return [path] }
                let found = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                    .filter { $0.hasSuffix(".tsv") && !$0.hasPrefix("gdc_sample_sheet") && !$0.hasSuffix("clinical.tsv") }.sorted()
                guard !found.isEmpty else { throw CohortError(file: path, "holds no *.tsv STAR files") }
                return found.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
            }
        }
    }
}

extension DataCommand {
    struct ImportH5AD: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-h5ad",
            abstract: "Import an AnnData .h5ad file: one row of /rna/expression per observation.",
            discussion: """
                Reads dense or sparse (CSR/CSC) matrices, X or raw/X, and categorical obs columns, in \
                the current AnnData layout and the legacy one written by scanpy ≤ 1.4.
                  transcriptile data import-h5ad pbmc.h5ad --out pbmc --matrix raw \\
                    --kind log --type-column bulk_labels
                """)

        @Argument(help: "The .h5ad file.")
        var file: String
        @OptionGroup var output: CohortOutputOptions
        @Option(help: "Which matrix: X or raw (raw/X).")
        var matrix: AnnDataImport.Matrix = .x
        @Option(help: kindHelp)
        var kind = "counts"
        @Option(help: "obs column giving each observation's type (stored as the cancer type).")
        var typeColumn: String?
        @Option(help: "Type name when no --type-column is given.")
        var cancerType = "unknown"

        func validate() throws { try checkKind(kind) }

        func run() throws {
            try output.checkTarget()
            let cohort = try AnnDataImport.read(path: file, matrix: matrix, typeColumn: typeColumn, kind: kind, cancerType: cancerType)
            try output.write(cohort, source: invocation)
        }
    }
}

extension AnnDataImport.Matrix: ExpressibleByArgument {}

extension DataCommand {
    struct TileSlides: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tile-slides",
            abstract: "Cut tissue tiles from whole-slide images (OpenSlide) or folders of PNG/JPEG pictures.",
            discussion: """
                The tissue mask is Otsu's threshold on the saturation of a thumbnail; grid tiles of \
                --tile-size pixels at --magnification are kept where the mask covers at least \
                --min-tissue of the tile, at most --max-tiles per slide (a seeded even subsample).
                Slides are attached to patients by a mapping TSV with columns `slide` and `patient` \
                (optional `cancer_type`); with --png-folders, each sub-folder is a patient and each \
                picture in it a slide. With --rna, the patients come from an RNA cohort (same IDs) \
                and the new cohort holds both; patients without slides keep no tiles. The --rna cohort is \
                validated first, as by `data validate` (exit status 2 if it is not valid).
                  transcriptile data tile-slides --out brca-wsi --mapping slides.tsv \\
                    --slides svs/ --rna brca --tile-size 224 --magnification 10
                  transcriptile data tile-slides --out tiles --png-folders patients/ \\
                    --tile-size 64 --magnification 20
                """)

        @OptionGroup var output: CohortOutputOptions
        @Option(help: "TSV mapping slide files to patients: columns slide, patient [, cancer_type].")
        var mapping: String?
        @Option(help: "Directory the mapping's slide paths are relative to (default: the mapping file's).")
        var slides: String?
        @Option(help: "Directory with one sub-folder of PNG/JPEG pictures per patient (instead of --mapping).")
        var pngFolders: String?
        @Option(help: "RNA cohort whose patients the slides belong to (matched by patient ID).")
        var rna: String?
        @Option(help: "Tile edge in pixels (8…4096).")
        var tileSize = 224
        @Option(help: "Magnification to tile at (1…400, e.g. 20, 10, 5); slides must be scanned at this or higher.")
        var magnification: Double = 20
        @Option(help: "Scan magnification for files that do not record one (pictures; 1…400; default: --magnification).")
        var sourceMagnification: Double?
        @Option(help: "Minimum tissue fraction of a kept tile.")
        var minTissue = 0.5
        @Option(help: "Most tiles kept per slide.")
        var maxTiles = 1000
        @Option(help: "Seed of the per-slide subsample.")
        var seed: UInt64 = 0

        func validate() throws {
            guard (mapping == nil) != (pngFolders == nil) else { throw ValidationError("give exactly one of --mapping and --png-folders") }
            try checkRanges([("--tile-size", tileSize, 8...4096), ("--max-tiles", maxTiles, 1...Int.max)])
            for (name, value) in [("--magnification", magnification), ("--source-magnification", sourceMagnification ?? magnification)] {
                guard (1...400).contains(value) else { throw ValidationError("\(name) must be in 1…400, got \(value)") }
            }
            guard (0...1).contains(minTissue) else { throw ValidationError("--min-tissue must be in 0…1, got \(minTissue)") }
        }

        /// (patient, cancer type or nil, slide path) for every slide, in input order.
        private func slideList() throws -> [(patient: String, type: String?, path: String)] {
            if let pngFolders {
                let patients = try directoryEntries(pngFolders).filter { isDirectory("\(pngFolders)/\($0)") }
                guard !patients.isEmpty else { throw CohortError(file: pngFolders, "has no patient sub-folders") }
                return try patients.flatMap { patient in
                    try directoryEntries("\(pngFolders)/\(patient)").filter(PictureSource.handles).map { (patient, nil, "\(pngFolders)/\(patient)/\($0)") }
                }
            }
            let table = try DelimitedTable(path: mapping!)
            let slide = try table.column("slide"), patient = try table.column("patient")
            let type = table.header.firstIndex(of: "cancer_type")
            let base = slides ?? URL(fileURLWithPath: mapping!).deletingLastPathComponent().path
            return try table.rows.indices.map { row in
                try table.checkWidth(row)
                let fields = table.rows[row]
                let path = fields[slide].hasPrefix("/") ? fields[slide] : "\(base)/\(fields[slide])"
                return (fields[patient], type.map { fields[$0] }, path)
            }
        }

        /// Whether `path` is a directory.
        private func isDirectory(_ path: String) -> Bool {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        }

        /// The names in a directory, sorted; a CohortError naming it if it is not a readable directory.
        private func directoryEntries(_ path: String) throws -> [String] {
            guard isDirectory(path), let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
                throw CohortError(file: path, "is not a readable directory: --png-folders needs a folder with one sub-folder of pictures per patient")
            }
            return names.sorted()
        }

        func run() throws {
            try output.checkTarget()
            if let rna { try requireValidCohort(rna) }
            let list = try slideList()
            let tiler = SlideTiler(tileSize: tileSize, magnification: magnification, minTissue: minTissue, maxTiles: maxTiles, seed: seed)
            var tilesOf = [String: [TileRecord]]()
            try withProgress("tiling", total: list.count, unit: "slides") { bar in
                var tiles = 0
                for (index, item) in list.enumerated() {
                    let name = URL(fileURLWithPath: item.path).lastPathComponent
                    let source: SlideSource = PictureSource.handles(item.path)
                        ? try PictureSource(path: item.path, objectivePower: sourceMagnification ?? magnification)
                        : try OpenSlideSource(path: item.path)
                    let result = try tiler.tiles(of: source, progress: { done, kept in bar.update(index, detail: "\(name): tile \(done)/\(kept)") })
                    tilesOf[item.patient, default: []] += result.tiles
                    tiles += result.tiles.count
                    bar.note(String(format: "tile-slides: %d/%d ", index + 1, list.count) + name
                        + String(format: ": %d×%d px at %g×, tissue %.0f%% (saturation > %d), kept %d of %d tiles", source.width, source.height,
                                 source.objectivePower ?? 0, 100 * result.tissueFraction, result.threshold, result.tiles.count, result.candidates))
                    bar.update(index + 1, detail: "\(tiles) tiles")
                }
            }
            let slidesOf = Dictionary(grouping: list, by: \.patient).mapValues(\.count)
            let tiling = "tiles: \(tilesOf.values.map(\.count).reduce(0, +)) of \(tileSize) px at \(magnification)× from \(list.count) slide(s) "
                + "(tissue ≥ \(minTissue) of a tile, at most \(maxTiles) per slide); \(slidesOf.count) patient(s) with slides"
            var cohort: ImportedCohort
            if let rna {
                let reader = try CohortReader(directory: URL(fileURLWithPath: rna))
                var layout = try reader.layout()
                layout.tileSize = tileSize
                var patients = try reader.patientRecords(withTiles: false)
                let known = Set(patients.map(\.id))
                for i in patients.indices { patients[i].tiles = tilesOf[patients[i].id] ?? [] }
                cohort = ImportedCohort(layout: layout, patients: patients, summary: [
                    tiling, "patients: \(patients.count) of the RNA cohort \(rna) (matched by ID), with its genes (\(layout.genes.count), \(layout.expressionKind)), "
                        + "cancer types and \(layout.survival ? "survival" : "no survival")",
                ])
                let unknown = Set(list.map(\.patient)).subtracting(known).sorted()
                if !unknown.isEmpty { cohort.notes.append("\(unknown.count) slide patient(s) not in \(rna), skipped: \(unknown.joined(separator: ", "))") }
                let without = patients.filter(\.tiles.isEmpty).count
                if without > 0 { cohort.notes.append("\(without) of \(patients.count) RNA patients have no tiles") }
            } else {
                var order = [String](), types = [String: String]()
                for item in list where types[item.patient] == nil {
                    order.append(item.patient)
                    types[item.patient] = item.type ?? "unknown"
                }
                let (names, codes) = categoriesInOrder(order.map { types[$0] ?? "unknown" })
                let layout = CohortLayout(genes: [], expressionKind: "counts", cancerTypes: names, tileSize: tileSize, survival: false)
                cohort = ImportedCohort(layout: layout, patients: order.enumerated().map {
                    PatientRecord(id: $0.element, cancerType: codes[$0.offset], expression: [], tiles: tilesOf[$0.element] ?? [])
                }, summary: [tiling, "patients: \(order.count) from \(pngFolders == nil ? "the mapping's patient column" : "the picture folders")",
                             "cancer type: \(pngFolders == nil ? "the mapping's cancer_type column, where present" : "unknown") (\(names.joined(separator: ", ")))",
                             "genes: none (a tile-only cohort; --rna adds RNA)"])
            }
            try output.write(cohort, source: invocation)
        }
    }
}

extension DataCommand {
    struct ImportSpatial: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-spatial",
            abstract: "Import spatial transcriptomics sections (ST-Net layout): spot counts, spot pixels, H&E image.",
            discussion: """
                Give --patient, --counts, --spots and --image once per section, in the same order. \
                Each section becomes a patient (bulk expression = sum of its spots); each spot goes \
                to /spots with the window of --window pixels around it as its tile.
                  transcriptile data import-spatial --out st --window 224 --tile-size 224 \\
                    --patient BC23209_C1 --counts BC23209_C1.tsv \\
                    --spots spots_BC23209_C1.csv --image HE_BC23209_C1.jpg
                """)

        @OptionGroup var output: CohortOutputOptions
        @Option(parsing: .singleValue, help: "Section (patient) ID (repeatable).")
        var patient: [String] = []
        @Option(parsing: .singleValue, help: "Counts TSV: rows \"XxY\" spots, columns genes (repeatable).")
        var counts: [String] = []
        @Option(parsing: .singleValue, help: "Spots CSV: spot name, X and Y pixel centre (repeatable).")
        var spots: [String] = []
        @Option(parsing: .singleValue, help: "Section H&E image, JPEG or PNG (repeatable).")
        var image: [String] = []
        @Option(parsing: .singleValue, help: "Cancer type of each section (repeatable; default unknown).")
        var cancerType: [String] = []
        @Option(help: "Window around each spot centre, in image pixels (8…4096).")
        var window = 224
        @Option(help: "Stored tile edge (8…4096; the window is resized to it).")
        var tileSize: Int?

        func validate() throws {
            guard !patient.isEmpty else { throw ValidationError("give at least one section (--patient, --counts, --spots, --image)") }
            guard [counts.count, spots.count, image.count].allSatisfy({ $0 == patient.count }) else {
                throw ValidationError("give --counts, --spots and --image once per --patient (\(patient.count) patients, \(counts.count) counts, \(spots.count) spots, \(image.count) images)")
            }
            guard cancerType.isEmpty || cancerType.count == patient.count else { throw ValidationError("give --cancer-type once per --patient, or not at all") }
            try checkRanges([("--window", window, 8...4096), ("--tile-size", tileSize ?? window, 8...4096)])
        }

        func run() throws {
            try output.checkTarget()
            let sections = patient.indices.map {
                SpatialImport.Section(patient: patient[$0], cancerType: cancerType.isEmpty ? "unknown" : cancerType[$0],
                                      counts: counts[$0], spots: spots[$0], image: image[$0])
            }
            let cohort = try withProgress("reading", total: sections.count, unit: "sections") { bar in
                try SpatialImport.read(sections: sections, window: window, tileSize: tileSize ?? window, progress: { done, _ in bar.update(done) })
            }
            try output.write(cohort, source: invocation)
        }
    }
}
