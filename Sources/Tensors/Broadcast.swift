/// NumPy broadcasting of one or two shapes onto an output shape, walked one row (last axis) at
/// a time so that inner loops stay tight.
struct Broadcast {
    /// The output shape.
    let shape: [Int]
    /// Per input, its element stride along each output axis (0 where the input is broadcast).
    let strides: [[Int]]

    /// The broadcast of `shapes` (right-aligned; sizes equal or 1), or a trap naming them.
        init(_ shapes: [Int]...) {
        let rank = shapes.map(\.count).max() ?? 0
        let padded = shapes.map { Array(repeating: 1, count: rank - $0.count) + $0 }
        var shape = [Int](repeating: 1, count: rank)
        for axis in 0..<rank {
            for s in padded where s[axis] != 1 {
                precondition(shape[axis] == 1 || shape[axis] == s[axis],
                             "shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) do not broadcast")
                shape[axis] = s[axis]
            }
        }
        self.shape = shape
        strides = padded.map { s in
            var strides = [Int](repeating: 0, count: rank)
            var step = 1
            for axis in stride(from: rank - 1, through: 0, by: -1) {
                strides[axis] = s[axis] == 1 ? 0 : step
                step *= s[axis]
            }
            return strides
        }
    }

    /// A walk over `shape` where input i moves `strides[i][axis]` elements per step on `axis`.
        init(shape: [Int], strides: [[Int]]) {
        self.shape = shape
        self.strides = strides
    }

    /// Length of the innermost axis (1 for scalars).
    var rowLength: Int { shape.last ?? 1 }

    /// The number of rows of the output (its elements over `rowLength`).
    var rows: Int { shape.dropLast().reduce(1, *) }

    /// Calls `body(outOffset, offsets)` for each row of the output, where `offsets[i]` is input
    /// i's element offset of that row's first element.
    func forEachRow(_ body: (Int, [Int]) -> Void) { forEachRow(in: 0..<rows, body) }

    /// `forEachRow` over the rows in `range` only (disjoint ranges can run on separate threads).
    func forEachRow(in range: Range<Int>, _ body: (Int, [Int]) -> Void) {
        let rank = shape.count
        guard !range.isEmpty, rowLength > 0 || rank == 0 else { return }
        var index = [Int](repeating: 0, count: max(rank - 1, 0))
        var offsets = [Int](repeating: 0, count: strides.count)
        // The first row's place on the outer axes, and the inputs' offsets there.
        var rest = range.lowerBound
        for axis in stride(from: rank - 2, through: 0, by: -1) {
            index[axis] = rest % shape[axis]
            rest /= shape[axis]
            for i in offsets.indices { offsets[i] += index[axis] * strides[i][axis] }
        }
        for row in range {
            body(row * rowLength, offsets)
            // Odometer over the outer axes.
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                for i in offsets.indices { offsets[i] += strides[i][axis] }
                if index[axis] < shape[axis] { break }
                for i in offsets.indices { offsets[i] -= strides[i][axis] * shape[axis] }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// The stride of input `i` along the last axis (0 or 1 for contiguous inputs).
    func innerStride(_ i: Int) -> Int { strides[i].last ?? 0 }
}
