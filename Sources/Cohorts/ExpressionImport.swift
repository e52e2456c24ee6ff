import Foundation

/// Patients read by an importer, ready for `CohortWriter`, plus what the importer had to skip.
public struct ImportedCohort {
    public var layout: CohortLayout
    public var patients: [PatientRecord]
    /// Human-readable notes on what was dropped or assumed (printed by the CLI).
    public var notes: [String] = []

    public init(layout: CohortLayout, patients: [PatientRecord], notes: [String] = []) {
        (self.layout, self.patients, self.notes) = (layout, patients, notes)
    }

    /// Writes the patients as a cohort (see `CohortWriter` for the all-or-nothing guarantee).
    @discardableResult
    public func write(to directory: URL, source: String, patientsPerShard: Int = 256, overwrite: Bool = false) throws -> CohortManifest {
        let writer = try CohortWriter(directory: directory, source: source, layout: layout, patientsPerShard: patientsPerShard, overwrite: overwrite)
        for patient in patients { try writer.append(patient) }
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

/// Checks that values fit the expression kind (counts, TPM and FPKM cannot be negative).
func checkKind(_ kind: String, _ values: [Float], _ place: String) throws {
    guard CohortLayout.expressionKinds.contains(kind) else {
        throw CohortError(file: place, "expression kind \"\(kind)\" is not one of \(CohortLayout.expressionKinds)")
    }
    if kind != "log" && kind != "scaled", let gene = values.firstIndex(where: { $0 < 0 }) {
        throw CohortError(file: place, "value \(values[gene]) in column \(gene + 1) is negative, impossible for \(kind): pass --kind log or --kind scaled if the values are transformed")
    }
}

/// `days` if it is a usable survival time (finite and ≥ 0); otherwise an error naming `place`.
@discardableResult
func checkSurvival(_ days: Float, _ place: String) throws -> Float {
    guard days.isFinite, days >= 0 else { throw CohortError(file: place, "survival time \(days) days: must be finite and ≥ 0 (correct the source)") }
    return days
}

/// Samples × genes tables (CSV or TSV, e.g. the Khan microarray files): one row per sample, one
/// column per gene, an optional first column of sample IDs (an empty or "id" header cell, or a
/// header one field shorter than the rows, as R writes it), and an optional labels file with one
/// cancer type per row in the same order.
public enum ExpressionTableImport {
    public static func read(tables: [(values: String, labels: String?)], kind: String) throws -> ImportedCohort {
        var genes: [String]?, patients = [PatientRecord](), labels = [String]()
        for (path, labelPath) in tables {
            let table = try DelimitedTable(path: path)
            guard !table.rows.isEmpty else { throw CohortError(file: path, "has a header but no samples: nothing to import") }
            let width = table.rows.first?.count ?? table.header.count
            let hasIDs = table.header.count == width - 1 || ["", "id", "sample", "sample_id"].contains(table.header[0].lowercased())
            let names = table.header.count == width - 1 ? table.header : Array(table.header.dropFirst(hasIDs ? 1 : 0))
            guard !names.isEmpty else { throw CohortError(file: path, "has no gene columns (only \(table.header.count) column(s)): a samples × genes table needs at least one gene") }
            if let genes, genes != names {
                throw CohortError(file: path, "lists \(names.count) genes that differ from \(tables[0].values)'s \(genes.count): every table must have the same gene columns in the same order")
            }
            genes = names
            var tableLabels = [String]()
            if let labelPath {
                let labelTable = try DelimitedTable(path: labelPath)
                tableLabels = labelTable.rows.map { $0.last?.trimmingCharacters(in: .whitespaces) ?? "" }
                guard tableLabels.count == table.rows.count else {
                    throw CohortError(file: labelPath, "has \(tableLabels.count) labels for the \(table.rows.count) samples of \(path)")
                }
            }
            let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            for row in table.rows.indices {
                guard table.rows[row].count == width else {
                    throw CohortError(file: table.place(row), "has \(table.rows[row].count) fields, the first row has \(width)")
                }
                let offset = hasIDs ? 1 : 0
                let values = try (offset..<width).map { try table.number(row, $0) }
                try checkKind(kind, values, table.place(row))
                let id = hasIDs ? table.rows[row][0] : String(format: "%@-%04d", stem, row + 1)
                patients.append(PatientRecord(id: id, cancerType: 0, expression: values))
                labels.append(labelPath == nil ? "unknown" : tableLabels[row])
            }
        }
        let (names, codes) = categoriesInOrder(labels)
        for i in patients.indices { patients[i].cancerType = codes[i] }
        return ImportedCohort(layout: CohortLayout(genes: genes ?? [], expressionKind: kind, cancerTypes: names, tileSize: nil, survival: false),
                              patients: patients)
    }
}

/// Weka ARFF files (e.g. GSE7390 from scikit-survival): numeric attributes become genes, except
/// the survival time/event, the cancer-type attribute and any listed in `exclude` (clinical
/// covariates such as age); nominal attributes other than those are ignored.
public enum ARFFImport {
    public static func read(path: String, timeAttribute: String?, eventAttribute: String?, typeAttribute: String?,
                            exclude: Set<String>, cancerType: String, kind: String) throws -> ImportedCohort {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CohortError(file: path, "cannot be read as UTF-8 text") }
        var attributes = [(name: String, numeric: Bool)](), dataLines = [(line: Int, text: Substring)](), inData = false
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("%") { continue }
            if inData { dataLines.append((number + 1, Substring(line))); continue }
            let lower = line.lowercased()
            if lower.hasPrefix("@attribute") {
                let rest = line.dropFirst("@attribute".count).trimmingCharacters(in: .whitespaces)
                let name: String, type: String
                if rest.hasPrefix("'") || rest.hasPrefix("\"") {
                    let quote = rest.first!, body = rest.dropFirst()
                    guard let close = body.firstIndex(of: quote) else { throw CohortError(file: "\(path):\(number + 1)", "unterminated attribute name") }
                    (name, type) = (String(body[..<close]), body[body.index(after: close)...].trimmingCharacters(in: .whitespaces))
                } else {
                    let parts = rest.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                    guard parts.count == 2 else { throw CohortError(file: "\(path):\(number + 1)", "attribute line without a type: \(line)") }
                    (name, type) = (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces))
                }
                attributes.append((name, ["numeric", "real", "integer"].contains(type.lowercased())))
            } else if lower.hasPrefix("@data") {
                inData = true
            }
        }
        guard inData else { throw CohortError(file: path, "has no @data section: not an ARFF file?") }
        guard !dataLines.isEmpty else { throw CohortError(file: path, "has an empty @data section: nothing to import") }
        func index(_ name: String?) throws -> Int? {
            guard let name else { return nil }
            guard let i = attributes.firstIndex(where: { $0.name == name }) else {
                throw CohortError(file: path, "has no attribute \"\(name)\" (attributes: \(attributes.prefix(10).map(\.name).joined(separator: ", ")), …)")
            }
            return i
        }
        let time = try index(timeAttribute), event = try index(eventAttribute), type = try index(typeAttribute)
        guard (time == nil) == (event == nil) else { throw CohortError(file: path, "give both the time and the event attribute, or neither") }
        for name in exclude { _ = try index(name) }
        let special = Set([time, event, type].compactMap { $0 })
        let geneColumns = attributes.indices.filter { attributes[$0].numeric && !special.contains($0) && !exclude.contains(attributes[$0].name) }
        guard !geneColumns.isEmpty else { throw CohortError(file: path, "no numeric attributes left to use as genes") }

