import ArgumentParser
import BuildInfo
import Checkpoints
import Cohorts
import Distributed
import Foundation
import Training

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
        version: BuildInfo.versionLine("transcriptile"),
        subcommands: [TrainCommand.self, Smoke.self, Bench.self, DataCommand.self, CheckpointCommand.self, EvaluateCommand.self, EncodeCommand.self, SampleCommand.self])

    /// Parses, runs, and maps failures to the project's exit codes (DESIGN §8): usage errors
    /// print the usage and exit 2; runtime errors exit 1, and abort the whole MPI job when it
    /// has other ranks, naming this rank, so none of them waits forever.
    static func main() {
        refuseEmptyArguments()
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
            if isBadInput(error) {
                printError("transcriptile: bad input: \(error)")
                Foundation.exit(2)
            }
            failAtRuntime("\(error)")
        }
    }

    /// An empty argument is never meaningful here, and is usually a shell variable that was not
    /// set (`--out "$DIR"`): an empty path would mean the working directory. Refused, exit 2.
    private static func refuseEmptyArguments() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let index = arguments.firstIndex(of: "") else { return }
        let option = index > 0 && arguments[index - 1].hasPrefix("-") ? "\(arguments[index - 1]) " : "argument \(index + 1) "
        printError("transcriptile: bad usage: \(option)is empty (an unset shell variable?); give a value")
        Foundation.exit(2)
    }

    /// Errors that come from what the user gave (a file, a cohort, a checkpoint, a run): exit 2.
    private static func isBadInput(_ error: Error) -> Bool {
        switch error {
        case is CohortError: true
        case let error as TrainingError: error.exitCode == 2
        case let error as CheckpointError: if case .io = error { false } else { true }
        default: false
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
