import Foundation
import TestSupport
import XCTest

/// `transcriptile data …` as a user runs it: simulate → validate → inspect, importers from the
/// command line, and bad input exiting 2 with the place named.
final class DataCommandTests: XCTestCase {
    private let transcriptile = ProcessRunner.product("transcriptile")
    private let data = ProcessRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/data").path
    private var work: URL!

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
        work = FileManager.default.temporaryDirectory.appendingPathComponent("data-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let work { try? FileManager.default.removeItem(at: work) } }

    private func run(_ arguments: [String]) throws -> ProcessRunner.Result { try ProcessRunner.run(transcriptile, arguments) }

    func testSimulateValidateInspect() throws {
        let cohort = work.appendingPathComponent("demo").path
        let simulate = try run(["data", "simulate", "--out", cohort, "--patients", "30", "--genes", "64", "--tile-size", "32", "--seed", "3", "--patients-per-shard", "16"])
        XCTAssertEqual(simulate.status, 0, simulate.output)
        XCTAssertTrue(simulate.stdout.contains("wrote \(cohort): 30 patients, 240 tiles, 64 genes, 2 shard(s)"), simulate.output)
        let validate = try run(["data", "validate", cohort])
        XCTAssertEqual(validate.status, 0, validate.output)
        let sheet = work.appendingPathComponent("sheet.png").path
        let inspect = try run(["data", "inspect", cohort, "--sheet", sheet, "--tiles", "16"])
        XCTAssertEqual(inspect.status, 0, inspect.output)
        XCTAssertTrue(inspect.stdout.contains("cancer types: TYPE0 10, TYPE1 10, TYPE2 10"), inspect.output)
        XCTAssertTrue(inspect.stdout.contains("tiles: 240 of 32×32 px; per patient min 8, median 8, max 8"), inspect.output)
        XCTAssertTrue(try Data(contentsOf: URL(fileURLWithPath: sheet)).starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG")

        let again = try run(["data", "simulate", "--out", cohort, "--patients", "5"])
        XCTAssertEqual(again.status, 2, again.output)
        XCTAssertTrue(again.stderr.contains("already holds a cohort; pass --overwrite to replace it"), again.output)
    }

    func testImportersFromTheCommandLine() throws {
        let khan = work.appendingPathComponent("khan").path
        let result = try run(["data", "import-expression", "--out", khan, "--kind", "scaled",
                              "--table", "\(data)/Khan_xtrain.csv", "--labels", "\(data)/Khan_ytrain.csv"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("63 patients, 2308 genes (scaled), 4 cancer type(s)"), result.output)

        let tiles = work.appendingPathComponent("tiles").path
        let mapping = work.appendingPathComponent("slides.tsv").path
        try "slide\tpatient\tcancer_type\ncmu_small_region.svs\tCMU-1\tSKIN\n".write(toFile: mapping, atomically: true, encoding: .utf8)
        let tiled = try run(["data", "tile-slides", "--out", tiles, "--mapping", mapping, "--slides", data, "--tile-size", "64",
                             "--magnification", "5", "--max-tiles", "12"])
        XCTAssertEqual(tiled.status, 0, tiled.output)
        XCTAssertTrue(tiled.stdout.contains("1 patients, 0 genes (counts), 1 cancer type(s), 12 tiles"), tiled.output)
        XCTAssertTrue(tiled.stderr.contains("cmu_small_region.svs: 2220×2967 px at 20×"), tiled.output)
        XCTAssertEqual(try run(["data", "validate", tiles]).status, 0)
    }

    func testBadInputExitsTwoNamingThePlace() throws {
        let h5ad = try run(["data", "import-h5ad", "\(data)/10x_pbmc68k_reduced.h5ad", "--out", work.appendingPathComponent("x").path, "--kind", "counts"])
        XCTAssertEqual(h5ad.status, 2, h5ad.output)
        XCTAssertTrue(h5ad.stderr.contains("10x_pbmc68k_reduced.h5ad: /X row 0: value"), h5ad.output)
        XCTAssertTrue(h5ad.stderr.contains("is negative, impossible for counts: pass --kind log or --kind scaled"), h5ad.output)

        let usage = try run(["data", "import-expression", "--out", work.path, "--table", "a.csv", "--arff", "b.arff"])
        XCTAssertEqual(usage.status, 2, usage.output)
        XCTAssertTrue(usage.stderr.contains("give exactly one source: --star, --table or --arff"), usage.output)

        let missing = try run(["data", "validate", work.path])
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.stderr.contains("cohort.json: missing: is \(work.path) a cohort directory?"), missing.output)
    }

    func testOptionRangesAreCheckedBeforeAnyWork() throws {
        let cohort = work.appendingPathComponent("sim").path
        for (option, value, message) in [("--tile-size", "1025", "--tile-size must be in 8…1024, got 1025"),
                                         ("--genes", "100001", "--genes must be in 8…100000, got 100001"),
                                         ("--tiles-per-patient", "10001", "--tiles-per-patient must be in 0…10000, got 10001"),
                                         ("--cancer-types", "65", "--cancer-types must be in 1…64, got 65"),
                                         ("--patients", "1000001", "--patients must be in 1…1000000, got 1000001")] {
            var arguments = ["data", "simulate", "--out", cohort, "--patients", "1", "--tiles-per-patient", "0", "--genes", "8"]
            arguments += [option, value]
            let result = try ProcessRunner.run(transcriptile, arguments, timeout: 60)
            XCTAssertEqual(result.status, 2, result.output)
            XCTAssertTrue(result.stderr.contains(message), result.output)
        }
        let out = work.appendingPathComponent("out").path
        for (arguments, message) in [
            (["tile-slides", "--png-folders", data, "--magnification", "0.5"], "--magnification must be in 1…400, got 0.5"),
            (["tile-slides", "--png-folders", data, "--source-magnification", "inf"], "--source-magnification must be in 1…400, got inf"),
            (["import-spatial", "--patient", "P", "--counts", "c.tsv", "--spots", "s.csv", "--image", "i.jpg", "--window", "4097"],
             "--window must be in 8…4096, got 4097"),
        ] {
            let result = try ProcessRunner.run(transcriptile, ["data"] + arguments + ["--out", out], timeout: 60)
            XCTAssertEqual(result.status, 2, result.output)
            XCTAssertTrue(result.stderr.contains(message), result.output)
        }
        let file = "\(data)/ihc.png"
        let notFolder = try ProcessRunner.run(transcriptile, ["data", "tile-slides", "--png-folders", file, "--out", out], timeout: 60)
        XCTAssertEqual(notFolder.status, 2, notFolder.output)
        XCTAssertTrue(notFolder.stderr.contains("transcriptile: bad input: \(file): is not a readable directory: --png-folders needs a folder with one sub-folder of pictures per patient"), notFolder.output)
    }

    func testCommandsReadingACohortValidateItFirst() throws {
        let cohort = work.appendingPathComponent("demo").path
        XCTAssertEqual(try run(["data", "simulate", "--out", cohort, "--patients", "4", "--genes", "16", "--tile-size", "16", "--tiles-per-patient", "1"]).status, 0)
        let shard = URL(fileURLWithPath: cohort).appendingPathComponent("shard-00000.h5")
        let handle = try FileHandle(forWritingTo: shard)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))  // still readable HDF5, but no longer the bytes cohort.json records
        try handle.close()
        let pictures = work.appendingPathComponent("pictures/P1")
        try FileManager.default.createDirectory(at: pictures, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(data)/ihc.png", toPath: pictures.appendingPathComponent("a.png").path)
        for arguments in [["inspect", cohort, "--sheet", "none"],
                          ["tile-slides", "--out", work.appendingPathComponent("tiled").path, "--png-folders", pictures.deletingLastPathComponent().path,
                           "--rna", cohort, "--tile-size", "64"]] {
            let result = try ProcessRunner.run(transcriptile, ["data"] + arguments, timeout: 120)
            XCTAssertEqual(result.status, 2, result.output)
            XCTAssertTrue(result.stderr.contains("invalid: \(shard.path): "), result.output)
            XCTAssertTrue(result.stderr.contains("the file changed after it was written"), result.output)
            XCTAssertTrue(result.stderr.contains("\(cohort): 1 problem(s)"), result.output)
            XCTAssertTrue(result.stdout.isEmpty, result.output)
        }
    }
}
