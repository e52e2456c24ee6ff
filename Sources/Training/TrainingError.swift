/// What stops a run, with the message a user acts on.
public enum TrainingError: Error, CustomStringConvertible {
    /// The cohort lacks what the task needs.
    case unsuitableCohort(String)
    /// The cohort failed validation; each problem names file, dataset and row.
    case invalidCohort(directory: String, problems: [String])
    /// The plan cannot work with this cohort or this many workers.
    case plan(String)
    /// Loss or gradients stopped being finite.
    case nonFinite(step: Int, detail: String)
    /// A record of the run (metrics, timeline, summary, plot) could not be written.
    case records(String)

    public var description: String {
        switch self {
        case let .unsuitableCohort(message): return "cohort: \(message)"
        case let .invalidCohort(directory, problems):
            let shown = problems.prefix(20).map { "  " + $0 }.joined(separator: "\n")
            let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more (run `transcriptile data validate \(directory)`)" : ""
            return "cohort \(directory) failed validation (\(problems.count) problem\(problems.count == 1 ? "" : "s")); fix it before training:\n\(shown)\(more)"
        case let .plan(message), let .records(message): return message
        case let .nonFinite(step, detail):
            return "step \(step): \(detail) is not finite; lower optimizer.lr, raise schedule.warmup_steps or set optimizer.clip_norm"
        }
    }

    /// The process exit code: 2 for bad input, 1 for a failure during training.
    public var exitCode: Int32 {
        switch self {
        case .unsuitableCohort, .invalidCohort, .plan: 2
        case .nonFinite, .records: 1
        }
    }
}