        var patients = [PatientRecord](), labels = [String]()
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        for (line, text) in dataLines {
            let fields = text.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            }
            guard fields.count == attributes.count else {
                throw CohortError(file: "\(path):\(line)", "has \(fields.count) values for \(attributes.count) attributes")
            }
            func number(_ column: Int) throws -> Float {
                guard let value = Float(fields[column]), value.isFinite else {
                    throw CohortError(file: "\(path):\(line)", "attribute \(attributes[column].name): \"\(fields[column])\" is not a finite number (missing values '?' are not allowed in genes or survival)")
                }
                return value
            }
            let expression = try geneColumns.map(number)
            try checkKind(kind, expression, "\(path):\(line)")
            var patient = PatientRecord(id: String(format: "%@-%04d", stem, patients.count + 1), cancerType: 0, expression: expression)
            if let time, let event {
                patient.survivalDays = try checkSurvival(try number(time), "\(path):\(line)")
                let e = fields[event]
                guard e == "0" || e == "1" else { throw CohortError(file: "\(path):\(line)", "event attribute \(attributes[event].name) is \"\(e)\": must be 0 or 1") }
                patient.event = e == "1"
            }
            patients.append(patient)
            labels.append(type.map { fields[$0] } ?? cancerType)
        }
        let (names, codes) = categoriesInOrder(labels)
        for i in patients.indices { patients[i].cancerType = codes[i] }
        let layout = CohortLayout(genes: geneColumns.map { attributes[$0].name }, expressionKind: kind, cancerTypes: names,
                                  tileSize: nil, survival: time != nil)
        return ImportedCohort(layout: layout, patients: patients)
    }
}

/// TCGA/GDC STAR gene-count files (one TSV per sample: gene_id, gene_name, gene_type, unstranded,
/// stranded_first, stranded_second, tpm_unstranded, fpkm_unstranded, fpkm_uq_unstranded, with the
/// `N_*` summary rows first), the GDC sample sheet that maps file names to cases, and optionally
/// the GDC clinical TSV (vital_status, days_to_death, days_to_last_follow_up, the cancer-type column).
public enum GDCStarImport {
    /// The value column each expression kind reads.
    public static let valueColumns = ["counts": "unstranded", "tpm": "tpm_unstranded", "fpkm": "fpkm_unstranded"]

    public static func read(files: [String], sampleSheet: String, clinical: String?, kind: String, typeColumn: String) throws -> ImportedCohort {
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
        for path in files {
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
            try checkKind(kind, values, path)

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
        return ImportedCohort(layout: layout, patients: patients, notes: notes)
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
