import Foundation

/// Read access to a cohort: patients are numbered globally in shard order, tiles likewise.
/// Shards open lazily, read-only and without file locking (safe on shared file systems). Not
/// thread-safe: give each thread its own reader.
public final class CohortReader {
    public let directory: URL
    public let manifest: CohortManifest
    private var files: [HDF5File?]
    private let tileStarts: [Int], spotStarts: [Int]

    /// Opens the cohort's `cohort.json`; refuses one whose counts or patient numbering are
    /// broken (`CohortManifest.countProblems`). The shards are checked only by `CohortValidator`.
    public init(directory: URL) throws {
        self.directory = directory
        manifest = try CohortManifest.load(from: directory)
        if let problem = manifest.countProblems(path: directory.appendingPathComponent(CohortFormat.manifestName).path).first { throw problem }
        files = Array(repeating: nil, count: manifest.shards.count)
        tileStarts = manifest.shards.reduce(into: [0]) { $0.append($0.last! + $1.tiles) }
        spotStarts = manifest.shards.reduce(into: [0]) { $0.append($0.last! + $1.spots) }
    }

    public var patients: Int { manifest.patients }
    public var tiles: Int { manifest.tiles }
    public var spots: Int { manifest.spots }

    func file(_ shard: Int) throws -> HDF5File {
        if let file = files[shard] { return file }
        let file = try HDF5File.open(directory.appendingPathComponent(manifest.shards[shard].file).path)
        files[shard] = file
        return file
    }

    /// The shard holding a global patient index, and the patient's row in it; throws for an
    /// index outside the cohort (e.g. a split saved for an earlier version of it).
    public func locate(patient: Int) throws -> (shard: Int, row: Int) {
        guard patient >= 0, patient < patients, let shard = manifest.shards.lastIndex(where: { $0.firstPatient <= patient }) else {
            throw outside("patient", patient, patients)
        }
        return (shard, patient - manifest.shards[shard].firstPatient)
    }

    /// The shard holding a global tile index, and the tile's row in it; throws for an index
    /// outside the cohort.
    public func locate(tile: Int) throws -> (shard: Int, row: Int) {
        guard tile >= 0, tile < tiles, let shard = tileStarts.lastIndex(where: { $0 <= tile }) else { throw outside("tile", tile, tiles) }
        return (shard, tile - tileStarts[shard])
    }

    /// The shard holding a global spot index, and the spot's row in it; throws for an index
    /// outside the cohort.
    public func locate(spot: Int) throws -> (shard: Int, row: Int) {
        guard spot >= 0, spot < spots, let shard = spotStarts.lastIndex(where: { $0 <= spot }) else { throw outside("spot", spot, spots) }
        return (shard, spot - spotStarts[shard])
    }

    /// An error for an index outside the cohort, naming its `cohort.json`.
    private func outside(_ kind: String, _ index: Int, _ count: Int) -> CohortError {
        CohortError(file: directory.appendingPathComponent(CohortFormat.manifestName).path,
                    "\(kind) \(index) is outside 0..<\(count): the index does not belong to this cohort (was it re-made with fewer \(kind)s?)")
    }

    /// An error for a block read from a shard whose size disagrees with `cohort.json`.
    private func mismatch(_ shard: Int, _ dataset: String, row: Int, _ message: String) -> CohortError {
        CohortError(file: directory.appendingPathComponent(manifest.shards[shard].file).path, dataset: dataset, row: row,
                    message + ": run `transcriptile data validate` on the cohort")
    }

    /// A per-patient dataset concatenated over all shards.
    private func concatenated<T>(_ read: (HDF5File) throws -> [T]) throws -> [T] {
        try manifest.shards.indices.flatMap { try read(file($0)) }
    }

    public func patientIDs() throws -> [String] { try concatenated { try $0.readStrings(CohortFormat.patientID) } }
    public func cancerTypes() throws -> [Int] { try concatenated { try $0.read(CohortFormat.cancerType, as: Int32.self) }.map(Int.init) }
    public func genes() throws -> [String] { manifest.shards.isEmpty ? [] : try file(0).readStrings(CohortFormat.genes) }

    /// Survival days and events of every patient (nil when the cohort records no survival).
    public func survival() throws -> (days: [Float], events: [Bool])? {
        guard manifest.survival else { return nil }
        return (try concatenated { try $0.read(CohortFormat.survivalDays, as: Float.self) },
                try concatenated { try $0.read(CohortFormat.event, as: UInt8.self) }.map { $0 == 1 })
    }

