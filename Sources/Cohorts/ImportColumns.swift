import Foundation

// MARK: - What each --kind accepts

/// What the values under each expression kind may be; every importer checks every value it reads
/// with `check(_:kind:place:hint:)` (Docs/DataFormat.md, "Importers"):
///
/// | kind | accepted |
/// |---|---|
/// | `counts` | whole numbers ≥ 0 |
/// | `tpm`, `fpkm` | numbers ≥ 0 |
/// | `log` | numbers ≤ 64 (log₂/ln/log1p of expression; negative log ratios are fine) |
/// | `scaled` | any finite number (centred, z-scored) |
///
/// `log` and `scaled` are stored and normalised alike (no log taken, then a z-score per gene);
/// they differ only in what the importer accepts.
public enum ExpressionKind {
    /// The largest value `log` accepts: no expression measure reaches 2⁶⁴ (or e⁶⁴).
    public static let logCeiling: Float = 64

    /// What the kind means and how training treats it, for help texts and import summaries.
    public static func describe(_ kind: String) -> String {
        switch kind {
        case "counts": "whole-number counts (--kind counts; training takes the log of nonzero values, then z-scores each gene)"
        case "tpm", "fpkm": "\(kind.uppercased()) values ≥ 0 (--kind \(kind); training takes the log of nonzero values, then z-scores each gene)"
        case "log": "log-scale values ≤ 64 (--kind log; stored as given, training z-scores each gene without a log, as for --kind scaled)"
        default: "scaled values, any finite number (--kind scaled; stored as given, training z-scores each gene without a log, as for --kind log)"
        }
    }

    /// Throws, naming `file`, unless `kind` is one of `CohortLayout.expressionKinds`.
    public static func checkName(_ kind: String, file: String) throws {
        guard CohortLayout.expressionKinds.contains(kind) else {
            throw CohortError(file: file, "expression kind \"\(kind)\" is not one of \(CohortLayout.expressionKinds.joined(separator: ", "))")
        }
    }

    /// Throws unless every value of one row fits `kind`. The error is `place(i)` — the row's
    /// location, its message the position of value i ("in column 7 (X) of patient P") — with
    /// "value V", what is wrong, the kinds that fit, and `hint(i)` appended. Negative values are
    /// reported before fractions, so a transformed matrix is named as such.
    static func check(_ values: [Float], kind: String, place: (Int) -> CohortError, hint: (Int) -> String = { _ in "" }) throws {
        var negative: Int?, fraction: Int?, high: Int?
        for i in values.indices {
            let value = values[i]
            guard value.isFinite else { throw fail(values, i, "is not finite: expression values must be finite numbers", place, hint) }
            if value < 0, negative == nil { negative = i }
            if value != value.rounded(), fraction == nil { fraction = i }
            if value > logCeiling, high == nil { high = i }
        }
        switch kind {
        case "counts", "tpm", "fpkm":
            if let i = negative {
                throw fail(values, i, "is negative, impossible for \(kind): pass --kind log or --kind scaled if the values are transformed", place, hint)
            }
            if kind == "counts", let i = fraction {
                throw fail(values, i, "is not a whole number, impossible for counts: pass --kind tpm or --kind fpkm for normalised "
                    + "abundances, --kind log for log2/log1p values, --kind scaled for centred or z-scored ones", place, hint)
            }
        case "log":
            if let i = high {
                throw fail(values, i, "is above \(Int(logCeiling)), too large for --kind log (no expression is 2^\(Int(logCeiling))): "
                    + "pass --kind counts, tpm or fpkm for values that are not logged, --kind scaled for other scales", place, hint)
            }
        default:
            break
        }
    }

    private static func fail(_ values: [Float], _ i: Int, _ problem: String, _ place: (Int) -> CohortError, _ hint: (Int) -> String) -> CohortError {
        var error = place(i)
        error.message = "value \(values[i]) \(error.message) \(problem)\(hint(i))"
        return error
    }
}

// MARK: - Column-wise sources: which column is what

/// The columns a user named for a column-wise source (ARFF attributes, table columns): survival
/// time (days) and event, the cancer type, and columns to leave out of or keep in the genes.
public struct ColumnChoice: Sendable, Equatable {
    public var survivalTime: String?
    public var event: String?
    public var cancerType: String?
    /// Columns that are not genes (beyond those detected).
    public var exclude: [String]
    /// Columns detected as clinical that are genes after all.
    public var keep: [String]

