import Cohorts
import Foundation
import Models
import Plotting
import Tensors

/// RNA-CDM's claims made measurable on a simulated cohort, whose truth says what each patient's
/// tissue holds. Tiles are generated through the whole cascade up to this stage (the
/// `lower_stage` companions), read by the frozen `fraction_regressor`, and compared with the
/// patients' true fractions and real tiles.
extension DiffusionTask {
    /// How much the evaluation generates beyond `model.evaluation_patients` and
    /// `model.evaluation_steps` (fixed, so that the figures of two runs compare).
    enum EvaluationSize {
        static let tilesPerPatient = 3, editPatients = 6, editTiles = 2, pretrainingPatients = 32
        static let guidance = 3.0
        /// Marker genes per cell type, and how much an edit multiplies their counts.
        static let markers = 10, editFactor: Float = 4
    }

    /// The stages from the base up to this one.
    var cascadeTasks: [DiffusionTask] { (lowerStage?.cascadeTasks ?? []) + [self] }

    /// Generated tiles (RGB bytes at the regressor's size) from RNA `profiles` (one row per
    /// tile), tile i from key (seed 0, sample `first + i`); smaller tiles are upsampled bilinearly.
    func generate(profiles: [Float], count: Int, first: Int, regressorSize: Int, _ what: String, progress: (String) -> Void) throws -> [UInt8] {
        let tasks = cascadeTasks
        let cascade = DiffusionCascade(stages: tasks.map { .init(denoiser: $0.denoiser, schedule: $0.schedule) }, kind: .ddpm,
                                       steps: config.evaluationSteps, guidance: EvaluationSize.guidance)
        if let mismatch = cascade.mismatch { throw TrainingError.plan("companions.lower_stage: \(mismatch)") }
        let keys = (0..<count).map { RandomKey(seed: 0, stream: RandomStream.step, sample: UInt32(first + $0)) }
        let latents = tasks.map { Tensor(shape: [count, $0.latentDim], values: $0.encoder.encode(profiles: profiles).mean) }
        let stages = cascade.stages.count
        let tiles = cascade.sample(latents: latents, tileKeys: keys) { stage, done in
            progress("painting \(what): stage \(stage + 1)/\(stages), \(Int(done))/\(count) tiles")
        }
        return Self.bytes(resized(tiles, to: regressorSize))
    }

    /// [n, 3, s, s] → [n, 3, S, S] (bilinear; S a multiple of s, checked before training).
    private func resized(_ tiles: Tensor, to size: Int) -> Tensor {
        let side = tiles.shape[2]
        return side == size ? tiles : tiles.upsampleBilinear(size / side)
    }

    /// Real tiles as the cascade would see them: averaged down to this stage's size, then back
    /// up to the regressor's (so generated and real tiles lose the same detail).
    func realAtStageSize(_ pixels: [UInt8], regressorSize: Int) -> [UInt8] {
        let full = Self.pixelScale.tensor(pixels[...], size: prepared.tileSize)
        let factor = prepared.tileSize / config.imageSize
        let stage = factor == 1 ? full : full.averagePool(kernel: factor, stride: factor)
        return Self.bytes(resized(stage, to: regressorSize))
    }

    /// [n, 3, s, s] in [−1, 1] → RGB bytes [n × s × s × 3].
    public static func bytes(_ tiles: Tensor) -> [UInt8] {
        let (n, size) = (tiles.shape[0], tiles.shape[2]), plane = size * size, values = tiles.floats
        var out = [UInt8](repeating: 0, count: n * plane * 3)
        for tile in 0..<n {
            for p in 0..<plane {
                for c in 0..<3 { out[(tile * plane + p) * 3 + c] = UInt8(min(max(((values[(tile * 3 + c) * plane + p] + 1) * 127.5).rounded(), 0), 255)) }
            }
        }
        return out
    }

