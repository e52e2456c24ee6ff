import ArgumentParser
import Cohorts
import Distributed
import Foundation
import Models
import Plotting
import Tensors
import Terminal
import Training

/// `transcriptile sample`: synthetic H&E tiles from RNA through a trained cascade, data-parallel
/// when started under mpirun.
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Paint H&E tiles from RNA with a trained RNA-CDM cascade (base + super-resolution runs); data-parallel under mpirun.",
        discussion: """
              transcriptile sample --base runs/demo-rna-cdm-base \\
                  --sr runs/demo-rna-cdm-sr --cohort demo-cohort \\
                  --patient SIM-000001,SIM-000002 --n 8 --out samples
              transcriptile sample --base runs/base --rna profiles.tsv \\
                  --n 4 --guidance 3 --steps 50 --out samples
              launch/mpirun -np 4 transcriptile sample --base runs/base \\
                  --cohort demo-cohort --patient SIM-000001 --n 64 --out many
            --rna reads a TSV (CSV when named .csv): a header, then one row per gene, the gene in \
            the first column and one column per profile, values as the stage-1 run's cohort \
            stores them (raw counts for a counts cohort); every gene of that run must be there. \
            Writes tiles/<profile>-<k>.png, samples.h5 (/tiles [N, S, S, 3] uint8, /profile_id, \
            /latent [N, latent], and the settings as attributes) and contact_sheet.png/.svg into \
            --out, a new or empty directory. Tile i of a request draws its noise from (--seed, i), \
            so the same command gives the same tiles on any number of ranks.
            """)

    @Option(help: "The base stage's run (rna-cdm-diffusion, stage base) or one of its checkpoints.")
    var base: String
    @Option(help: "Super-resolution runs, comma-separated, lowest resolution first.")
    var sr: String?
    @Option(help: "RNA profiles to paint (TSV or CSV; see below).")
    var rna: String?
    @Option(help: "A cohort whose patients to paint (with --patient).")
    var cohort: String?
    @Option(help: "A patient ID of --cohort (repeatable, or comma-separated).")
    var patient: [String] = []
    @Option(help: "Tiles per profile.")
    var n = 4
    @Option(help: "Classifier-free guidance scale s (1: conditional only, no guidance).")
    var guidance = 3.0
    @Option(help: "Denoising steps per stage (at most the schedule's timesteps).")
    var steps = 100
    @Option(help: "ddpm (ancestral) or ddim (deterministic).")
    var sampler = "ddpm"
    @Option(help: "Seed of the tiles' noise.")
    var seed = 1
    @Option(help: "Tiles through the network at once.")
    var batch = 16
    @Option(help: "ema or trained: which weights of every run (default: the EMA where a run kept one).")
    var weights: String?
    @Option(help: "Output directory (new or empty).")
    var out: String

    func validate() throws {
        guard (rna == nil) != (cohort == nil) else { throw ValidationError("give either --rna FILE or --cohort DIR with --patient ID") }
        guard cohort == nil || !patients.isEmpty else { throw ValidationError("--cohort needs at least one --patient ID") }
        guard rna == nil || patient.isEmpty else { throw ValidationError("--patient picks patients of --cohort; with --rna every profile of the file is painted") }
        guard (1...10_000).contains(n) else { throw ValidationError("--n must be in 1…10000 tiles per profile, got \(n)") }
        guard guidance.isFinite, (0...100).contains(guidance) else { throw ValidationError("--guidance must be in 0…100, got \(guidance)") }
        guard (1...10_000).contains(steps) else { throw ValidationError("--steps must be in 1…10000, got \(steps)") }
        guard DiffusionSampler.Kind(rawValue: sampler) != nil else { throw ValidationError("--sampler must be ddpm or ddim, got '\(sampler)'") }
        guard seed >= 0 else { throw ValidationError("--seed must be 0 or more, got \(seed)") }
        guard (1...1024).contains(batch) else { throw ValidationError("--batch must be in 1…1024, got \(batch)") }
        if let weights, TrainedRun.Weights(rawValue: weights) == nil { throw ValidationError("--weights must be ema or trained, got '\(weights)'") }
        try OutputPath.checkDirectory(out, "--out")
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: out), !entries.isEmpty {
            throw ValidationError("--out \(out) is not empty (\(entries.sorted().prefix(3).joined(separator: ", "))…); give a new or empty directory")
        }
    }

    private var patients: [String] { patient.flatMap(nameList) }
    private var stagePaths: [String] { [base] + (sr.map(nameList) ?? []) }

    /// The conditioning: a name and an RNA profile (as the cohort stores it) per profile.
    private struct Profiles { var names: [String]; var expression: [Float] }

    func run() throws {
        let world = try Communicator.world()
        let runs = try stagePaths.map { path -> TrainedRun in
            let run = try TrainedRun(checkpoint: try CheckpointCommand.reader(path, step: nil), weights: weights.flatMap(TrainedRun.Weights.init))
            guard run.plan.config.task == DiffusionTask.name else {
                throw ValidationError("\(path) trained task '\(run.plan.config.task)'; sample needs \(DiffusionTask.name) runs")
            }
            return run
        }
        let tasks = try runs.map { try $0.task(DiffusionTask.self, cohort: try $0.runCohort()) }
        let cascade = DiffusionCascade(stages: tasks.map { .init(denoiser: $0.denoiser, schedule: $0.schedule) },
                                       kind: DiffusionSampler.Kind(rawValue: sampler) ?? .ddpm, steps: steps, guidance: guidance, batch: batch)
        if let mismatch = cascade.mismatch { throw ValidationError("--base/--sr do not chain: \(mismatch)") }
        let genes = tasks[0].encoder.genes
        if let other = tasks.firstIndex(where: { $0.encoder.genes != genes }) {
            throw ValidationError("\(stagePaths[other]) conditions on a stage-1 run of other genes than \(base)'s; the stages must read the same RNA")
        }
        let profiles = try conditioning(tasks[0], runs[0])
        let total = profiles.names.count * n, g = genes.count
        let mine = Array(stride(from: world.rank, to: total, by: world.size))
        let size = cascade.imageSize, bytes = size * size * 3

        let bar = world.rank == 0 ? ProgressBar("sampling", total: mine.count * cascade.stages.count, unit: "tiles") : nil
        // Each stage reads the RNA through its own encoder.
        let expression = mine.flatMap { profiles.expression[(($0 / n) * g)..<(($0 / n + 1) * g)] }
        let latents = tasks.map { Tensor(shape: [mine.count, $0.latentDim], values: $0.encoder.encode(profiles: expression).mean) }
        let keys = mine.map { RandomKey(seed: UInt64(seed), stream: RandomStream.step, sample: UInt32(truncatingIfNeeded: $0)) }
        let tiles = cascade.sample(latents: latents, tileKeys: keys) { stage, done in
            bar?.update(stage * mine.count + Int(done), detail: "stage \(stage + 1)/\(cascade.stages.count)")
        }
        bar?.finish()
        let gathered = try world.gatherBytes(DiffusionTask.bytes(tiles), root: 0)
        guard let gathered else { return }
        var all = [UInt8](repeating: 0, count: total * bytes)
        for (rank, part) in gathered.enumerated() {
            for (row, index) in stride(from: rank, to: total, by: world.size).enumerated() {
                all.replaceSubrange((index * bytes)..<((index + 1) * bytes), with: part[(row * bytes)..<((row + 1) * bytes)])
            }
        }
        try write(all, size: size, names: profiles.names, latents: tasks[0].encoder.encode(profiles: profiles.expression).mean, runs: runs, ranks: world.size)
    }

    /// The latents to paint from, of --rna's profiles or --cohort's patients.
    private func conditioning(_ task: DiffusionTask, _ run: TrainedRun) throws -> Profiles {
        if let cohort {
            let reader = try run.otherCohort(URL(fileURLWithPath: cohort))
            let ids = try reader.patientIDs()
            let index = Dictionary(ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
            let chosen = try patients.map { id -> Int in
                guard let i = index[id] else { throw ValidationError("--patient \(id) is not in \(cohort) (patients: \(ids.prefix(5).joined(separator: ", "))…)") }
                return i
            }
            return Profiles(names: patients, expression: try reader.expression(chosen))
        }
        let path = rna ?? ""
        let table = try DelimitedTable(path: path)
        let genes = task.encoder.genes
        guard table.header.count >= 2 else { throw ValidationError("\(path): the header has no profile columns (gene, then one column per profile)") }
        var rowOf = [String: Int]()
        for row in table.rows.indices {
            try table.checkWidth(row)
            rowOf[table.rows[row][0]] = rowOf[table.rows[row][0]] ?? row
        }
        let missing = genes.filter { rowOf[$0] == nil }
        guard missing.isEmpty else {
            throw ValidationError("\(path) lacks \(missing.count) of the \(genes.count) genes the stage-1 run reads (e.g. \(missing.prefix(3).joined(separator: ", "))); give every one")
        }
        let names = Array(table.header.dropFirst())
        var values = [Float](repeating: 0, count: names.count * genes.count)
        for (g, gene) in genes.enumerated() {
            let row = rowOf[gene] ?? 0
            for p in names.indices {
                let value = try table.number(row, p + 1)
                guard value >= 0 else { throw ValidationError("\(table.place(row)) column \(p + 2): \(value) is negative; give expression as the cohort stores it") }
                values[p * genes.count + g] = value
            }
        }
        return Profiles(names: names, expression: values)
    }

    /// Rank 0's outputs; `latents` [profiles × latent] are the base stage's.
    private func write(_ tiles: [UInt8], size: Int, names: [String], latents: [Float], runs: [TrainedRun], ranks: Int) throws {
        let directory = URL(fileURLWithPath: out)
        let tileDirectory = directory.appendingPathComponent("tiles")
        try FileManager.default.createDirectory(at: tileDirectory, withIntermediateDirectories: true)
        let bytes = size * size * 3, d = latents.count / max(1, names.count)
        let ids = (0..<(names.count * n)).map { names[$0 / n] }
        var sheet = [ImageGrid.Tile]()
        for (index, id) in ids.enumerated() {
            let pixels = Array(tiles[(index * bytes)..<((index + 1) * bytes)])
            let name = id.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" }
            try RGBImage(width: size, height: size, pixels: pixels).writePNG(to: tileDirectory.appendingPathComponent("\(String(name))-\(index % n).png").path)
            if index % n < 8 { sheet.append(.init(width: size, height: size, pixels: pixels, caption: index % n == 0 ? id : "")) }
        }
        let file = try HDF5File.create(directory.appendingPathComponent("samples.h5").path)
        try file.write("/tiles", tiles, shape: [ids.count, size, size, 3])
        try file.writeStrings("/profile_id", ids)
        try file.write("/latent", ids.indices.flatMap { latents[(($0 / n) * d)..<(($0 / n + 1) * d)] }, shape: [ids.count, d])
        for (key, value) in [("stages", runs.map { $0.checkpoint.directory.path }.joined(separator: ",")), ("guidance", "\(guidance)"),
                             ("steps", "\(steps)"), ("sampler", sampler), ("seed", "\(seed)"), ("source", rna ?? cohort ?? "")] {
            try file.setAttribute("/", key, value)
        }
        try ImageGrid(title: "Painted from RNA (s = \(guidance), \(steps) \(sampler) steps)", tiles: sheet, columns: min(n, 8),
                      cellSize: Double(max(128, size))).write(to: directory.appendingPathComponent("contact_sheet"))
        print("\(out): \(ids.count) tiles of \(size) px from \(names.count) profile(s) on \(ranks) rank(s): tiles/*.png, samples.h5, contact_sheet.png/.svg")
    }
}
