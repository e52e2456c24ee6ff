import ArgumentParser
import BuildInfo
import Checkpoints
import Cohorts
import Foundation
import Training
#if canImport(Glibc)
import Glibc
#endif

/// `transcriptile checkpoint …`: list, verify, inspect and export a run's checkpoints
/// (Docs/Checkpoints.md).
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "List, verify, inspect and export the checkpoints of a run.",
        subcommands: [List.self, Verify.self, Inspect.self, Export.self])

    /// A run directory (its newest valid checkpoint, or `--step`) or a checkpoint directory.
    struct Target: ParsableArguments {
        @Argument(help: "A run directory or a checkpoint directory (step-NNNNNNNN).")
        var path: String
        @Option(help: "The step of the run's checkpoint to use (default: the newest valid one); with a checkpoint directory, only its own step.")
        var step: Int?

        func reader() throws -> CheckpointReader { try CheckpointCommand.reader(path, step: step) }
    }

    /// The checkpoint at `path` (a checkpoint directory: `step`, if given, must be its own), or a
    /// run directory's checkpoint of `step`, or else its newest valid one (saying which it passed
    /// over and why); verified (every file's size and checksum) before anything is read from it.
    static func reader(_ path: String, step: Int?) throws -> CheckpointReader {
        func verified(_ directory: URL) throws -> CheckpointReader {
            let reader = try CheckpointReader(directory: directory)
            try reader.verify()
            return reader
        }
        if let step, step < 0 { throw ValidationError("--step must be 0 or more (a checkpoint's step), got \(step)") }
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("manifest.json").path) {
            let reader = try CheckpointReader(directory: url)
            if let step, step != reader.manifest.step {
                let run = url.deletingLastPathComponent().deletingLastPathComponent().path
                throw CheckpointError.notFound("--step \(step): \(path) is a checkpoint directory, the checkpoint of step \(reader.manifest.step); "
                    + "drop --step, or give the run directory (\(run)) with --step \(step)")
            }
            try reader.verify()
            return reader
        }
        let store = CheckpointStore(runDirectory: url)
        if let step { return try verified(store.directory(step: step)) }
        let (newest, rejected) = store.newestValid()
        for (step, reason) in rejected { printError("passing over \(CheckpointStore.name(step: step)): \(reason)") }
        guard let newest else { throw CheckpointError.notFound("\(path): no valid checkpoint (neither a checkpoint directory nor a run directory with one)") }
        return newest
    }
}

