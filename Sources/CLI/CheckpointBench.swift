import ArgumentParser
import Autograd
import Checkpoints
import Foundation
import NN
import Optim
import Tensors

/// `transcriptile bench checkpoint`: save and load speed of one worker's shard, and the
/// compression ratio, on a real model's training state.
struct CheckpointBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Checkpoint save/load MB/s per worker and compression ratio on a trained model's state.",
        discussion: """
            Trains the reference VAE of bench core (10.8 M parameters) for --steps AdamW steps, then \
            saves parameters and both moments (130 MB) as one shard into --dir and reads them back. \
            Beside it, taking turns with the save in every round: the same bytes written raw by the \
            same writer, directly and through the page cache (the disk's speed, with fsync), and \
            the save into /dev/shm (no disk: compression, hashing and copying only). The save \
            compresses on the threads per rank (OPENBLAS_NUM_THREADS); load and verify use one.
            """)

    @Option(help: "File system to measure: a fresh folder is made inside this directory and removed afterwards (default: the temporary directory).")
    var dir: String?
    @Option(help: "AdamW steps before saving (moments of a trained model compress differently from zeros).")
    var steps = 20
    @Option(help: "Repeats (the median is reported).")
    var repeats = 5
    @OptionGroup var output: BenchOutputOptions

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be ≥ 1, got \(repeats)") }
        guard steps >= 0 else { throw ValidationError("--steps must be ≥ 0, got \(steps)") }
        if let dir {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--dir \(dir) is not an existing directory")
            }
        }
    }

    func run() throws {
        let model = ReferenceVAE()
        var optimizer = Adam.adamW()
        for _ in 0..<steps {
            model.arena.zeroGradients()
            model.loss().backward()
            optimizer.step(parameters: model.arena.values, gradients: model.arena.gradients, lr: 1e-3)
        }
        let arenas = [("parameters", model.arena.values)] + optimizer.state(like: model.arena.values)
        let slices = arenas.map { ShardSlice(arena: $0.0, start: 0, values: UnsafeBufferPointer($0.1.buffer(Float.self))) }
        let raw = Double(arenas.map { $0.1.count }.reduce(0, +) * 4)
        let directory = URL(fileURLWithPath: dir ?? NSTemporaryDirectory()).appendingPathComponent("transcriptile-checkpoint-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: directory) }

        let table = BenchTable(bench: "checkpoint", json: output.json, isPrinter: true, labelled: true,
                               title: "\(Int(raw / 1e6)) MB of float32 state (parameters + AdamW moments), one worker, medians of \(repeats)",
                               columns: [.init(header: "MB/s", key: "mb_per_s"), .init(header: "ratio", key: "ratio")])
        func median(_ body: () throws -> Void) rethrows -> Double { try medianSeconds(repeats: repeats, body) }
        // The disk's speed drifts on shared machines: the writes take turns in every round.
        let memory = URL(fileURLWithPath: "/dev/shm/transcriptile-checkpoint-bench-\(getpid())")
        let hasMemory = (try? FileManager.default.createDirectory(at: memory, withIntermediateDirectories: true)) != nil
        defer { if hasMemory { try? FileManager.default.removeItem(at: memory) } }
        let plain = directory.appendingPathComponent("raw.bin").path
        func writeRaw(direct: Bool) throws {
            let file = try FileIO.Output(creating: plain, direct: direct)
            for slice in slices { try file.write(UnsafeRawBufferPointer(slice.values)) }
            try file.finish()
        }
        var record: Manifest.ShardRecord?
        let writes: [(case: String, compressed: Bool, body: () throws -> Void)] = [
            ("save (zstd + XXH64, direct write + fsync)", true, { record = try Shard.write(slices, worker: 0, in: directory, threads: BLASThreads.count) }),
            ("raw write, direct + fsync (disk)", false, { try writeRaw(direct: true) }),
            ("raw write, page cache + fsync (disk)", false, { try writeRaw(direct: false) }),
        ] + (hasMemory ? [("save into /dev/shm (no disk)", true, { _ = try Shard.write(slices, worker: 0, in: memory, threads: BLASThreads.count) })] : [])
        var seconds = [[Double]](repeating: [], count: writes.count)
        let clock = ContinuousClock()
        for _ in 0..<repeats {
            for (index, write) in writes.enumerated() {
                let start = clock.now
                try write.body()
                seconds[index].append((clock.now - start).seconds)
            }
        }
        // validate() requires --repeats ≥ 1, so the save has run.
        guard let record else { throw ValidationError("--repeats must be ≥ 1") }
        let bytes = Double(record.bytes), ratio = raw / bytes
        for (write, times) in zip(writes, seconds) {
            let rate = raw / times.sorted()[times.count / 2] / 1e6
            table.row(case: write.case, values: [rate, write.compressed ? ratio : 1], value: rate, unit: "MB/s")
        }
        let manifest = Manifest(step: 0, epoch: 0, cursor: 0, workers: 1, frameElements: Shard.frameElements, identity: [:], config: "",
                                arenas: arenas.map { Manifest.Arena(name: $0.0, count: $0.1.count) }, scalars: [:], tensors: [],
                                metrics: nil, shards: [record])
        try JSONEncoder().encode(manifest).write(to: directory.appendingPathComponent("manifest.json"))
        let reader = try CheckpointReader(directory: directory)
        var target = [Float](repeating: 0, count: arenas[0].1.count)
        let load = try median {
            for (name, values) in arenas {
                try target.withUnsafeMutableBufferPointer { try reader.read(arena: name, range: 0..<values.count, into: $0) }
            }
        }
        table.row(case: "load (read + zstd + unshuffle)", values: [raw / load / 1e6, ratio], value: raw / load / 1e6, unit: "MB/s")
        let verify = try median { try reader.verify() }
        table.row(case: "verify (XXH64 of the shard)", values: [bytes / verify / 1e6, ratio], value: bytes / verify / 1e6, unit: "MB/s")
    }
}
