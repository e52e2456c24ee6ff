import Checkpoints
import Foundation
import TestSupport
import XCTest

/// The checkpoint format on real files: shards written by three "workers", read back on any
/// split, and every kind of damage refused with a message naming the file.
final class CheckpointFormatTests: XCTestCase {
    private var run: URL!
    private let values = (0..<10_000).map { Float(sin(Double($0))) * 1e-3 }

    override func setUpWithError() throws {
        run = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-tests-\(UUID().uuidString)")
        let store = CheckpointStore(runDirectory: run)
        try store.prepare(step: 7)
        let parts = [0..<3334, 3334..<6667, 6667..<10_000]
        let shards = try values.withUnsafeBufferPointer { all in
            try parts.enumerated().map { worker, part in
                try Shard.write([ShardSlice(arena: "parameters", start: part.lowerBound, values: UnsafeBufferPointer(rebasing: all[part]))],
                                worker: worker, in: store.directory(step: 7), frameElements: 1000)
            }
        }
        try store.commit(Manifest(step: 7, epoch: 1, cursor: 24, workers: 3, frameElements: 1000, identity: ["task": "t"], config: "",
                                  arenas: [.init(name: "parameters", count: values.count)], scalars: [:],
                                  tensors: [.init(name: "layer.weight", arena: "parameters", offset: 0, shape: [100, 100])],
                                  metrics: nil, shards: shards))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: run) }

    private var directory: URL { CheckpointStore(runDirectory: run).directory(step: 7) }

    func testAnySplitReadsBackExactlyFromOnlyTheFramesItNeeds() throws {
        let reader = try CheckpointReader(directory: directory)
        try reader.verify()
        XCTAssertEqual(CheckpointStore(runDirectory: run).latest(), 7)
        for parts in [[0..<10_000], [0..<5000, 5000..<10_000], [0..<2500, 2500..<5000, 5000..<7500, 7500..<10_000], [3999..<4001]] {
            for part in parts {
                var out = [Float](repeating: .nan, count: part.count)
                try out.withUnsafeMutableBufferPointer { try reader.read(arena: "parameters", range: part, into: $0) }
                XCTAssertEqual(out, Array(values[part]))
            }
        }
    }

    /// The pipelined writer gives the same file, byte for byte, on any number of threads.
    func testShardIsTheSameBytesOnAnyNumberOfThreads() throws {
        let records = try (1...4).map { threads in
            let directory = run.appendingPathComponent("threads-\(threads)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return try values.withUnsafeBufferPointer { all in
                try Shard.write([ShardSlice(arena: "parameters", start: 0, values: all), ShardSlice(arena: "adam.m", start: 0, values: UnsafeBufferPointer(rebasing: all[0..<2500]))],
                                worker: 0, in: directory, frameElements: 700, threads: threads)
            }
        }
        XCTAssertEqual(records[0].frames.count, 15 + 4)
        for record in records.dropFirst() {
            XCTAssertEqual(record.xxh64, records[0].xxh64)
            XCTAssertEqual(record.frames, records[0].frames)
        }
        let sum = try ProcessRunner.run("/usr/bin/env", ["xxhsum", "-H64", run.appendingPathComponent("threads-3/shard-0000.tzst").path])
        XCTAssertEqual(sum.stdout.split(separator: " ").first.map(String.init), records[0].xxh64, "the recorded XXH64 is the file's")
    }

    /// The frames are assembled by hand (raw mantissa blocks, compressed exponent blocks, XXH64):
    /// at every size, including several raw blocks and contents under one 32-byte stripe, the
    /// stock `zstd` tool decodes each one, checksum verified, to the shuffled values.
    func testFramesAreStandardZstdAtEverySize() throws {
        let sizes = [1, 5, 8, 11, 100_000]
        let directory = run.appendingPathComponent("sizes")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let slices = sizes.map { count in (0..<count).map { Float(sin(Double($0) * 0.37)) * Float(count) } }
        let record = try Shard.write(zip(sizes, slices).map { count, values in
            ShardSlice(arena: "a\(count)", start: 0, values: values.withUnsafeBufferPointer { UnsafeBufferPointer(start: $0.baseAddress, count: count) })
        }, worker: 0, in: directory, frameElements: 60_000)
        XCTAssertEqual(record.frames.map(\.count), [1, 5, 8, 11, 60_000, 40_000])
        let shard = try Data(contentsOf: directory.appendingPathComponent(record.file))
        for frame in record.frames {
            let file = directory.appendingPathComponent("frame.zst")
            try shard[frame.offset..<(frame.offset + frame.bytes)].write(to: file)
            let decoded = try ProcessRunner.run("/usr/bin/env", ["zstd", "-d", "-q", "-f", "--check", file.path, "-o", file.path + ".out"])
            XCTAssertEqual(decoded.status, 0, "\(frame.arena)[\(frame.start)...]: \(decoded.output)")
            let planes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path + ".out")))
            let values = slices[sizes.firstIndex(of: Int(frame.arena.dropFirst())!)!][frame.start..<(frame.start + frame.count)]
            let expected = (0..<4).flatMap { byte in values.map { UInt8(truncatingIfNeeded: $0.bitPattern >> (8 * byte)) } }
            XCTAssertEqual(planes, expected, "\(frame.arena)[\(frame.start)...]")
        }
        // And they read back exactly.
        let manifest = Manifest(step: 0, epoch: 0, cursor: 0, workers: 1, frameElements: 60_000, identity: [:], config: "",
                                arenas: sizes.map { .init(name: "a\($0)", count: $0) }, scalars: [:], tensors: [], metrics: nil, shards: [record])
        try JSONEncoder().encode(manifest).write(to: directory.appendingPathComponent("manifest.json"))
        let reader = try CheckpointReader(directory: directory)
        try reader.verify()
        for (count, values) in zip(sizes, slices) {
            var out = [Float](repeating: .nan, count: count)
            try out.withUnsafeMutableBufferPointer { try reader.read(arena: "a\(count)", range: 0..<count, into: $0) }
            XCTAssertEqual(out, values)
        }
    }

    func testDamagedShardsAreRefusedNamingTheFile() throws {
        let shard = directory.appendingPathComponent("shard-0001.tzst")
        let good = try Data(contentsOf: shard)
        var flipped = good
        flipped[200] ^= 0x01
        let cases: [(String, () throws -> Void, String)] = [
            ("corrupted byte", { try flipped.write(to: shard) }, "shard-0001.tzst: XXH64"),
            ("truncated", { try good.prefix(good.count - 10).write(to: shard) }, "shard-0001.tzst has \(good.count - 10) bytes"),
            ("zero bytes", { try Data().write(to: shard) }, "shard-0001.tzst has 0 bytes"),
            ("missing", { try FileManager.default.removeItem(at: shard) }, "shard-0001.tzst: No such file"),
        ]
        for (name, damage, message) in cases {
            try damage()
            XCTAssertThrowsError(try CheckpointReader(directory: directory).verify(), name) { error in
                XCTAssertTrue("\(error)".contains(message), "\(name): \(error)")
            }
            XCTAssertNil(CheckpointStore(runDirectory: run).newestValid().reader, name)
            try good.write(to: shard)
        }
        // A flipped byte inside a frame also fails to decode, even without the file's checksum.
        try flipped.write(to: shard)
        var out = [Float](repeating: 0, count: values.count)
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try CheckpointReader(directory: directory).read(arena: "parameters", range: 0..<values.count, into: $0) })
    }

    func testManifestThatDoesNotParseOrEscapesTheDirectoryIsRefused() throws {
        let manifest = directory.appendingPathComponent("manifest.json")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        try "{\"step\": ".write(to: manifest, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CheckpointReader(directory: directory)) { XCTAssertTrue("\($0)".contains("manifest.json does not parse"), "\($0)") }
        for escape in ["../../../etc/passwd", "/etc/passwd", "sub/shard.tzst", ".hidden"] {
            try text.replacingOccurrences(of: "\"shard-0000.tzst\"", with: "\"\(escape.replacingOccurrences(of: "/", with: "\\/"))\"")
                .write(to: manifest, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try CheckpointReader(directory: directory), escape) { error in
                XCTAssertTrue("\(error)".contains("is not a plain file name inside the checkpoint directory"), "\(escape): \(error)")
            }
        }
        try text.write(to: manifest, atomically: true, encoding: .utf8)
        let link = directory.appendingPathComponent("shard-0002.tzst")
        try FileManager.default.removeItem(at: link)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/etc/hostname")
        XCTAssertThrowsError(try CheckpointReader(directory: directory).verify()) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
    }

    /// The export is read by the `safetensors` Python package (installed here if missing).
    func testSafetensorsExportLoadsInPython() throws {
        let out = run.appendingPathComponent("weights.safetensors")
        try SafeTensors.write(try CheckpointReader(directory: directory).exportedTensors(), metadata: ["step": "7"], to: out)
        let check = "from safetensors.numpy import load_file; import sys, math; t = load_file(sys.argv[1])['layer.weight']; "
            + "print(t.shape, t.dtype, repr(float(t[1, 2])))"
        var result = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", check, out.path])
        if result.status != 0 {
            _ = try ProcessRunner.run("/usr/bin/env", ["python3", "-m", "pip", "install", "--quiet", "safetensors", "numpy"], timeout: 300)
            result = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", check, out.path])
        }
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "(100, 100) float32 \(Double(values[102]))")
    }
}
