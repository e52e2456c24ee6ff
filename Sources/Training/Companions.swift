import Checkpoints
import Cohorts
import Crypto
import Foundation

/// Another trained run a task uses frozen, named under `companions:` in the config — a VAE whose
/// encoder feeds it, the cascade's base model for its super-resolution stage, a pretrained gene
/// encoder.
public struct CompanionRequirement: Sendable {
    /// The key under `companions:`.
    public var name: String
    /// The task the run must have trained.
    public var task: String
    public var required: Bool
    /// What the task does with it, for messages and docs.
    public var purpose: String

    public init(name: String, task: String, required: Bool, purpose: String) {
        (self.name, self.task, self.required, self.purpose) = (name, task, required, purpose)
    }
}

/// A companion as the run plan records it: which checkpoint, and what identifies its weights.
public struct CompanionIdentity: Codable, Sendable, Equatable {
    public var name: String
    public var checkpoint: String
    public var task: String
    public var step: Int
    /// SHA-256 of that run's effective config (its `config.yaml`), and of the weights used.
    public var configSHA256: String
    public var parametersSHA256: String
    /// `ema` or `trained`: the EMA when that run kept one.
    public var weights: String

    enum CodingKeys: String, CodingKey {
        case name, checkpoint, task, step, configSHA256 = "config_sha256", parametersSHA256 = "parameters_sha256", weights
    }
}

/// The companions a task was given, built on demand in evaluation mode from their checkpoints.
/// Their weights live in arenas of their own: never trained, exchanged or checkpointed.
public struct Companions {
    let identities: [CompanionIdentity]
    /// The cohort the task is built with (tasks may read it while they are built).
    let cohort: CohortReader

    /// None (tasks without companions, and tests).
    public static func none(cohort: CohortReader) -> Companions { Companions(identities: [], cohort: cohort) }

    /// The companion `name` as a `T`, frozen; nil when the config gave none.
    public func model<T: Trainable>(_ name: String, as _: T.Type) throws -> T? {
        guard let identity = identities.first(where: { $0.name == name }) else { return nil }
        let reader = try CheckpointReader(directory: URL(fileURLWithPath: identity.checkpoint))
        let run = try TrainedRun(checkpoint: reader, weights: TrainedRun.Weights(rawValue: identity.weights))
        return try run.task(T.self, cohort: cohort)
    }

    /// Checks the config's `companions:` against what `task` requires, before training: each
    /// given run exists, trained the right task, and (for RNA models) reads this cohort's genes.
    /// Returns their identities for the plan; every refusal names its key.
    static func identify(_ paths: [String: String], for task: any Trainable.Type, cohort: CohortReader) throws -> [CompanionIdentity] {
        try task.companions.compactMap { requirement -> CompanionIdentity? in
            let key = "companions.\(requirement.name)"
            guard let path = paths[requirement.name], !path.isEmpty else {
                guard !requirement.required else {
                    throw TrainingError.plan("\(key): \(task.name) needs a trained \(requirement.task) run (\(requirement.purpose)); give its directory or one of its checkpoints")
                }
                return nil
            }
            let run: TrainedRun
            do { run = try TrainedRun(checkpoint: try CheckpointStore.reader(at: path)) } catch { throw TrainingError.plan("\(key): \(error)") }
            guard run.plan.config.task == requirement.task else {
                throw TrainingError.plan("\(key): \(run.directory.path) trained \(run.plan.config.task); \(requirement.name) must be a \(requirement.task) run (\(requirement.purpose))")
            }
            do { try run.checkGenes(of: cohort) } catch { throw TrainingError.plan("\(key): \(run.directory.path): \(error)") }
            let arena = run.weights == .ema ? "ema" : "parameters"
            let count = run.checkpoint.manifest.arenas.first { $0.name == arena }?.count ?? 0
            var weights = [Float](repeating: 0, count: count)
            try weights.withUnsafeMutableBufferPointer { try run.checkpoint.read(arena: arena, range: 0..<count, into: $0) }
            let config = (try? Data(contentsOf: run.directory.appendingPathComponent("config.yaml"))) ?? Data()
            return CompanionIdentity(name: requirement.name, checkpoint: run.checkpoint.directory.standardizedFileURL.path, task: run.plan.config.task,
                                     step: run.checkpoint.manifest.step, configSHA256: hex(SHA256.hash(data: config)),
                                     parametersSHA256: weights.withUnsafeBytes { hex(SHA256.hash(data: $0)) }, weights: run.weights.rawValue)
        }
    }

    private static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }
}
