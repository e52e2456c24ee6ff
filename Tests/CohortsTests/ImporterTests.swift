import Cohorts
import Foundation
import TestSupport
import XCTest

/// Every importer on real files (Tests/Fixtures/data, provenance in its README): the cohort it
/// writes is valid and holds the source's values; broken inputs get a message naming the place.
final class ImporterTests: XCTestCase {
    let data = ProcessRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/data").path
    var out: URL!

    override func setUpWithError() throws {
        out = FileManager.default.temporaryDirectory.appendingPathComponent("import-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: out) }

    /// Writes the cohort, checks it validates, and returns a reader on it.
    func written(_ cohort: ImportedCohort) throws -> CohortReader {
        try cohort.write(to: out, source: "test", patientsPerShard: 50)
        XCTAssertEqual(try CohortValidator(directory: out).validate().map(\.description), [])
        return try CohortReader(directory: out)
    }

    func assertThrows(_ expected: String, _ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".hasSuffix(expected), "\(error)", file: file, line: line)
        }
    }

    func testKhanTablesWithLabels() throws {
        let cohort = try ExpressionTableImport.read(tables: [("\(data)/Khan_xtrain.csv", "\(data)/Khan_ytrain.csv"),
                                                             ("\(data)/Khan_xtest.csv", "\(data)/Khan_ytest.csv")], kind: "scaled")
        let reader = try written(cohort)
        XCTAssertEqual(reader.patients, 83)
        XCTAssertEqual(reader.manifest.genes, 2308)
        XCTAssertEqual(Set(reader.manifest.cancerTypes), ["1", "2", "3", "4"])
        XCTAssertEqual(try reader.expression([0]).prefix(3), [0.7733437, -2.438405, -0.4825622])
        XCTAssertEqual(try reader.patientIDs()[63], "Khan_xtest-0001")
        assertThrows("Khan_xtrain.csv:2: value -2.438405 in column 2 (V2) of patient Khan_xtrain-0001 is negative, impossible for counts: "
            + "pass --kind log or --kind scaled if the values are transformed; if V2 is not a gene, leave it out with --exclude V2") {
            try ExpressionTableImport.read(tables: [("\(data)/Khan_xtrain.csv", nil)], kind: "counts")
        }
        assertThrows("Khan_ytest.csv: has 20 labels for the 63 samples of \(data)/Khan_xtrain.csv") {
            try ExpressionTableImport.read(tables: [("\(data)/Khan_xtrain.csv", "\(data)/Khan_ytest.csv")], kind: "scaled")
        }
    }

    func testARFFWithSurvival() throws {
        let path = "\(data)/breast_cancer_GSE7390-metastasis.arff"
        let cohort = try ARFFImport.read(path: path, kind: "log", choice: ColumnChoice(survivalTime: "t.tdm", event: "e.tdm", cancerType: "er",
                                                                                      exclude: ["age", "size"]))
        let reader = try written(cohort)
        XCTAssertEqual(reader.patients, 198)
        XCTAssertEqual(reader.manifest.genes, 76)
        XCTAssertEqual(reader.manifest.cancerTypes, ["negative", "positive"])
        let survival = try XCTUnwrap(try reader.survival())
        XCTAssertEqual(survival.events.filter { $0 }.count, 51)
        XCTAssertEqual(Array(survival.days.prefix(2)), [723, 6591])
        XCTAssertEqual(try reader.genes().first, "X219340_s_at")
        XCTAssertEqual(try reader.expression([0]).first!, 7.01410950575358, accuracy: 1e-6)

        let broken = out.path + ".arff"
        defer { try? FileManager.default.removeItem(atPath: broken) }
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "57,3,poorly differentiated,negative,723,1,7.01410950575358", with: "57,3,poorly differentiated,negative,723,1,?")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        let stem = URL(fileURLWithPath: broken).deletingPathExtension().lastPathComponent
        assertThrows(".arff:86: attribute X219340_s_at (column 7) of patient \(stem)-0001: \"?\" is not a number (missing values are not allowed "
            + "in genes or survival): fill it, or leave a non-gene attribute out with --exclude X219340_s_at") {
            try ARFFImport.read(path: broken, kind: "log", choice: ColumnChoice(survivalTime: "t.tdm", event: "e.tdm"), cancerType: "BRCA")
        }
    }