    /// The simulator's ground truth (nil for a cohort without it): the fractions' names and the
    /// cell-type fractions of every patient [patients × names] and of every tile [tiles × names].
    public func truthFractions() throws -> (names: [String], patients: [Float], tiles: [Float])? {
        guard let names = manifest.truth, !names.isEmpty else { return nil }
        let (patientRows, tileRows) = (try concatenated { try $0.read(CohortFormat.truthPatientFractions, as: Float.self) },
                                       try concatenated { try $0.read(CohortFormat.truthTileFractions, as: Float.self) })
        for (dataset, values, rows) in [(CohortFormat.truthPatientFractions, patientRows, patients), (CohortFormat.truthTileFractions, tileRows, tiles)] {
            guard values.count == rows * names.count, values.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw CohortError(file: directory.path, dataset: dataset, row: 0,
                                  "holds \(values.count) values for \(rows) rows of \(names.count) fractions, or a negative or non-finite one: run `transcriptile data validate` on the cohort")
            }
        }
        return (names, patientRows, tileRows)
    }

    /// The global patient index of every tile; throws for a tile pointing outside its shard.
    public func tilePatients() throws -> [Int] {
        try manifest.shards.indices.flatMap { shard in
            let owners = try file(shard).read(CohortFormat.tilePatient, as: Int32.self), count = manifest.shards[shard].patients
            if let row = owners.firstIndex(where: { $0 < 0 || Int($0) >= count }) {
                throw mismatch(shard, CohortFormat.tilePatient, row: row, "tile points at patient \(owners[row]); this shard has patients 0..<\(count)")
            }
            return owners.map { Int($0) + manifest.shards[shard].firstPatient }
        }
    }

    /// The global tile index of every spot; throws for a spot pointing outside its shard.
    public func spotTiles() throws -> [Int] {
        try manifest.shards.indices.flatMap { shard -> [Int] in
            guard manifest.shards[shard].spots > 0 else { return [] }
            let tiles = try file(shard).read(CohortFormat.spotTile, as: Int32.self), count = manifest.shards[shard].tiles
            if let row = tiles.firstIndex(where: { $0 < 0 || Int($0) >= count }) {
                throw mismatch(shard, CohortFormat.spotTile, row: row, "spot points at tile \(tiles[row]); this shard has tiles 0..<\(count)")
            }
            return tiles.map { Int($0) + tileStarts[shard] }
        }
    }

    /// Expression rows of `patients` (any order), [patients × genes]. Consecutive patients of a
    /// shard are read with one hyperslab.
    public func expression(_ patients: [Int]) throws -> [Float] {
        try rows(patients, of: CohortFormat.expression, locate: locate(patient:))
    }

    /// Expression rows of `spots` (any order), [spots × genes], read like `expression`.
    public func spotExpression(_ spots: [Int]) throws -> [Float] {
        try rows(spots, of: CohortFormat.spotExpression, locate: locate(spot:))
    }

    /// Rows of a [rows × genes] dataset at global indices, each run of consecutive rows in one
    /// shard read with one hyperslab.
    private func rows(_ indices: [Int], of dataset: String, locate: (Int) throws -> (shard: Int, row: Int)) throws -> [Float] {
        let g = manifest.genes
        var out = [Float](repeating: 0, count: indices.count * g)
        var i = 0
        while i < indices.count {
            let (shard, row) = try locate(indices[i])
            var run = 1
            while i + run < indices.count, indices[i + run] == indices[i] + run, try locate(indices[i + run]).shard == shard { run += 1 }
            let block = try file(shard).readRows(dataset, row..<(row + run), as: Float.self)
            guard block.count == run * g else {
                throw mismatch(shard, dataset, row: row, "rows of \(block.count / run) values, cohort.json says \(g) genes")
            }
            out.replaceSubrange((i * g)..<((i + run) * g), with: block)
            i += run
        }
        return out
    }

    /// The pixels of one tile, [size × size × 3] (reads only that tile's chunk).
    public func tile(_ index: Int) throws -> [UInt8] {
        let (shard, row) = try locate(tile: index)
        let pixels = try file(shard).readRows(CohortFormat.tilePixels, row..<(row + 1), as: UInt8.self)
        let size = manifest.tileSize ?? 0  // ≤ 65536 (countProblems), so the product fits
        guard pixels.count == size * size * 3 else {
            throw mismatch(shard, CohortFormat.tilePixels, row: row, "\(pixels.count) bytes per tile, cohort.json's tile_size \(size) needs \(size * size * 3)")
        }
        return pixels
    }

    /// Tile `index` with its full-resolution position and pyramid level, as an importer record.
    public func tileRecord(_ index: Int) throws -> TileRecord {
        let (shard, row) = try locate(tile: index)
        let size = manifest.tileSize ?? 0
        let xy = try file(shard).readRows(CohortFormat.tileXY, row..<(row + 1), as: Int32.self)
        let level = try file(shard).readRows(CohortFormat.tileLevel, row..<(row + 1), as: Int32.self)
        guard xy.count == 2, level.count == 1 else {
            throw mismatch(shard, CohortFormat.tileXY, row: row, "\(xy.count) coordinates and \(level.count) levels for one tile, expected 2 and 1")
        }
        return TileRecord(image: RGBImage(width: size, height: size, pixels: try tile(index)), x: Int(xy[0]), y: Int(xy[1]), level: Int(level[0]))
    }

    /// The layout shared by every shard.
    public func layout() throws -> CohortLayout {
        CohortLayout(genes: try genes(), expressionKind: manifest.expressionKind, cancerTypes: manifest.cancerTypes,
                     tileSize: manifest.tileSize, survival: manifest.survival, truthNames: manifest.truth)
    }

    /// Every patient as an importer record (expression, survival; tiles too when `withTiles`).
    /// Only for a cohort that passed `CohortValidator`: the per-patient datasets are indexed by
    /// the rows of the IDs, which the validator checks they all have.
    public func patientRecords(withTiles: Bool) throws -> [PatientRecord] {
        let ids = try patientIDs(), types = try cancerTypes(), survival = try survival()
        let expression = try self.expression(Array(0..<patients))
        var records = ids.indices.map { p in
            PatientRecord(id: ids[p], cancerType: types[p], survivalDays: survival?.days[p] ?? 0, event: survival?.events[p] ?? false,
                          expression: Array(expression[(p * manifest.genes)..<((p + 1) * manifest.genes)]))
        }
        if withTiles {
            for (tile, patient) in try tilePatients().enumerated() { records[patient].tiles.append(try tileRecord(tile)) }
        }
        return records
    }
}
