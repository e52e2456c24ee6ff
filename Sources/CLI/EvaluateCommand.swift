import ArgumentParser
import Checkpoints
import Cohorts
import Foundation
import Terminal
import Training

/// `--checkpoint RUN [--step N]`: the trained run to use, shared by `evaluate` and `encode`.
struct TrainedRunOptions: ParsableArguments {
    @Option(help: "A run directory (its newest valid checkpoint) or a checkpoint directory (RUN/checkpoints/step-NNNNNNNN).")
    var checkpoint: String
    @Option(help: "The step of the run's checkpoint to use (default: the newest valid one).")
    var step: Int?
    @Option(help: "ema or trained: the weights' moving average (the default when the run kept one, train.ema.decay) or the trained weights.")
    var weights: String?

    func validate() throws {
        if let weights, TrainedRun.Weights(rawValue: weights) == nil { throw ValidationError("--weights must be ema or trained, got '\(weights)'") }
    }

    func open() throws -> TrainedRun {
        try TrainedRun(checkpoint: try CheckpointCommand.reader(checkpoint, step: step), weights: weights.flatMap(TrainedRun.Weights.init))
    }
}

/// `transcriptile evaluate`: a trained run's whole-split evaluation, on its test split or on
/// another cohort with the same genes.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a trained run's checkpoint: the figures and plots of the end of a run, on the test split or another cohort.",
        discussion: """
              transcriptile evaluate --checkpoint runs/demo-rna-vae
              transcriptile evaluate --checkpoint runs/khan-vae --cohort khan-test \\
                  --out khan-test-evaluation
            With --cohort, every patient of that cohort is evaluated (it must have the run's genes in \
            the same order), with the run's normalisation; neighbours for k-NN come from the run's \
            training split. Writes evaluation.json and the task's plots (rna-vae: latent_pca.png/.svg) \
            into --out.
            """)

    @OptionGroup var trainedRun: TrainedRunOptions
    @Option(help: "Evaluate every patient of this cohort instead of the run's test split.")
    var cohort: String?
    @Option(help: "Directory for evaluation.json and plots (default: RUN/evaluation, or RUN/evaluation-<cohort name>).")
    var out: String?

    func validate() throws {
        if let out { try OutputPath.checkDirectory(out, "--out") }
    }

    func run() throws {
        let trained = try trainedRun.open()
        let reference = try trained.runCohort()
        var set: EvaluationSet
        if let cohort {
            let target = try trained.otherCohort(URL(fileURLWithPath: cohort))
            set = EvaluationSet(reference: reference, referencePatients: trained.plan.split.train, target: target,
                                targetPatients: Array(0..<target.patients), name: target.directory.lastPathComponent)
        } else {
            set = EvaluationSet(reference: reference, referencePatients: trained.plan.split.train, target: reference,
                                targetPatients: trained.plan.split.test, name: "test split")
        }
        var lastNote = Date.distantPast
        set.progress = { detail in
            guard Date().timeIntervalSince(lastNote) >= 10 else { return }
            lastNote = Date()
            Console.error("evaluation: \(detail)\n")
        }
        let directory = URL(fileURLWithPath: out ?? trained.directory.appendingPathComponent(cohort.map { "evaluation-" + URL(fileURLWithPath: $0).lastPathComponent } ?? "evaluation").path)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let figures = try evaluate(try trained.taskType, trained, set, directory)
        guard !figures.isEmpty else {
            print("task \(trained.plan.config.task) has no whole-split evaluation; its per-batch figures are in \(trained.directory.path)/summary.json")
            return
        }
        let record: [String: Any] = [
            "checkpoint": trained.checkpoint.directory.path, "step": trained.checkpoint.manifest.step, "task": trained.plan.config.task,
            "weights": trained.weights.rawValue,
            "evaluated": set.name, "cohort": set.target.directory.path,
            "evaluation": figures.mapValues { $0.isFinite ? $0 as Any : NSNull() },
        ]
        try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .prettyPrinted]).write(to: directory.appendingPathComponent("evaluation.json"))
        print("\(trained.plan.config.task) at step \(trained.checkpoint.manifest.step) (\(trained.weights == .ema ? "EMA of the weights" : "trained weights")), \(set.name) (\(set.targetPatients.count) patients):")
        for line in figureLines(figures) { print(line) }
        print("written: \(directory.path)/evaluation.json and plots")
    }

    private func evaluate<T: Trainable>(_: T.Type, _ trained: TrainedRun, _ set: EvaluationSet, _ directory: URL) throws -> [String: Double] {
        try trained.task(T.self, cohort: set.reference).finalEvaluation(set, into: directory)
    }
}
