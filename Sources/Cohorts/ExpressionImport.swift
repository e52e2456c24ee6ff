import Foundation

/// Patients read by an importer, ready for `CohortWriter`, plus what the importer had to skip
/// and what it used as what.
public struct ImportedCohort {
    public var layout: CohortLayout
    public var patients: [PatientRecord]
    /// Human-readable notes on what was dropped or assumed (printed by the CLI).
    public var notes: [String] = []
    /// What was used as what, one "role: what" line each ("genes: 76 numeric attributes — …",
    /// "survival: t.tdm (days) + e.tdm (event…)", "left out: age, size (clinical names)"),
    /// printed after every import.
    public var summary: [String] = []

    public init(layout: CohortLayout, patients: [PatientRecord], notes: [String] = [], summary: [String] = []) {
        (self.layout, self.patients, self.notes, self.summary) = (layout, patients, notes, summary)
    }

    /// Writes the patients as a cohort (see `CohortWriter` for the all-or-nothing guarantee),
    /// calling `progress` with (patients written, patients) after each.
    @discardableResult
    public func write(to directory: URL, source: String, patientsPerShard: Int = 256, overwrite: Bool = false,
                      progress: ((Int, Int) -> Void)? = nil) throws -> CohortManifest {
        let writer = try CohortWriter(directory: directory, source: source, layout: layout, patientsPerShard: patientsPerShard, overwrite: overwrite)
        for (index, patient) in patients.enumerated() {
            try writer.append(patient)
            progress?(index + 1, patients.count)
        }
        return try writer.finish()
    }
}

/// Cancer-type names in order of first appearance, and each label's index.
public func categoriesInOrder(_ labels: [String]) -> (names: [String], codes: [Int]) {
    var names = [String](), index = [String: Int]()
    let codes = labels.map { label in
        if let code = index[label] { return code }
        index[label] = names.count
        names.append(label)
        return names.count - 1
    }
    return (names, codes)
}

/// `days` if it is a usable survival time (finite and ≥ 0); otherwise an error naming `place`.
@discardableResult
func checkSurvival(_ days: Float, _ place: String) throws -> Float {
    guard days.isFinite, days >= 0 else { throw CohortError(file: place, "survival time \(days) days: must be finite and ≥ 0 (correct the source)") }
    return days
}

/// Samples × genes tables (CSV or TSV, e.g. the Khan microarray files): one row per sample, one
/// column per gene under a header of gene names, an optional first column of sample IDs (an
/// empty or "id"-like header cell, a header one field shorter than the rows as R writes it, or a
/// first column of text), and an optional labels file with one cancer type per row in the same
/// order. Clinical columns are found and left out as for ARFF (`ColumnSource.cohort`); a first
/// line of numbers is a missing header and refused.
public enum ExpressionTableImport {
    /// Header cells that name the sample-ID column.
    static let idHeaders: Set<String> = ["", "id", "sample", "sample_id", "patient", "patient_id", "case", "case_id"]