    /// The evaluation (with a `fraction_regressor`), on up to `model.evaluation_patients` target
    /// patients; see Docs/Models.md for what each figure means.
    public func finalEvaluation(_ set: EvaluationSet, into directory: URL) throws -> [String: Double] {
        guard let regressor, !set.targetPatients.isEmpty, config.evaluationPatients > 0 else { return [:] }
        guard let truth = try set.target.truthFractions(), truth.names == regressor.cellTypes else {
            throw TrainingError.unsuitableCohort("\(set.target.directory.path) has no /truth fractions of the regressor's cell types (\(regressor.cellTypes.joined(separator: ", "))); the diffusion evaluation needs a simulated cohort")
        }
        let size = regressor.prepared.tileSize, bytes = size * size * 3, k = truth.names.count
        guard size % config.imageSize == 0, set.target.manifest.tileSize == prepared.tileSize else {
            throw TrainingError.unsuitableCohort("the fraction regressor reads \(size) px tiles; this stage makes \(config.imageSize) px ones, which must divide it, from a cohort of \(prepared.tileSize) px tiles")
        }
        let patients = Array(set.targetPatients.prefix(config.evaluationPatients)), n = EvaluationSize.tilesPerPatient
        let genes = encoder.genes.count
        let profiles = try set.target.expression(patients)
        /// Each row of `rows` (profiles [rows × genes]) `times` times over.
        func repeated(_ rows: [Float], _ times: Int) -> [Float] {
            stride(from: 0, to: rows.count, by: genes).flatMap { start in Array(repeating: rows[start..<(start + genes)], count: times).joined() }
        }
        let generated = try generate(profiles: repeated(profiles, n),
                                     count: patients.count * n, first: 0, regressorSize: size, "test patients' tiles", progress: set.progress)
        let owners = try set.target.tilePatients()
        var realTiles = [[Int]](repeating: [], count: patients.count)
        let position = Dictionary(uniqueKeysWithValues: patients.enumerated().map { ($1, $0) })
        for tile in try set.target.samples(.tile, of: patients) { if let p = position[owners[tile]] { realTiles[p].append(tile) } }
        let real = realAtStageSize(try realTiles.joined().flatMap { try set.target.tile($0) }, regressorSize: size)
        let (generatedFractions, generatedFeatures) = regressor.predict(generated)
        let (realFractions, realFeatures) = regressor.predict(real)

        // 1. Fractions: per patient, the mean over its tiles against its true fractions.
        let truthRows = patients.flatMap { truth.patients[($0 * k)..<(($0 + 1) * k)] }
        func perPatient(_ fractions: [Float], counts: [Int]) -> [Float] {
            var out = [Float](), start = 0
            for count in counts {
                out += (0..<k).map { c in (0..<count).reduce(Float(0)) { $0 + fractions[(start + $1) * k + c] } / Float(max(1, count)) }
                start += count
            }
            return out
        }
        let generatedMeans = perPatient(generatedFractions, counts: Array(repeating: n, count: patients.count))
        let realMeans = perPatient(realFractions, counts: realTiles.map(\.count))
        var figures: [String: Double] = [
            "patients": Double(patients.count), "generated_tiles": Double(patients.count * n),
            "fraction_correlation": LatentMetrics.columnCorrelations(generatedMeans, truthRows, columns: 1)[0],
            "fraction_correlation_real": LatentMetrics.columnCorrelations(realMeans, truthRows, columns: 1)[0],
        ]
        for (name, r) in zip(truth.names, LatentMetrics.columnCorrelations(generatedMeans, truthRows, columns: k)) { figures["fraction_correlation.\(name)"] = r }
        for (name, r) in zip(truth.names, LatentMetrics.columnCorrelations(realMeans, truthRows, columns: k)) { figures["fraction_correlation_real.\(name)"] = r }

        // 2. Fréchet distance in the regressor's feature space, and real against real.
        let w = regressor.featureWidth, half = realTiles.prefix(patients.count / 2).reduce(0) { $0 + $1.count }
        figures["frechet_distance"] = FrechetDistance.squared(generatedFeatures, realFeatures, dimension: w)
        figures["frechet_floor"] = FrechetDistance.squared(Array(realFeatures[..<(half * w)]), Array(realFeatures[(half * w)...]), dimension: w)

        // 3. Editing: raise one cell type's marker genes; the same noise, so only the RNA differs.
        let markers = try markerGenes(set, truth: truth)
        let editPatients = Array(patients.prefix(EvaluationSize.editPatients)), m = EvaluationSize.editTiles
        let editProfiles = Array(profiles[..<(editPatients.count * genes)])
        func tiles(of profiles: [Float]) throws -> (pixels: [UInt8], fractions: [Float]) {
            let generated = try generate(profiles: repeated(profiles, m),
                                         count: editPatients.count * m, first: 1 << 20, regressorSize: size, "edited RNA's tiles", progress: set.progress)
            return (generated, regressor.predict(generated).fractions)
        }
        let (original, before) = try tiles(of: editProfiles)
        var strip = [ImageGrid.Tile(width: size, height: size, pixels: Array(original[..<bytes]), caption: "as measured")]
        var effects = [Double](), offTarget = [Double]()
        for (type, name) in truth.names.enumerated() {
            var edited = editProfiles
            for p in editPatients.indices { for g in markers[type] { edited[p * genes + g] *= EvaluationSize.editFactor } }
            let (pixels, after) = try tiles(of: edited)
            strip.append(.init(width: size, height: size, pixels: Array(pixels[..<bytes]), caption: "\(name) ×\(Int(EvaluationSize.editFactor))"))
            let deltas = (0..<k).map { c in stride(from: c, to: after.count, by: k).reduce(0.0) { $0 + Double(after[$1] - before[$1]) } / Double(after.count / k) }
            figures["edit_effect.\(name)"] = deltas[type]
            effects.append(deltas[type])
            offTarget.append((0..<k).filter { $0 != type }.reduce(0.0) { $0 + abs(deltas[$1]) } / Double(k - 1))
        }
        figures["edit_effect"] = effects.reduce(0, +) / Double(k)
        figures["edit_off_target"] = offTarget.reduce(0, +) / Double(k)
        try ImageGrid(title: "One tile of \(try set.target.patientIDs()[editPatients[0]]), its RNA edited (the same noise)", tiles: strip,
                      columns: strip.count, cellSize: 96).write(to: directory.appendingPathComponent("editing"))
        // 4. Pretraining a tile classifier on tiles painted from training patients' RNA.
        let types = try set.target.cancerTypes(), referenceTypes = try set.reference.cancerTypes()
        let painted = Array(set.referencePatients.prefix(EvaluationSize.pretrainingPatients))
        let paintedTiles = try generate(profiles: repeated(try set.reference.expression(painted), n),
                                        count: painted.count * n, first: 1 << 21, regressorSize: size, "training patients' tiles", progress: set.progress)
        let sharePatients = set.referencePatients.enumerated().filter { $0.offset % 10 == 5 }.map(\.element)
        let referenceOwners = try set.reference.tilePatients()
        let shareTiles = try set.reference.samples(.tile, of: sharePatients)
        let share = SyntheticPretraining.Tiles(pixels: realAtStageSize(try shareTiles.flatMap { try set.reference.tile($0) }, regressorSize: size),
                                               labels: shareTiles.map { referenceTypes[referenceOwners[$0]] })
        let test = SyntheticPretraining.Tiles(pixels: real, labels: realTiles.indices.flatMap { p in Array(repeating: types[patients[p]], count: realTiles[p].count) })
        let classes = max(referenceTypes.max() ?? 0, types.max() ?? 0) + 1
        if !share.labels.isEmpty, classes >= 2 {
            let accuracy = SyntheticPretraining.measure(generated: .init(pixels: paintedTiles, labels: painted.flatMap { Array(repeating: referenceTypes[$0], count: n) }),
                                                        share: share, test: test, size: size, classes: classes, seed: 1) { done, total in
                set.progress("training tile classifiers: step \(done)/\(total)")
            }
            figures["pretraining_accuracy_scratch"] = accuracy.scratch
            figures["pretraining_accuracy_pretrained"] = accuracy.pretrained
            figures["pretraining_gain"] = accuracy.pretrained - accuracy.scratch
            figures["pretraining_share_tiles"] = Double(share.labels.count)
        }
        try panel(generated: generated, real: real, realCounts: realTiles.map(\.count), ids: try set.target.patientIDs(), patients: patients, size: size, into: directory)
        return figures
    }

