import Cohorts
import Foundation
import XCTest

/// Importers that never misread silently: clinical columns are found and left out (and said so),
/// survival maps from the columns a user names, values that cannot be of the `--kind` given are
/// refused naming the file, row, column as the user sees it (1-based, counting the ID column) and
/// the kinds that fit, and a table without a header row is refused. On GSE7390 (the real ARFF),
/// the PBMC h5ad files and tables made from them.
extension ImporterTests {
    private var gse7390: String { "\(data)/breast_cancer_GSE7390-metastasis.arff" }

    /// Writes `text` to a fresh file named `name` next to `out` and returns its path.
    private func input(_ name: String, _ text: String) throws -> String {
        let folder = out.path + "-tables"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try text.write(toFile: "\(folder)/\(name)", atomically: true, encoding: .utf8)
        return "\(folder)/\(name)"
    }

    /// GSE7390's data lines split into fields (198 patients; attributes age, size, grade, er,
    /// t.tdm, e.tdm, then 76 probes).
    private func gse7390Rows() throws -> [[String]] {
        let text = try String(contentsOfFile: gse7390, encoding: .utf8)
        let data = text.components(separatedBy: "@data\n")[1]
        return data.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    func testGSE7390ClinicalAttributesAreNotGenes() throws {
        let cohort = try ARFFImport.read(path: gse7390, kind: "log")
        XCTAssertEqual(cohort.layout.genes.count, 76, "the 76 probes, not age, size or t.tdm")
        XCTAssertTrue(cohort.layout.genes.allSatisfy { $0.hasPrefix("X") }, "\(cohort.layout.genes.prefix(5))")
        XCTAssertFalse(cohort.layout.survival)
        XCTAssertEqual(cohort.summary, [
            "genes: 76 numeric attributes — log-scale values ≤ 64 (--kind log; stored as given, training z-scores each gene without a log, as for --kind scaled)",
            "patients: 198, IDs made from the file name (breast_cancer_GSE7390-metastasis-0001…; the file has no ID attribute)",
            "survival: none (t.tdm, e.tdm look like survival: name them with --survival-time and --event)",
            "cancer type: unknown for every patient (--cancer-type; or --type-column NAME)",
            "left out: age, size, t.tdm (clinical names); grade, er, e.tdm (nominal) — --keep NAME makes a left-out numeric attribute a gene",
        ])
        XCTAssertEqual(try written(cohort).patients, 198)
    }

    func testGSE7390SurvivalAndTypeFromTheNamedAttributes() throws {
        let cohort = try ARFFImport.read(path: gse7390, kind: "log", choice: ColumnChoice(survivalTime: "t.tdm", event: "e.tdm", cancerType: "er"))
        let rows = try gse7390Rows()
        XCTAssertEqual(cohort.patients.map(\.survivalDays), rows.map { Float($0[4])! })
        XCTAssertEqual(cohort.patients.map(\.event), rows.map { $0[5] == "1" })
        XCTAssertEqual(cohort.patients.filter(\.event).count, 51)
        XCTAssertEqual(cohort.layout.cancerTypes, ["negative", "positive"])
        let positive = rows.filter { $0[3] == "positive" }.count
        XCTAssertEqual(Array(cohort.summary[2...]), [
            "survival: t.tdm (days) + e.tdm (event: 51 events, 147 censored)",
            "cancer type: er (negative \(198 - positive), positive \(positive))",
            "left out: age, size (clinical names); grade (nominal) — --keep NAME makes a left-out numeric attribute a gene",
        ])
        let reader = try written(cohort)
        XCTAssertEqual(try XCTUnwrap(try reader.survival()).events.filter { $0 }.count, 51)
    }

    func testKeepAndExcludeOverrideTheDetection() throws {
        let kept = try ARFFImport.read(path: gse7390, kind: "log", choice: ColumnChoice(exclude: ["X219340_s_at"], keep: ["age"]))
        XCTAssertEqual(kept.layout.genes.count, 76)
        XCTAssertEqual(kept.layout.genes.first, "age")
        XCTAssertFalse(kept.layout.genes.contains("X219340_s_at"))
        XCTAssertTrue(kept.summary.last!.hasPrefix("left out: size, t.tdm (clinical names); grade, er, e.tdm (nominal); X219340_s_at (--exclude)"), kept.summary.last!)
        assertThrows("--keep grade: attribute grade (column 3) holds nominal values, not numbers: it cannot be a gene") {
            try ARFFImport.read(path: gse7390, kind: "log", choice: ColumnChoice(keep: ["grade"]))
        }
        assertThrows("--keep X217771_at: attribute X217771_at (column 8) is a gene already; --keep brings back only columns left out as clinical") {
            try ARFFImport.read(path: gse7390, kind: "log", choice: ColumnChoice(keep: ["X217771_at"]))
        }
        assertThrows("attribute t.tdm (column 5) is named by both --survival-time and --exclude: give each column one role") {
            try ARFFImport.read(path: gse7390, kind: "log", choice: ColumnChoice(survivalTime: "t.tdm", event: "e.tdm", exclude: ["t.tdm"]))
        }
        assertThrows("has no attribute \"T.TDM\" for --survival-time — did you mean \"t.tdm\"? (attributes: age, size, grade, er, t.tdm, e.tdm, "
            + "X219340_s_at, X217771_at, X202418_at, X206295_at, X201091_s_at, X204015_s_at, …)") {
            try ARFFImport.read(path: gse7390, kind: "log", choice: ColumnChoice(survivalTime: "T.TDM", event: "e.tdm"))
        }
    }

    func testLogValuesAreNotCounts() throws {
        let first = try gse7390Rows()[0][6]
        assertThrows(":86: value \(Float(first)!) in attribute X219340_s_at (column 7) of patient breast_cancer_GSE7390-metastasis-0001 is not a "
            + "whole number, impossible for counts: pass --kind tpm or --kind fpkm for normalised abundances, --kind log for log2/log1p values, "
            + "--kind scaled for centred or z-scored ones; if X219340_s_at is not a gene, leave it out with --exclude X219340_s_at") {
            try ARFFImport.read(path: gse7390, kind: "counts")
        }
    }

    func testIntegerCodedColumnsAmongContinuousGenesAreLeftOut() throws {
        // GSE7390 as a table: an ID column, ER coded 0/1 under a name that says nothing, the probes.
        let rows = try gse7390Rows()
        let probes = try ARFFImport.read(path: gse7390, kind: "log").layout.genes
        let text = "id,flag," + probes.joined(separator: ",") + "\n"
            + rows.enumerated().map { i, row in "P\(i + 1),\(row[3] == "positive" ? 1 : 0)," + row[6...].joined(separator: ",") }.joined(separator: "\n")
        let path = try input("gse7390.csv", text)
        let cohort = try ExpressionTableImport.read(tables: [(path, nil)], kind: "log")
        XCTAssertEqual(cohort.layout.genes, probes)
        XCTAssertEqual(cohort.summary[1], "patients: 198, IDs from column 1 (id)")
        XCTAssertEqual(cohort.summary.last, "left out: flag (integer codes, 2 levels) — --keep NAME makes a left-out numeric column a gene")
        XCTAssertEqual(try ExpressionTableImport.read(tables: [(path, nil)], kind: "log", choice: ColumnChoice(cancerType: "flag")).layout.cancerTypes, ["0", "1"])
        XCTAssertEqual(try ExpressionTableImport.read(tables: [(path, nil)], kind: "log", choice: ColumnChoice(keep: ["flag"])).layout.genes.count, 77)
    }

    func testTableSurvivalColumnsAndEventSpellings() throws {
        let path = try input("clinical.tsv", "sample\tOS.time\tOS.status\tAGE\tTP53\tEGFR\n"
            + "A\t100\tdead\t50\t1.5\t2.5\nB\t200.5\talive\t61\t0.5\t1.25\nC\t30\tYes\t70\t3\t4\nD\t0\t0\t44\t0\t1\n")
        let cohort = try ExpressionTableImport.read(tables: [(path, nil)], kind: "log", choice: ColumnChoice(survivalTime: "OS.time", event: "OS.status"))
        XCTAssertEqual(cohort.layout.genes, ["TP53", "EGFR"])
        XCTAssertEqual(cohort.patients.map(\.id), ["A", "B", "C", "D"])
        XCTAssertEqual(cohort.patients.map(\.survivalDays), [100, 200.5, 30, 0])
        XCTAssertEqual(cohort.patients.map(\.event), [true, false, true, false])
        XCTAssertEqual(cohort.summary[2], "survival: OS.time (days) + OS.status (event: 2 events, 2 censored)")
        XCTAssertEqual(cohort.summary.last, "left out: AGE (clinical names) — --keep NAME makes a left-out numeric column a gene")
        let noSurvival = try ExpressionTableImport.read(tables: [(path, nil)], kind: "log")
        XCTAssertEqual(noSurvival.summary[2], "survival: none (OS.time, OS.status look like survival: name them with --survival-time and --event)")

        let maybe = try input("maybe.tsv", "sample\tdays\tvital\tTP53\nA\t100\tmaybe\t1\n")
        assertThrows("maybe.tsv:2: column 3 (vital) of patient A: event \"maybe\" (--event) is neither an event (1, yes, true, dead, deceased, died, event) "
            + "nor censored (0, no, false, alive, living, censored)") {
            try ExpressionTableImport.read(tables: [(maybe, nil)], kind: "log", choice: ColumnChoice(survivalTime: "days", event: "vital"))
        }
        let negative = try input("negative.tsv", "sample\tdays\tvital\tTP53\nA\t-1\tdead\t1\n")
        assertThrows("negative.tsv:2: column 2 (days) of patient A: survival time -1.0 days: must be finite and ≥ 0 (correct the source)") {
            try ExpressionTableImport.read(tables: [(negative, nil)], kind: "log", choice: ColumnChoice(survivalTime: "days", event: "vital"))
        }
        let censored = try input("censored.tsv", "sample\tdays\tvital\tTP53\nA\t5\talive\t1\n")
        assertThrows("censored.tsv: column 3 (vital) (--event) marks no patient as an event (all 1 censored): a survival cohort needs at least one; is it the right column?") {
            try ExpressionTableImport.read(tables: [(censored, nil)], kind: "log", choice: ColumnChoice(survivalTime: "days", event: "vital"))
        }
    }

    func testColumnNumbersCountTheIDColumn() throws {
        let named = try input("named.csv", "id,g1,g2\nP1,1,2\nP2,4,-5\n")
        assertThrows("named.csv:3: value -5.0 in column 3 (g2) of patient P2 is negative, impossible for counts: pass --kind log or --kind scaled "
            + "if the values are transformed; if g2 is not a gene, leave it out with --exclude g2") {
            try ExpressionTableImport.read(tables: [(named, nil)], kind: "counts")
        }
        // R writes the header one field short: the IDs' column has no name, and still counts.
        let rStyle = try input("r.csv", "\"g1\",\"g2\"\n\"P1\",1,2\n\"P2\",4,x\n")
        assertThrows("r.csv:3: column 3 (g2) of patient P2: \"x\" is not a number (missing values are not allowed in genes or survival): "
            + "fill it, or leave a non-gene column out with --exclude g2") {
            try ExpressionTableImport.read(tables: [(rStyle, nil)], kind: "counts")
        }
        let table = try DelimitedTable(path: named)
        assertThrows("named.csv:2: column 1 (id): \"P1\" is not a finite number") { try table.number(0, 0) }
    }

    func testATableWithoutHeaderRowIsRefused() throws {
        let khan = try String(contentsOfFile: "\(data)/Khan_xtest.csv", encoding: .utf8)
        let headless = try input("headless.csv", String(khan.drop { $0 != "\n" }.dropFirst()))
        assertThrows("headless.csv:1: the first line holds numbers (-1.168927463, 0.564972842, -3.366795955, …), not gene names: the table has no header row "
            + "(refused rather than take the first sample's values as genes). Add a first line of gene names, with an empty first cell if the rows start with sample IDs") {
            try ExpressionTableImport.read(tables: [(headless, nil)], kind: "scaled")
        }
        let counts = try input("counts.tsv", "S1\t0\t12\t0\nS2\t3\t5\t9\n")
        XCTAssertThrowsError(try ExpressionTableImport.read(tables: [(counts, nil)], kind: "counts")) { error in
            XCTAssertTrue("\(error)".contains("counts.tsv:1: the first line holds numbers (0, 12, 0), not gene names"), "\(error)")
        }
        // Whole distinct positive numbers may be gene IDs (Entrez): taken, with a note.
        let entrez = try input("entrez.tsv", "id\t7157\t1956\nS1\t0\t12\nS2\t3\t5\n")
        let cohort = try ExpressionTableImport.read(tables: [(entrez, nil)], kind: "counts")
        XCTAssertEqual(cohort.layout.genes, ["7157", "1956"])
        XCTAssertEqual(cohort.notes, ["\(entrez): the header holds only whole numbers (7157, 1956), taken as gene IDs (e.g. Entrez); if the file has no header row, add one"])
    }

    func testLogAndScaledDiffer() throws {
        let path = try input("levels.csv", "id,g1,g2\nP1,-1.5,2\nP2,4,100\n")
        XCTAssertEqual(try ExpressionTableImport.read(tables: [(path, nil)], kind: "scaled").patients.count, 2, "scaled: any finite value")
        assertThrows("levels.csv:3: value 100.0 in column 3 (g2) of patient P2 is above 64, too large for --kind log (no expression is 2^64): "
            + "pass --kind counts, tpm or fpkm for values that are not logged, --kind scaled for other scales; if g2 is not a gene, leave it out with --exclude g2") {
            try ExpressionTableImport.read(tables: [(path, nil)], kind: "log")
        }
        let negative = try input("negative.csv", "id,g1,g2\nP1,-1.5,2\nP2,4,10\n")
        XCTAssertEqual(try ExpressionTableImport.read(tables: [(negative, nil)], kind: "log").patients.count, 2, "log ratios may be negative")
        assertThrows("value -1.5 in column 2 (g1) of patient P1 is negative, impossible for tpm: pass --kind log or --kind scaled if the values "
            + "are transformed; if g1 is not a gene, leave it out with --exclude g1") {
            try ExpressionTableImport.read(tables: [(negative, nil)], kind: "tpm")
        }
    }

    func testAnnDataCountsMustBeCounts() throws {
        let pbmc = "\(data)/10x_pbmc68k_reduced.h5ad"
        XCTAssertThrowsError(try AnnDataImport.read(path: pbmc, matrix: .raw, typeColumn: nil, kind: "counts", cancerType: "-")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("10x_pbmc68k_reduced.h5ad: /raw.X row 0: value "), message)
            XCTAssertTrue(message.contains("of observation AAAGCCTGGCTAAC-1 is not a whole number, impossible for counts: "), message)
            XCTAssertTrue(message.hasSuffix("--kind log for log2/log1p values, --kind scaled for centred or z-scored ones; "
                + "scanpy files often keep log-normalised values in /raw.X (then pass --kind log)"), message)
        }
        XCTAssertThrowsError(try AnnDataImport.read(path: pbmc, matrix: .x, typeColumn: nil, kind: "counts", cancerType: "-")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("/X row 0: value -"), message)
            XCTAssertTrue(message.hasSuffix("is negative, impossible for counts: pass --kind log or --kind scaled if the values are transformed; "
                + "this file also has /raw.X: pass --matrix raw if it holds the counts"), message)
        }
        let current = try AnnDataImport.read(path: "\(data)/pbmc_modern.h5ad", matrix: .raw, typeColumn: "bulk_labels", kind: "log", cancerType: "-")
        XCTAssertEqual(current.summary[0], "genes: 765 var names of /raw/var (values of /raw/X, --matrix raw) — \(ExpressionKind.describe("log"))")
        XCTAssertTrue(current.summary[3].hasPrefix("cancer type: obs column bulk_labels ("), current.summary[3])
    }
}

extension ImporterTests {
    func testEveryTableHasLabelsOrNone() throws {
        assertThrows("Khan_xtest.csv: has no labels file while other tables have one: give one per table, or none") {
            try ExpressionTableImport.read(tables: [("\(data)/Khan_xtrain.csv", "\(data)/Khan_ytrain.csv"), ("\(data)/Khan_xtest.csv", nil)], kind: "scaled")
        }
    }
}
