import Cohorts
import Foundation
import XCTest

/// Where a cohort may be written (`CohortWriter.checkTarget`): a writer never deletes what it did
/// not make — a new path, an empty directory (which stays), or with `--overwrite` a directory
/// holding only a cohort.
final class CohortWriterTargetTests: XCTestCase {
    private var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-target-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    private func simulate(_ directory: URL, overwrite: Bool = false) throws {
        _ = try TissueSimulator(patients: 6, cancerTypes: 2, genes: 8, tilesPerPatient: 0, tileSize: 8, seed: 1)
            .write(to: directory, overwrite: overwrite)
    }

    private func assertRefused(_ directory: URL, overwrite: Bool = false, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try simulate(directory, overwrite: overwrite), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(message), "\(error)", file: file, line: line)
        }
    }

    func testNewPathAndEmptyDirectoryAreWrittenTheEmptyDirectoryStays() throws {
        try simulate(root.appendingPathComponent("new"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("new/cohort.json").path))
        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        let inode = try FileManager.default.attributesOfItem(atPath: empty.path)[.systemFileNumber] as? Int
        try simulate(empty)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: empty.path)[.systemFileNumber] as? Int, inode, "the same directory, filled")
        XCTAssertEqual(try CohortValidator(directory: empty).validate().map(\.description), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted(), ["empty", "new"], "no staging left beside")
    }

    func testTheUsersFilesAreNeverReplaced() throws {
        let project = root.appendingPathComponent("project")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: false)
        try "precious".write(to: project.appendingPathComponent("results.csv"), atomically: true, encoding: .utf8)
        assertRefused(project, "is not empty and holds no cohort (results.csv)")
        assertRefused(project, overwrite: true, "is not empty and holds no cohort (results.csv)")
        XCTAssertEqual(try String(contentsOf: project.appendingPathComponent("results.csv"), encoding: .utf8), "precious")

        let file = root.appendingPathComponent("a-file")
        try "mine".write(to: file, atomically: true, encoding: .utf8)
        assertRefused(file, overwrite: true, "is a file, not a directory")
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "mine")
    }

    func testACohortIsReplacedOnlyWithOverwriteAndOnlyWhenAlone() throws {
        let cohort = root.appendingPathComponent("cohort")
        try simulate(cohort)
        assertRefused(cohort, "already holds a cohort; pass --overwrite to replace it")
        try simulate(cohort, overwrite: true)
        try "notes".write(to: cohort.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        assertRefused(cohort, overwrite: true, "holds a cohort and other files (notes.txt)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: cohort.appendingPathComponent("notes.txt").path))
    }

    func testDuplicatePatientIDsAndGenesAreRefused() throws {
        let layout = CohortLayout(genes: ["A", "B", "A"], expressionKind: "counts", cancerTypes: ["T"], tileSize: nil, survival: false)
        XCTAssertThrowsError(try CohortWriter(directory: root.appendingPathComponent("genes"), source: "test", layout: layout)) { error in
            XCTAssertTrue("\(error)".contains("gene \"A\" appears twice"), "\(error)")
        }
        let writer = try CohortWriter(directory: root.appendingPathComponent("ids"), source: "test",
                                      layout: CohortLayout(genes: ["A"], expressionKind: "counts", cancerTypes: ["T"], tileSize: nil, survival: false))
        try writer.append(PatientRecord(id: "p1", cancerType: 0, expression: [1]))
        XCTAssertThrowsError(try writer.append(PatientRecord(id: "p1", cancerType: 0, expression: [2]))) { error in
            XCTAssertTrue("\(error)".contains("patient ID \"p1\" appears twice"), "\(error)")
        }
    }
}
