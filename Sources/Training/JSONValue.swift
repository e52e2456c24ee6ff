import Foundation

/// Any JSON value. A task's `Prepared` (normaliser, gene list, class names) travels in the plan
/// and sits in `run_plan.json` as this, readable JSON rather than a base64 blob.
public enum JSONValue: Codable, Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    /// `value` as JSON (non-finite numbers as the strings "nan", "inf", "-inf").
    public init<T: Encodable>(encoding value: T) throws {
        self = try JSONDecoder.lenient.decode(JSONValue.self, from: JSONEncoder.compact.encode(value))
    }

    /// This value read as a `T`.
    public func decode<T: Decodable>(_: T.Type) throws -> T {
        try JSONDecoder.lenient.decode(T.self, from: JSONEncoder.compact.encode(self))
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .number(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(value): try container.encode(value)
        case let .object(value): try container.encode(value)
        }
    }
}
