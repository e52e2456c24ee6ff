import Crypto
import Foundation

/// One patient as an importer hands it to `CohortWriter`.
public struct PatientRecord: Sendable {
    public var id: String
    /// Index into the layout's cancer types.
    public var cancerType: Int
    public var survivalDays: Float = 0
    public var event = false
    /// One value per gene of the layout.
    public var expression: [Float]
    public var tiles: [TileRecord] = []

    public init(id: String, cancerType: Int, survivalDays: Float = 0, event: Bool = false, expression: [Float], tiles: [TileRecord] = []) {
        (self.id, self.cancerType, self.survivalDays, self.event, self.expression, self.tiles) = (id, cancerType, survivalDays, event, expression, tiles)
    }
}

/// One tile of a patient, with an optional spatial spot measured on it.
public struct TileRecord: Sendable {
    public var image: RGBImage
    public var x: Int, y: Int
    public var level = 0
    /// The spot's expression (one value per gene of the layout) and its centre in section pixels.
    public var spot: (expression: [Float], x: Int, y: Int)?

    public init(image: RGBImage, x: Int, y: Int, level: Int = 0, spot: (expression: [Float], x: Int, y: Int)? = nil) {
        (self.image, self.x, self.y, self.level, self.spot) = (image, x, y, level, spot)
    }
}

/// Writes a cohort shard by shard into a staging directory beside the target, then swaps it into
/// place with `cohort.json` (each shard's size and SHA-256) written last. A failed or interrupted
/// import therefore never touches an existing cohort, and a cohort directory with a manifest is
/// always complete.
public final class CohortWriter {
    public let directory: URL
    public let layout: CohortLayout
    public let patientsPerShard: Int
    private let name: String, source: String
    private let staging: URL
    private var pending = CohortShard()
    private var shards: [CohortManifest.Shard] = []
    private var finished = false

    /// Fails if `directory` already holds a cohort and `overwrite` is false.
    public init(directory: URL, source: String, layout: CohortLayout, patientsPerShard: Int = 256, overwrite: Bool = false) throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory.appendingPathComponent(CohortFormat.manifestName).path) && !overwrite {
            throw CohortError(file: directory.path, "already holds a cohort; pass --overwrite to replace it")
        }
        guard patientsPerShard > 0 else { throw CohortError(file: directory.path, "patients per shard must be ≥ 1") }
        guard CohortLayout.expressionKinds.contains(layout.expressionKind) else {
            throw CohortError(file: directory.path, "expression kind \"\(layout.expressionKind)\" is not one of \(CohortLayout.expressionKinds)")
        }
        (self.directory, self.layout, self.patientsPerShard, self.source) = (directory, layout, patientsPerShard, source)
        name = directory.standardizedFileURL.lastPathComponent
        staging = directory.deletingLastPathComponent().appendingPathComponent(".\(name).partial-\(getpid())")
        try? manager.removeItem(at: staging)
        try manager.createDirectory(at: staging, withIntermediateDirectories: true)
    }

    deinit {
        if !finished { try? FileManager.default.removeItem(at: staging) }
    }

    public var patientsWritten: Int { shards.last.map { $0.firstPatient + $0.patients } ?? 0 }

    /// Buffers a patient; a full shard goes to disk.
    public func append(_ patient: PatientRecord) throws {
        guard patient.expression.count == layout.genes.count else {
            throw CohortError(file: directory.path, row: patientsWritten + pending.patientIDs.count,
                              "patient \(patient.id) has \(patient.expression.count) expression values for \(layout.genes.count) genes")
        }
        guard layout.cancerTypes.indices.contains(patient.cancerType) else {
            throw CohortError(file: directory.path, "patient \(patient.id): cancer type \(patient.cancerType) is not one of \(layout.cancerTypes.count)")
        }
        let local = Int32(pending.patientIDs.count)
        pending.patientIDs.append(patient.id)
        pending.cancerTypes.append(Int32(patient.cancerType))
        pending.survivalDays.append(patient.survivalDays)
        pending.events.append(patient.event ? 1 : 0)
        pending.expression += patient.expression
        for tile in patient.tiles {
            guard let size = layout.tileSize, tile.image.width == size, tile.image.height == size else {
                throw CohortError(file: directory.path, "patient \(patient.id): a \(tile.image.width)×\(tile.image.height) tile in a cohort of \(layout.tileSize.map { "\($0)×\($0)" } ?? "no") tiles")
            }
            if let spot = tile.spot {
                pending.spotExpression += spot.expression
                pending.spotTiles.append(Int32(pending.tiles))
                pending.spotXY += [Int32(spot.x), Int32(spot.y)]
            }
            pending.tilePixels += tile.image.pixels
            pending.tilePatients.append(local)
            pending.tileXY += [Int32(tile.x), Int32(tile.y)]
            pending.tileLevels.append(Int32(tile.level))
        }
        if pending.patientIDs.count == patientsPerShard { try flush() }
    }

    /// Writes a whole shard at once (its patients follow those written so far).
    public func write(_ shard: CohortShard) throws {
        try flush()
        try writeShard(shard)
    }

    private func flush() throws {
        guard !pending.patientIDs.isEmpty else { return }
        try writeShard(pending)
        pending = CohortShard()
    }

    private func writeShard(_ shard: CohortShard) throws {
        let file = String(format: "shard-%05d.h5", shards.count)
        let url = staging.appendingPathComponent(file)
        try shard.write(to: url.path, layout: layout)
        let (bytes, digest) = try Self.sha256(of: url)
        shards.append(.init(file: file, firstPatient: patientsWritten, patients: shard.patientIDs.count, tiles: shard.tiles,
                            spots: shard.spots, bytes: bytes, sha256: digest))
    }

    /// Writes the last shard and the manifest, then moves the cohort into place (replacing an
    /// existing one only now, when the new one is complete).
    @discardableResult
    public func finish() throws -> CohortManifest {
        try flush()
        guard !shards.isEmpty else { throw CohortError(file: directory.path, "no patients to write: nothing was imported") }
        let manifest = CohortManifest(
            schemaVersion: CohortFormat.schemaVersion, name: name, source: source, genes: layout.genes.count,
            genesSHA256: Self.sha256(layout.genes.joined(separator: "\n")), expressionKind: layout.expressionKind,
            cancerTypes: layout.cancerTypes, tileSize: layout.tileSize, survival: layout.survival, truth: layout.truthNames, shards: shards)
        try manifest.save(to: staging)
        let manager = FileManager.default
        if manager.fileExists(atPath: directory.path) {
            let old = directory.deletingLastPathComponent().appendingPathComponent(".\(name).old-\(getpid())")
            try manager.moveItem(at: directory, to: old)
            try manager.moveItem(at: staging, to: directory)
            try manager.removeItem(at: old)
        } else {
            try manager.moveItem(at: staging, to: directory)
        }
        finished = true
        return manifest
    }

    /// Size and hex SHA-256 of a file, read in 4 MiB blocks.
    public static func sha256(of url: URL) throws -> (bytes: Int, hex: String) {
        guard let handle = try? FileHandle(forReadingFrom: url) else { throw CohortError(file: url.path, "cannot be opened for reading") }
        defer { try? handle.close() }
        var hasher = SHA256(), bytes = 0
        while let block = try handle.read(upToCount: 4 << 20), !block.isEmpty {
            hasher.update(data: block)
            bytes += block.count
        }
        return (bytes, hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
