import Foundation

/// Checks a cohort directory against the format (Docs/DataFormat.md) and reports every problem
/// with file, dataset and row: schema version, the counts and patient numbering in `cohort.json`,
/// required datasets, dtypes, shapes, NaN/Inf and negative values in expression, gene lists equal
/// across shards, survival sanity, tiles that point at missing patients, empty shards.
public struct CohortValidator {
    public let directory: URL
    /// Expression rows read per block (bounds memory on large cohorts).
    public var rowsPerBlock = 256

    public init(directory: URL) { self.directory = directory }

    /// All problems found (empty: the cohort is valid). Throws only if `cohort.json` is unusable.
    public func validate() throws -> [CohortError] {
        let manifest = try CohortManifest.load(from: directory)
        let manifestPath = directory.appendingPathComponent(CohortFormat.manifestName).path
        var problems = manifest.countProblems(path: manifestPath)
        if manifest.shards.isEmpty { problems.append(CohortError(file: manifestPath, "lists no shards")) }
        var referenceGenes: (file: String, genes: [String])?
        var events = 0, patients = 0
        var firstSeen = [String: (file: String, row: Int)]()
        for shard in manifest.shards {
            let path = directory.appendingPathComponent(shard.file).path
            guard !shard.file.contains("/"), !shard.file.hasPrefix(".") else {
                problems.append(CohortError(file: manifestPath, "shard name \(shard.file) must be a plain file name inside the cohort"))
                continue
            }
            do {
                let (bytes, digest) = try CohortWriter.sha256(of: URL(fileURLWithPath: path))
                if bytes != shard.bytes || digest != shard.sha256 {
                    problems.append(CohortError(file: path, "\(bytes) bytes with SHA-256 \(digest.prefix(12))…, cohort.json records \(shard.bytes) bytes, \(shard.sha256.prefix(12))…: the file changed after it was written (copy it again from the source, or re-import)"))
                }
                let result = try validateShard(path, shard, manifest)
                problems += result.problems
                events += result.events
                patients += result.patients
                for (row, id) in result.ids.enumerated() {
                    if let first = firstSeen[id] {
                        problems.append(CohortError(file: path, dataset: CohortFormat.patientID, row: row,
                                                    "patient ID \"\(id)\" already used by \(first.file) row \(first.row): IDs must be unique (re-import with distinct IDs)"))
                    } else {
                        firstSeen[id] = (shard.file, row)
                    }
                }
                if let genes = result.genes {
                    if let reference = referenceGenes, reference.genes != genes {
                        let row = zip(reference.genes, genes).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(reference.genes.count, genes.count)
                        problems.append(CohortError(file: path, dataset: CohortFormat.genes, row: row,
                            "gene list differs from \(reference.file) (\(genes.count) vs \(reference.genes.count) genes) — every shard must list the same genes in the same order"))
                    } else if referenceGenes == nil {
                        referenceGenes = (shard.file, genes)
                        if let (row, gene) = firstDuplicate(genes) {
                            problems.append(CohortError(file: path, dataset: CohortFormat.genes, row: row, "gene \"\(gene)\" is listed twice: gene names must be unique (re-import, merging or renaming duplicates)"))
                        }
                    }
                }
            } catch let error as CohortError {
                problems.append(error)
            }
        }
        if manifest.survival && patients > 0 && events == 0 {
            problems.append(CohortError(file: manifestPath, dataset: CohortFormat.event, "no events in the whole cohort: survival models cannot learn from it"))
        }
        return problems
    }

    private struct ShardResult { var problems: [CohortError] = []; var genes: [String]?; var ids: [String] = []; var events = 0; var patients = 0 }