    func testGDCStarCountsWithSampleSheetAndClinical() throws {
        let gdc = "\(data)/gdc"
        let files = try FileManager.default.contentsOfDirectory(atPath: gdc).filter { $0.hasSuffix("star_gene_counts.tsv") }.sorted().map { "\(gdc)/\($0)" }
        let cohort = try GDCStarImport.read(files: files, sampleSheet: "\(gdc)/gdc_sample_sheet.tsv", clinical: "\(gdc)/clinical.tsv",
                                            kind: "tpm", typeColumn: "project_id")
        XCTAssertEqual(cohort.notes.count, 1, "the normal sample of TCGA-A7-A0CE is skipped: \(cohort.notes)")
        let reader = try written(cohort)
        XCTAssertEqual(try reader.patientIDs(), ["TCGA-A7-A0CE", "TCGA-05-4244"])
        XCTAssertEqual(reader.manifest.cancerTypes, ["TCGA-BRCA", "TCGA-LUAD"])
        XCTAssertEqual(reader.manifest.genes, 20, "the four N_* rows are not genes")
        let survival = try XCTUnwrap(try reader.survival())
        XCTAssertEqual(survival.days, [1203, 434])
        XCTAssertEqual(survival.events, [false, true])
        // The primary tumour's TPM (file 7c9e…), not the normal's.
        let tumour = try DelimitedTable(path: files.first { $0.contains("7c9e2d10") }!)
        XCTAssertEqual(try reader.expression([0]).first, try tumour.number(4, try tumour.column("tpm_unstranded")))

        assertThrows("gdc_sample_sheet.tsv: does not list Khan_ytest.csv: pass the sample sheet that came with these files") {
            try GDCStarImport.read(files: ["\(data)/Khan_ytest.csv"], sampleSheet: "\(gdc)/gdc_sample_sheet.tsv", clinical: nil, kind: "counts", typeColumn: "project_id")
        }
    }

    func testAnnDataLegacyAndCurrentLayoutsAgree() throws {
        let legacy = try AnnDataImport.read(path: "\(data)/10x_pbmc68k_reduced.h5ad", matrix: .raw, typeColumn: "bulk_labels", kind: "log", cancerType: "-")
        let current = try AnnDataImport.read(path: "\(data)/pbmc_modern.h5ad", matrix: .raw, typeColumn: "bulk_labels", kind: "log", cancerType: "-")
        XCTAssertEqual(legacy.patients.count, 700)
        XCTAssertEqual(current.patients.count, 120)
        XCTAssertEqual(legacy.layout.genes, current.layout.genes)
        for i in [0, 7, 119] {
            XCTAssertEqual(legacy.patients[i].id, current.patients[i].id)
            XCTAssertEqual(legacy.patients[i].expression, current.patients[i].expression, "CSR raw/X, row \(i)")
            XCTAssertEqual(legacy.layout.cancerTypes[legacy.patients[i].cancerType], current.layout.cancerTypes[current.patients[i].cancerType])
        }
        XCTAssertEqual(legacy.patients.filter { $0.expression.contains { $0 != 0 } }.count, 700)
        let dense = try AnnDataImport.read(path: "\(data)/pbmc_modern.h5ad", matrix: .x, typeColumn: nil, kind: "scaled", cancerType: "PBMC")
        XCTAssertEqual(try written(dense).patients, 120)
        assertThrows("10x_pbmc68k_reduced.h5ad: /obs: has no column \"donor\" (columns: index, bulk_labels, n_genes, percent_mito, n_counts, S_score, G2M_score, phase, louvain)") {
            try AnnDataImport.read(path: "\(data)/10x_pbmc68k_reduced.h5ad", matrix: .x, typeColumn: "donor", kind: "scaled", cancerType: "-")
        }
    }

