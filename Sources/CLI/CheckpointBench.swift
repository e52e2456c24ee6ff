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
            Beside it: the same bytes written raw (the disk's speed, with fsync) and compressed \
            without writing (zstd's speed). Reference here: zstd level 1 on shuffled float32 gives \
            ratios 1.17–1.25 at > 1 GB/s.
            """)

    @Option(help: "Directory for the shards (default: a temporary one, removed afterwards).")
    var dir: String?
    @Option(help: "AdamW steps before saving (moments of a trained model compress differently from zeros).")
    var steps = 20
    @Option(help: "Repeats (the median is reported).")
    var repeats = 5
    @OptionGroup var output: BenchOutputOptions

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
        let directory = URL(fileURLWithPath: dir ?? NSTemporaryDirectory() + "transcriptile-checkpoint-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { if dir == nil { try? FileManager.default.removeItem(at: directory) } }

        let table = BenchTable(bench: "checkpoint", json: output.json, isPrinter: true, labelled: true,
                               title: "\(Int(raw / 1e6)) MB of float32 state (parameters + AdamW moments), one worker, medians of \(repeats)",
                               columns: [.init(header: "MB/s", key: "mb_per_s"), .init(header: "ratio", key: "ratio")])
        func median(_ body: () throws -> Void) rethrows -> Double { try medianSeconds(repeats: repeats, body) }
        var record: Manifest.ShardRecord?
        let save = try median { record = try Shard.write(slices, worker: 0, in: directory, threads: BLASThreads.count) }
        let ratio = raw / Double(record!.bytes)
        table.row(case: "save (shuffle + zstd-1 + write + fsync)", values: [raw / save / 1e6, ratio], value: raw / save / 1e6, unit: "MB/s")
        let memory = URL(fileURLWithPath: "/dev/shm/transcriptile-checkpoint-bench-\(getpid())")
        if (try? FileManager.default.createDirectory(at: memory, withIntermediateDirectories: true)) != nil {
            defer { try? FileManager.default.removeItem(at: memory) }
            let cpu = try median { _ = try Shard.write(slices, worker: 0, in: memory, threads: BLASThreads.count) }
            table.row(case: "save to memory (/dev/shm: no disk)", values: [raw / cpu / 1e6, ratio], value: raw / cpu / 1e6, unit: "MB/s")
        }
        let plain = directory.appendingPathComponent("raw.bin")
        let disk = try median {
            let handle = try FileHandle(forWritingTo: { FileManager.default.createFile(atPath: plain.path, contents: nil); return plain }())
            for slice in slices { try handle.write(contentsOf: UnsafeRawBufferPointer(slice.values)) }
            try handle.synchronize()
            try handle.close()
        }
        table.row(case: "raw write + fsync (the disk)", values: [raw / disk / 1e6, 1], value: raw / disk / 1e6, unit: "MB/s")
        let manifest = Manifest(step: 0, epoch: 0, cursor: 0, workers: 1, frameElements: Shard.frameElements, identity: [:], config: "",
                                arenas: arenas.map { Manifest.Arena(name: $0.0, count: $0.1.count) }, scalars: [:], tensors: [],
                                metrics: nil, shards: [record!])
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
        table.row(case: "verify (SHA-256 of the shard)", values: [Double(record!.bytes) / verify / 1e6, ratio], value: Double(record!.bytes) / verify / 1e6, unit: "MB/s")
    }
}