    private func validateShard(_ path: String, _ shard: CohortManifest.Shard, _ manifest: CohortManifest) throws -> ShardResult {
        let file = try HDF5File.open(path)
        var result = ShardResult()
        func problem(_ dataset: String?, row: Int? = nil, _ message: String) {
            result.problems.append(CohortError(file: path, dataset: dataset, row: row, message))
        }
        /// Checks presence, dtype and shape (nil entries are free); returns the info if usable.
        func expect(_ name: String, _ type: String, _ shape: [Int?]) -> DatasetInfo? {
            guard file.exists(name) else { problem(name, "missing dataset (required by schema \(CohortFormat.schemaVersion))"); return nil }
            let info: DatasetInfo
            do { info = try file.info(name) } catch {
                result.problems.append(error as? CohortError ?? CohortError(file: path, dataset: name, "unreadable (truncated or corrupt?)"))
                return nil
            }
            guard info.typeName == type else { problem(name, "stored as \(info.typeName), expected \(type)"); return nil }
            let matches = info.shape.count == shape.count && zip(info.shape, shape).allSatisfy { $1 == nil || $0 == $1 }
            guard matches else {
                problem(name, "shape \(info.shape), expected \(shape.map { $0.map(String.init) ?? "*" })")
                return nil
            }
            return info
        }

        guard let ids = expect(CohortFormat.patientID, "string", [nil]) else { return result }
        let p = ids.shape[0]
        result.patients = p
        if p == 0 { problem(CohortFormat.patientID, "empty shard: no patients") }
        if p != shard.patients { problem(CohortFormat.patientID, "\(p) patients, cohort.json says \(shard.patients)") }
        result.ids = try file.readStrings(CohortFormat.patientID)
        if expect(CohortFormat.cancerType, "int32", [p]) != nil {
            let types = try file.read(CohortFormat.cancerType, as: Int32.self)
            if let row = types.firstIndex(where: { $0 < 0 || Int($0) >= manifest.cancerTypes.count }) {
                problem(CohortFormat.cancerType, row: row, "cancer type \(types[row]) is not one of the \(manifest.cancerTypes.count) listed in cohort.json")
            }
        }
        if manifest.survival, expect(CohortFormat.survivalDays, "float32", [p]) != nil {
            let days = try file.read(CohortFormat.survivalDays, as: Float.self)
            if let row = days.firstIndex(where: { !($0 >= 0) || !$0.isFinite }) {
                problem(CohortFormat.survivalDays, row: row, "survival time \(days[row]) days: must be finite and ≥ 0")
            }
        }
        if manifest.survival, expect(CohortFormat.event, "uint8", [p]) != nil {
            let events = try file.read(CohortFormat.event, as: UInt8.self)
            if let row = events.firstIndex(where: { $0 > 1 }) { problem(CohortFormat.event, row: row, "event \(events[row]): must be 0 (censored) or 1 (event)") }
            result.events = events.filter { $0 == 1 }.count
        }
        if expect(CohortFormat.genes, "string", [manifest.genes]) != nil {
            result.genes = try file.readStrings(CohortFormat.genes)
        }
        if expect(CohortFormat.expression, "float32", [p, manifest.genes]) != nil {
            for start in stride(from: 0, to: p, by: rowsPerBlock) {
                let rows = start..<min(p, start + rowsPerBlock)
                let block = try file.readRows(CohortFormat.expression, rows, as: Float.self)
                if let i = block.firstIndex(where: { !$0.isFinite }) {
                    problem(CohortFormat.expression, row: start + i / manifest.genes, "\(block[i]) at gene \(i % manifest.genes): expression must be finite")
                    break
                }
                if manifest.expressionKind != "scaled" && manifest.expressionKind != "log", let i = block.firstIndex(where: { $0 < 0 }) {
                    problem(CohortFormat.expression, row: start + i / manifest.genes, "negative \(manifest.expressionKind) \(block[i]) at gene \(i % manifest.genes)")
                    break
                }
            }
        }
        if let size = manifest.tileSize {
            if let pixels = expect(CohortFormat.tilePixels, "uint8", [shard.tiles, size, size, 3]) {
                let t = pixels.shape[0]
                if expect(CohortFormat.tilePatient, "int32", [t]) != nil {
                    let owners = try file.read(CohortFormat.tilePatient, as: Int32.self)
                    if let row = owners.firstIndex(where: { $0 < 0 || Int($0) >= p }) {
                        problem(CohortFormat.tilePatient, row: row, "tile points at patient \(owners[row]); this shard has patients 0..<\(p)")
                    }
                }
                _ = expect(CohortFormat.tileXY, "int32", [t, 2])
                _ = expect(CohortFormat.tileLevel, "int32", [t])
            }
        } else if shard.tiles > 0 || file.exists(CohortFormat.tilePixels) {
            problem(CohortFormat.tilePixels, "the shard has tiles but cohort.json gives no tile_size")
        }
        if shard.spots > 0 || file.exists(CohortFormat.spotExpression) {
            if let spots = expect(CohortFormat.spotExpression, "float32", [shard.spots, manifest.genes]) {
                let values = try file.read(CohortFormat.spotExpression, as: Float.self)
                if let i = values.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                    problem(CohortFormat.spotExpression, row: i / max(manifest.genes, 1), "\(values[i]) at gene \(i % max(manifest.genes, 1)): spot counts must be finite and ≥ 0")
                }
                if expect(CohortFormat.spotTile, "int32", [spots.shape[0]]) != nil {
                    let tiles = try file.read(CohortFormat.spotTile, as: Int32.self)
                    if let row = tiles.firstIndex(where: { $0 < 0 || Int($0) >= shard.tiles }) {
                        problem(CohortFormat.spotTile, row: row, "spot points at tile \(tiles[row]); this shard has tiles 0..<\(shard.tiles)")
                    }
                }
                _ = expect(CohortFormat.spotXY, "int32", [spots.shape[0], 2])
            }
        }
        return result
    }
}