    public init(survivalTime: String? = nil, event: String? = nil, cancerType: String? = nil, exclude: [String] = [], keep: [String] = []) {
        (self.survivalTime, self.event, self.cancerType, self.exclude, self.keep) = (survivalTime, event, cancerType, exclude, keep)
    }
}

/// Why a column is not a gene.
enum LeftOut: Hashable {
    case excluded, nominal, text, clinicalName, integerCoded(levels: Int)

    var phrase: String {
        switch self {
        case .excluded: "--exclude"
        case .nominal: "nominal"
        case .text: "text"
        case .clinicalName: "clinical names"
        case .integerCoded(let levels): "integer codes, \(levels) levels"
        }
    }

    /// Left out by the detection rules (not by the user, not for holding no numbers): `--keep` may bring it back.
    var detected: Bool {
        switch self {
        case .clinicalName, .integerCoded: true
        default: false
        }
    }
}

/// Names that are clinical attributes rather than genes. A column is clinical when a word of its
/// name (split at anything but letters and digits, lower-cased) is one of `clinicalWords`, or the
/// name contains one of `clinicalStems`. The words are chosen not to clash with gene symbols
/// (not "her2", an alias of ERBB2, nor "efs", a gene); `--keep` brings a column back.
enum ClinicalNames {
    static let survivalWords: Set<String> = ["time", "days", "months", "years", "os", "dfs", "pfs", "rfs", "dmfs", "tdm", "event",
                                             "status", "dead", "alive", "survival"]
    static let clinicalWords: Set<String> = survivalWords.union(["age", "size", "grade", "stage", "er", "pr", "sex", "gender", "race",
                                                                  "ethnicity", "bmi", "smoking", "node", "nodes", "tnm", "histology",
                                                                  "subtype", "diagnosis", "treatment", "therapy", "batch"])
    static let clinicalStems = ["survival", "vital", "follow", "censor", "death", "relapse", "recurr", "metasta"]

    static func words(_ name: String) -> [String] {
        name.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
    }

    static func isClinical(_ name: String) -> Bool {
        let lower = name.lowercased()
        return words(name).contains(where: clinicalWords.contains) || clinicalStems.contains(where: lower.contains)
    }

    static func isSurvival(_ name: String) -> Bool {
        words(name).contains(where: survivalWords.contains) || ["survival", "vital", "death", "censor"].contains(where: name.lowercased().contains)
    }
}

/// A column-wise source as read (an ARFF file, or samples × genes tables): every column's name,
/// rows of fields (each as long as `names`), the place of each row ("file:line") and its patient ID.
struct ColumnSource {
    var file: String
    var names: [String]
    /// Columns declared non-numeric (ARFF nominal, string and date attributes): never genes.
    var nominal: [Bool]
    var rows: [[String]]
    var places: [String]
    var ids: [String]
    /// The column holding the patient IDs, if any (it has no other role).
    var idColumn: Int?
    /// "attribute" (ARFF) or "column" (tables), for messages.
    var word: String

    /// A column as the user sees it: 1-based, counting the ID column.
    func describe(_ column: Int) -> String {
        word == "attribute" ? "attribute \(names[column]) (column \(column + 1))" : "column \(column + 1) (\(names[column]))"
    }
}

/// A field as a number: nil when it is not one (text, "?", empty).
func number(_ field: String) -> Float? {
    Float(field) ?? Float(field.trimmingCharacters(in: .whitespaces))
}

/// Survival events as they are written: these values mean an event (death, relapse, metastasis)
/// was observed, those that the patient was censored. Matched case-insensitively; numbers 1 and 0
/// in any spelling ("1.0") too.
let eventSpellings: [String: Bool] = [
    "1": true, "yes": true, "y": true, "true": true, "dead": true, "deceased": true, "died": true, "event": true,
    "0": false, "no": false, "n": false, "false": false, "alive": false, "living": false, "censored": false,
]

extension ColumnSource {
    /// What a column holds: how many fields are numbers and how many text, whether all numbers
    /// are whole, and up to six distinct values. Empty and "?" fields are missing and count as neither.
    private struct Statistics { var numbers = 0, text = 0, whole = true, levels = Set<Float>() }

