/// The gradient arenas of the ranks of one node, living side by side in one shared-memory window
/// so that they are summed in place (DESIGN §4: the `hierarchical` and `reproducible` paths).
///
/// Each rank's slot holds `buffers` arenas of `count` floats: buffer 0 is the arena the model
/// writes its gradients into; the others keep earlier micro-batches apart for exact sums. To sum
/// a range, every rank takes one partition of it, adds that partition over all slots (floats in
/// rank order, or exactly in 64-bit fixed point) and writes the sum back into every slot — no
/// copies in or out, each element read once and written once per rank. Across nodes, the node
/// leaders then all-reduce their slot (fixed-point sums as integers) with non-blocking MPI.
final class NodeGradients {
    let node: Communicator
    /// Node leaders (node rank 0) when the job spans several nodes; nil otherwise.
    let leaders: Communicator?
    let count: Int
    let buffers: Int
    /// Whether the job has ranks on more than one node.
    let spansNodes: Bool
    /// For exact sums: the bits of fixed point each term may fill (see `GradientExchange`).
    private let termBits: Int?
    private let window: SharedMemoryWindow
    /// Fixed-point sums of the node, on the leader's slot (only when the job spans nodes).
    private let nodeSums: UnsafeMutablePointer<Int64>?
    private var inFlight: [(range: Range<Int>, scale: Double?, request: CollectiveRequest?)] = []
    private static let header = 64
    private static let chunk = 2048

