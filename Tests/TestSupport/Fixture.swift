import Foundation
import Tensors

/// A golden fixture made by Tests/Fixtures/make_pytorch_fixtures.py: named tensors as
/// `{"shape": [...], "data": [...]}` objects, nested in JSON.
public struct Fixture {
    public let root: [String: Any]

    /// Loads Tests/Fixtures/pytorch/`name`.json.
    public init(_ name: String) throws {
        let url = ProcessRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/pytorch/\(name).json")
        root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// The object at `path` (keys from the root).
    public func value(_ path: String...) -> Any? { value(path) }

    func value(_ path: [String]) -> Any? {
        path.reduce(root as Any?) { ($0 as? [String: Any])?[$1] }
    }

    /// The tensor at `path`, in `dtype`.
    public func tensor(_ path: String..., dtype: DType = .float32) -> Tensor {
        guard let object = value(path) as? [String: Any], let shape = object["shape"] as? [Int],
              let data = object["data"] as? [Double] else { preconditionFailure("no tensor at \(path)") }
        return Tensor(shape: shape, values: data, dtype: dtype)
    }

    /// The names of the tensors under `path`.
    public func names(_ path: String...) -> [String] {
        ((value(path) as? [String: Any])?.keys).map { Array($0).sorted() } ?? []
    }
}