    private func statistics() -> [Statistics] {
        var stats = [Statistics](repeating: Statistics(), count: names.count)
        for row in rows {
            for c in names.indices where !nominal[c] && c != idColumn {
                let field = row[c]
                if field.isEmpty || field == "?" { continue }
                guard let value = number(field) else { stats[c].text += 1; continue }
                stats[c].numbers += 1
                if value != value.rounded() { stats[c].whole = false }
                if stats[c].levels.count < 6 { stats[c].levels.insert(value) }
            }
        }
        return stats
    }

    /// The index of a named column, or an error naming the option and the columns there are.
    private func index(_ name: String, _ option: String) throws -> Int {
        if let c = names.firstIndex(of: name), c != idColumn { return c }
        let similar = names.first { $0.lowercased() == name.lowercased() }.map { " — did you mean \"\($0)\"?" } ?? ""
        let shown = names.prefix(12).joined(separator: ", ") + (names.count > 12 ? ", …" : "")
        throw CohortError(file: file, "has no \(word) \"\(name)\" for \(option)\(similar) (\(word)s: \(shown))")
    }

    /// The cohort: genes, survival and cancer type as `choice` and the detection rules say
    /// (Docs/DataFormat.md, "Which column is what"), each row's values checked against `kind`,
    /// and a summary saying what was used as what. `labels` (one per row) override the type column.
    func cohort(choice: ColumnChoice, kind: String, labels: [String]?, labelSource: String, cancerType: String) throws -> ImportedCohort {
        try ExpressionKind.checkName(kind, file: file)
        guard (choice.survivalTime == nil) == (choice.event == nil) else {
            throw CohortError(file: file, "give both --survival-time and --event, or neither")
        }
        var roles = [Int: String]()  // column → the option naming it
        func named(_ option: String) -> (String) throws -> Int {
            { name in
                let c = try index(name, option)
                if let other = roles[c] { throw CohortError(file: file, "\(describe(c)) is named by both \(other) and \(option): give each column one role") }
                roles[c] = option
                return c
            }
        }
        let time = try choice.survivalTime.map(named("--survival-time")), event = try choice.event.map(named("--event"))
        let type = try choice.cancerType.map(named("--type-column"))
        let excluded = Set(try choice.exclude.map(named("--exclude")))
        let kept = try choice.keep.map(named("--keep"))

        // Detection: what is not a gene, unless the user keeps it.
        let stats = statistics()
        let candidates = names.indices.filter { !nominal[$0] && $0 != idColumn && roles[$0] == nil && stats[$0].numbers > 0 }
        let continuous = candidates.filter { !stats[$0].whole }.count * 2 > candidates.count
        var leftOut = [Int: LeftOut]()
        for c in names.indices where c != idColumn && c != time && c != event && c != type {
            if excluded.contains(c) { leftOut[c] = .excluded
            } else if nominal[c] { leftOut[c] = .nominal
            } else if stats[c].numbers == 0 && stats[c].text > 0 { leftOut[c] = .text
            } else if ClinicalNames.isClinical(names[c]) { leftOut[c] = .clinicalName
            } else if continuous, rows.count >= 10, stats[c].text == 0, stats[c].whole, (2...5).contains(stats[c].levels.count) {
                leftOut[c] = .integerCoded(levels: stats[c].levels.count)
            }
        }
        for c in kept {
            switch leftOut[c] {
            case let reason? where reason.detected: leftOut[c] = nil
            case let reason?: throw CohortError(file: file, "--keep \(names[c]): \(describe(c)) holds \(reason.phrase) values, not numbers: it cannot be a gene")
            case nil: throw CohortError(file: file, "--keep \(names[c]): \(describe(c)) is a gene already; --keep brings back only columns left out as clinical")
            }
        }
        let genes = names.indices.filter { $0 != idColumn && $0 != time && $0 != event && $0 != type && leftOut[$0] == nil }
        guard !genes.isEmpty else {
            throw CohortError(file: file, "no \(word) is left to use as a gene (\(leftOut.count) left out as clinical or non-numeric): name genes detected as clinical with --keep")
        }

        var patients = [PatientRecord](), types = [String]()
        patients.reserveCapacity(rows.count)
        for r in rows.indices {
            let row = rows[r]
            var expression = [Float]()
            expression.reserveCapacity(genes.count)
            for c in genes {
                guard let value = number(row[c]) else {
                    throw CohortError(file: places[r], "\(describe(c)) of patient \(ids[r]): \"\(row[c])\" is not a number (missing values are not allowed "
                        + "in genes or survival): fill it, or leave a non-gene \(word) out with --exclude \(names[c])")
                }
                expression.append(value)
            }
            try ExpressionKind.check(expression, kind: kind, place: { CohortError(file: places[r], "in \(describe(genes[$0])) of patient \(ids[r])") },
                                     hint: { "; if \(names[genes[$0]]) is not a gene, leave it out with --exclude \(names[genes[$0]])" })
            var patient = PatientRecord(id: ids[r], cancerType: 0, expression: expression)
            if let time, let event {
                let place = "\(places[r]): \(describe(time)) of patient \(ids[r])"
                guard let days = number(row[time]) else {
                    throw CohortError(file: place, "\"\(row[time])\" is not a survival time in days (--survival-time): fill it, or remove the patient's row")
                }
                patient.survivalDays = try checkSurvival(days, place)
                let field = row[event].trimmingCharacters(in: .whitespaces)
                guard let observed = eventSpellings[field.lowercased()] ?? number(field).flatMap({ $0 == 1 ? true : $0 == 0 ? false : nil }) else {
                    throw CohortError(file: places[r], "\(describe(event)) of patient \(ids[r]): event \"\(field)\" (--event) is neither an event "
                        + "(1, yes, true, dead, deceased, died, event) nor censored (0, no, false, alive, living, censored)")
                }
                patient.event = observed
            }
            patients.append(patient)
            let label = labels?[r] ?? type.map { row[$0].trimmingCharacters(in: .whitespaces) } ?? cancerType
            types.append(label.isEmpty || label == "?" ? "unknown" : label)
        }
        let events = patients.filter(\.event).count
        if let event, events == 0 {
            throw CohortError(file: file, "\(describe(event)) (--event) marks no patient as an event (all \(patients.count) censored): "
                + "a survival cohort needs at least one; is it the right \(word)?")
        }
        let (typeNames, codes) = categoriesInOrder(types)
        for i in patients.indices { patients[i].cancerType = codes[i] }

        // What was used as what.
        var summary = ["genes: \(genes.count) numeric \(word)s — \(ExpressionKind.describe(kind))"]
        summary.append("patients: \(rows.count), " + (idColumn.map { "IDs from \(describe($0))" } ?? "IDs made from the file name (\(ids.first ?? "")…; the file has no ID \(word))"))
        if let time, let event {
            summary.append("survival: \(names[time]) (days) + \(names[event]) (event: \(events) events, \(patients.count - events) censored)")
        } else {
            let hints = leftOut.keys.sorted().filter { leftOut[$0] != .excluded && ClinicalNames.isSurvival(names[$0]) }.map { names[$0] }
            summary.append("survival: none" + (hints.isEmpty ? "" : " (\(hints.joined(separator: ", ")) look like survival: name them with --survival-time and --event)"))
        }
        let counts = Dictionary(grouping: types, by: { $0 }).mapValues(\.count)
        let tally = typeNames.prefix(8).map { "\($0) \(counts[$0] ?? 0)" }.joined(separator: ", ") + (typeNames.count > 8 ? ", …" : "")
        if labels != nil {
            summary.append("cancer type: \(labelSource) (\(tally))")
        } else if let type {
            summary.append("cancer type: \(names[type]) (\(tally))")
        } else {
            summary.append("cancer type: \(cancerType) for every patient (--cancer-type; or --type-column NAME)")
        }
        if !leftOut.isEmpty {
            var groups = [(reason: LeftOut, names: [String])]()
            for (c, reason) in leftOut.sorted(by: { $0.key < $1.key }) {
                if let g = groups.firstIndex(where: { $0.reason == reason }) { groups[g].names.append(names[c]) } else { groups.append((reason, [names[c]])) }
            }
            summary.append("left out: " + groups.map { "\($0.names.joined(separator: ", ")) (\($0.reason.phrase))" }.joined(separator: "; ")
                + (leftOut.values.contains(where: \.detected) ? " — --keep NAME makes a left-out numeric \(word) a gene" : ""))
        }
        let layout = CohortLayout(genes: genes.map { names[$0] }, expressionKind: kind, cancerTypes: typeNames, tileSize: nil, survival: time != nil)
        return ImportedCohort(layout: layout, patients: patients, summary: summary)
    }
}