    /// Per cell type, the `EvaluationSize.markers` genes whose log expression correlates most
    /// with the true fraction of that type over the reference (training) patients.
    func markerGenes(_ set: EvaluationSet, truth: (names: [String], patients: [Float], tiles: [Float])) throws -> [[Int]] {
        let reference = Array(set.referencePatients.prefix(1000)), genes = encoder.genes.count, k = truth.names.count
        let expression = try set.reference.expression(reference).map { log1p(max($0, 0)) }
        guard let referenceTruth = try set.reference.truthFractions() else { return Array(repeating: [], count: k) }
        let fractions = reference.flatMap { referenceTruth.patients[($0 * k)..<(($0 + 1) * k)] }
        return (0..<k).map { type in
            let target = stride(from: type, to: fractions.count, by: k).map { fractions[$0] }
            let r = (0..<genes).map { g in
                LatentMetrics.columnCorrelations(stride(from: g, to: expression.count, by: genes).map { expression[$0] }, target, columns: 1)[0]
            }
            return r.indices.filter { !r[$0].isNaN }.sorted { r[$0] > r[$1] }.prefix(EvaluationSize.markers).map { $0 }
        }
    }

    /// `samples.png`/`.svg`: per patient (up to 6), its real tiles (as this stage sees them) and
    /// generated ones.
    private func panel(generated: [UInt8], real: [UInt8], realCounts: [Int], ids: [String], patients: [Int], size: Int, into directory: URL) throws {
        let bytes = size * size * 3, n = EvaluationSize.tilesPerPatient
        var tiles = [ImageGrid.Tile](), realStart = 0
        for (p, patient) in patients.enumerated() {
            defer { realStart += realCounts[p] }
            guard p < 6 else { continue }
            for i in 0..<n {
                let pixels = i < realCounts[p] ? Array(real[((realStart + i) * bytes)..<((realStart + i + 1) * bytes)]) : [UInt8](repeating: 255, count: bytes)
                tiles.append(.init(width: size, height: size, pixels: pixels, caption: i == 0 ? "\(ids[patient]) real" : ""))
            }
            for i in 0..<n {
                tiles.append(.init(width: size, height: size, pixels: Array(generated[((p * n + i) * bytes)..<((p * n + i + 1) * bytes)]), caption: i == 0 ? "generated" : ""))
            }
        }
        try ImageGrid(title: "Real tiles and tiles painted from the same patients' RNA", tiles: tiles, columns: 2 * n, cellSize: 72)
            .write(to: directory.appendingPathComponent("samples"))
    }
}
