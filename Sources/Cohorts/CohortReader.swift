import Foundation

/// Read access to a cohort: patients are numbered globally in shard order, tiles likewise.
/// Shards open lazily, read-only and without file locking (safe on shared file systems). Not
/// thread-safe: give each thread its own reader.
public final class CohortReader {
    public let directory: URL
    public let manifest: CohortManifest
    private var files: [HDF5File?]
    private let tileStarts: [Int]

    public init(directory: URL) throws {
        self.directory = directory
        manifest = try CohortManifest.load(from: directory)
        files = Array(repeating: nil, count: manifest.shards.count)
        tileStarts = manifest.shards.reduce(into: [0]) { $0.append($0.last! + $1.tiles) }
    }

    public var patients: Int { manifest.patients }
    public var tiles: Int { manifest.tiles }

    func file(_ shard: Int) throws -> HDF5File {
        if let file = files[shard] { return file }
        let file = try HDF5File.open(directory.appendingPathComponent(manifest.shards[shard].file).path)
        files[shard] = file
        return file
    }

    /// The shard holding a global patient index, and the patient's row in it.
    public func locate(patient: Int) -> (shard: Int, row: Int) {
        precondition((0..<patients).contains(patient), "patient \(patient) outside 0..<\(patients)")
        let shard = manifest.shards.lastIndex { $0.firstPatient <= patient }!
        return (shard, patient - manifest.shards[shard].firstPatient)
    }

    /// The shard holding a global tile index, and the tile's row in it.
    public func locate(tile: Int) -> (shard: Int, row: Int) {
        precondition((0..<tiles).contains(tile), "tile \(tile) outside 0..<\(tiles)")
        let shard = tileStarts.lastIndex { $0 <= tile && $0 < tileStarts.last! }!
        return (shard, tile - tileStarts[shard])
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

    /// The global patient index of every tile.
    public func tilePatients() throws -> [Int] {
        try manifest.shards.indices.flatMap { shard in
            try file(shard).read(CohortFormat.tilePatient, as: Int32.self).map { Int($0) + manifest.shards[shard].firstPatient }
        }
    }

    /// Expression rows of `patients` (any order), [patients × genes]. Consecutive patients of a
    /// shard are read with one hyperslab.
    public func expression(_ patients: [Int]) throws -> [Float] {
        let g = manifest.genes
        var out = [Float](repeating: 0, count: patients.count * g)
        var i = 0
        while i < patients.count {
            let (shard, row) = locate(patient: patients[i])
            var run = 1
            while i + run < patients.count, patients[i + run] == patients[i] + run, locate(patient: patients[i + run]).shard == shard { run += 1 }
            let block = try file(shard).readRows(CohortFormat.expression, row..<(row + run), as: Float.self)
            out.replaceSubrange((i * g)..<((i + run) * g), with: block)
            i += run
        }
        return out
    }

    /// The pixels of one tile, [size × size × 3] (reads only that tile's chunk).
    public func tile(_ index: Int) throws -> [UInt8] {
        let (shard, row) = locate(tile: index)
        return try file(shard).readRows(CohortFormat.tilePixels, row..<(row + 1), as: UInt8.self)
    }

    /// Tile `index` with its full-resolution position and pyramid level, as an importer record.
    public func tileRecord(_ index: Int) throws -> TileRecord {
        let (shard, row) = locate(tile: index)
        let size = manifest.tileSize ?? 0
        let xy = try file(shard).readRows(CohortFormat.tileXY, row..<(row + 1), as: Int32.self)
        let level = try file(shard).readRows(CohortFormat.tileLevel, row..<(row + 1), as: Int32.self)
        return TileRecord(image: RGBImage(width: size, height: size, pixels: try tile(index)), x: Int(xy[0]), y: Int(xy[1]), level: Int(level[0]))
    }

    /// The layout shared by every shard.
    public func layout() throws -> CohortLayout {
        CohortLayout(genes: try genes(), expressionKind: manifest.expressionKind, cancerTypes: manifest.cancerTypes,
                     tileSize: manifest.tileSize, survival: manifest.survival, truthNames: manifest.truth)
    }

    /// Every patient as an importer record (expression, survival; tiles too when `withTiles`).
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