    /// Collective over `communicator` (the workers).
    /// `termBits` (exact sums only): how many bits of fixed point each term may fill.
    init(communicator: Communicator, count: Int, buffers: Int, termBits: Int?) throws(CommunicatorError) {
        node = try communicator.splitByNode()
        let nodes = try communicator.allreduce(Int32(node.rank == 0 ? 1 : 0), op: .sum)
        spansNodes = nodes > 1
        leaders = try communicator.split(color: node.rank == 0 && spansNodes ? 0 : nil, key: communicator.rank)
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

    /// This rank's buffer `index` (0: the arena; then the micro-batches set aside).
    func ownBuffer(_ index: Int) -> UnsafeMutablePointer<Float> { arena(node.rank, index) }

    /// How many of this rank's buffers hold a micro-batch this step (published in the slot's header).
    var validBuffers: Int {
        get { Int(window.slots[node.rank].load(as: Int64.self)) }
        set { window.slots[node.rank].storeBytes(of: Int64(newValue), as: Int64.self) }
    }

    /// The exponent a rank publishes for the range being summed exactly (in the slot's header).
    private func exponent(_ rank: Int) -> UnsafeMutablePointer<Int32> {
        (window.slots[rank] + 8).bindMemory(to: Int32.self, capacity: 1)
    }

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

    /// Starts summing `range` of every rank's arenas: floats in rank order (`exponent` nil), or
    /// exactly. For exact sums each rank passes the binary exponent bounding its values in the
    /// range (`Int32.max` for a value that is not finite; the job-wide one when the job spans
    /// nodes); the node's largest sets the scale, a power of two that keeps every sum below 2⁵¹
    /// (scale 0 when a value was not finite: the sum becomes NaN).
    func reduce(_ range: Range<Int>, exponent bound: Int32?) throws(CommunicatorError) {
        if let bound { exponent(node.rank).pointee = bound }
        try window.synchronize()
        let scale = bound.map { _ in
            let largest = (0..<node.size).map { exponent($0).pointee }.max()!
            return largest == .max ? 0 : Double(sign: .plus, exponent: termBits! - Int(largest), significand: 1)
        }
        let part = Communicator.partition(count: range.count, parts: node.size)[node.rank]
        let mine = (range.lowerBound + part.lowerBound)..<(range.lowerBound + part.upperBound)
        if let scale { sumExactly(mine, scale: scale) } else { sumFloats(mine) }
        try window.synchronize()
        var request: CollectiveRequest?
        if let leaders {
            request = if let nodeSums {
                try leaders.startAllreduce(UnsafeMutableBufferPointer(start: nodeSums + range.lowerBound, count: range.count), op: .sum)
            } else {
                try leaders.startAllreduce(UnsafeMutableBufferPointer(start: arena(0, 0) + range.lowerBound, count: range.count), op: .sum)
            }
        }
        inFlight.append((range, scale, request))
    }

    /// Waits for the node leaders' exchanges; afterwards every rank's arena holds the sums.
    func finish() throws(CommunicatorError) {
        defer { inFlight.removeAll(); validBuffers = 1 }
        guard spansNodes else { return }
        for piece in inFlight { try piece.request?.wait() }
        try window.synchronize()
        for piece in inFlight {
            if let scale = piece.scale {
                let part = Communicator.partition(count: piece.range.count, parts: node.size)[node.rank]
                let mine = (piece.range.lowerBound + part.lowerBound)..<(piece.range.lowerBound + part.upperBound)
                writeFixedPoint(nodeSums! + mine.lowerBound, mine, scale: scale)
            } else if node.rank != 0 {
                (arena(node.rank, 0) + piece.range.lowerBound).update(from: arena(0, 0) + piece.range.lowerBound, count: piece.range.count)
            }
        }
        try window.synchronize()  // nobody writes the next step's gradients before all have read
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

    /// Adds every valid buffer of every rank in 64-bit fixed point.
    private func sumExactly(_ range: Range<Int>, scale: Double) {
        var total = [Int64](repeating: 0, count: Self.chunk)
        total.withUnsafeMutableBufferPointer { total in
            for start in stride(from: range.lowerBound, to: range.upperBound, by: Self.chunk) {
                let n = min(Self.chunk, range.upperBound - start)
                var first = true
                for rank in 0..<node.size {
                    for buffer in 0..<Int(window.slots[rank].load(as: Int64.self)) {
                        addFixedPoint(arena(rank, buffer) + start, into: total.baseAddress!, n, scale: scale, replacing: first)
                        first = false
                    }
                }
                if let nodeSums {
                    (nodeSums + start).update(from: total.baseAddress!, count: n)
                } else {
                    writeFixedPoint(total.baseAddress!, start..<(start + n), scale: scale)
                }
            }
        }
    }

    /// Converts fixed-point sums back to floats into `range` of every rank's arena.
    private func writeFixedPoint(_ sums: UnsafePointer<Int64>, _ range: Range<Int>, scale: Double) {
        let inverse = scale > 0 ? 1 / scale : .nan
        for start in stride(from: 0, to: range.count, by: Self.chunk) {
            let n = min(Self.chunk, range.count - start)
            floatsFromFixedPoint(sums + start, into: arena(0, 0) + range.lowerBound + start, n, inverse: inverse)
            for rank in 1..<node.size { (arena(rank, 0) + range.lowerBound + start).update(from: arena(0, 0) + range.lowerBound + start, count: n) }
        }
    }
}

/// Adds `values` × `scale`, each rounded to the nearest integer, to `total` (or stores them there
/// when `replacing`). Adding 1.5·2⁵² to a double below 2⁵¹ in magnitude leaves its rounded integer
/// in the low bits of the pattern: a float → integer conversion that vectorises without AVX-512.
@inline(never)
func addFixedPoint(_ values: UnsafePointer<Float>, into total: UnsafeMutablePointer<Int64>, _ n: Int, scale: Double, replacing: Bool) {
    let magic = 6_755_399_441_055_744.0, bias = Int64(bitPattern: magic.bitPattern)
    if replacing {
        for i in 0..<n { total[i] = Int64(bitPattern: (Double(values[i]) * scale + magic).bitPattern) &- bias }
    } else {
        for i in 0..<n { total[i] &+= Int64(bitPattern: (Double(values[i]) * scale + magic).bitPattern) &- bias }
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

/// `sums` × `inverse` as floats; every sum must lie below 2⁵¹ in magnitude (the exchange's scale
/// sees to it), where the same magic number converts it exactly to a double.
@inline(never)
func floatsFromFixedPoint(_ sums: UnsafePointer<Int64>, into out: UnsafeMutablePointer<Float>, _ n: Int, inverse: Double) {
    let magic = 6_755_399_441_055_744.0, bias = Int64(bitPattern: magic.bitPattern)
    for i in 0..<n { out[i] = Float((Double(bitPattern: UInt64(bitPattern: sums[i] &+ bias)) - magic) * inverse) }
}
