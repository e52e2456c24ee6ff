import ArgumentParser
import BuildInfo
import Foundation
import Training

@main
struct Coordinator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcriptile-coordinator",
        abstract: "Plans and watches a data-parallel training run (world rank 0 of an MPMD job).",
        usage: "transcriptile-coordinator --config RUN.yaml [--run-dir DIR] [--set KEY=VALUE …] [--resume auto|none|PATH]",
        discussion: """
            Start it together with the workers — `transcriptile train` does this for you:
              transcriptile train RUN.yaml --workers N
            which runs, in effect (--dry-run prints the exact command),
              mpirun -np 1 transcriptile-coordinator --config RUN.yaml \\
                     : -np N transcriptile-worker
            The coordinator validates the config and the cohort, splits the patients, broadcasts
            the plan, prints progress, and writes config.yaml, run_plan.json, metrics.jsonl,
            timeline.json, loss_curve.png/.svg and summary.json into the run directory, and commits
            the workers' checkpoints into its checkpoints/ (Docs/Checkpoints.md). A bad config
            or cohort stops the job before any training (exit 2); a worker that fails or goes
            silent for liveness.timeout_s ends the job with a message naming it (exit 1).
            Tasks: \(TaskRegistry.tasks.map { "\($0.name) — \($0.purpose)" }.joined(separator: "; ")).
            Config keys and defaults: Docs/Running.md.
            """,
        version: BuildInfo.versionLine("transcriptile-coordinator"))

    @Option(help: "The run config (YAML).")
    var config: String
    @Option(help: "The run directory (default: run_dir from the config, else runs/<config name>).")
    var runDir: String?
    @Option(name: .customLong("set"), help: "Override a config key, e.g. --set train.steps=200 (repeatable).")
    var overrides: [String] = []
    @Option(help: ArgumentHelp(
        "Continue from a checkpoint: auto, none, or the path of a checkpoint or run directory.",
        discussion: "auto (the default) resumes from the newest valid checkpoint of the run directory if it has one, passing over broken ones with a message, and starts a new run otherwise."))
    var resume = "auto"

    func run() throws {
        let code = CoordinatorProcess.run(config: URL(fileURLWithPath: config), runDirectory: runDir, overrides: overrides, resume: resume)
        if code != 0 { throw ExitCode(code) }
    }
}
