import ArgumentParser
import Checkpoints
import Cohorts
import Foundation

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
        @Option(help: "The step of the run's checkpoint to use (default: the newest valid one).")
        var step: Int?

        func reader() throws -> CheckpointReader { try CheckpointCommand.reader(path, step: step) }
    }

    /// The checkpoint at `path` (a checkpoint directory), or a run directory's checkpoint of
    /// `step`, or else its newest valid one (saying which it passed over and why); verified
    /// (every file's size and checksum) before anything is read from it.
    static func reader(_ path: String, step: Int?) throws -> CheckpointReader {
        func verified(_ directory: URL) throws -> CheckpointReader {
            let reader = try CheckpointReader(directory: directory)
            try reader.verify()
            return reader
        }
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("manifest.json").path) { return try verified(url) }
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
            abstract: "Write a checkpoint's model weights to one safetensors or HDF5 file, tensors named by layer.",
            discussion: """
                  transcriptile checkpoint export runs/demo --out demo.safetensors
                  python3 -c "from safetensors.numpy import load_file; print(load_file('demo.safetensors').keys())"
                The HDF5 file has one float32 dataset per tensor at /<name>.
                """)

        @OptionGroup var target: Target
        @Option(help: "Output file; .safetensors, .h5 or .hdf5 (an existing file is replaced).")
        var out: String
        @Option(help: "safetensors or hdf5 (default: from the file extension).")
        var format: String?

        private var kind: String { format ?? (out.hasSuffix(".h5") || out.hasSuffix(".hdf5") ? "hdf5" : "safetensors") }

        func validate() throws {
            guard ["safetensors", "hdf5"].contains(kind) else { throw ValidationError("--format must be safetensors or hdf5, got \(kind)") }
            guard format != nil || [".safetensors", ".h5", ".hdf5"].contains(where: out.hasSuffix) else {
                throw ValidationError("--out \(out): name it .safetensors, .h5 or .hdf5, or give --format")
            }
            try OutputPath.checkFile(out, "--out")
        }

        func run() throws {
            let reader = try target.reader()
            let tensors = try reader.exportedTensors()
            switch kind {
            case "safetensors":
                let metadata = ["format": "pt", "step": "\(reader.manifest.step)", "source": "transcriptile checkpoint \(reader.directory.lastPathComponent)"]
                try SafeTensors.write(tensors, metadata: metadata, to: URL(fileURLWithPath: out))
            case "hdf5":
                let temporary = out + ".partial"
                do {  // the file closes when `file` goes
                    let file = try HDF5File.create(temporary)
                    for tensor in tensors { try file.write("/" + tensor.name, tensor.values, shape: tensor.shape) }
                    try file.setAttribute("/", "step", "\(reader.manifest.step)")
                }
                try? FileManager.default.removeItem(atPath: out)
                try FileManager.default.moveItem(atPath: temporary, toPath: out)
            default:
                throw ValidationError("--format must be safetensors or hdf5, got \(kind)")  // validate() has refused it already
            }
            let count = tensors.map(\.values.count).reduce(0, +)
            print("\(out): \(tensors.count) tensors, \(count) floats from \(reader.directory.path) (step \(reader.manifest.step))")
        }
    }
}
