import CMPI

extension Communicator {
    /// Reduces `buffer` across ranks in place: afterwards every rank holds the same result.
    /// Zero-length buffers are allowed (on every rank alike).
    public func allreduce<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp
    ) throws(CommunicatorError) {
        let count = try mpiCount(buffer.count, "MPI_Allreduce")
        try check(
            MPI_Allreduce(cmpi_in_place(), buffer.baseAddress, count, T.scalarKind.mpiType, op.mpiOp, handle),
            "MPI_Allreduce")
        if op == .average { buffer.divideSums(byRanks: size) }
    }

    /// Reduces `input` across ranks into `output`, which must have the same length.
    public func allreduce<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>, op: ReduceOp
    ) throws(CommunicatorError) {
        guard input.count == output.count else {
            throw .lengthMismatch(call: "MPI_Allreduce", detail: "input has \(input.count) elements, output \(output.count)")
        }
        let count = try mpiCount(input.count, "MPI_Allreduce")
        try check(
            MPI_Allreduce(input.baseAddress, output.baseAddress, count, T.scalarKind.mpiType, op.mpiOp, handle),
            "MPI_Allreduce")
        if op == .average { output.divideSums(byRanks: size) }
    }

    /// Reduces an array across ranks in place.
    public func allreduce<T: CollectiveElement>(_ values: inout [T], op: ReduceOp) throws(CommunicatorError) {
        try values.withUnsafeMutableBufferPointer { (buffer) throws(CommunicatorError) in
            try allreduce(buffer, op: op)
        }
    }

    /// Reduces one scalar across ranks and returns the result.
    public func allreduce<T: CollectiveElement>(_ value: T, op: ReduceOp) throws(CommunicatorError) -> T {
        var values = [value]
        try allreduce(&values, op: op)
        return values[0]
    }

    /// Starts reducing `buffer` in place and returns at once. The buffer must stay alive and
    /// untouched until the request completes (`wait()` or a `test()` that returns `true`).
    public func startAllreduce<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp
    ) throws(CommunicatorError) -> CollectiveRequest {
        let count = try mpiCount(buffer.count, "MPI_Iallreduce")
        var request: MPI_Request? = cmpi_request_null()
        try check(
            MPI_Iallreduce(
                cmpi_in_place(), buffer.baseAddress, count, T.scalarKind.mpiType, op.mpiOp, handle, &request),
            "MPI_Iallreduce")
        let ranks = size
        return CollectiveRequest(request, call: "MPI_Iallreduce", completion: op == .average ? { buffer.divideSums(byRanks: ranks) } : nil)
    }
}
