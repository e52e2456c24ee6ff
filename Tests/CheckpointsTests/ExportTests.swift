import Checkpoints
import Foundation
import TestSupport
import XCTest

/// The weights an export takes from a checkpoint, and the safetensors bytes it writes, read back
/// here byte by byte (Python's reading of them: CLITests/ModelBundleTests).
final class ExportTests: XCTestCase {
    private var run: URL!
    private let parameters = (0..<10).map { Float($0) * 0.5 - 1 }, buffers: [Float] = [7, 8, 9], moments = [Float](repeating: 3, count: 10)

    override func setUpWithError() throws {
        run = FileManager.default.temporaryDirectory.appendingPathComponent("export-tests-\(UUID().uuidString)")
        let store = CheckpointStore(runDirectory: run)
        try store.prepare(step: 5)
        let shard = try parameters.withUnsafeBufferPointer { p in
            try buffers.withUnsafeBufferPointer { b in
                try moments.withUnsafeBufferPointer { m in
                    try Shard.write([ShardSlice(arena: "parameters", start: 0, values: p), ShardSlice(arena: "buffers", start: 0, values: b),
                                     ShardSlice(arena: "adam.m", start: 0, values: m)], worker: 0, in: store.directory(step: 5))
                }
            }
        }
        try store.commit(Manifest(
            step: 5, epoch: 0, cursor: 5, workers: 1, frameElements: 1 << 20, identity: ["task": "rna-vae"], config: "task: rna-vae\n",
            arenas: [.init(name: "parameters", count: 10), .init(name: "buffers", count: 3), .init(name: "adam.m", count: 10)], scalars: [:],
            tensors: [.init(name: "layer.weight", arena: "parameters", offset: 0, shape: [2, 3]), .init(name: "layer.bias", arena: "parameters", offset: 6, shape: [4]),
                      .init(name: "norm.running_mean", arena: "buffers", offset: 0, shape: [3])],
            metrics: nil, shards: [shard]))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: run) }

    private func reader() throws -> CheckpointReader { try CheckpointReader(directory: CheckpointStore(runDirectory: run).directory(step: 5)) }

    func testExportedTensorsAreTheModelsViewsWithTheirPlacesAndNoOptimizerState() throws {
        let tensors = try reader().exportedTensors()
        XCTAssertEqual(tensors, [
            ExportedTensor(name: "layer.weight", shape: [2, 3], values: Array(parameters[0..<6]), arena: "parameters", offset: 0),
            ExportedTensor(name: "layer.bias", shape: [4], values: Array(parameters[6..<10]), arena: "parameters", offset: 6),
            ExportedTensor(name: "norm.running_mean", shape: [3], values: buffers, arena: "buffers", offset: 0),
        ])
        XCTAssertEqual(try reader().exportMetadata, ["format": "pt", "task": "rna-vae", "step": "5", "source": "transcriptile checkpoint step-00000005"])
    }

    func testSafetensorsBytesAreTheHeaderThenTheFloatsBackToBack() throws {
        let tensors = try reader().exportedTensors()
        let url = run.appendingPathComponent("weights.safetensors")
        try SafeTensors.write(tensors, metadata: try reader().exportMetadata, to: url)
        let data = try Data(contentsOf: url)
        XCTAssertEqual(data, try SafeTensors.encode(tensors, metadata: try reader().exportMetadata))
        let length = Int(UInt64(littleEndian: data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
        XCTAssertEqual(length % 8, 0, "the header is padded to a multiple of 8")
        XCTAssertEqual(data.count, 8 + length + 4 * (10 + 3))
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any])
        XCTAssertEqual((header["__metadata__"] as? [String: String])?["task"], "rna-vae")
        XCTAssertEqual(Set(header.keys), ["__metadata__", "layer.weight", "layer.bias", "norm.running_mean"])
        let body = data.subdata(in: (8 + length)..<data.count)
        for tensor in tensors {
            let entry = try XCTUnwrap(header[tensor.name] as? [String: Any])
            XCTAssertEqual(entry["dtype"] as? String, "F32")
            XCTAssertEqual(entry["shape"] as? [Int], tensor.shape)
            let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
            let floats = body.subdata(in: offsets[0]..<offsets[1]).withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            XCTAssertEqual(floats, tensor.values, tensor.name)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix(".") }, [], "no temporary file left")
    }
}
