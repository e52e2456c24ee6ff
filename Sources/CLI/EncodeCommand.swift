import ArgumentParser
import Cohorts
import Foundation
import Training

/// `transcriptile encode`: the latents of a trained `rna-vae` run, per patient, for the
/// diffusion stage.
struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Write μ and log σ² of a trained rna-vae run's latent for every patient of a cohort, to HDF5.",
        discussion: """
              transcriptile encode --checkpoint runs/demo-rna-vae --out latents.h5
              transcriptile encode --checkpoint runs/demo-rna-vae --cohort other \\
                  --out other.h5
            The file holds /mu and /log_variance [patients × latent] (float32, in evaluation mode: \
            dropout off, BatchNorm's running statistics), /patient_id, /cancer_type (index into the \
            root attribute cancer_types), and the attributes checkpoint, step, weights (ema or trained) and cohort. The RNA is \
            normalised with the run's training statistics; another cohort must have the run's genes \
            in the same order.
            """)

    @OptionGroup var trainedRun: TrainedRunOptions
    @Option(help: "The cohort to encode (default: the run's).")
    var cohort: String?
    @Option(help: "all, train, validation or test: which of the run's patients (only without --cohort).")
    var split = "all"
    @Option(help: "Output HDF5 file.")
    var out: String
    @Flag(help: "Replace an existing output file.")
    var overwrite = false

    func validate() throws {
        guard ["all", "train", "validation", "test"].contains(split) else { throw ValidationError("--split must be all, train, validation or test, got '\(split)'") }
        guard cohort == nil || split == "all" else { throw ValidationError("--split picks from the run's own split; with --cohort every patient is encoded") }
        try OutputPath.checkFile(out, "--out")
        guard overwrite || !FileManager.default.fileExists(atPath: out) else { throw ValidationError("\(out) exists; pass --overwrite to replace it") }
    }

    func run() throws {
        let trained = try trainedRun.open()
        guard trained.plan.config.task == ExpressionVAETask.name else {
            throw ValidationError("\(trained.directory.path) trained task '\(trained.plan.config.task)'; encode needs a \(ExpressionVAETask.name) run")
        }
        let own = try trained.runCohort()
        let vae = try trained.task(ExpressionVAETask.self, cohort: own)
        let reader = try cohort.map { try trained.otherCohort(URL(fileURLWithPath: $0)) } ?? own
        let s = trained.plan.split
        let patients = switch split {
        case "train": s.train
        case "validation": s.validation
        case "test": s.test
        default: Array(0..<reader.patients)
        }
        let latent = vae.vae.config.latent
        var mean = [Float](), logVariance = [Float]()
        mean.reserveCapacity(patients.count * latent)
        try withProgress("encoding", total: patients.count, unit: "patients") { progress in
            for start in stride(from: 0, to: patients.count, by: 1024) {
                let block = Array(patients[start..<min(patients.count, start + 1024)])
                let part = try vae.encode(reader, patients: block)
                mean += part.mean
                logVariance += part.logVariance
                progress.update(start + block.count)
            }
        }
        let ids = try reader.patientIDs(), types = try reader.cancerTypes()
        let temporary = out + ".partial"
        do {  // the file closes when `file` goes; renamed into place only when complete
            let file = try HDF5File.create(temporary)
            try file.write("/mu", mean, shape: [patients.count, latent])
            try file.write("/log_variance", logVariance, shape: [patients.count, latent])
            try file.writeStrings("/patient_id", patients.map { ids[$0] })
            try file.write("/cancer_type", patients.map { Int32(types[$0]) }, shape: [patients.count])
            try file.setAttribute("/", "cancer_types", strings: try reader.layout().cancerTypes)
            try file.setAttribute("/", "checkpoint", trained.checkpoint.directory.path)
            try file.setAttribute("/", "step", "\(trained.checkpoint.manifest.step)")
            try file.setAttribute("/", "weights", trained.weights.rawValue)
            try file.setAttribute("/", "cohort", reader.directory.path)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.moveItem(atPath: temporary, toPath: out)
        print("\(out): μ and log σ² [\(patients.count) × \(latent)] of \(reader.directory.lastPathComponent) (\(split == "all" ? "all patients" : split + " split")) from \(trained.checkpoint.directory.path) (\(trained.weights == .ema ? "EMA of the weights" : "trained weights"))")
    }
}
