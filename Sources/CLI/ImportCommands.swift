import ArgumentParser
import Cohorts
import Foundation

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

    /// Writes the cohort, prints the importer's notes and a one-line summary.
    func write(_ cohort: ImportedCohort, source: String) throws {
        for note in cohort.notes { printError("note: \(note)") }
        let manifest = try cohort.write(to: URL(fileURLWithPath: out), source: source, patientsPerShard: patientsPerShard, overwrite: overwrite)
        print("wrote \(out): \(manifest.patients) patients, \(manifest.genes) genes (\(manifest.expressionKind)), "
            + "\(manifest.cancerTypes.count) cancer type(s)\(manifest.survival ? ", survival" : "")"
            + "\(manifest.tiles > 0 ? ", \(manifest.tiles) tiles" : "")\(manifest.spots > 0 ? ", \(manifest.spots) spots" : ""), "
            + "\(manifest.shards.count) shard(s)")
    }
}

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
                      --table Khan_xtrain.csv --labels Khan_ytrain.csv --table Khan_xtest.csv --labels Khan_ytest.csv
                  ARFF, naming the survival and cancer-type attributes and the non-gene covariates:
                    transcriptile data import-expression --out gse7390 --kind log --arff GSE7390.arff \\
                      --time-attribute t.tdm --event-attribute e.tdm --exclude age,size --cancer-type BRCA
                """)

        @OptionGroup var output: CohortOutputOptions
        @Option(help: "What the values are: counts, tpm, fpkm (STAR columns unstranded / tpm_unstranded / fpkm_unstranded), log or scaled.")
        var kind = "counts"

        @Option(parsing: .singleValue, help: "GDC STAR gene-counts file, or a directory searched for *.tsv (repeatable).")
        var star: [String] = []
        @Option(help: "GDC sample sheet mapping STAR file names to cases (required with --star).")
        var sampleSheet: String?
        @Option(help: "GDC clinical TSV (survival from vital_status / days_to_death / days_to_last_follow_up).")
        var clinical: String?
        @Option(help: "Clinical column giving the cancer type.")
        var typeColumn = "primary_diagnosis"

        @Option(parsing: .singleValue, help: "Samples × genes CSV/TSV (repeatable; same genes in each).")
        var table: [String] = []
        @Option(parsing: .singleValue, help: "Labels file for the preceding --table (one cancer type per row).")
        var labels: [String] = []

        @Option(help: "ARFF file: numeric attributes become genes.")
        var arff: String?
        @Option(help: "ARFF attribute holding survival time in days.")
        var timeAttribute: String?
        @Option(help: "ARFF attribute holding the event (1) or censoring (0).")
        var eventAttribute: String?
        @Option(help: "ARFF attribute holding the cancer type.")
        var typeAttribute: String?
        @Option(help: "Comma-separated ARFF numeric attributes that are not genes (e.g. age,size).")
        var exclude = ""
        @Option(help: "Cancer-type name when the source has no type column.")
        var cancerType = "unknown"

        func validate() throws {
            let sources = [!star.isEmpty, !table.isEmpty, arff != nil].filter { $0 }.count
            guard sources == 1 else { throw ValidationError("give exactly one source: --star, --table or --arff") }
            if !star.isEmpty && sampleSheet == nil { throw ValidationError("--star needs --sample-sheet (the gdc_sample_sheet*.tsv of the download)") }
            if !labels.isEmpty && labels.count != table.count { throw ValidationError("give one --labels per --table (\(table.count) tables, \(labels.count) labels files)") }
        }

        func run() throws {
            try output.checkTarget()
            let cohort: ImportedCohort
            if !star.isEmpty {
                cohort = try GDCStarImport.read(files: try starFiles(), sampleSheet: sampleSheet!, clinical: clinical, kind: kind, typeColumn: typeColumn)
            } else if !table.isEmpty {
                let pairs = table.enumerated().map { (values: $0.element, labels: labels.isEmpty ? nil : labels[$0.offset]) }
                cohort = try ExpressionTableImport.read(tables: pairs, kind: kind)
            } else {
                let excluded = Set(exclude.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                cohort = try ARFFImport.read(path: arff!, timeAttribute: timeAttribute, eventAttribute: eventAttribute,
                                             typeAttribute: typeAttribute, exclude: excluded, cancerType: cancerType, kind: kind)
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
                  transcriptile data import-h5ad pbmc.h5ad --out pbmc --matrix raw --kind log --type-column bulk_labels
                """)

        @Argument(help: "The .h5ad file.")
        var file: String
        @OptionGroup var output: CohortOutputOptions
        @Option(help: "Which matrix: X or raw (raw/X).")
        var matrix: AnnDataImport.Matrix = .x
        @Option(help: "What the values are: counts, tpm, fpkm, log or scaled.")
        var kind = "counts"
        @Option(help: "obs column giving each observation's type (stored as the cancer type).")
        var typeColumn: String?
        @Option(help: "Type name when no --type-column is given.")
        var cancerType = "unknown"

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
                  transcriptile data tile-slides --out brca-wsi --mapping slides.tsv --slides svs/ \\
                    --rna brca --tile-size 224 --magnification 10
                  transcriptile data tile-slides --out tiles --png-folders patients/ --tile-size 64 --magnification 20
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
            let clock = ContinuousClock(), start = clock.now
            for (index, item) in list.enumerated() {
                let source: SlideSource = PictureSource.handles(item.path)
                    ? try PictureSource(path: item.path, objectivePower: sourceMagnification ?? magnification)
                    : try OpenSlideSource(path: item.path)
                let result = try tiler.tiles(of: source)
                tilesOf[item.patient, default: []] += result.tiles
                printError(String(format: "tile-slides: %d/%d %@: %d×%d px at %g×, tissue %.0f%% (saturation > %d), kept %d of %d tiles (%.1f s)",
                                  index + 1, list.count, URL(fileURLWithPath: item.path).lastPathComponent, source.width, source.height,
                                  source.objectivePower ?? 0, 100 * result.tissueFraction, result.threshold, result.tiles.count,
                                  result.candidates, (clock.now - start).seconds))
            }
            var cohort: ImportedCohort
            if let rna {
                let reader = try CohortReader(directory: URL(fileURLWithPath: rna))
                var layout = try reader.layout()
                layout.tileSize = tileSize
                var patients = try reader.patientRecords(withTiles: false)
                let known = Set(patients.map(\.id))
                for i in patients.indices { patients[i].tiles = tilesOf[patients[i].id] ?? [] }
                cohort = ImportedCohort(layout: layout, patients: patients)
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
                let (names, codes) = categoriesInOrder(order.map { types[$0]! })
                let layout = CohortLayout(genes: [], expressionKind: "counts", cancerTypes: names, tileSize: tileSize, survival: false)
                cohort = ImportedCohort(layout: layout, patients: order.enumerated().map {
                    PatientRecord(id: $0.element, cancerType: codes[$0.offset], expression: [], tiles: tilesOf[$0.element] ?? [])
                })
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
                    --patient BC23209_C1 --counts BC23209_C1.tsv --spots spots_BC23209_C1.csv --image HE_BC23209_C1.jpg
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
            try output.write(try SpatialImport.read(sections: sections, window: window, tileSize: tileSize ?? window), source: invocation)
        }
    }
}
