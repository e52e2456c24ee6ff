import Foundation

/// AnnData `.h5ad` files: each observation (cell or sample) becomes a row of `/rna/expression`.
/// Reads both the current on-disk spec (groups with `encoding-type`; `obs`/`var` as groups of
/// columns with an `_index` attribute; categoricals as `categories` + `codes`) and the legacy
/// layout that scanpy ≤ 1.4 wrote (compound `obs`/`var` tables, `raw.X` with `h5sparse_format`,
/// categories in `uns/<column>_categories`). `X` may be dense or CSR/CSC sparse.
public enum AnnDataImport {
    /// Which matrix to import: the main `X` or the unprocessed `raw/X`.
    public enum Matrix: String, CaseIterable, Sendable { case x = "X", raw }

    public static func read(path: String, matrix: Matrix, typeColumn: String?, kind: String, cancerType: String) throws -> ImportedCohort {
        try ExpressionKind.checkName(kind, file: path)
        let file = try HDF5File.open(path)
        let legacy = !file.isGroup("/obs") && file.exists("/obs")
        let (matrixPath, varPath): (String, String) = switch (matrix, legacy) {
        case (.x, _): ("/X", "/var")
        case (.raw, false): ("/raw/X", "/raw/var")
        case (.raw, true): ("/raw.X", "/raw.var")
        }
        guard file.exists(matrixPath) else {
            throw CohortError(file: path, dataset: matrixPath, "missing: this file has no \(matrix == .raw ? "raw matrix (use --matrix X)" : "X matrix")")
        }
        let cells = try index(file, "/obs")
        let genes = try index(file, varPath)
        let values = try denseMatrix(file, matrixPath, rows: cells.count, columns: genes.count)
        var labels = [String](repeating: cancerType, count: cells.count)
        if let typeColumn { labels = try column(file, typeColumn, legacy: legacy, count: cells.count) }
        let (names, codes) = categoriesInOrder(labels)
        // Which other matrix might hold what this one does not: said in every refusal of a value.
        let otherPath = matrix == .x ? (legacy ? "/raw.X" : "/raw/X") : "/X"
        let hint = switch (matrix, file.exists(otherPath)) {
        case (.x, true): "; this file also has \(otherPath): pass --matrix raw if it holds the counts"
        case (.raw, _): "; scanpy files often keep log-normalised values in \(matrixPath) (then pass --kind log)"
        case (.x, false): ""
        }
        var patients = [PatientRecord]()
        for row in cells.indices {
            let expression = Array(values[(row * genes.count)..<((row + 1) * genes.count)])
            try ExpressionKind.check(expression, kind: kind, place: { CohortError(file: path, dataset: matrixPath, row: row, "at gene \(genes[$0]) (var index \($0)) of observation \(cells[row])") },
                                     hint: { _ in hint })
            patients.append(PatientRecord(id: cells[row], cancerType: codes[row], expression: expression))
        }
        let tally = Dictionary(grouping: labels, by: { $0 }).mapValues(\.count)
        let summary = [
            "genes: \(genes.count) var names of \(varPath) (values of \(matrixPath), --matrix \(matrix.rawValue)) — \(ExpressionKind.describe(kind))",
            "patients: \(cells.count) observations (IDs from the obs index)",
            "survival: none (AnnData files carry none)",
            typeColumn.map { "cancer type: obs column \($0) (\(names.prefix(8).map { "\($0) \(tally[$0] ?? 0)" }.joined(separator: ", "))\(names.count > 8 ? ", …" : ""))" }
                ?? "cancer type: \(cancerType) for every observation (--cancer-type; --type-column takes it from an obs column)",
        ]
        return ImportedCohort(layout: CohortLayout(genes: genes, expressionKind: kind, cancerTypes: names, tileSize: nil, survival: false),
                              patients: patients, summary: summary)
    }

    /// The row names of an `obs`/`var` table: the `_index` column of a group, or the `index`
    /// field of a legacy compound table.
    static func index(_ file: HDF5File, _ table: String) throws -> [String] {
        guard file.exists(table) else { throw CohortError(file: file.path, dataset: table, "missing: not an AnnData file?") }
        if file.isGroup(table) {
            let name = try file.stringAttribute(table, "_index")?.first ?? "_index"
            return try file.readStrings("\(table)/\(name)")
        }
        return try file.readStringField(table, "index")
    }

