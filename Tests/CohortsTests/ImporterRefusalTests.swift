import Cohorts
import Foundation
import XCTest

/// Inputs that importers must refuse with the place named (file, dataset, row), not trap on:
/// columns shorter than their table, positions outside the image, implausible magnifications,
/// short rows, impossible survival times.
extension ImporterTests {
    /// Writes `files` (name → contents) into a fresh folder next to `out` and returns its path.
    private func folder(_ files: [String: String]) throws -> String {
        let folder = out.path + "-input"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: "\(folder)/\(name)", atomically: true, encoding: .utf8) }
        return folder
    }

    func testAnnDataStringColumnMustCoverEveryCell() throws {
        let path = try folder([:]) + "/short.h5ad"
        do {  // the file closes (and flushes) at the end of this scope
            let file = try HDF5File.create(path)
            try file.writeStrings("/obs/_index", ["c1", "c2", "c3"])
            try file.writeStrings("/obs/type", ["T", "N"])
            try file.writeStrings("/var/_index", ["g1", "g2"])
            try file.write("/X", [Float](repeating: 1, count: 6), shape: [3, 2])
        }
        XCTAssertEqual(try AnnDataImport.read(path: path, matrix: .x, typeColumn: nil, kind: "counts", cancerType: "-").patients.count, 3)
        assertThrows("short.h5ad: /obs/type: 2 values for 3 observations: the column and the obs index disagree (re-export the file)") {
            try AnnDataImport.read(path: path, matrix: .x, typeColumn: "type", kind: "counts", cancerType: "-")
        }
    }

    func testSparseMatrixWhosePointersFallIsRefused() throws {
        assertThrows("csr_unsorted_indptr.h5ad: /X/indptr row 1: pointer 2 (1) is below pointer 1 (3): pointers must rise from 0 to the number of values; the sparse matrix is corrupt") {
            try AnnDataImport.read(path: "\(data)/csr_unsorted_indptr.h5ad", matrix: .x, typeColumn: nil, kind: "counts", cancerType: "-")
        }
    }

    func testSpatialSpotOutsideTheImage() throws {
        let spatial = "\(data)/spatial"
        let spots = try String(contentsOfFile: "\(spatial)/spots_section_ihc.csv", encoding: .utf8)
            .replacingOccurrences(of: "1x1,77.3,70.4", with: "1x1,1e30,70.4")
        let input = try folder(["spots.csv": spots])
        let image = try RGBImage(contentsOf: "\(spatial)/section_ihc.jpg")
        let section = SpatialImport.Section(patient: "IHC1", cancerType: "COAD", counts: "\(spatial)/section_ihc.tsv",
                                            spots: "\(input)/spots.csv", image: "\(spatial)/section_ihc.jpg")
        assertThrows("spots.csv:2: spot 1x1 at (1e+30, 70.4) lies outside the \(image.width)×\(image.height) image \(spatial)/section_ihc.jpg: "
            + "positions must be pixel coordinates inside the section's image") {
            try SpatialImport.read(sections: [section], window: 64, tileSize: 32)
        }
    }

    func testSlideMagnificationsMustBePlausible() throws {
        let unknown = try PictureSource(path: "\(data)/ihc.png", objectivePower: .infinity)
        assertThrows("ihc.png: records objective power inf×: a scan magnification must be finite and > 0 (give pictures --source-magnification; re-export a slide whose metadata is damaged)") {
            try SlideTiler(tileSize: 64, magnification: 20).tiles(of: unknown)
        }
        let picture = try PictureSource(path: "\(data)/ihc.png", objectivePower: 20)
        assertThrows("ihc.png: a 64-px tile at 1e-20× spans 1.28e+23 px of this 20.0× scan: choose a magnification between 1× and 20.0×") {
            try SlideTiler(tileSize: 64, magnification: 1e-20).tiles(of: picture)
        }
    }

    func testSTARRowShorterThanItsHeader() throws {
        let input = try folder(["sheet.tsv": "File Name\tCase ID\nstar.tsv\tC1\n",
                                "star.tsv": "gene_name\tgene_id\tunstranded\nA\tG1\t5\nB\n"])
        assertThrows("star.tsv:3: has 1 fields, the header 3 (a truncated line?)") {
            try GDCStarImport.read(files: ["\(input)/star.tsv"], sampleSheet: "\(input)/sheet.tsv", clinical: nil, kind: "counts", typeColumn: "project_id")
        }
    }

    func testSurvivalTimesMustBeFiniteAndNonNegative() throws {
        let arff = try String(contentsOfFile: "\(data)/breast_cancer_GSE7390-metastasis.arff", encoding: .utf8)
            .replacingOccurrences(of: "57,3,poorly differentiated,negative,723,1,", with: "57,3,poorly differentiated,negative,-723,1,")
        let input = try folder(["negative.arff": arff,
                                "clinical.tsv": "case_submitter_id\tvital_status\tdays_to_death\tdays_to_last_follow_up\tproject_id\nC1\tAlive\t'--\tinf\tTCGA-X\n"])
        assertThrows("negative.arff:86: attribute t.tdm (column 5) of patient negative-0001: survival time -723.0 days: must be finite and ≥ 0 (correct the source)") {
            try ARFFImport.read(path: "\(input)/negative.arff", kind: "log", choice: ColumnChoice(survivalTime: "t.tdm", event: "e.tdm"), cancerType: "BRCA")
        }
        assertThrows("clinical.tsv:2: case C1: survival time inf days: must be finite and ≥ 0 (correct the source)") {
            try GDCStarImport.read(files: [], sampleSheet: "\(data)/gdc/gdc_sample_sheet.tsv", clinical: "\(input)/clinical.tsv",
                                   kind: "counts", typeColumn: "project_id")
        }
    }
}
