import ArgumentParser
import Cohorts
import Distributed
import Foundation

@main
struct Transcriptile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcriptile",
        abstract: "Train models that link a patient's RNA to their tissue, data-parallel over MPI.",
        discussion: """
            Run several ranks with launch/mpirun (a wrapper around Open MPI's mpirun), e.g.
              launch/mpirun -np 2 .build/release/transcriptile bench allreduce
            Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.
            """,
        subcommands: [Smoke.self, Bench.self, DataCommand.self, CheckpointCommand.self, EvaluateCommand.self, EncodeCommand.self])

    /// Parses, runs, and maps failures to the project's exit codes (DESIGN §8): usage errors
    /// print the usage and exit 2; runtime errors exit 1, and abort the whole MPI job when it
    /// has other ranks, naming this rank, so none of them waits forever.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || code == .validationFailure || error is ExitCode {
                let message = fullMessage(for: error)
                if code == .success {
                    print(message)
                } else if !message.isEmpty {
                    printError(message)
                }
                Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
            }
            if let error = error as? CohortError {
                printError("transcriptile: bad input: \(error)")
                Foundation.exit(2)
            }
            failAtRuntime("\(error)")
        }
    }

    private static func failAtRuntime(_ message: String) -> Never {
        if MPIRuntime.isStarted, let world = try? Communicator.world(), world.size > 1 {
            world.abort(message)
        }
        printError("transcriptile: error: \(message)")
        Foundation.exit(1)
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
