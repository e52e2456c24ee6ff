import Foundation

/// One named tensor of a checkpoint's model weights: a view of the `parameters` or `buffers`
/// arena (a model's layer, by name), or such an arena whole when it has no views.
public struct ExportedTensor: Equatable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    /// The arena it is a view of (`parameters` or `buffers`) and where in it the view starts.
    public var arena: String
    public var offset: Int

    public init(name: String, shape: [Int], values: [Float], arena: String = "parameters", offset: Int = 0) {
        (self.name, self.shape, self.values, self.arena, self.offset) = (name, shape, values, arena, offset)
    }
}

extension CheckpointReader {
    /// The model's weights: every view of `parameters`, then of `buffers`, each arena's views in
    /// the manifest's order (the order the model declared them).
    public func exportedTensors() throws -> [ExportedTensor] {
        var tensors = [ExportedTensor]()
        for name in ["parameters", "buffers"] {
            guard let arena = manifest.arenas.first(where: { $0.name == name }) else { continue }
            var values = [Float](repeating: 0, count: arena.count)
            try values.withUnsafeMutableBufferPointer { try read(arena: arena.name, range: 0..<arena.count, into: $0) }
            let views = manifest.tensors.filter { $0.arena == arena.name }
            if views.isEmpty {
                tensors.append(ExportedTensor(name: arena.name, shape: [arena.count], values: values, arena: arena.name))
            }
            for view in views {
                tensors.append(ExportedTensor(name: view.name, shape: view.shape, values: Array(values[view.offset..<(view.offset + view.count)]),
                                              arena: arena.name, offset: view.offset))
            }
        }
        return tensors
    }

    /// The metadata every export of this checkpoint carries (strings, as `safetensors` wants):
    /// `format` `pt` (the tensors load as PyTorch's state-dict layout), the task, the step and
    /// the checkpoint's name.
    public var exportMetadata: [String: String] {
        ["format": "pt", "task": manifest.identity["task"] ?? "", "step": "\(manifest.step)",
         "source": "transcriptile checkpoint \(directory.lastPathComponent)"]
    }
}

/// The `safetensors` format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range
/// (and `__metadata__`, strings only), padded with spaces to a multiple of 8, then the tensors'
/// bytes back to back, in the order given.
public enum SafeTensors {
    /// The file's bytes.
    public static func encode(_ tensors: [ExportedTensor], metadata: [String: String]) throws -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var file = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for tensor in tensors {
            tensor.values.withUnsafeBytes { file.append(contentsOf: $0) }  // float32, little-endian on every platform we build for
        }
        return file
    }

    /// Writes the file atomically (a temporary file beside it, flushed, then renamed).
    public static func write(_ tensors: [ExportedTensor], metadata: [String: String], to url: URL) throws {
        try FileIO.writeAtomically(try encode(tensors, metadata: metadata), to: url)
    }
}
