import Foundation
import TestSupport
import XCTest

/// The data commands as a user runs them: every import ends with a summary of what was used as
/// what, a source the `--kind` cannot describe is refused with the kinds (or matrix) that fit,
/// and long commands show one progress bar (live on a terminal, lines in a log) instead of a line
/// per shard.
final class ImportSummaryTests: XCTestCase {
    private let transcriptile = ProcessRunner.product("transcriptile")
    private let data = ProcessRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/data").path
    private var work: URL!

    override func setUpWithError() throws {
        try XCTSkipIf(RankTests.isRankProcess, "launches its own processes")
        work = FileManager.default.temporaryDirectory.appendingPathComponent("import-summary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let work { try? FileManager.default.removeItem(at: work) } }

    private func run(_ arguments: [String], progress: String = "lines") throws -> ProcessRunner.Result {
        try ProcessRunner.run(transcriptile, arguments, environment: ["TRANSCRIPTILE_PROGRESS": progress], timeout: 120)
    }

    private var arff: String { "\(data)/breast_cancer_GSE7390-metastasis.arff" }

    func testGSE7390ImportSaysWhatWasUsedAsWhat() throws {
        let out = work.appendingPathComponent("gse7390").path
        let result = try run(["data", "import-expression", "--out", out, "--arff", arff, "--kind", "log",
                              "--survival-time", "t.tdm", "--event", "e.tdm", "--type-column", "er"])
        XCTAssertEqual(result.status, 0, result.output)
        for line in ["wrote \(out): 198 patients, 76 genes (log), 2 cancer type(s), survival, 1 shard(s)",
                     "  genes: 76 numeric attributes — log-scale values ≤ 64",
                     "  survival: t.tdm (days) + e.tdm (event: 51 events, 147 censored)",
                     "  cancer type: er (negative ",
                     "  left out: age, size (clinical names); grade (nominal)"] {
            XCTAssertTrue(result.stdout.contains(line), "missing \"\(line)\"\n" + result.output)
        }
        XCTAssertTrue(result.stderr.contains("writing 100%  198/198 patients · in "), result.output)
        XCTAssertEqual(try ProcessRunner.run(transcriptile, ["data", "validate", out]).status, 0)

        // Without names: the genes are still the 76 probes, and the summary says what was left out and how to map survival.
        let plain = try run(["data", "import-expression", "--out", work.appendingPathComponent("plain").path, "--arff", arff, "--kind", "log"])
        XCTAssertEqual(plain.status, 0, plain.output)
        XCTAssertTrue(plain.stdout.contains("76 genes (log), 1 cancer type(s), 1 shard(s)"), plain.output)
        XCTAssertTrue(plain.stdout.contains("  survival: none (t.tdm, e.tdm look like survival: name them with --survival-time and --event)"), plain.output)
        XCTAssertTrue(plain.stdout.contains("  left out: age, size, t.tdm (clinical names); grade, er, e.tdm (nominal)"), plain.output)
    }

    func testValuesThatCannotBeCountsAreRefused() throws {
        let arffCounts = try run(["data", "import-expression", "--out", work.appendingPathComponent("a").path, "--arff", arff])
        XCTAssertEqual(arffCounts.status, 2, arffCounts.output)
        XCTAssertTrue(arffCounts.stderr.contains("breast_cancer_GSE7390-metastasis.arff:86: value 7.0141"), arffCounts.output)
        XCTAssertTrue(arffCounts.stderr.contains("in attribute X219340_s_at (column 7) of patient breast_cancer_GSE7390-metastasis-0001 is not a whole number, impossible for counts"), arffCounts.output)
        XCTAssertTrue(arffCounts.stderr.contains("--kind log for log2/log1p values"), arffCounts.output)

        let pbmc = "\(data)/10x_pbmc68k_reduced.h5ad"
        let raw = try run(["data", "import-h5ad", pbmc, "--out", work.appendingPathComponent("b").path, "--matrix", "raw", "--kind", "counts"])
        XCTAssertEqual(raw.status, 2, raw.output)
        XCTAssertTrue(raw.stderr.contains("/raw.X row 0: value "), raw.output)
        XCTAssertTrue(raw.stderr.contains("is not a whole number, impossible for counts"), raw.output)
        XCTAssertTrue(raw.stderr.contains("(then pass --kind log)"), raw.output)
        let x = try run(["data", "import-h5ad", pbmc, "--out", work.appendingPathComponent("c").path, "--kind", "counts"])
        XCTAssertEqual(x.status, 2, x.output)
        XCTAssertTrue(x.stderr.contains("is negative, impossible for counts: pass --kind log or --kind scaled"), x.output)
        XCTAssertTrue(x.stderr.contains("pass --matrix raw if it holds the counts"), x.output)
        for result in [arffCounts, raw, x] {
            XCTAssertFalse(result.stdout.contains("wrote"), result.output)
        }
    }

    func testHeaderlessTableIsRefusedNamingTheLine() throws {
        let khan = try String(contentsOfFile: "\(data)/Khan_xtest.csv", encoding: .utf8)
        let headless = work.appendingPathComponent("headless.csv").path
        try String(khan.drop { $0 != "\n" }.dropFirst()).write(toFile: headless, atomically: true, encoding: .utf8)
        let result = try run(["data", "import-expression", "--out", work.appendingPathComponent("h").path, "--table", headless, "--kind", "scaled"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.stderr.contains("headless.csv:1: the first line holds numbers"), result.output)
        XCTAssertTrue(result.stderr.contains("the table has no header row"), result.output)
    }

    func testHelpSaysLogAndScaledAreNormalisedAlike() throws {
        for command in ["import-expression", "import-h5ad"] {
            let help = try run(["data", command, "--help"])
            XCTAssertTrue(help.stdout.contains("log and scaled are stored and normalised alike"), help.output)
        }
        let help = try run(["data", "import-expression", "--help"]).stdout
        for option in ["--survival-time <survival-time>", "--event <event>", "--keep <keep>", "--exclude <exclude>", "--type-column <type-column>"] {
            XCTAssertTrue(help.contains(option), "\(option)\n" + help)
        }
    }

    func testProgressIsOneBarNotALinePerShard() throws {
        let arguments = ["data", "simulate", "--patients", "40", "--genes", "16", "--tile-size", "16", "--tiles-per-patient", "2", "--patients-per-shard", "8"]
        let lines = try run(arguments + ["--out", work.appendingPathComponent("lines").path], progress: "lines")
        XCTAssertEqual(lines.status, 0, lines.output)
        XCTAssertTrue(lines.stderr.contains("simulating 100%  40/40 patients · "), lines.output)
        XCTAssertFalse(lines.stderr.contains("simulate: 8/40"), "no line per shard\n" + lines.output)
        XCTAssertTrue(lines.stdout.contains("40 patients, 80 tiles, 16 genes, 5 shard(s)"), lines.output)

        let live = try run(arguments + ["--out", work.appendingPathComponent("live").path], progress: "live")
        XCTAssertEqual(live.status, 0, live.output)
        XCTAssertTrue(live.stderr.contains("\r\u{1B}[Ksimulating  [████████████████████] 100%  40/40 patients"), live.output)

        let tiles = work.appendingPathComponent("tiles").path
        let mapping = work.appendingPathComponent("slides.tsv").path
        try "slide\tpatient\ncmu_small_region.svs\tCMU-1\nihc.png\tIHC-1\n".write(toFile: mapping, atomically: true, encoding: .utf8)
        let tiled = try run(["data", "tile-slides", "--out", tiles, "--mapping", mapping, "--slides", data, "--tile-size", "64",
                             "--magnification", "5", "--source-magnification", "20", "--max-tiles", "6"])
        XCTAssertEqual(tiled.status, 0, tiled.output)
        XCTAssertTrue(tiled.stderr.contains("tile-slides: 1/2 cmu_small_region.svs: 2220×2967 px at 20×"), tiled.output)
        XCTAssertTrue(tiled.stderr.contains("tiling 100%  2/2 slides · "), tiled.output)
        XCTAssertTrue(tiled.stderr.contains("writing 100%  2/2 patients · "), tiled.output)
        XCTAssertTrue(tiled.stdout.contains("  tiles: "), tiled.output)
        XCTAssertTrue(tiled.stdout.contains("genes: none (a tile-only cohort; --rna adds RNA)"), tiled.output)
    }
}
