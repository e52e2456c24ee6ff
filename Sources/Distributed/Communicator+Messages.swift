import CMPI

/// A message that has arrived and can be received.
public struct ArrivedMessage: Sendable {
    public let source: Int
    public let tag: Int
    public let byteCount: Int
}

extension Communicator {
    /// Sends `bytes` to `rank` with `tag` (point to point, blocking until the buffer may be
    /// reused; small messages return at once).
    public func send(_ bytes: [UInt8], to rank: Int, tag: Int) throws(CommunicatorError) {
        let destination = try checkRoot(rank, "MPI_Send")
        let count = try mpiCount(bytes.count, "MPI_Send")
        try bytes.withUnsafeBufferPointer { (raw) throws(CommunicatorError) in
            try check(MPI_Send(raw.baseAddress, count, cmpi_type_byte(), destination, Int32(tag), handle), "MPI_Send")
        }
    }

    /// The next message from any rank, if one has arrived (never blocks).
    public func arrived() throws(CommunicatorError) -> ArrivedMessage? {
        var flag: Int32 = 0
        var status = MPI_Status()
        try check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, handle, &flag, &status), "MPI_Iprobe")
        guard flag != 0 else { return nil }
        var count: Int32 = 0
        try check(MPI_Get_count(&status, cmpi_type_byte(), &count), "MPI_Get_count")
        return ArrivedMessage(source: Int(status.MPI_SOURCE), tag: Int(status.MPI_TAG), byteCount: Int(count))
    }

    /// Receives a message `arrived()` announced.
    public func receive(_ message: ArrivedMessage) throws(CommunicatorError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: message.byteCount)
        try bytes.withUnsafeMutableBufferPointer { (raw) throws(CommunicatorError) in
            try check(
                MPI_Recv(raw.baseAddress, Int32(message.byteCount), cmpi_type_byte(), Int32(message.source), Int32(message.tag),
                         handle, cmpi_status_ignore()),
                "MPI_Recv")
        }
        return bytes
    }

    /// Whether a message with `tag` from `rank` has arrived (never blocks).
    public func hasArrived(from rank: Int, tag: Int) throws(CommunicatorError) -> Bool {
        var flag: Int32 = 0
        try check(MPI_Iprobe(Int32(rank), Int32(tag), handle, &flag, cmpi_status_ignore()), "MPI_Iprobe")
        return flag != 0
    }
}
