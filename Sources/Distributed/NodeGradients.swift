/// The gradient arenas of the ranks of one node, living side by side in one shared-memory window
/// so that they are summed in place (DESIGN §4: the `hierarchical` and `reproducible` paths).
///
/// Each rank's slot holds `buffers` arenas of `count` floats: buffer 0 is the arena the model
/// writes its gradients into; the others keep earlier micro-batches apart for exact sums. To sum
/// a range, every rank takes one partition of it (whole chunks), adds that partition over all
/// slots (floats in rank order, or exactly in 64-bit fixed point) and writes the sum back into
/// every slot — no copies in or out, each element read once and written once per rank. Across
/// nodes, the node leaders then all-reduce their slot (fixed-point sums as integers) with
/// non-blocking MPI.
///
/// Exact sums round each chunk of a range to its own fixed-point grid, set by the largest
/// magnitude in that chunk over every term of the step: the rank summing a chunk finds it just
/// before, while the chunk is in cache. Across nodes the chunks' bounds are all-reduced first, so
/// that every node uses the same grids.
final class NodeGradients {
    let node: Communicator
    /// Node leaders (node rank 0) when the job spans several nodes; nil otherwise.
    let leaders: Communicator?
    let count: Int
    let buffers: Int
    /// Whether the job has ranks on more than one node.
    let spansNodes: Bool
    private let workers: Communicator
    /// For exact sums: the bits of fixed point each term may fill (see `GradientExchange`).
    private let termBits: Int?
    private let window: SharedMemoryWindow
    /// Fixed-point sums of the node, on the leader's slot (only when the job spans nodes).
    private let nodeSums: UnsafeMutablePointer<Int64>?
    /// Ranges being summed; for exact sums across nodes, with their chunks' exponent bounds.
    private var inFlight: [(range: Range<Int>, exponents: [Int32]?, request: CollectiveRequest?)] = []
    private static let header = 64
    /// Elements per chunk: the unit of a rank's partition and, for exact sums, of one grid.
    private static let chunk = 2048

    /// Collective over `communicator` (the workers).
    /// `termBits` (exact sums only): how many bits of fixed point each term may fill.
    /// `ranksPerNode`: see `Communicator.splitByNode`.
    init(communicator: Communicator, count: Int, buffers: Int, termBits: Int?, ranksPerNode: Int? = nil) throws(CommunicatorError) {
        node = try communicator.splitByNode(ranksPerNode: ranksPerNode)
        let nodes = try communicator.allreduce(Int32(node.rank == 0 ? 1 : 0), op: .sum)
        spansNodes = nodes > 1
        leaders = try communicator.split(color: node.rank == 0 && spansNodes ? 0 : nil, key: communicator.rank)
        workers = communicator
        self.count = count
        self.buffers = buffers
        self.termBits = termBits
        let exact = termBits != nil
        let arenas = (Self.header + buffers * count * MemoryLayout<Float>.stride + 63) / 64 * 64
        let sums = exact && spansNodes && node.rank == 0 ? count * MemoryLayout<Int64>.stride : 0
        window = try SharedMemoryWindow(node: node, slotBytes: arenas + sums)
        nodeSums = exact && spansNodes ? (window.slots[0] + arenas).bindMemory(to: Int64.self, capacity: count) : nil
        validBuffers = 1
    }

