import CMPI

/// Everything that can go wrong in a collective, with the call that went wrong.
public enum CommunicatorError: Error, Equatable, CustomStringConvertible {
    /// An MPI call returned `code`; `message` is MPI's own text for it.
    case mpi(call: String, code: Int32, message: String)
    /// Buffer lengths do not fit the collective. Found before MPI was called.
    case lengthMismatch(call: String, detail: String)
    /// A rank argument is outside `0..<size`. Found before MPI was called.
    case invalidRank(call: String, rank: Int, size: Int)
    /// An argument is out of its domain (a negative color, say). Found before MPI was called.
    case invalidArgument(call: String, detail: String)
    /// One MPI call can move at most `Int32.max` elements; `count` is more.
    case countTooLarge(call: String, count: Int)

    public var description: String {
        switch self {
        case let .mpi(call, code, message):
            return "\(call) failed with MPI error \(code): \(message)"
        case let .lengthMismatch(call, detail):
            return "\(call): buffer lengths do not fit: \(detail)"
        case let .invalidRank(call, rank, size):
            return "\(call): rank \(rank) is outside the communicator's 0..<\(size)"
        case let .invalidArgument(call, detail):
            return "\(call): \(detail)"
        case let .countTooLarge(call, count):
            return "\(call): \(count) elements exceed one MPI call's limit of \(Int32.max); split the buffer"
        }
    }
}

/// Turns an MPI return code into a thrown `CommunicatorError.mpi` naming `call`.
@inline(__always)
func check(_ code: Int32, _ call: String) throws(CommunicatorError) {
    guard code != MPI_SUCCESS else { return }
    throw .mpi(call: call, code: code, message: mpiErrorString(code))
}

/// MPI's description of an error code.
func mpiErrorString(_ code: Int32) -> String {
    var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
    var length: Int32 = 0
    guard MPI_Error_string(code, &text, &length) == MPI_SUCCESS else { return "unknown error" }
    return String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// An element count as MPI's `int`, or `countTooLarge`.
@inline(__always)
func mpiCount(_ count: Int, _ call: String) throws(CommunicatorError) -> Int32 {
    guard let narrow = Int32(exactly: count) else { throw .countTooLarge(call: call, count: count) }
    return narrow
}