    public static func read(tables: [(values: String, labels: String?)], kind: String, choice: ColumnChoice = ColumnChoice(),
                            cancerType: String = "unknown") throws -> ImportedCohort {
        try ExpressionKind.checkName(kind, file: tables.first?.values ?? "--table")
        if let unlabelled = tables.first(where: { $0.labels == nil }), tables.contains(where: { $0.labels != nil }) {
            throw CohortError(file: unlabelled.values, "has no labels file while other tables have one: give one per table, or none")
        }
        var source: ColumnSource?, labels = [String](), notes = [String]()
        for (path, labelPath) in tables {
            var table = try DelimitedTable(path: path)
            guard let first = table.rows.first else { throw CohortError(file: path, "has a header but no samples: nothing to import") }
            if table.header.count == first.count - 1 { table.header.insert("", at: 0) }  // R: the row names' column has no name
            for row in table.rows.indices { try table.checkWidth(row) }
            if let note = try checkHeader(table) { notes.append(note) }
            let idColumn: Int? = idHeaders.contains(table.header[0].lowercased()) || table.rows.allSatisfy({ number($0[0]) == nil }) ? 0 : nil
            guard table.header.count > (idColumn == nil ? 0 : 1) else {
                throw CohortError(file: path, "has no gene columns (only \(table.header.count) column(s)): a samples × genes table needs at least one gene")
            }
            if let source, source.names != table.header || source.idColumn != idColumn {
                let column = zip(source.names, table.header).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(source.names.count, table.header.count)
                throw CohortError(file: path, "column \(column + 1) differs from \(source.file)'s (\(table.header.count) vs \(source.names.count) columns): "
                    + "every table must have the same columns in the same order")
            }
            if let labelPath {
                let labelTable = try DelimitedTable(path: labelPath)
                let tableLabels = labelTable.rows.map { $0.last?.trimmingCharacters(in: .whitespaces) ?? "" }
                guard tableLabels.count == table.rows.count else {
                    throw CohortError(file: labelPath, "has \(tableLabels.count) labels for the \(table.rows.count) samples of \(path)")
                }
                labels += tableLabels
            }
            let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            let ids = table.rows.indices.map { row in idColumn.map { table.rows[row][$0] } ?? stem + String(format: "-%04d", row + 1) }
            var next = source ?? ColumnSource(file: path, names: table.header, nominal: table.header.map { _ in false }, rows: [], places: [],
                                              ids: [], idColumn: idColumn, word: "column")
            next.rows += table.rows
            next.places += table.rows.indices.map(table.place)
            next.ids += ids
            source = next
        }
        guard let source else { throw CohortError(file: "--table", "no table given") }
        let labelFiles = tables.compactMap(\.labels).map { URL(fileURLWithPath: $0).lastPathComponent }
        var cohort = try source.cohort(choice: choice, kind: kind, labels: labelFiles.isEmpty ? nil : labels,
                                       labelSource: "labels file\(labelFiles.count == 1 ? "" : "s") \(labelFiles.joined(separator: ", "))", cancerType: cancerType)
        cohort.notes += notes
        return cohort
    }

    /// A first line of numbers is data, not gene names. Refused when the numbers cannot be gene
    /// IDs (a fraction, a number ≤ 0, or one twice); whole positive distinct numbers are taken as
    /// gene IDs (Entrez) and the returned note says so.
    static func checkHeader(_ table: DelimitedTable) throws -> String? {
        let cells = Array(table.header.dropFirst())
        let numbers = cells.compactMap(number)
        guard !cells.isEmpty, numbers.count == cells.count else { return nil }
        let shown = cells.prefix(3).joined(separator: ", ") + (cells.count > 3 ? ", …" : "")
        guard numbers.allSatisfy({ $0 > 0 && $0 == $0.rounded() }), Set(numbers).count == numbers.count else {
            throw CohortError(file: "\(table.path):\(table.headerLine)", "the first line holds numbers (\(shown)), not gene names: the table has "
                + "no header row (refused rather than take the first sample's values as genes). Add a first line of gene names, "
                + "with an empty first cell if the rows start with sample IDs")
        }
        return "\(table.path): the header holds only whole numbers (\(shown)), taken as gene IDs (e.g. Entrez); if the file has no header row, add one"
    }
}

