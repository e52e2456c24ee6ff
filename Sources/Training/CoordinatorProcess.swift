import BuildInfo
import Checkpoints
import Cohorts
import Distributed
import Foundation
import Terminal

/// `transcriptile-coordinator` (world rank 0, DESIGN §2): validates the config and the cohort,
/// plans the run and broadcasts the plan, then watches the workers — progress, metrics,
/// timeline, liveness, signals — and writes the run's records. It holds no model and never
/// spins: it polls for messages and sleeps in between.
public enum CoordinatorProcess {
    /// Runs the coordinator; returns the process exit code.
    /// `resume`: `auto` (the newest valid checkpoint of the run directory, if it has any),
    /// `none`, or the path of a checkpoint or of a run directory.
    public static func run(config file: URL, runDirectory: String?, overrides: [String], resume: String = "auto") -> Int32 {
        let world: Communicator
        do {
            try MPIRuntime.start(requesting: .multiple)  // the workers' heartbeat threads need it: ask alike
            world = try Communicator.world()
        } catch {
            Console.error("transcriptile-coordinator: cannot start MPI: \(error)\n")
            return 1
        }
        StopSignal.install()
        let hosts: [String]
        do { hosts = try RankHosts.gather(world) } catch { world.abort("coordinator: cannot learn the workers' hosts: \(error)") }
        let planned: Result<(RunPlan, EffectiveConfig), any Error>
        if world.size < 2 {
            planned = .failure(TrainingError.plan("""
                no workers: start the coordinator and the workers together, e.g.
                  transcriptile train \(file.path) --workers 2
                  mpirun -np 1 transcriptile-coordinator --config \(file.path) : -np 2 transcriptile-worker
                """))
        } else {
            planned = Result { try RunPlanner.plan(file: file, runDirectory: runDirectory, overrides: overrides, resume: resume, workers: world.size - 1) }
        }
        do {
            switch planned {
            case let .success((planned, effective)):
                var plan = planned
                plan.provenance = RunPlan.Provenance(
                    version: BuildInfo.version, commit: BuildInfo.commit,
                    command: CommandLine.arguments.joined(separator: " "),
                    hosts: hosts, ranks: world.size, started: RunRecords.timestamp())
                try start(world, .plan(plan))
                return try Monitor(plan: plan, effective: effective, world: world, hosts: hosts).run()
            case let .failure(error):
                let code: Int32 = (error as? TrainingError)?.exitCode ?? (error is ConfigError || error is CohortError || error is CheckpointError ? 2 : 1)
                Console.error("transcriptile-coordinator: \(error)\n")
                try start(world, .failure(message: "\(error)", exitCode: code))
                return code
            }
        } catch {
            world.abort("coordinator: \(error)")
        }
    }

    /// Broadcasts the plan (or why there is none) and leaves the workers their communicator.
    private static func start(_ world: Communicator, _ message: PlanMessage) throws {
        _ = try world.broadcastBytes(Array(try JSONEncoder.compact.encode(message)), root: 0)
        _ = try world.split(color: nil, key: 0)
    }
}
