import CMPI

/// Variable-length byte blobs (serialised metadata, checkpoint indexes, error reports).
extension Communicator {
    /// Collects every rank's blob (any length, also empty) at `root`, in rank order.
    /// Returns the blobs on `root` and `nil` elsewhere.
    public func gatherBytes(_ blob: [UInt8], root: Int) throws(CommunicatorError) -> [[UInt8]]? {
        let call = "MPI_Gatherv"
        let root32 = try checkRoot(root, call)
        let lengths = try gatherLengths(blob.count, root: root32)
        var counts = [Int32](), displacements = [Int32]()
        var offset = 0
        for length in lengths {
            counts.append(try mpiCount(length, call))
            displacements.append(try mpiCount(offset, call))
            offset += length
        }
        _ = try mpiCount(offset, call)
        var all = [UInt8](repeating: 0, count: rank == root ? max(offset, 1) : 1)
        let sendCount = try mpiCount(blob.count, call)
        try blob.withUnsafeBufferPointer { (send) throws(CommunicatorError) in
            try all.withUnsafeMutableBufferPointer { (receive) throws(CommunicatorError) in
                try check(
                    MPI_Gatherv(
                        send.baseAddress, sendCount, cmpi_type_byte(),
                        receive.baseAddress, &counts, &displacements, cmpi_type_byte(), root32, handle),
                    call)
            }
        }
        guard rank == root else { return nil }
        return zip(displacements, counts).map { start, count in
            Array(all[Int(start)..<Int(start + count)])
        }
    }

    /// `root`'s blob, on every rank; other ranks' `blob` arguments are ignored.
    public func broadcastBytes(_ blob: [UInt8], root: Int) throws(CommunicatorError) -> [UInt8] {
        let root32 = try checkRoot(root, "MPI_Bcast")
        var length = [Int64(blob.count)]
        try broadcast(&length, root: root)
        let count = try mpiCount(Int(length[0]), "MPI_Bcast")
        var data = rank == root ? blob : [UInt8](repeating: 0, count: Int(count))
        try data.withUnsafeMutableBufferPointer { (buffer) throws(CommunicatorError) in
            try check(MPI_Bcast(buffer.baseAddress, count, cmpi_type_byte(), root32, handle), "MPI_Bcast")
        }
        return data
    }

    /// Each rank's `length` at `root` (zeros elsewhere).
    private func gatherLengths(_ length: Int, root: Int32) throws(CommunicatorError) -> [Int] {
        var mine = Int64(length)
        var all = [Int64](repeating: 0, count: size)
        try all.withUnsafeMutableBufferPointer { (receive) throws(CommunicatorError) in
            try check(
                MPI_Gather(&mine, 1, cmpi_type_int64(), receive.baseAddress, 1, cmpi_type_int64(), root, handle),
                "MPI_Gather")
        }
        return all.map(Int.init)
    }
}
