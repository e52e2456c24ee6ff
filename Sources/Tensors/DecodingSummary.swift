/// One line for a JSON file that did not decode (a cohort's or a checkpoint's manifest): the key
/// path and what was wrong, without the decoder's internals.
public func decodingSummary(_ error: Error) -> String {
    func path(_ keys: [CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }
    return switch error {
    case let DecodingError.keyNotFound(key, context): "missing key '\(path(context.codingPath + [key]))'"
    case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context): "wrong type at '\(path(context.codingPath))'"
    case let DecodingError.dataCorrupted(context):
        context.codingPath.isEmpty ? "not valid JSON" : "a bad value at '\(path(context.codingPath))'"
    default: "\(error)"
    }
}
