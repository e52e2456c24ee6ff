import Foundation
import Tensors

/// Synthetic tissue in which RNA, image and outcome share causes (the demo data and the yardstick
/// of every model). Each patient has cell-type fractions drawn per cancer type; bulk RNA is a
/// signature matrix times the fractions with count noise whose variance is μ + φμ²; tiles are
/// H&E-like images whose nuclei follow tile fractions scattered around the patient's; survival
/// follows a Cox model on the fractions, with censoring. Deterministic for a seed: every draw is
/// keyed by (seed, purpose, patient or tile).
public struct TissueSimulator: Sendable {
    public static let cellTypes = ["tumour", "lymphocyte", "stroma", "necrosis"]

    public var patients: Int
    public var cancerTypes: Int
    public var genes: Int
    public var tilesPerPatient: Int
    public var tileSize: Int
    public var spots: Bool
    public var seed: UInt64
    /// Negative-binomial dispersion φ of bulk counts.
    public var dispersion = 0.15

    public init(patients: Int, cancerTypes: Int = 3, genes: Int = 1000, tilesPerPatient: Int = 8,
                tileSize: Int = 64, spots: Bool = false, seed: UInt64 = 0) {
        (self.patients, self.cancerTypes, self.genes, self.tilesPerPatient, self.tileSize, self.spots, self.seed) =
            (patients, cancerTypes, genes, tilesPerPatient, tileSize, spots, seed)
    }

    private func key(_ stream: RandomStream.Simulation, _ index: Int) -> RandomKey {
        RandomKey(seed: seed, stream: stream.rawValue, step: UInt32(truncatingIfNeeded: index >> 32), sample: UInt32(truncatingIfNeeded: index))
    }

    public var geneNames: [String] { (0..<genes).map { "SIM\($0)" } }
    public var cancerTypeNames: [String] { (0..<cancerTypes).map { "TYPE\($0)" } }

    /// log expression of each gene in each cell type [K × G]: a shared baseline plus marker genes
    /// (one tenth of the genes per cell type, +2.5 log-fold).
    var signature: [[Double]] {
        let z = key(.signature, 0).normal(genes * (Self.cellTypes.count + 1))
        return (0..<Self.cellTypes.count).map { k in
            (0..<genes).map { g in
                let marker = g % (2 * Self.cellTypes.count) == 2 * k ? 2.5 : 0
                return 1 + 1.2 * z[g] + 0.3 * z[genes * (k + 1) + g] + marker
            }
        }
    }

    /// Cancer-type gene programs [C × G]: one gene in twenty shifted by ±1 log-fold per type.
    var programs: [[Double]] {
        let z = key(.program, 0).normal(genes * cancerTypes)
        return (0..<cancerTypes).map { c in (0..<genes).map { g in g % 20 == 3 + c % 17 ? (z[c * genes + g] > 0 ? 1 : -1) : 0 } }
    }

    /// Mean fractions per cancer type: type c leans toward cell type c mod K.
    func meanFractions(_ type: Int) -> [Double] {
        var base = [0.35, 0.2, 0.35, 0.1]
        base[type % 4] += 0.35
        if type >= 4 { base[(type + 1) % 4] += 0.2 }
        let total = base.reduce(0, +)
        return base.map { $0 / total }
    }

    public var layout: CohortLayout {
        CohortLayout(genes: geneNames, expressionKind: "counts", cancerTypes: cancerTypeNames, tileSize: tileSize, survival: true,
                     truthNames: Self.cellTypes)
    }

    public var source: String {
        "transcriptile data simulate --patients \(patients) --cancer-types \(cancerTypes) --genes \(genes) "
            + "--tiles-per-patient \(tilesPerPatient) --tile-size \(tileSize) --seed \(seed)\(spots ? " --spots" : "")"
    }

    /// Writes the cohort into `directory` in shards of `patientsPerShard`, calling `progress` with
    /// (patients written, patients) after each shard.
    public func write(to directory: URL, patientsPerShard: Int = 256, overwrite: Bool = false,
                      progress: ((Int, Int) -> Void)? = nil) throws -> CohortManifest {
        let writer = try CohortWriter(directory: directory, source: source, layout: layout, patientsPerShard: patientsPerShard, overwrite: overwrite)
        let signature = self.signature, programs = self.programs
        for first in stride(from: 0, to: patients, by: patientsPerShard) {
            let range = first..<min(patients, first + patientsPerShard)
            try writer.write(makeShard(range, signature, programs))
            progress?(range.upperBound, patients)
        }
        return try writer.finish()
    }

    /// The contents of the shard holding patients `range` (as `write` makes them).
    public func shard(_ range: Range<Int>) -> CohortShard { makeShard(range, signature, programs) }