/// Weka ARFF files (e.g. GSE7390 from scikit-survival): numeric attributes become genes except
/// those detected as clinical (by name, or integer-coded with few levels), nominal, string and
/// date attributes, and those the user names for survival, cancer type or `--exclude`
/// (`ColumnSource.cohort`). Patients are named after the file (`GSE7390-0001`, …).
public enum ARFFImport {
    public static func read(path: String, kind: String, choice: ColumnChoice = ColumnChoice(), cancerType: String = "unknown") throws -> ImportedCohort {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CohortError(file: path, "cannot be read as UTF-8 text") }
        var names = [String](), nominal = [Bool](), rows = [[String]](), places = [String](), inData = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines), place = "\(path):\(index + 1)"
            if line.isEmpty || line.hasPrefix("%") { continue }
            if inData {
                guard !line.hasPrefix("{") else { throw CohortError(file: place, "sparse ARFF rows ({index value, …}) are not supported: write the file dense") }
                let fields = DelimitedTable.fields(Substring(line), ",", quotes: ["'", "\""]).map { $0.trimmingCharacters(in: .whitespaces) }
                guard fields.count == names.count else { throw CohortError(file: place, "has \(fields.count) values for \(names.count) attributes") }
                rows.append(fields)
                places.append(place)
                continue
            }
            let lower = line.lowercased()
            if lower.hasPrefix("@attribute") {
                let rest = line.dropFirst("@attribute".count).trimmingCharacters(in: .whitespaces)
                let name: String, type: String
                if let quote = rest.first, quote == "'" || quote == "\"" {
                    let body = rest.dropFirst()
                    guard let close = body.firstIndex(of: quote) else { throw CohortError(file: place, "unterminated attribute name") }
                    (name, type) = (String(body[..<close]), body[body.index(after: close)...].trimmingCharacters(in: .whitespaces))
                } else {
                    let parts = rest.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                    guard parts.count == 2 else { throw CohortError(file: place, "attribute line without a type: \(line)") }
                    (name, type) = (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces))
                }
                names.append(name)
                nominal.append(!["numeric", "real", "integer"].contains(type.lowercased()))
            } else if lower.hasPrefix("@data") {
                inData = true
            }
        }
        guard inData else { throw CohortError(file: path, "has no @data section: not an ARFF file?") }
        guard !rows.isEmpty else { throw CohortError(file: path, "has an empty @data section: nothing to import") }
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let source = ColumnSource(file: path, names: names, nominal: nominal, rows: rows, places: places,
                                  ids: rows.indices.map { stem + String(format: "-%04d", $0 + 1) }, idColumn: nil, word: "attribute")
        return try source.cohort(choice: choice, kind: kind, labels: nil, labelSource: "", cancerType: cancerType)
    }
}

/// TCGA/GDC STAR gene-count files (one TSV per sample: gene_id, gene_name, gene_type, unstranded,
/// stranded_first, stranded_second, tpm_unstranded, fpkm_unstranded, fpkm_uq_unstranded, with the
/// `N_*` summary rows first), the GDC sample sheet that maps file names to cases, and optionally
/// the GDC clinical TSV (vital_status, days_to_death, days_to_last_follow_up, the cancer-type column).
/// `progress` is called with (files read, files) after each file.
public enum GDCStarImport {
    /// The value column each expression kind reads.
    public static let valueColumns = ["counts": "unstranded", "tpm": "tpm_unstranded", "fpkm": "fpkm_unstranded"]

