import Foundation

/// A run directory as it was at one of its checkpoints: that checkpoint and the records a resume
/// reads (config, plan, metrics), copied into a new directory — for "cut back and resume" tests.
public func copyRun(_ run: URL, atStep step: Int, to copy: URL) throws {
    let manager = FileManager.default
    let checkpoint = String(format: "checkpoints/step-%08d", step)
    try manager.createDirectory(at: copy.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
    try manager.copyItem(at: run.appendingPathComponent(checkpoint), to: copy.appendingPathComponent(checkpoint))
    for record in ["config.yaml", "run_plan.json", "metrics.jsonl"] {
        try manager.copyItem(at: run.appendingPathComponent(record), to: copy.appendingPathComponent(record))
    }
}
