import ArgumentParser
import Cohorts
import Foundation

/// Options every importer shares: where the cohort goes and how it is cut into shards.
struct CohortOutputOptions: ParsableArguments {
    @Option(help: "Cohort directory to create (must not already hold a cohort unless --overwrite).")
    var out: String
    @Option(help: "Patients per HDF5 shard.")
    var patientsPerShard = 256
    @Flag(help: "Replace an existing cohort in --out (only once the new one is complete).")
    var overwrite = false

    func validate() throws {
        guard patientsPerShard >= 1 else { throw ValidationError("--patients-per-shard must be ≥ 1, got \(patientsPerShard)") }
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
            let cohort = try AnnDataImport.read(path: file, matrix: matrix, typeColumn: typeColumn, kind: kind, cancerType: cancerType)
            try output.write(cohort, source: invocation)
        }
    }
}

extension AnnDataImport.Matrix: ExpressibleByArgument {}