    /// The matrix as dense row-major floats [rows × columns].
    static func denseMatrix(_ file: HDF5File, _ name: String, rows: Int, columns: Int) throws -> [Float] {
        guard file.isGroup(name) else {
            let info = try file.info(name)
            guard info.shape == [rows, columns] else {
                throw CohortError(file: file.path, dataset: name, "shape \(info.shape), expected [\(rows), \(columns)] (obs × var)")
            }
            return try file.read(name, as: Float.self, converting: true)
        }
        let encoding = try file.stringAttribute(name, "encoding-type")?.first ?? (try file.stringAttribute(name, "h5sparse_format")?.first).map { "\($0)_matrix" }
        let shape = try file.integerAttribute(name, "shape") ?? file.integerAttribute(name, "h5sparse_shape")
        guard shape == [rows, columns] else {
            throw CohortError(file: file.path, dataset: name, "sparse shape \(shape.map { "\($0)" } ?? "missing"), expected [\(rows), \(columns)] (obs × var)")
        }
        let data = try file.read("\(name)/data", as: Float.self, converting: true)
        let indices = try file.read("\(name)/indices", as: Int64.self, converting: true)
        let pointers = try file.read("\(name)/indptr", as: Int64.self, converting: true)
        let (major, minor, transposed): (Int, Int, Bool) = switch encoding {
        case "csr_matrix": (rows, columns, false)
        case "csc_matrix": (columns, rows, true)
        default: throw CohortError(file: file.path, dataset: name, "sparse encoding \(encoding ?? "missing"): expected csr_matrix or csc_matrix")
        }
        guard pointers.count == major + 1, pointers.last.map(Int.init) == data.count, indices.count == data.count else {
            throw CohortError(file: file.path, dataset: "\(name)/indptr", "\(pointers.count) pointers ending at \(pointers.last ?? -1) for \(major) rows and \(data.count) values: the sparse matrix is inconsistent")
        }
        if let outer = (0..<major).first(where: { pointers[$0] > pointers[$0 + 1] }) ?? (pointers.first == 0 ? nil : -1) {
            let detail = outer < 0 ? "the first pointer is \(pointers[0]), not 0" : "pointer \(outer + 1) (\(pointers[outer + 1])) is below pointer \(outer) (\(pointers[outer]))"
            throw CohortError(file: file.path, dataset: "\(name)/indptr", row: max(outer, 0), "\(detail): pointers must rise from 0 to the number of values; the sparse matrix is corrupt")
        }
        var dense = [Float](repeating: 0, count: rows * columns)
        for outer in 0..<major {
            for k in Int(pointers[outer])..<Int(pointers[outer + 1]) {
                let inner = Int(indices[k])
                guard (0..<minor).contains(inner) else {
                    throw CohortError(file: file.path, dataset: "\(name)/indices", row: k, "index \(inner) outside 0..<\(minor)")
                }
                dense[transposed ? inner * columns + outer : outer * columns + inner] = data[k]
            }
        }
        return dense
    }

    /// An `obs` column as strings, one per observation: a categorical (codes + categories; code
    /// −1 is missing), or a string column. Throws if its length is not `count`.
    static func column(_ file: HDF5File, _ name: String, legacy: Bool, count: Int) throws -> [String] {
        let (dataset, labels) = legacy ? try legacyColumn(file, name) : try currentColumn(file, name)
        guard labels.count == count else {
            throw CohortError(file: file.path, dataset: dataset, "\(labels.count) values for \(count) observations: the column and the obs index disagree (re-export the file)")
        }
        return labels
    }

    /// A column of a legacy compound `obs` table (categorical when `uns/<name>_categories` exists).
    private static func legacyColumn(_ file: HDF5File, _ name: String) throws -> (dataset: String, labels: [String]) {
        let fields = try file.fields("/obs")
        guard fields.contains(name) else {
            throw CohortError(file: file.path, dataset: "/obs", "has no column \"\(name)\" (columns: \(fields.joined(separator: ", ")))")
        }
        guard file.exists("/uns/\(name)_categories") else { return ("/obs", try file.readStringField("/obs", name)) }
        let codes = try file.readField("/obs", name, as: Int32.self), categories = try file.readStrings("/uns/\(name)_categories")
        return ("/obs", try decode(codes, categories, file, "/obs"))
    }

    /// A column of a current `obs` group: a string dataset, or a categorical group.
    private static func currentColumn(_ file: HDF5File, _ name: String) throws -> (dataset: String, labels: [String]) {
        let path = "/obs/\(name)"
        guard file.exists(path) else {
            throw CohortError(file: file.path, dataset: "/obs", "has no column \"\(name)\" (columns: \(try file.members("/obs").filter { !$0.hasPrefix("_") && $0 != "__categories" }.joined(separator: ", ")))")
        }
        guard file.isGroup(path) else {
            guard try file.info(path).typeName == "string" else {
                throw CohortError(file: file.path, dataset: path, "is numeric; a cancer-type column must be categorical or strings")
            }
            return (path, try file.readStrings(path))
        }
        let codes = try file.read("\(path)/codes", as: Int32.self, converting: true), categories = try file.readStrings("\(path)/categories")
        return ("\(path)/codes", try decode(codes, categories, file, "\(path)/codes"))
    }

    /// Category names of `codes` (−1: "unknown").
    private static func decode(_ codes: [Int32], _ categories: [String], _ file: HDF5File, _ dataset: String) throws -> [String] {
        try codes.enumerated().map { row, code in
            guard code < categories.count else {
                throw CohortError(file: file.path, dataset: dataset, row: row, "category code \(code) but only \(categories.count) categories")
            }
            return code < 0 ? "unknown" : categories[Int(code)]
        }
    }
}
