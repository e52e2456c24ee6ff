import Foundation
import Tensors

/// The on-disk cohort (DESIGN §6; every field in Docs/DataFormat.md): a directory of HDF5 shards
/// plus `cohort.json`.
public enum CohortFormat {
    /// Bumped whenever a dataset, dtype or attribute changes meaning.
    public static let schemaVersion = 2
    public static let manifestName = "cohort.json"

    public static let patientID = "/patients/id"
    public static let cancerType = "/patients/cancer_type"
    public static let survivalDays = "/patients/survival_days"
    public static let event = "/patients/event"
    public static let expression = "/rna/expression"
    public static let genes = "/rna/genes"
    public static let tilePixels = "/tiles/pixels"
    public static let tilePatient = "/tiles/patient"
    public static let tileXY = "/tiles/xy"
    public static let tileLevel = "/tiles/level"
    public static let spotExpression = "/spots/expression"
    public static let spotTile = "/spots/tile"
    public static let spotXY = "/spots/xy"
    public static let truthPatientFractions = "/truth/patient_fractions"
    public static let truthTileFractions = "/truth/tile_fractions"

    /// Attribute names.
    public static let namesAttribute = "names"          // on /patients/cancer_type and /truth/*
    public static let kindAttribute = "kind"            // on /rna/expression: counts | tpm | fpkm | log | scaled
}

/// What every shard of a cohort shares: the gene list, what the expression values are, the cancer
/// type names, the tile size, whether survival is recorded, and the ground-truth names (simulator).
public struct CohortLayout: Equatable, Sendable {
    public var genes: [String]
    /// What `/rna/expression` holds: "counts", "tpm", "fpkm", "log" or "scaled".
    public var expressionKind: String
    public var cancerTypes: [String]
    /// Tile edge in pixels (nil: the cohort has no tiles).
    public var tileSize: Int?
    /// Whether `/patients/survival_days` and `/patients/event` are recorded.
    public var survival: Bool
    /// Names of the `/truth` fractions' columns (simulated cohorts only).
    public var truthNames: [String]?

    public init(genes: [String], expressionKind: String, cancerTypes: [String], tileSize: Int?, survival: Bool, truthNames: [String]? = nil) {
        (self.genes, self.expressionKind, self.cancerTypes, self.tileSize, self.survival, self.truthNames) =
            (genes, expressionKind, cancerTypes, tileSize, survival, truthNames)
    }

    public static let expressionKinds = ["counts", "tpm", "fpkm", "log", "scaled"]
}

/// `cohort.json`: what the cohort holds and where, with a SHA-256 per shard.
public struct CohortManifest: Codable, Equatable, Sendable {
    public var schemaVersion: Int
    public var name: String
    /// How the cohort was made (simulator and its arguments, or the importer and its sources).
    public var source: String
    public var genes: Int
    /// SHA-256 of the gene names joined by newlines (tells at a glance whether two cohorts share genes).
    public var genesSHA256: String
    public var expressionKind: String
    public var cancerTypes: [String]
    public var tileSize: Int?
    public var survival: Bool
    public var truth: [String]?
    public var shards: [Shard]

    public struct Shard: Codable, Equatable, Sendable {
        /// File name, relative to the cohort directory.
        public var file: String
        /// Global index of the shard's first patient, and its counts.
        public var firstPatient, patients, tiles, spots: Int
        /// Size in bytes and SHA-256 of the file as written.
        public var bytes: Int
        public var sha256: String

        enum CodingKeys: String, CodingKey {
            case file, firstPatient = "first_patient", patients, tiles, spots, bytes, sha256
        }
    }