extension CheckpointCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One line per checkpoint of a run: step, size, compression ratio, validity (shards verified).",
            discussion: "Exit status 2 when the run has no valid checkpoint.")

        @Argument(help: "Run directory.")
        var directory: String

        func run() throws {
            let store = CheckpointStore(runDirectory: URL(fileURLWithPath: directory))
            let steps = store.steps()
            guard !steps.isEmpty else { printError("\(directory): no checkpoints in \(store.root.path)"); throw ExitCode(2) }
            let latest = store.latest()
            print("checkpoint        step     size (MB)  ratio  workers  state")
            var valid = 0
            for step in steps {
                let name = CheckpointStore.name(step: step)
                do {
                    let reader = try CheckpointReader(directory: store.directory(step: step))
                    try reader.verify()
                    let m = reader.manifest
                    let stored = m.shards.map(\.bytes).reduce(0, +), raw = m.arenas.map(\.count).reduce(0, +) * 4
                    print(String(format: "%@  %8d  %10.2f  %5.2f  %7d  valid%@", name, m.step, Double(stored) / 1e6,
                                 Double(raw) / Double(max(stored, 1)), m.workers, step == latest ? " (LATEST)" : ""))
                    valid += 1
                } catch {
                    print("\(name)  \(String(format: "%8d", step))           -      -        -  INVALID: \(error)")
                }
            }
            if valid == 0 { throw ExitCode(2) }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify every shard of every checkpoint (size, XXH64, and that every frame decodes).",
            discussion: "Exit status 0 when all are valid, 2 when any is not.")

        @Argument(help: "A run directory (all its checkpoints) or a checkpoint directory.")
        var path: String

        func run() throws {
            let url = URL(fileURLWithPath: path)
            let store = CheckpointStore(runDirectory: url)
            let directories = FileManager.default.fileExists(atPath: url.appendingPathComponent("manifest.json").path)
                ? [url] : store.steps().map { store.directory(step: $0) }
            guard !directories.isEmpty else { printError("\(path): no checkpoints"); throw ExitCode(2) }
            var bad = 0
            for directory in directories {
                do {
                    let reader = try CheckpointReader(directory: directory)
                    try reader.verify()
                    try reader.verifyFrames()
                    print("\(directory.lastPathComponent): valid (\(reader.manifest.shards.count) shards)")
                } catch {
                    printError("\(directory.lastPathComponent): \(error)")
                    bad += 1
                }
            }
            if bad > 0 { throw ExitCode(2) }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a checkpoint's step, sampler position, arenas, tensors, shards and config.")

        @OptionGroup var target: Target

        func run() throws {
            let reader = try target.reader()
            let m = reader.manifest
            print("\(reader.directory.path)")
            print("step \(m.step) · epoch \(m.epoch), cursor \(m.cursor) · saved \(m.created) by \(m.workers) worker(s) · \(m.compression), \(m.frameElements) elements per frame")
            print("scalars: " + m.scalars.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", "))
            print("arenas:")
            for arena in m.arenas { print("  \(arena.name): \(arena.count) \(arena.dtype)") }
            print("tensors (\(m.tensors.count)):")
            for view in m.tensors { print("  \(view.name) \(view.shape) in \(view.arena) at \(view.offset)") }
            print("shards:")
            for shard in m.shards { print("  \(shard.file): worker \(shard.worker), \(shard.bytes) bytes, \(shard.frames.count) frames, xxh64 \(shard.xxh64)") }
            print("identity:")
            for (key, value) in m.identity.sorted(by: { $0.key < $1.key }) { print("  \(key): \(value.replacingOccurrences(of: "\n", with: " "))") }
            print("config:\n" + m.config.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a checkpoint's model: a model bundle (weights, gene order, normaliser, config), or the weights alone.",
            discussion: """
                  transcriptile checkpoint export runs/demo-rna-vae --out demo.bundle
                  transcriptile checkpoint export runs/demo-rna-vae --out demo.safetensors

                The name says the format. NAME.bundle, or a name without an extension: a model bundle, \
                a directory holding model.safetensors (the weights), bundle.json (the genes in the \
                model's input order, the normaliser, the outputs, the cancer types, the architecture, \
                provenance), config.yaml (the run's effective config) and README.md (loading it in \
                Python). NAME.safetensors: the weights alone (F32; safetensors.numpy or \
                safetensors.torch load them). NAME.h5 or NAME.hdf5: the weights alone as HDF5, one \
                float32 dataset per tensor at /<name>, attributes task, step and source on the root. \
                Any other extension is refused: .pt, .pth, .bin and .ckpt name PyTorch's pickle files, \
                which this does not write. --format, if given, must agree with the name. An existing \
                output is replaced only with --overwrite, and a directory only if it is a model bundle. \
                Docs/Checkpoints.md shows how to use a bundle on a new expression table.
                """)

        @OptionGroup var target: Target
        @Option(help: "NAME.bundle (or no extension): a model bundle directory; NAME.safetensors, NAME.h5 or NAME.hdf5: the weights alone.")
        var out: String
        @Option(help: "bundle, safetensors or hdf5; must agree with --out's name (default: from it).")
        var format: String?
        @Flag(help: "Replace an existing output (a directory only if it is a model bundle).")
        var overwrite = false

        enum Kind: String, CaseIterable {
            case bundle, safetensors, hdf5

            /// How a name of this kind ends.
            var suffix: String { self == .hdf5 ? ".h5" : "." + rawValue }
            var what: String { self == .bundle ? "a model bundle (a directory)" : "a \(self == .hdf5 ? "HDF5" : rawValue) file of the weights alone" }
        }

        /// `out` with its extension replaced by `kind`'s.
        private func renamed(_ kind: Kind) -> String {
            var path = out
            while path.count > 1, path.hasSuffix("/") { path.removeLast() }
            return (path as NSString).deletingPathExtension + kind.suffix
        }

        /// The format `--out`'s name says, or why it says none.
        private func kindOfName() throws -> Kind {
            let suffix = URL(fileURLWithPath: out).pathExtension, lower = suffix.lowercased()
            switch lower {
            case "", "bundle": return .bundle
            case "safetensors": return .safetensors
            case "h5", "hdf5": return .hdf5
            case "pt", "pth", "bin", "ckpt", "pkl", "pickle":
                throw ValidationError("--out \(out): .\(suffix) names PyTorch's pickle files, which Transcriptile does not write; "
                    + "use --out \(renamed(.safetensors)) for the weights alone (PyTorch loads them with safetensors.torch.load_file) "
                    + "or --out \(renamed(.bundle)) for a model bundle")
            default:
                throw ValidationError("--out \(out): the name's extension says the format, and .\(suffix) is none: NAME.bundle or no extension "
                    + "(a model bundle), NAME.safetensors, NAME.h5 or NAME.hdf5 (the weights alone); --format must agree with the name")
            }
        }

        /// The format, checked against the name.
        private func kind() throws -> Kind {
            if let format, Kind(rawValue: format) == nil {
                throw ValidationError("--format must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(format)'")
            }
            let named = try kindOfName()
            if let format, let given = Kind(rawValue: format), given != named {
                throw ValidationError("--format \(format) writes \(given.what), but --out \(out) names \(named.what): "
                    + "use --out \(renamed(given)), or drop --format")
            }
            return named
        }

        func validate() throws {
            if try kind() == .bundle {
                if let problem = ModelBundle.targetProblem(URL(fileURLWithPath: out), overwrite: overwrite) { throw ValidationError("--out " + problem) }
                try OutputPath.checkDirectory(out, "--out")
            } else {
                try OutputPath.checkFile(out, "--out")
                guard overwrite || !FileManager.default.fileExists(atPath: out) else { throw ValidationError("--out \(out) exists; pass --overwrite to replace it") }
            }
        }

        func run() throws {
            let reader = try target.reader()
            switch try kind() {
            case .bundle: try writeBundle(reader)
            case .safetensors:
                let tensors = try reader.exportedTensors()
                try SafeTensors.write(tensors, metadata: reader.exportMetadata, to: URL(fileURLWithPath: out))
                report(tensors, reader)
            case .hdf5:
                let tensors = try reader.exportedTensors()
                try writeHDF5(tensors, metadata: reader.exportMetadata)
                report(tensors, reader)
            }
        }

        private func report(_ tensors: [ExportedTensor], _ reader: CheckpointReader) {
            let count = tensors.map(\.values.count).reduce(0, +)
            print("\(out): \(tensors.count) tensors, \(count) floats from \(reader.directory.path) (step \(reader.manifest.step)); the weights alone — --out NAME.bundle adds the gene order and the normaliser")
        }

        private func writeBundle(_ reader: CheckpointReader) throws {
            let trained: TrainedRun
            do { trained = try TrainedRun(checkpoint: reader) } catch let error as TrainingError {
                throw TrainingError.plan("\(error)\na model bundle needs the checkpoint's run (its run_plan.json holds the genes and the normaliser); "
                    + "export the weights alone with --out \(renamed(.safetensors))")
            }
            let bundle = try ModelBundle(run: trained)
            try bundle.write(to: URL(fileURLWithPath: out), overwrite: overwrite, producer: .init(version: BuildInfo.version, commit: BuildInfo.commit))
            let floats = bundle.tensors.map(\.values.count).reduce(0, +)
            print("\(out): model bundle of \(bundle.task) at step \(bundle.step), from \(reader.directory.path)")
            print("  model.safetensors  \(bundle.tensors.count) tensors, \(floats) floats")
            print("  bundle.json        \(bundle.genes.count) genes in input order, normaliser (\(bundle.normalizer.logNonzero ? "log of nonzero values, then " : "")z-score per gene), \(bundle.cancerTypes.count) cancer types")
            print("  config.yaml        the run's effective config")
            print("  README.md          loading it in Python")
            if let problem = bundle.cohortProblem {
                printError("note: bundle.json does not say which kind of values (counts, tpm, …) the model expects: \(problem)")
            }
        }

        /// One float32 dataset per tensor and the metadata as root attributes, written beside
        /// `out` under a hidden name, then renamed into place.
        private func writeHDF5(_ tensors: [ExportedTensor], metadata: [String: String]) throws {
            let url = URL(fileURLWithPath: out)
            let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial").path
            do {
                do {  // the file closes when `file` goes
                    let file = try HDF5File.create(temporary)
                    for tensor in tensors { try file.write("/" + tensor.name, tensor.values, shape: tensor.shape) }
                    for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where key != "format" { try file.setAttribute("/", key, value) }
                }
                guard rename(temporary, out) == 0 else { throw CheckpointError.io(path: out, operation: "move the export into place", reason: String(cString: strerror(errno))) }
            } catch {
                try? FileManager.default.removeItem(atPath: temporary)
                throw error
            }
        }
    }
}