    public static func read(files: [String], sampleSheet: String, clinical: String?, kind: String, typeColumn: String,
                            progress: ((Int, Int) -> Void)? = nil) throws -> ImportedCohort {
        guard let valueName = valueColumns[kind] else {
            throw CohortError(file: files.first ?? sampleSheet, "STAR files hold counts, tpm or fpkm, not \"\(kind)\"")
        }
        let sheet = try DelimitedTable(path: sampleSheet)
        let fileColumn = try sheet.column("File Name"), caseColumn = try sheet.column("Case ID")
        let sampleType = sheet.header.firstIndex(of: "Sample Type")
        var caseOfFile = [String: (id: String, primary: Bool)]()
        for row in sheet.rows where row.count > max(fileColumn, caseColumn) {
            // A sheet row may list several cases ("A, B") for pooled files; the first is the sample's own.
            let id = row[caseColumn].split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            caseOfFile[row[fileColumn]] = (id, sampleType.map { row.indices.contains($0) && row[$0] == "Primary Tumor" } ?? true)
        }
        let clinicalByCase = try clinical.map { try ClinicalTable(path: $0, typeColumn: typeColumn) }

        var genes: [String]?, notes = [String](), patients = [PatientRecord](), labels = [String](), chosen = [String: (index: Int, primary: Bool)]()
        var withoutSurvival = [String]()
        for (index, path) in files.enumerated() {
            defer { progress?(index + 1, files.count) }
            let name = URL(fileURLWithPath: path).lastPathComponent
            guard let sample = caseOfFile[name] else {
                throw CohortError(file: sampleSheet, "does not list \(name): pass the sample sheet that came with these files")
            }
            let table = try DelimitedTable(path: path)
            let idColumn = try table.column("gene_id"), valueColumn = try table.column(valueName)
            for row in table.rows.indices { try table.checkWidth(row) }
            let rows = table.rows.indices.filter { !table.rows[$0][idColumn].hasPrefix("N_") }
            let ids = rows.map { table.rows[$0][idColumn] }
            if let genes, genes != ids {
                let row = zip(genes, ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(genes.count, ids.count)
                throw CohortError(file: row < rows.count ? table.place(rows[row]) : path, "gene list differs from \(files[0]) (\(ids.count) vs \(genes.count) genes): every file must come from the same gene model")
            }
            genes = ids
            let values = try rows.map { try table.number($0, valueColumn) }
            try ExpressionKind.check(values, kind: kind, place: { CohortError(file: table.place(rows[$0]), "at gene \(ids[$0]) (\(valueName)) of case \(sample.id)") })

            var patient = PatientRecord(id: sample.id, cancerType: 0, expression: values)
            var label = "unknown"
            if let clinicalByCase {
                guard let record = clinicalByCase.records[sample.id] else {
                    throw CohortError(file: clinicalByCase.path, "has no row for case \(sample.id) (from \(name) in the sample sheet)")
                }
                label = record.type
                guard let survival = record.survival else { withoutSurvival.append(sample.id); continue }
                (patient.survivalDays, patient.event) = survival
            }
            if let existing = chosen[sample.id] {  // a second sample of the same case: keep the primary tumour
                if sample.primary && !existing.primary {
                    patients[existing.index] = patient
                    chosen[sample.id] = (existing.index, true)
                }
                notes.append("case \(sample.id): several samples; kept the \(sample.primary && !existing.primary ? "primary tumour \(name)" : "first") and skipped the other")
                continue
            }
            chosen[sample.id] = (patients.count, sample.primary)
            patients.append(patient)
            labels.append(label)
        }
        if !withoutSurvival.isEmpty {
            notes.append("skipped \(withoutSurvival.count) case(s) without usable survival (no days_to_death / days_to_last_follow_up): \(withoutSurvival.joined(separator: ", "))")
        }
        let (names, codes) = categoriesInOrder(labels)
        for i in patients.indices { patients[i].cancerType = codes[i] }
        let layout = CohortLayout(genes: genes ?? [], expressionKind: kind, cancerTypes: names, tileSize: nil, survival: clinical != nil)
        let events = patients.filter(\.event).count
        let summary = [
            "genes: \((genes ?? []).count) gene_id rows of the STAR files (column \(valueName); N_* rows skipped) — \(ExpressionKind.describe(kind))",
            "patients: \(patients.count) cases (Case ID of the sample sheet) from \(files.count) file(s)",
            clinical == nil ? "survival: none (no --clinical)"
                : "survival: vital_status Dead → days_to_death (event), Alive → days_to_last_follow_up (censored): \(events) events, \(patients.count - events) censored",
            clinical == nil ? "cancer type: unknown (no --clinical)" : "cancer type: clinical column \(typeColumn) (\(names.joined(separator: ", ")))",
        ]
        return ImportedCohort(layout: layout, patients: patients, notes: notes, summary: summary)
    }
}

/// The GDC clinical TSV: one or more rows per case (treatments repeat them); `'--` marks a missing value.
struct ClinicalTable {
    let path: String
    var records: [String: (type: String, survival: (days: Float, event: Bool)?)] = [:]

    init(path: String, typeColumn: String) throws {
        self.path = path
        let table = try DelimitedTable(path: path)
        let caseColumn = try table.column("case_submitter_id"), vital = try table.column("vital_status")
        let death = try table.column("days_to_death"), followUp = try table.column("days_to_last_follow_up")
        let type = try table.column(typeColumn)
        for (index, row) in table.rows.enumerated() where row.count == table.header.count {
            let place = table.place(index)
            let id = row[caseColumn]
            if records[id] != nil { continue }
            func days(_ column: Int) -> Float? { Float(row[column]) }
            let status = row[vital]
            var survival: (Float, Bool)?
            switch status {
            case "Dead": survival = days(death).map { ($0, true) }
            case "Alive": survival = days(followUp).map { ($0, false) }
            case "'--", "Not Reported", "Unknown", "": survival = nil
            default: throw CohortError(file: place, "vital_status \"\(status)\" is neither Alive nor Dead")
            }
            if let (days, _) = survival { try checkSurvival(days, "\(place): case \(id)") }
            records[id] = (row[type] == "'--" ? "unknown" : row[type], survival)
        }
    }
}
