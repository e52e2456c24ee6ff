import Foundation

/// The model weights of a checkpoint as named tensors: every view of the `parameters` and
/// `buffers` arenas (a model's layers, by name), or each such arena whole when it has no views.
public struct ExportedTensor {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
}

extension CheckpointReader {
    public func exportedTensors() throws -> [ExportedTensor] {
        var tensors = [ExportedTensor]()
        for arena in manifest.arenas where arena.name == "parameters" || arena.name == "buffers" {
            var values = [Float](repeating: 0, count: arena.count)
            try values.withUnsafeMutableBufferPointer { try read(arena: arena.name, range: 0..<arena.count, into: $0) }
            let views = manifest.tensors.filter { $0.arena == arena.name }
            if views.isEmpty {
                tensors.append(ExportedTensor(name: arena.name, shape: [arena.count], values: values))
            }
            for view in views {
                tensors.append(ExportedTensor(name: view.name, shape: view.shape, values: Array(values[view.offset..<(view.offset + view.count)])))
            }
        }
        return tensors
    }
}

/// Writes the `safetensors` format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
/// padded with spaces to a multiple of 8, then the tensors' bytes back to back.
public enum SafeTensors {
    public static func write(_ tensors: [ExportedTensor], metadata: [String: String], to url: URL) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for tensor in tensors {
            tensor.values.withUnsafeBytes { file.append(contentsOf: $0) }  // float32, little-endian on every platform we build for
        }
        try FileIO.writeAtomically(file, to: url)
    }
}