    /// This rank's gradient arena (buffer 0 of its slot).
    var gradients: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: arena(node.rank, 0), count: count) }

    /// How many of this rank's buffers hold a micro-batch this step (published in the slot's header).
    var validBuffers: Int {
        get { validBuffers(of: node.rank) }
        set { window.slots[node.rank].storeBytes(of: Int64(newValue), as: Int64.self) }
    }

    private func validBuffers(of rank: Int) -> Int { Int(window.slots[rank].load(as: Int64.self)) }

    func arena(_ rank: Int, _ buffer: Int) -> UnsafeMutablePointer<Float> {
        (window.slots[rank] + Self.header).bindMemory(to: Float.self, capacity: buffers * count) + buffer * count
    }

    /// Moves the arena's gradients into the next free buffer and zeroes the arena.
    func setAside() {
        let next = validBuffers
        precondition(next < buffers, "more micro-batches in one step than the \(buffers) planned")
        arena(node.rank, next).update(from: arena(node.rank, 0), count: count)
        arena(node.rank, 0).update(repeating: 0, count: count)
        validBuffers = next + 1
    }

    /// Starts summing `range` of every rank's arenas: floats in rank order, or exactly when the
    /// node was made with `termBits`. Collective over the workers (across nodes, exact sums first
    /// all-reduce their chunks' bounds).
    func reduce(_ range: Range<Int>) throws(CommunicatorError) {
        var exponents: [Int32]?
        if termBits != nil && spansNodes {
            let own = (0..<validBuffers).map { UnsafePointer(arena(node.rank, $0)) }
            var bounds = stride(from: range.lowerBound, to: range.upperBound, by: Self.chunk).map {
                exponentBound(of: own, $0, min(Self.chunk, range.upperBound - $0))
            }
            try workers.allreduce(&bounds, op: .max)
            exponents = bounds
        }
        try window.synchronize()
        let mine = ownPart(of: range)
        if termBits != nil { sumExactly(mine, of: range, exponents: exponents) } else { sumFloats(mine) }
        try window.synchronize()
        var request: CollectiveRequest?
        if let leaders {
            request = if let nodeSums {
                try leaders.startAllreduce(UnsafeMutableBufferPointer(start: nodeSums + range.lowerBound, count: range.count), op: .sum)
            } else {
                try leaders.startAllreduce(UnsafeMutableBufferPointer(start: arena(0, 0) + range.lowerBound, count: range.count), op: .sum)
            }
        }
        inFlight.append((range, exponents, request))
    }

    /// Waits for the node leaders' exchanges; afterwards every rank's arena holds the sums.
    func finish() throws(CommunicatorError) {
        defer { inFlight.removeAll(); validBuffers = 1 }
        guard spansNodes else { return }
        for piece in inFlight { try piece.request?.wait() }
        try window.synchronize()
        for piece in inFlight {
            if let exponents = piece.exponents {
                let mine = ownPart(of: piece.range)
                for start in stride(from: mine.lowerBound, to: mine.upperBound, by: Self.chunk) {
                    let offset = fixedPointOffset(exponents[(start - piece.range.lowerBound) / Self.chunk])
                    writeFloats(nodeSums! + start, offsets: 0, offset, at: start, min(Self.chunk, mine.upperBound - start))
                }
            } else if node.rank != 0 {
                (arena(node.rank, 0) + piece.range.lowerBound).update(from: arena(0, 0) + piece.range.lowerBound, count: piece.range.count)
            }
        }
        try window.synchronize()  // nobody writes the next step's gradients before all have read
    }

    /// This rank's share of `range`: whole chunks, counted from the range's start, split evenly
    /// over the node's ranks (so chunks, and exact sums' grids, do not depend on the rank count).
    private func ownPart(of range: Range<Int>) -> Range<Int> {
        let chunks = (range.count + Self.chunk - 1) / Self.chunk
        let part = Communicator.partition(count: chunks, parts: node.size)[node.rank]
        return min(range.upperBound, range.lowerBound + part.lowerBound * Self.chunk)..<min(range.upperBound, range.lowerBound + part.upperBound * Self.chunk)
    }

    private func sumFloats(_ range: Range<Int>) {
        var total = [Float](repeating: 0, count: Self.chunk)
        total.withUnsafeMutableBufferPointer { total in
            for start in stride(from: range.lowerBound, to: range.upperBound, by: Self.chunk) {
                let n = min(Self.chunk, range.upperBound - start)
                total.baseAddress!.update(from: arena(0, 0) + start, count: n)
                for rank in 1..<node.size {
                    let addend = arena(rank, 0) + start
                    for i in 0..<n { total[i] += addend[i] }
                }
                for rank in 0..<node.size { (arena(rank, 0) + start).update(from: total.baseAddress!, count: n) }
            }
        }
    }

    /// Adds every valid buffer of every rank in 64-bit fixed point, chunk by chunk of `mine` (a
    /// part of `range`), each on the grid of `exponents` (its chunk's bound, counted from the
    /// range's start) or, without them, of the bound over the terms found here.
    private func sumExactly(_ mine: Range<Int>, of range: Range<Int>, exponents: [Int32]?) {
        let terms = (0..<node.size).flatMap { rank in (0..<validBuffers(of: rank)).map { UnsafePointer(arena(rank, $0)) } }
        var total = [Int64](repeating: 0, count: Self.chunk)
        total.withUnsafeMutableBufferPointer { total in
            let total = total.baseAddress!
            for start in stride(from: mine.lowerBound, to: mine.upperBound, by: Self.chunk) {
                let n = min(Self.chunk, mine.upperBound - start)
                let offset = fixedPointOffset(exponents?[(start - range.lowerBound) / Self.chunk] ?? exponentBound(of: terms, start, n))
                if let offset {
                    for pair in stride(from: 0, to: terms.count, by: 2) {
                        let second = pair + 1 < terms.count ? terms[pair + 1] + start : nil
                        addFixedPoint(terms[pair] + start, second, into: total, n, offset: offset, replacing: pair == 0)
                    }
                }
                if let nodeSums {  // without the offsets, so that nodes' sums add up
                    let excess = Int64(terms.count) &* Int64(bitPattern: (offset ?? 0).bitPattern)
                    for i in 0..<n { nodeSums[start + i] = total[i] &- excess }
                } else {
                    writeFloats(total, offsets: terms.count, offset, at: start, n)
                }
            }
        }
    }

    /// The binary exponent bounding the magnitudes of `terms` at `start..<start + n`: every one is
    /// below 2 to this power (`Int32.max` when one is not finite).
    private func exponentBound(of terms: [UnsafePointer<Float>], _ start: Int, _ n: Int) -> Int32 {
        let largest = Float(bitPattern: terms.reduce(0) { max($0, largestMagnitudeBits($1 + start, n)) })
        guard largest.isFinite else { return .max }
        return largest == 0 ? Int32(Float.leastNormalMagnitude.exponent) : Int32(largest.exponent) + 1
    }

    /// The fixed-point grid for terms bounded by 2^`exponent`, as the offset `addFixedPoint` adds:
    /// 1.5·2⁵² quanta, a quantum being 2^(`exponent` − `termBits`), so that every sum stays below
    /// 2⁵¹ quanta. nil when a term was not finite (the sums become NaN).
    private func fixedPointOffset(_ exponent: Int32) -> Double? {
        exponent == .max ? nil : Double(sign: .plus, exponent: 52 + Int(exponent) - termBits!, significand: 1.5)
    }

    /// Converts `n` fixed-point sums holding `offsets` offset patterns (see `addFixedPoint`) back
    /// to floats at `start` of every rank's arena; NaN without an offset.
    private func writeFloats(_ sums: UnsafePointer<Int64>, offsets: Int, _ offset: Double?, at start: Int, _ n: Int) {
        if let offset {
            floatsFromFixedPoint(sums, offsets: offsets, n, offset: offset, into: arena(0, 0) + start)
        } else {
            (arena(0, 0) + start).update(repeating: .nan, count: n)
        }
        for rank in 1..<node.size { (arena(rank, 0) + start).update(from: arena(0, 0) + start, count: n) }
    }
}

