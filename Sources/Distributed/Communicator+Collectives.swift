import CMPI

extension Communicator {
    /// Copies `root`'s buffer into every rank's buffer (all ranks pass the same length).
    public func broadcast<T: CollectiveElement>(
        _ buffer: UnsafeMutableBufferPointer<T>, root: Int
    ) throws(CommunicatorError) {
        let root = try checkRoot(root, "MPI_Bcast")
        let count = try mpiCount(buffer.count, "MPI_Bcast")
        try check(MPI_Bcast(buffer.baseAddress, count, T.scalarKind.mpiType, root, handle), "MPI_Bcast")
    }

    /// Copies `root`'s array into every rank's array (all ranks pass the same length).
    public func broadcast<T: CollectiveElement>(_ values: inout [T], root: Int) throws(CommunicatorError) {
        try values.withUnsafeMutableBufferPointer { (buffer) throws(CommunicatorError) in
            try broadcast(buffer, root: root)
        }
    }

    /// Concatenates every rank's `input` in rank order into `output`, on every rank.
    /// `output.count` must be `input.count × size`.
    public func allgather<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>
    ) throws(CommunicatorError) {
        guard output.count == input.count * size else {
            throw .lengthMismatch(
                call: "MPI_Allgather",
                detail: "output has \(output.count) elements, needs \(input.count) × \(size) ranks = \(input.count * size)")
        }
        let count = try mpiCount(input.count, "MPI_Allgather")
        _ = try mpiCount(output.count, "MPI_Allgather")
        let type = T.scalarKind.mpiType
        try check(MPI_Allgather(input.baseAddress, count, type, output.baseAddress, count, type, handle), "MPI_Allgather")
    }

    /// Every rank's `values` (same length on each), concatenated in rank order.
    public func allgather<T: CollectiveElement>(_ values: [T]) throws(CommunicatorError) -> [T] {
        var output = [T](repeating: .zero, count: values.count * size)
        try values.withUnsafeBufferPointer { (input) throws(CommunicatorError) in
            try output.withUnsafeMutableBufferPointer { (out) throws(CommunicatorError) in
                try allgather(input, into: out)
            }
        }
        return output
    }

    /// In place: rank r holds the elements `parts[r]` of `buffer` (the rest is overwritten), and
    /// afterwards every rank holds all of them. `parts` (one per rank, in rank order) must tile
    /// the buffer, as `Communicator.partition` does. ZeRO-1 gathers updated parameters with it.
    public func allgather<T: CollectiveElement>(
        inPlace buffer: UnsafeMutableBufferPointer<T>, parts: [Range<Int>]
    ) throws(CommunicatorError) {
        let call = "MPI_Allgatherv"
        guard parts.count == size else { throw .lengthMismatch(call: call, detail: "\(parts.count) parts given for \(size) ranks") }
        guard parts.first?.lowerBound == 0, parts.last?.upperBound == buffer.count,
              zip(parts, parts.dropFirst()).allSatisfy({ $0.upperBound == $1.lowerBound }) else {
            throw .lengthMismatch(call: call, detail: "parts \(parts) do not tile the buffer's \(buffer.count) elements in rank order")
        }
        var counts = [Int32](), offsets = [Int32]()
        for part in parts {
            counts.append(try mpiCount(part.count, call))
            offsets.append(try mpiCount(part.lowerBound, call))
        }
        let type = T.scalarKind.mpiType
        try check(MPI_Allgatherv(cmpi_in_place(), 0, type, buffer.baseAddress, &counts, &offsets, type, handle), call)
    }

    /// Reduces `input` across ranks and leaves rank r with elements `counts[0..<r].sum ..< +counts[r]`
    /// of the result in `output`. `counts` has one entry per rank, sums to `input.count`, and
    /// `output.count == counts[rank]`. Without `counts`, `Communicator.partition` cuts the input.
    public func reduceScatter<T: CollectiveElement>(
        _ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<T>,
        counts: [Int]? = nil, op: ReduceOp
    ) throws(CommunicatorError) {
        let call = "MPI_Reduce_scatter"
        let counts = counts ?? Communicator.partition(count: input.count, parts: size).map(\.count)
        guard counts.count == size else {
            throw .lengthMismatch(call: call, detail: "\(counts.count) counts given for \(size) ranks")
        }
        guard counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) == input.count else {
            throw .lengthMismatch(call: call, detail: "counts \(counts) must be ≥ 0 and sum to the input's \(input.count) elements")
        }
        guard output.count == counts[rank] else {
            throw .lengthMismatch(call: call, detail: "rank \(rank) receives \(counts[rank]) elements but output has \(output.count)")
        }
        _ = try mpiCount(input.count, call)
        var narrow = [Int32]()
        for c in counts { narrow.append(try mpiCount(c, call)) }
        try check(
            MPI_Reduce_scatter(input.baseAddress, output.baseAddress, &narrow, T.scalarKind.mpiType, op.mpiOp, handle),
            call)
        if op == .average { output.divideSums(byRanks: size) }
    }

    /// Reduces `values` across ranks and returns this rank's part of the result, as cut by
    /// `Communicator.partition(count: values.count, parts: size)`.
    public func reduceScatter<T: CollectiveElement>(_ values: [T], op: ReduceOp) throws(CommunicatorError) -> [T] {
        let mine = Communicator.partition(count: values.count, parts: size)[rank]
        var output = [T](repeating: .zero, count: mine.count)
        try values.withUnsafeBufferPointer { (input) throws(CommunicatorError) in
            try output.withUnsafeMutableBufferPointer { (out) throws(CommunicatorError) in
                try reduceScatter(input, into: out, op: op)
            }
        }
        return output
    }
}
