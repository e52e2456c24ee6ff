// transcriptile-worker: one data-parallel worker rank; everything it needs comes from the
// coordinator's plan. Start it with `transcriptile train` (see Docs/Running.md).
import BuildInfo
import Foundation
import Training

let help = """
    transcriptile-worker: one data-parallel worker rank of a training job (world ranks 1…N).

    It takes no options: the coordinator (world rank 0) sends it the plan. Start both with
      transcriptile train RUN.yaml --workers N
    which runs, in effect,
      mpirun -np 1 transcriptile-coordinator --config RUN.yaml \\
             : -np N transcriptile-worker
    (`transcriptile train RUN.yaml --workers N --dry-run` prints the exact command).

    Options:
      -h, --help   Show this help.
      --version    Show the version and the commit it was built from.
    """

switch Array(CommandLine.arguments.dropFirst()) {
case []:
    WorkerProcess.main()
case ["-h"], ["--help"], ["help"]:
    print(help)
case ["--version"]:
    print(BuildInfo.versionLine("transcriptile-worker"))
case let arguments:
    FileHandle.standardError.write(Data("""
        transcriptile-worker: unexpected argument '\(arguments[0])': a worker takes no options (its plan comes from the coordinator).
        Start a run with: transcriptile train RUN.yaml --workers N   (see transcriptile-worker --help)

        """.utf8))
    exit(2)
}
