import Cohorts
import Foundation
import XCTest

/// Simulated cohorts are valid and deterministic; each kind of broken cohort gets a precise
/// problem naming file, dataset and row. Everything is real HDF5 on disk.
final class CohortValidationTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func simulate(patients: Int = 12, seed: UInt64 = 7, into target: URL? = nil) throws -> CohortManifest {
        try TissueSimulator(patients: patients, cancerTypes: 3, genes: 40, tilesPerPatient: 2, tileSize: 16, spots: true, seed: seed)
            .write(to: target ?? directory, patientsPerShard: 5)
    }

    private func problems() throws -> [String] {
        try CohortValidator(directory: directory).validate().map(\.description)
    }

    func testSimulatedCohortIsValidStructuredAndDeterministic() throws {
        let manifest = try simulate()
        XCTAssertEqual(manifest.shards.map(\.patients), [5, 5, 2])
        XCTAssertEqual(manifest.tiles, 24)
        XCTAssertEqual(try problems(), [])

        let shard = try HDF5File.open(directory.appendingPathComponent("shard-00000.h5").path)
        XCTAssertEqual(try shard.info(CohortFormat.tilePixels), DatasetInfo(shape: [10, 16, 16, 3], typeName: "uint8"))
        XCTAssertEqual(try shard.stringAttribute(CohortFormat.cancerType, CohortFormat.namesAttribute), ["TYPE0", "TYPE1", "TYPE2"])
        let fractions = try shard.read(CohortFormat.truthPatientFractions, as: Float.self)
        for p in 0..<5 { XCTAssertEqual(fractions[(4 * p)..<(4 * p + 4)].reduce(0, +), 1, accuracy: 1e-5) }
        XCTAssertTrue(try shard.read(CohortFormat.expression, as: Float.self).allSatisfy { $0 >= 0 && $0 == $0.rounded() }, "counts")

        let again = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: again) }
        _ = try simulate(into: again)
        let other = try HDF5File.open(again.appendingPathComponent("shard-00000.h5").path)
        XCTAssertEqual(try shard.read(CohortFormat.expression, as: Float.self), try other.read(CohortFormat.expression, as: Float.self))
        XCTAssertEqual(try shard.read(CohortFormat.tilePixels, as: UInt8.self), try other.read(CohortFormat.tilePixels, as: UInt8.self))
    }

    func testRowReadsAndTypeChecks() throws {
        _ = try simulate()
        let shard = try HDF5File.open(directory.appendingPathComponent("shard-00000.h5").path)
        let all = try shard.read(CohortFormat.expression, as: Float.self)
        XCTAssertEqual(try shard.readRows(CohortFormat.expression, 2..<4, as: Float.self), Array(all[80..<160]))
        XCTAssertThrowsError(try shard.read(CohortFormat.expression, as: Int32.self)) { error in
            XCTAssertTrue("\(error)".hasSuffix("/rna/expression: stored as float32, expected int32"), "\(error)")
        }
        XCTAssertThrowsError(try shard.readRows(CohortFormat.expression, 4..<9, as: Float.self))
    }

    /// Rewrites shard 0 with `edit` applied to a freshly simulated copy of its contents.
    private func rewriteFirstShard(genes: [String]? = nil, _ edit: (inout CohortShard) -> Void) throws {
        let simulator = TissueSimulator(patients: 12, cancerTypes: 3, genes: 40, tilesPerPatient: 2, tileSize: 16, spots: true, seed: 7)
        var shard = simulator.shard(0..<5)
        edit(&shard)
        var layout = simulator.layout
        layout.genes = genes ?? layout.genes
        try shard.write(to: directory.appendingPathComponent("shard-00000.h5").path, layout: layout)
    }

    func testNaNNegativeSurvivalBadEventsAndOrphanTiles() throws {
        _ = try simulate()
        try rewriteFirstShard { shard in
            shard.expression[3 * 40 + 5] = .nan
            shard.survivalDays[2] = -4
            shard.events[4] = 2
            shard.tilePatients[7] = 9
        }
        let found = try problems()
        let file = directory.appendingPathComponent("shard-00000.h5").path
        XCTAssertTrue(found.contains("\(file): /rna/expression row 3: nan at gene 5: expression must be finite"), "\(found)")
        XCTAssertTrue(found.contains("\(file): /patients/survival_days row 2: survival time -4.0 days: must be finite and ≥ 0"), "\(found)")
        XCTAssertTrue(found.contains("\(file): /patients/event row 4: event 2: must be 0 (censored) or 1 (event)"), "\(found)")
        XCTAssertTrue(found.contains("\(file): /tiles/patient row 7: tile points at patient 9; this shard has patients 0..<5"), "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix(file) && $0.contains("cohort.json records") && $0.hasSuffix("the file changed after it was written (copy it again from the source, or re-import)") }, "\(found)")
    }

    /// Edits `cohort.json` as JSON (its numbers are user input: nothing protects them).
    private func editManifest(_ edit: (inout [String: Any]) -> Void) throws {
        let url = directory.appendingPathComponent(CohortFormat.manifestName)
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    private func editShard(_ index: Int, _ key: String, _ value: Int) throws {
        try editManifest { json in
            var shards = json["shards"] as! [[String: Any]]
            shards[index][key] = value
            json["shards"] = shards
        }
    }

    func testShardNumberingAndCountsInManifest() throws {
        _ = try simulate()
        let manifest = directory.appendingPathComponent(CohortFormat.manifestName).path
        try editShard(0, "first_patient", 1)
        try editShard(2, "tiles", -4)
        let found = try problems()
        XCTAssertTrue(found.contains("\(manifest): shard shard-00000.h5: first_patient 1, expected 0 (the patients of the shards before it): "
            + "shards must number patients contiguously (re-import or re-simulate the cohort)"), "\(found)")
        XCTAssertTrue(found.contains("\(manifest): shard shard-00002.h5: tiles -4: counts must be ≥ 0 (re-import or re-simulate the cohort)"), "\(found)")
        XCTAssertThrowsError(try CohortReader(directory: directory)) { error in
            XCTAssertTrue("\(error)".hasSuffix("first_patient 1, expected 0 (the patients of the shards before it): shards must number patients contiguously (re-import or re-simulate the cohort)"), "\(error)")
        }
    }

    func testReaderRefusesIndicesAndWidthsOutsideTheCohort() throws {
        _ = try simulate()
        let reader = try CohortReader(directory: directory)
        XCTAssertThrowsError(try reader.expression([3, 12])) { error in
            XCTAssertTrue("\(error)".hasSuffix("cohort.json: patient 12 is outside 0..<12: the index does not belong to this cohort (was it re-made with fewer patients?)"), "\(error)")
        }
        XCTAssertThrowsError(try reader.tile(-1)) { error in
            XCTAssertTrue("\(error)".hasSuffix("cohort.json: tile -1 is outside 0..<24: the index does not belong to this cohort (was it re-made with fewer tiles?)"), "\(error)")
        }
        try editManifest { $0["genes"] = 41; $0["tile_size"] = 20 }
        let edited = try CohortReader(directory: directory), shard = directory.appendingPathComponent("shard-00000.h5").path
        XCTAssertThrowsError(try edited.expression([0])) { error in
            XCTAssertEqual("\(error)", "\(shard): /rna/expression row 0: rows of 40 values, cohort.json says 41 genes: run `transcriptile data validate` on the cohort")
        }
        XCTAssertThrowsError(try edited.tile(1)) { error in
            XCTAssertEqual("\(error)", "\(shard): /tiles/pixels row 1: 768 bytes per tile, cohort.json's tile_size 20 needs 1200: run `transcriptile data validate` on the cohort")
        }
    }

    func testGeneMismatchAcrossShards() throws {
        _ = try simulate()
        var genes = TissueSimulator(patients: 1, genes: 40).geneNames
        genes[17] = "TP53"
        try rewriteFirstShard(genes: genes) { _ in }
        let found = try problems()
        XCTAssertTrue(found.contains { $0.contains("shard-00001.h5: /rna/genes row 17: gene list differs from shard-00000.h5") }, "\(found)")
    }

    func testMissingDatasetWrongDtypeTruncatedFileAndManifest() throws {
        _ = try simulate()
        // Shard 1: survival stored as float64, events missing.
        let path1 = directory.appendingPathComponent("shard-00001.h5").path
        do {  // files close (and flush) at the end of this scope
            let original = try HDF5File.open(path1)
            let ids = try original.readStrings(CohortFormat.patientID), genes = try original.readStrings(CohortFormat.genes)
            let expression = try original.read(CohortFormat.expression, as: Float.self)
            let broken = try HDF5File.create(path1 + ".new")
            try broken.writeStrings(CohortFormat.patientID, ids)
            try broken.write(CohortFormat.cancerType, [Int32](repeating: 0, count: 5), shape: [5])
            try broken.write(CohortFormat.survivalDays, [Double](repeating: 100, count: 5), shape: [5])
            try broken.writeStrings(CohortFormat.genes, genes)
            try broken.write(CohortFormat.expression, expression, shape: [5, 40])
        }
        try FileManager.default.removeItem(atPath: path1)
        try FileManager.default.moveItem(atPath: path1 + ".new", toPath: path1)
        // Shard 2: truncated to half its bytes.
        let path2 = directory.appendingPathComponent("shard-00002.h5").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path2))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path2))

        let found = try problems()
        XCTAssertTrue(found.contains("\(path1): /patients/survival_days: stored as float64, expected float32"), "\(found)")
        XCTAssertTrue(found.contains("\(path1): /patients/event: missing dataset (required by schema 2)"), "\(found)")
        XCTAssertTrue(found.contains("\(path2): not a readable HDF5 file (truncated or corrupt?)"), "\(found)")

        try Data("{\"schema_version\": 1,".utf8).write(to: directory.appendingPathComponent("cohort.json"))
        XCTAssertThrowsError(try CohortValidator(directory: directory).validate()) { error in
            XCTAssertTrue("\(error)".contains("cohort.json: not a valid cohort manifest"), "\(error)")
        }
        try Data("{\"schema_version\": 1}".utf8).write(to: directory.appendingPathComponent("cohort.json"))
        XCTAssertThrowsError(try CohortValidator(directory: directory).validate()) { error in
            XCTAssertTrue("\(error)".hasSuffix("cohort.json: schema version 1; this build reads version 2 — re-import or re-simulate the cohort with this version"), "\(error)")
        }
    }
}