/// Adds `first` and `second` (when given) to `total` in fixed point, or stores them there when
/// `replacing`. A float, as a double plus `offset` (1.5·2⁵² quanta), is rounded to a whole number
/// of quanta, which its bit pattern then holds above the offset's own: a conversion in one vector
/// add, no multiply. `total` accumulates the patterns, offsets included (`floatsFromFixedPoint`
/// removes them); two terms per pass halve its loads and stores.
@inline(never)
func addFixedPoint(_ first: UnsafePointer<Float>, _ second: UnsafePointer<Float>?, into total: UnsafeMutablePointer<Int64>,
                   _ n: Int, offset: Double, replacing: Bool) {
    func pattern(_ value: Float) -> Int64 { Int64(bitPattern: (Double(value) + offset).bitPattern) }
    switch (second, replacing) {
    case (let second?, true): for i in 0..<n { total[i] = pattern(first[i]) &+ pattern(second[i]) }
    case (let second?, false): for i in 0..<n { total[i] &+= pattern(first[i]) &+ pattern(second[i]) }
    case (nil, true): for i in 0..<n { total[i] = pattern(first[i]) }
    case (nil, false): for i in 0..<n { total[i] &+= pattern(first[i]) }
    }
}

/// The largest magnitude among `values` as a bit pattern (sign cleared): patterns at or above
/// `Float.infinity`'s mean a value was not finite. Integer maxima vectorise; float ones with NaN do not.
@inline(never)
func largestMagnitudeBits(_ values: UnsafePointer<Float>, _ n: Int) -> UInt32 {
    let raw = UnsafeRawPointer(values).assumingMemoryBound(to: UInt32.self)
    var largest: UInt32 = 0
    for i in 0..<n { largest = max(largest, raw[i] & 0x7FFF_FFFF) }
    return largest
}

/// Fixed-point `sums` that hold `offsets` offset patterns (see `addFixedPoint`) as floats: with
/// one, the pattern is a double `offset` plus the sum, exactly while the sum stays below 2⁵¹ quanta.
@inline(never)
func floatsFromFixedPoint(_ sums: UnsafePointer<Int64>, offsets: Int, _ n: Int, offset: Double, into out: UnsafeMutablePointer<Float>) {
    let excess = Int64(offsets - 1) &* Int64(bitPattern: offset.bitPattern)
    for i in 0..<n { out[i] = Float(Double(bitPattern: UInt64(bitPattern: sums[i] &- excess)) - offset) }
}
