/// Why a checkpoint could not be written, found, trusted or used. Every case names the file or
/// checkpoint concerned and, where there is one, what to do.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// The checkpoint at `path` cannot be trusted: `reason` names the file and what is wrong.
    case invalid(path: String, reason: String)
    /// A file-system operation failed (`operation` on `path`: the system's message).
    case io(path: String, operation: String, reason: String)
    /// The checkpoint belongs to another run set-up: one line per differing key.
    case mismatch(path: String, differences: [String])
    case notFound(String)

    public var description: String {
        switch self {
        case let .invalid(path, reason): "checkpoint \(path) is invalid: \(reason)"
        case let .io(path, operation, reason): "cannot \(operation) \(path): \(reason)"
        case let .mismatch(path, differences):
            "checkpoint \(path) was saved by another set-up; it differs in:\n  " + differences.joined(separator: "\n  ")
                + "\nresume with the settings it was saved with, or start a new run (--resume none and another --run-dir)"
        case let .notFound(message): message
        }
    }
}