    func makeShard(_ range: Range<Int>, _ signature: [[Double]], _ programs: [[Double]]) -> CohortShard {
        var shard = CohortShard()
        for patient in range {
            let type = patient % cancerTypes
            let fractions = dirichlet(meanFractions(type).map { $0 * 12 }, key(.fractions, patient).uniform(64))
            shard.patientIDs.append(String(format: "SIM-%06d", patient))
            shard.cancerTypes.append(Int32(type))
            shard.patientFractions += fractions.map(Float.init)
            shard.expression += counts(fractions, programs[type], signature, librarySize: 2e6, key(.expression, patient))
            let (days, event) = survival(fractions, type, key(.survival, patient).uniform(2))
            shard.survivalDays.append(Float(days))
            shard.events.append(event ? 1 : 0)
            for t in 0..<tilesPerPatient {
                let tile = patient * tilesPerPatient + t
                let local = dirichlet(fractions.map { $0 * 20 + 0.05 }, key(.tiles, 2 * tile).uniform(64))
                shard.tileFractions += local.map(Float.init)
                shard.tilePixels += TileRenderer(size: tileSize, fractions: local, draws: key(.tiles, 2 * tile + 1)).render()
                shard.tilePatients.append(Int32(patient - range.lowerBound))
                shard.tileXY += [Int32(t % 4 * tileSize), Int32(t / 4 * tileSize)]
                shard.tileLevels.append(0)
                if spots {
                    shard.spotExpression += counts(local, programs[type], signature, librarySize: 2e4, key(.spots, tile))
                    shard.spotTiles.append(Int32(shard.tilePatients.count - 1))
                    shard.spotXY += [Int32(t % 4 * tileSize + tileSize / 2), Int32(t / 4 * tileSize + tileSize / 2)]
                }
            }
        }
        return shard
    }

    /// Counts with mean μ_g ∝ Σ_k f_k e^{s_kg} · e^{program_g} and variance μ + φμ²: a gamma-like
    /// (log-normal, same mean and variance) biological factor, then Poisson sampling.
    func counts(_ fractions: [Double], _ program: [Double], _ signature: [[Double]], librarySize: Double, _ key: RandomKey) -> [Float] {
        var mean = (0..<genes).map { g in
            zip(fractions, signature).reduce(0) { $0 + $1.0 * Foundation.exp($1.1[g]) } * Foundation.exp(program[g])
        }
        let total = mean.reduce(0, +)
        let z = key.normal(2 * genes), u = key.uniform(genes)
        let sigma = (Foundation.log(1 + dispersion)).squareRoot()
        for g in 0..<genes {
            let biological = Foundation.exp(sigma * z[g] - sigma * sigma / 2)
            mean[g] = mean[g] / total * librarySize * biological
        }
        return (0..<genes).map { g in Float(poisson(mean[g], normal: z[genes + g], uniform: u[g])) }
    }

    /// Cox model on the fractions: log-hazard = 1.5·tumour + 1.0·necrosis − 2.0·lymphocyte +
    /// 0.3·type, baseline median ≈ 3 years; censoring uniform over 0.5–10 years.
    func survival(_ f: [Double], _ type: Int, _ u: [Double]) -> (Double, Bool) {
        let risk = 1.5 * f[0] + 1.0 * f[3] - 2.0 * f[1] + 0.3 * Double(type)
        let time = -Foundation.log(max(u[0], 1e-12)) / (1.0 / 1500 * Foundation.exp(risk))
        let censor = 180 + u[1] * 3470
        return (min(time, censor).rounded(), time <= censor)
    }
}

/// Dirichlet(α) from uniforms, by normalised gamma draws (Marsaglia–Tsang with α < 1 boosted).
func dirichlet(_ alpha: [Double], _ uniforms: [Double]) -> [Double] {
    var cursor = 0
    func next() -> Double { defer { cursor = (cursor + 1) % uniforms.count }; return max(uniforms[cursor], 1e-12) }
    func normal() -> Double { (-2 * Foundation.log(next())).squareRoot() * Foundation.cos(2 * .pi * next()) }
    func gamma(_ a: Double) -> Double {
        if a < 1 { return gamma(a + 1) * Foundation.pow(next(), 1 / a) }
        let d = a - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        for _ in 0..<16 {
            let x = normal(), v = Foundation.pow(1 + c * x, 3)
            if v > 0 && Foundation.log(next()) < x * x / 2 + d - d * v + d * Foundation.log(v) { return d * v }
        }
        return d
    }
    let draws = alpha.map(gamma)
    let total = draws.reduce(0, +)
    return draws.map { $0 / total }
}

/// A Poisson draw: inversion below λ = 30, a rounded normal above (error < 1 % there).
func poisson(_ lambda: Double, normal z: Double, uniform u: Double) -> Double {
    guard lambda < 30 else { return max(0, (lambda + lambda.squareRoot() * z).rounded()) }
    var p = Foundation.exp(-lambda), cumulative = p, k = 0.0
    while u > cumulative && k < 200 {
        k += 1
        p *= lambda / k
        cumulative += p
    }
    return k
}
