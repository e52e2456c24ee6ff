import Foundation

/// Spatial transcriptomics in the ST-Net layout: per section, a counts TSV (rows are spots named
/// "XxY" by their array position, columns are genes), a spots CSV (the same spot names with
/// their pixel centre in columns X and Y) and the section's H&E image. Each section becomes a
/// patient whose bulk expression is the sum of its spots (pseudo-bulk); each spot gets the
/// window of `window` pixels around its centre as its tile (resized to `tileSize`).
public enum SpatialImport {
    public struct Section {
        public var patient: String, cancerType: String, counts: String, spots: String, image: String
        public init(patient: String, cancerType: String, counts: String, spots: String, image: String) {
            (self.patient, self.cancerType, self.counts, self.spots, self.image) = (patient, cancerType, counts, spots, image)
        }
    }

    /// `progress` is called with (sections read, sections) after each section.
    public static func read(sections: [Section], window: Int, tileSize: Int, progress: ((Int, Int) -> Void)? = nil) throws -> ImportedCohort {
        let tables = try sections.map { try DelimitedTable(path: $0.counts) }
        guard let first = tables.first else { throw CohortError(file: "--counts", "no section given: nothing to import") }
        // Genes measured in every section, in the first section's order.
        let shared = tables.dropFirst().reduce(Set(first.header.dropFirst())) { $0.intersection($1.header.dropFirst()) }
        let genes = first.header.dropFirst().filter(shared.contains)
        guard !genes.isEmpty else { throw CohortError(file: sections[0].counts, "no gene column is shared by all sections") }
        var notes = [String]()
        let dropped = Set(tables.flatMap { $0.header.dropFirst() }).count - genes.count
        if dropped > 0 { notes.append("kept the \(genes.count) genes measured in every section; dropped \(dropped) measured in only some") }

        var patients = [PatientRecord]()
        for (index, (section, table)) in zip(sections, tables).enumerated() {
            defer { progress?(index + 1, sections.count) }
            let columns = try genes.map { try table.column($0) }
            let spotTable = try DelimitedTable(path: section.spots)
            let x = try spotTable.column("X"), y = try spotTable.column("Y")
            let image = try RGBImage(contentsOf: section.image)
            var centre = [String: (Int, Int)]()
            for row in spotTable.rows.indices {
                let name = spotTable.rows[row][0], px = try spotTable.number(row, x), py = try spotTable.number(row, y)
                // Checked as floats: Int(_:) traps on values beyond Int's range.
                guard (0..<Float(image.width)).contains(px.rounded()), (0..<Float(image.height)).contains(py.rounded()) else {
                    throw CohortError(file: spotTable.place(row), "spot \(name) at (\(px), \(py)) lies outside the \(image.width)×\(image.height) "
                        + "image \(section.image): positions must be pixel coordinates inside the section's image")
                }
                centre[name] = (Int(px.rounded()), Int(py.rounded()))
            }
            var bulk = [Float](repeating: 0, count: genes.count), tiles = [TileRecord](), missing = 0
            for row in table.rows.indices {
                let name = table.rows[row][0]
                guard name.split(separator: "x").count == 2 else {
                    throw CohortError(file: table.place(row), "spot name \"\(name)\" is not of the form XxY")
                }
                guard let (cx, cy) = centre[name] else { missing += 1; continue }
                let counts = try columns.map { try table.number(row, $0) }
                try ExpressionKind.check(counts, kind: "counts", place: { CohortError(file: table.place(row), "in column \(columns[$0] + 1) (\(genes[$0])) of spot \(name)") })
                for g in counts.indices { bulk[g] += counts[g] }
                let left = cx - window / 2, top = cy - window / 2
                let tile = image.crop(x: left, y: top, width: window, height: window).resized(width: tileSize, height: tileSize)
                tiles.append(TileRecord(image: tile, x: left, y: top, spot: (counts, cx, cy)))
            }
            if missing > 0 { notes.append("\(section.patient): \(missing) spot(s) of \(section.counts) have no position in \(section.spots), skipped") }
            patients.append(PatientRecord(id: section.patient, cancerType: 0, expression: bulk, tiles: tiles))
        }
        let (names, codes) = categoriesInOrder(sections.map(\.cancerType))
        for i in patients.indices { patients[i].cancerType = codes[i] }
        let spots = patients.map(\.tiles.count).reduce(0, +)
        let summary = [
            "genes: \(genes.count) columns shared by every counts table — \(ExpressionKind.describe("counts"))",
            "patients: \(patients.count) section(s) (--patient), each with the sum of its spots as bulk expression",
            "spots: \(spots), each with the \(window)-px window around its centre as a \(tileSize)-px tile",
            "survival: none; cancer type: --cancer-type (\(names.joined(separator: ", ")))",
        ]
        return ImportedCohort(layout: CohortLayout(genes: genes, expressionKind: "counts", cancerTypes: names, tileSize: tileSize, survival: false),
                              patients: patients, notes: notes, summary: summary)
    }
}
