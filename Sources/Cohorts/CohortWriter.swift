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
    private let overwrite: Bool
    private var pending = CohortShard()
    private var shards: [CohortManifest.Shard] = []
    private var finished = false
    private var patientIDs = Set<String>()

    /// Fails (before any work) unless `directory` is new, an empty directory, or — with
    /// `overwrite` — a cohort holding nothing but the cohort's own files (see `checkTarget`).
    public init(directory: URL, source: String, layout: CohortLayout, patientsPerShard: Int = 256, overwrite: Bool = false) throws {
        try Self.checkTarget(directory, overwrite: overwrite)
        guard patientsPerShard > 0 else { throw CohortError(file: directory.path, "patients per shard must be ≥ 1") }
        guard CohortLayout.expressionKinds.contains(layout.expressionKind) else {
            throw CohortError(file: directory.path, "expression kind \"\(layout.expressionKind)\" is not one of \(CohortLayout.expressionKinds)")
        }
        if let (index, gene) = firstDuplicate(layout.genes) {
            throw CohortError(file: directory.path, row: index, "gene \"\(gene)\" appears twice in the source: gene names must be unique; merge or rename the duplicates first")
        }
        let target = directory.standardizedFileURL
        (self.directory, self.layout, self.patientsPerShard, self.source, self.overwrite) = (target, layout, patientsPerShard, source, overwrite)
        name = target.lastPathComponent
        staging = target.deletingLastPathComponent().appendingPathComponent(".\(name).partial-\(getpid())")
        let manager = FileManager.default
        try? manager.removeItem(at: staging)
        do { try manager.createDirectory(at: staging, withIntermediateDirectories: true) } catch {
            throw CohortError(file: staging.path, "cannot create the staging directory beside the cohort: \(error.localizedDescription)")
        }
    }

    /// The files a cohort directory may hold: its manifest, its shards, and `data inspect`'s sheet.
    static func isCohortFile(_ name: String) -> Bool {
        name == CohortFormat.manifestName || name == "contact-sheet.png" || name == "contact-sheet.svg" || (name.hasPrefix("shard-") && name.hasSuffix(".h5"))
    }

    /// Where a cohort may be written: a path that does not exist yet, an empty directory, or
    /// (with `overwrite`) a directory holding a cohort and nothing else. Anything else — a file,
    /// a directory of the user's own files, a cohort beside other files — is refused, so a
    /// writer never deletes what it did not make. Commands call this before any work.
    public static func checkTarget(_ directory: URL, overwrite: Bool) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else {
            throw CohortError(file: directory.path, "is a file, not a directory; choose a new directory for the cohort (nothing was written)")
        }
        let entries: [String]
        do { entries = try manager.contentsOfDirectory(atPath: directory.path).sorted() } catch {
            throw CohortError(file: directory.path, "cannot be listed: \(error.localizedDescription)")
        }
        if entries.isEmpty { return }
        let isCohort = entries.contains(CohortFormat.manifestName)
        let foreign = entries.filter { !isCohortFile($0) }
        guard isCohort else {
            let shown = foreign.prefix(5).joined(separator: ", ") + (foreign.count > 5 ? ", …" : "")
            throw CohortError(file: directory.path, "is not empty and holds no cohort (\(shown)); a cohort is written only into a new or empty directory — choose another --out (nothing was written or removed)")
        }
        guard overwrite else { throw CohortError(file: directory.path, "already holds a cohort; pass --overwrite to replace it") }
        guard foreign.isEmpty else {
            let shown = foreign.prefix(5).joined(separator: ", ") + (foreign.count > 5 ? ", …" : "")
            throw CohortError(file: directory.path, "holds a cohort and other files (\(shown)); --overwrite replaces only a directory holding nothing but a cohort — move those files first (nothing was written or removed)")
        }
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
        guard patientIDs.insert(patient.id).inserted else {
            throw CohortError(file: directory.path, row: patientsWritten + pending.patientIDs.count,
                              "patient ID \"\(patient.id)\" appears twice in the source: IDs must be unique (tiles and spots are attached by ID); drop or rename the duplicate")
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
        try Self.checkTarget(directory, overwrite: overwrite)  // nothing foreign appeared while importing
        let existing = try? manager.contentsOfDirectory(atPath: directory.path)
        do {
            switch existing {
            case nil:
                try manager.moveItem(at: staging, to: directory)
            case let entries? where entries.isEmpty:
                // An empty directory (perhaps the working directory) stays where it is: the
                // shards move in first, the manifest last.
                for file in shards.map(\.file) + [CohortFormat.manifestName] {
                    try manager.moveItem(at: staging.appendingPathComponent(file), to: directory.appendingPathComponent(file))
                }
                try manager.removeItem(at: staging)
            case _?:
                let old = directory.deletingLastPathComponent().appendingPathComponent(".\(name).old-\(getpid())")
                try manager.moveItem(at: directory, to: old)
                try manager.moveItem(at: staging, to: directory)
                try manager.removeItem(at: old)
            }
        } catch {
            throw CohortError(file: directory.path, "cannot move the finished cohort into place: \(error.localizedDescription)")
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

/// The first name that repeats an earlier one: its position and the name.
func firstDuplicate(_ names: [String]) -> (Int, String)? {
    var seen = Set<String>()
    for (index, name) in names.enumerated() where !seen.insert(name).inserted { return (index, name) }
    return nil
}