    func testSlideTilingKeepsTissueAndIsDeterministic() throws {
        let slide = try OpenSlideSource(path: "\(data)/cmu_small_region.svs")
        XCTAssertEqual([slide.width, slide.height], [2220, 2967])
        XCTAssertEqual(slide.objectivePower, 20)
        let tiler = SlideTiler(tileSize: 128, magnification: 10, minTissue: 0.5, maxTiles: 20, seed: 1)
        let result = try tiler.tiles(of: slide)
        XCTAssertEqual(result.candidates, 8 * 11, "256-px footprints on a 2220×2967 slide")
        XCTAssertEqual(result.tiles.count, 20, "capped")
        for tile in result.tiles {
            XCTAssertEqual([tile.image.width, tile.image.height], [128, 128])
            let mean = Double(tile.image.pixels.reduce(0) { $0 + Int($1) }) / Double(tile.image.pixels.count)
            XCTAssertLessThan(mean, 225, "a kept tile is tissue, not white background (tile at \(tile.x), \(tile.y))")
        }
        XCTAssertEqual(try tiler.tiles(of: slide).tiles.map(\.image), result.tiles.map(\.image))
        // A blank slide region: no tissue.
        let (mask, _) = SlideTiler.tissueMask(RGBImage(width: 32, height: 32, fill: 245))
        XCTAssertFalse(mask.contains(true))
        assertThrows("cmu_small_region.svs: scanned at 20.0×: cannot tile at 40.0× (choose ≤ 20.0×)") {
            try SlideTiler(tileSize: 64, magnification: 40).tiles(of: slide)
        }
        assertThrows("Khan_ytest.csv: OpenSlide does not recognise this file as a slide (supported: SVS, NDPI, SCN, MRXS, TIFF, …)") {
            try OpenSlideSource(path: "\(data)/Khan_ytest.csv")
        }
    }

    func testPicturesAndSpatialSections() throws {
        let picture = try PictureSource(path: "\(data)/ihc.png", objectivePower: 20)
        let tiles = try SlideTiler(tileSize: 64, magnification: 20).tiles(of: picture).tiles
        XCTAssertGreaterThan(tiles.count, 16)
        XCTAssertEqual(tiles[0].image, picture.picture.crop(x: tiles[0].x, y: tiles[0].y, width: 64, height: 64), "at the scan magnification a tile is a crop")

        let spatial = "\(data)/spatial"
        let section = SpatialImport.Section(patient: "IHC1", cancerType: "COAD", counts: "\(spatial)/section_ihc.tsv",
                                            spots: "\(spatial)/spots_section_ihc.csv", image: "\(spatial)/section_ihc.jpg")
        let cohort = try SpatialImport.read(sections: [section], window: 64, tileSize: 32)
        XCTAssertEqual(cohort.notes, ["IHC1: 1 spot(s) of \(spatial)/section_ihc.tsv have no position in \(spatial)/spots_section_ihc.csv, skipped"])
        let patient = cohort.patients[0]
        XCTAssertEqual(patient.tiles.count, 36)
        let spotSum = patient.tiles.reduce([Float](repeating: 0, count: 8)) { sum, tile in zip(sum, tile.spot!.expression).map(+) }
        XCTAssertEqual(patient.expression, spotSum, "bulk = sum of spots")
        let reader = try written(cohort)
        XCTAssertEqual(reader.manifest.spots, 36)
        XCTAssertEqual(try reader.tile(0).count, 32 * 32 * 3)
    }

    func testFailedImportLeavesTheExistingCohortIntact() throws {
        let first = try ExpressionTableImport.read(tables: [("\(data)/Khan_xtest.csv", "\(data)/Khan_ytest.csv")], kind: "scaled")
        try first.write(to: out, source: "first")
        let manifest = try Data(contentsOf: out.appendingPathComponent("cohort.json"))
        var broken = first
        broken.patients[5].expression.removeLast()
        XCTAssertThrowsError(try broken.write(to: out, source: "second", patientsPerShard: 2, overwrite: true)) { error in
            XCTAssertTrue("\(error)".hasSuffix("patient Khan_xtest-0006 has 2307 expression values for 2308 genes"), "\(error)")
        }
        XCTAssertThrowsError(try first.write(to: out, source: "third")) { error in
            XCTAssertTrue("\(error)".hasSuffix("already holds a cohort; pass --overwrite to replace it"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("cohort.json")), manifest)
        XCTAssertEqual(try CohortValidator(directory: out).validate().map(\.description), [])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.deletingLastPathComponent().path).filter { $0.contains(out.lastPathComponent) && $0 != out.lastPathComponent }
        XCTAssertEqual(leftovers, [], "no staging directory left behind")
    }
}
