import Foundation

/// What `transcriptile data inspect` reports: counts per cancer type, survival, tiles per
/// patient, expression range, and a contact sheet of sample tiles.
public struct CohortSummary {
    public let manifest: CohortManifest
    public var patientsPerType: [Int]
    public var events = 0
    public var medianFollowUp: Float?
    public var tilesPerPatient: (min: Int, median: Int, max: Int)?
    public var genePreview: [String]
    /// Median library size (sum of a row) over up to 256 patients.
    public var medianRowSum: Float?

    public init(reader: CohortReader) throws {
        manifest = reader.manifest
        let types = try reader.cancerTypes()
        patientsPerType = manifest.cancerTypes.indices.map { t in types.filter { $0 == t }.count }
        if let survival = try reader.survival() {
            events = survival.events.filter { $0 }.count
            medianFollowUp = median(survival.days)
        }
        if manifest.tiles > 0 {
            var counts = [Int](repeating: 0, count: reader.patients)
            for patient in try reader.tilePatients() { counts[patient] += 1 }  // in range: the reader checks
            counts.sort()
            if let least = counts.first, let most = counts.last { tilesPerPatient = (least, counts[counts.count / 2], most) }
        }
        genePreview = Array(try reader.genes().prefix(6))
        if manifest.genes > 0 {
            let sample = Array(stride(from: 0, to: reader.patients, by: max(1, reader.patients / 256)))
            let rows = try reader.expression(sample)
            medianRowSum = median(sample.indices.map { i in rows[(i * manifest.genes)..<((i + 1) * manifest.genes)].reduce(0, +) })
        }
    }

    /// Human-readable lines.
    public var lines: [String] {
        var lines = ["cohort \(manifest.name) (schema \(manifest.schemaVersion)), made by: \(manifest.source)"]
        lines.append("patients: \(manifest.patients) in \(manifest.shards.count) shard(s), \(ByteCountFormatter.string(fromByteCount: Int64(manifest.shards.reduce(0) { $0 + $1.bytes }), countStyle: .file))")
        let types = zip(manifest.cancerTypes, patientsPerType).map { "\($0) \($1)" }
        lines.append("cancer types: \(types.prefix(12).joined(separator: ", "))\(types.count > 12 ? ", … (\(types.count))" : "")")
        if manifest.genes > 0 {
            lines.append("genes: \(manifest.genes) (\(manifest.expressionKind)): \(genePreview.joined(separator: ", "))\(manifest.genes > genePreview.count ? ", …" : "")"
                + (medianRowSum.map { String(format: "; median row sum %.4g", $0) } ?? ""))
        } else {
            lines.append("genes: none (a tile-only cohort)")
        }
        if manifest.survival {
            lines.append("survival: \(events) events, \(manifest.patients - events) censored" + (medianFollowUp.map { String(format: ", median time %.0f days", $0) } ?? ""))
        } else {
            lines.append("survival: not recorded")
        }
        if let t = tilesPerPatient, let size = manifest.tileSize {
            lines.append("tiles: \(manifest.tiles) of \(size)×\(size) px; per patient min \(t.min), median \(t.median), max \(t.max)")
        } else {
            lines.append("tiles: none")
        }
        if manifest.spots > 0 { lines.append("spots: \(manifest.spots)") }
        if let truth = manifest.truth { lines.append("ground truth: fractions of \(truth.joined(separator: ", "))") }
        return lines
    }
}

private func median(_ values: [Float]) -> Float? {
    guard !values.isEmpty else { return nil }
    return values.sorted()[values.count / 2]
}