    public var patients: Int { shards.reduce(0) { $0 + $1.patients } }
    public var tiles: Int { shards.reduce(0) { $0 + $1.tiles } }
    public var spots: Int { shards.reduce(0) { $0 + $1.spots } }

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version", name, source, genes, genesSHA256 = "genes_sha256", expressionKind = "expression_kind"
        case cancerTypes = "cancer_types", tileSize = "tile_size", survival, truth, shards
    }

    /// Problems with the numbers in `cohort.json` itself, which nothing protects (only the shards
    /// are hashed): `genes` ≥ 0, `tile_size` in 1…65536, every shard's counts ≥ 0 with totals that
    /// fit an `Int`, and each shard's `first_patient` equal to the patients of the shards before
    /// it. `CohortReader` refuses a manifest with any of them; `CohortValidator` lists them all.
    public func countProblems(path: String) -> [CohortError] {
        var problems = [CohortError]()
        func problem(_ message: String) { problems.append(CohortError(file: path, message + " (re-import or re-simulate the cohort)")) }
        if genes < 0 { problem("genes \(genes): must be ≥ 0") }
        if let tileSize, !(1...65536).contains(tileSize) { problem("tile_size \(tileSize): must be in 1…65536") }
        var before = [0, 0, 0]  // patients, tiles and spots of the shards so far
        for shard in shards {
            if shard.firstPatient != before[0] {
                problem("shard \(shard.file): first_patient \(shard.firstPatient), expected \(before[0]) (the patients of the shards before it): shards must number patients contiguously")
            }
            for (i, (name, count)) in [("patients", shard.patients), ("tiles", shard.tiles), ("spots", shard.spots)].enumerated() {
                guard count >= 0 else { problem("shard \(shard.file): \(name) \(count): counts must be ≥ 0"); continue }
                let (sum, overflow) = before[i].addingReportingOverflow(count)
                guard !overflow else { problem("shard \(shard.file): \(name) \(count): the cohort's total overflows"); return problems }
                before[i] = sum
            }
        }
        return problems
    }

    public static func load(from directory: URL) throws -> CohortManifest {
        let url = directory.appendingPathComponent(CohortFormat.manifestName)
        guard let data = try? Data(contentsOf: url) else {
            throw CohortError(file: url.path, "missing: is \(directory.path) a cohort directory? (make one with `transcriptile data simulate` or an importer)")
        }
        if let version = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["schema_version"] as? Int,
           version != CohortFormat.schemaVersion {
            throw CohortError(file: url.path, "schema version \(version); this build reads version \(CohortFormat.schemaVersion) — re-import or re-simulate the cohort with this version")
        }
        do {
            return try JSONDecoder().decode(CohortManifest.self, from: data)
        } catch {
            throw CohortError(file: url.path, "not a valid cohort manifest (\(decodingSummary(error))); re-import or re-simulate the cohort")
        }
    }

    /// Writes atomically (temporary file + rename), so a crash never leaves half a manifest.
    public func save(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let url = directory.appendingPathComponent(CohortFormat.manifestName)
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}

/// The contents of one shard, in memory, as written by `CohortShard.write(to:)`.
public struct CohortShard {
    public var patientIDs: [String] = []
    public var cancerTypes: [Int32] = []
    public var survivalDays: [Float] = []
    public var events: [UInt8] = []
    /// [patients × genes], row-major.
    public var expression: [Float] = []
    public var tilePixels: [UInt8] = []
    public var tilePatients: [Int32] = []
    /// [tiles × 2]: the tile's top-left pixel (x, y) at full resolution in its slide or section.
    public var tileXY: [Int32] = []
    /// The slide pyramid level each tile was read from (0: full resolution; simulated tiles: 0).
    public var tileLevels: [Int32] = []
    public var spotExpression: [Float] = []
    public var spotTiles: [Int32] = []
    public var spotXY: [Int32] = []
    public var patientFractions: [Float] = []
    public var tileFractions: [Float] = []

    public init() {}

    public var tiles: Int { tilePatients.count }
    public var spots: Int { spotTiles.count }

    /// Writes the shard as an HDF5 file (tiles one per chunk, so reading a tile reads only it).
    public func write(to path: String, layout: CohortLayout) throws {
        let file = try HDF5File.create(path)
        let p = patientIDs.count, g = layout.genes.count
        try file.writeStrings(CohortFormat.patientID, patientIDs)
        try file.write(CohortFormat.cancerType, cancerTypes, shape: [p])
        try file.setAttribute(CohortFormat.cancerType, CohortFormat.namesAttribute, strings: layout.cancerTypes)
        if layout.survival {
            try file.write(CohortFormat.survivalDays, survivalDays, shape: [p])
            try file.write(CohortFormat.event, events, shape: [p])
        }
        try file.write(CohortFormat.expression, expression, shape: [p, g], chunk: [min(max(p, 1), 64), max(g, 1)])
        try file.setAttribute(CohortFormat.expression, CohortFormat.kindAttribute, layout.expressionKind)
        try file.writeStrings(CohortFormat.genes, layout.genes)
        if let tileSize = layout.tileSize {
            let t = tiles
            try file.write(CohortFormat.tilePixels, tilePixels, shape: [t, tileSize, tileSize, 3], chunk: [1, tileSize, tileSize, 3])
            try file.write(CohortFormat.tilePatient, tilePatients, shape: [t])
            try file.write(CohortFormat.tileXY, tileXY, shape: [t, 2])
            try file.write(CohortFormat.tileLevel, tileLevels, shape: [t])
        }
        if spots > 0 {
            try file.write(CohortFormat.spotExpression, spotExpression, shape: [spots, spotExpression.count / spots])
            try file.write(CohortFormat.spotTile, spotTiles, shape: [spots])
            try file.write(CohortFormat.spotXY, spotXY, shape: [spots, 2])
        }
        if let truthNames = layout.truthNames {
            let k = truthNames.count
            try file.write(CohortFormat.truthPatientFractions, patientFractions, shape: [p, k])
            try file.setAttribute(CohortFormat.truthPatientFractions, CohortFormat.namesAttribute, strings: truthNames)
            try file.write(CohortFormat.truthTileFractions, tileFractions, shape: [tiles, k])
            try file.setAttribute(CohortFormat.truthTileFractions, CohortFormat.namesAttribute, strings: truthNames)
        }
    }
}
