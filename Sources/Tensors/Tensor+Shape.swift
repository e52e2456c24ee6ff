extension Tensor {
    /// Element strides of a contiguous tensor of `shape`.
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        return strides
    }

    /// The axes reordered: output axis i is input axis `axes[i]` (a copy).
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.sorted() == Array(0..<rank), "permutation \(axes) of a rank-\(rank) tensor")
        if axes == Array(0..<rank) { return copy() }
        let inStrides = Tensor.contiguousStrides(shape)
        let walk = Broadcast(shape: axes.map { shape[$0] }, strides: [axes.map { inStrides[$0] }])
        let out = Tensor(uninitialized: walk.shape, dtype: dtype)
        let n = walk.rowLength, s = walk.innerStride(0)
        switch dtype {
        case .float32: Tensor.stridedCopy(walk, pointer(Float.self), out.pointer(Float.self), n, s)
        case .float64: Tensor.stridedCopy(walk, pointer(Double.self), out.pointer(Double.self), n, s)
        }
        return out
    }
    static func stridedCopy<T: TensorScalar>(_ walk: Broadcast, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int, _ s: Int) {
        Parallel.forRanges(walk.rows, cost: n) { rows in
            walk.forEachRow(in: rows) { o, offsets in
                let src = x + offsets[0], dst = y + o
                for j in 0..<n { dst[j] = src[j * s] }
            }
        }
    }

    /// The inverse of a permutation.
    public static func inversePermutation(_ axes: [Int]) -> [Int] {
        var inverse = axes
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return inverse
    }

    /// `(outer, length along axis, inner)` block sizes of this shape around `axis`.
    func blocks(around axis: Int) -> (outer: Int, length: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// The tensors joined along `axis` (all other dimensions equal).
    public static func concatenate(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concatenate of no tensors")
        let first = parts[0]
        for p in parts {
            precondition(p.rank == first.rank && p.dtype == first.dtype
                         && (0..<p.rank).allSatisfy { $0 == axis || p.shape[$0] == first.shape[$0] },
                         "cannot concatenate \(p.shape) with \(first.shape) along axis \(axis)")
        }
        var shape = first.shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let out = Tensor(uninitialized: shape, dtype: first.dtype)
        var start = 0
        for p in parts {
            out.copyBlock(from: p, axis: axis, at: start, adding: false)
            start += p.shape[axis]
        }
        return out
    }

    /// Elements `range` along `axis` (a copy).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis], "slice \(range) of axis \(axis) in \(shape)")
        var shape = self.shape
        shape[axis] = range.count
        let out = Tensor(uninitialized: shape, dtype: dtype)
        let (outer, length, inner) = blocks(around: axis)
        let width = dtype.byteWidth, chunk = range.count * inner * width
        for o in 0..<outer {
            let src = storage.base + (offset + (o * length + range.lowerBound) * inner) * width
            (out.storage.base + (o * range.count * inner) * width).copyMemory(from: src, byteCount: chunk)
        }
        return out
    }

    /// Writes (or adds) `part` into this tensor at `start…` along `axis`, in place.
    public func copyBlock(from part: Tensor, axis: Int, at start: Int, adding: Bool) {
        let (outer, length, inner) = blocks(around: axis)
        let partLength = part.shape[axis], chunk = partLength * inner
        precondition(start + partLength <= length, "block of \(partLength) at \(start) exceeds axis \(axis) of \(shape)")
        switch dtype {
        case .float32: copyBlockKernel(part, outer, length, inner, start, chunk, adding, Float.self)
        case .float64: copyBlockKernel(part, outer, length, inner, start, chunk, adding, Double.self)
        }
    }
    func copyBlockKernel<T: TensorScalar>(
        _ part: Tensor, _ outer: Int, _ length: Int, _ inner: Int, _ start: Int, _ chunk: Int, _ adding: Bool, _: T.Type
    ) {
        let dst = pointer(T.self), src = part.pointer(T.self)
        for o in 0..<outer {
            let d = dst + (o * length + start) * inner, s = src + o * chunk
            if adding {
                for j in 0..<chunk { d[j] += s[j] }
            } else {
                d.update(from: s, count: chunk)
            }
        }
    }

    /// Rows `indices` of the first axis, stacked: [indices.count, ...] (embedding lookup).
    public func gatherRows(_ indices: [Int]) -> Tensor {
        let rowSize = count / max(shape[0], 1)
        let out = Tensor(zeros: [indices.count] + shape.dropFirst(), dtype: dtype)
        let width = dtype.byteWidth
        for (i, index) in indices.enumerated() {
            precondition(index >= 0 && index < shape[0], "row index \(index) outside 0..<\(shape[0])")
            (out.storage.base + i * rowSize * width).copyMemory(from: storage.base + (offset + index * rowSize) * width, byteCount: rowSize * width)
        }
        return out
    }

    /// Adds row i of `rows` into row `indices[i]` of this tensor, in place (repeats accumulate):
    /// the adjoint of `gatherRows`.
    public func scatterAddRows(_ rows: Tensor, _ indices: [Int]) {
        let rowSize = count / max(shape[0], 1)
        for (i, index) in indices.enumerated() {
            let dst = Tensor(storage: storage, offset: offset + index * rowSize, shape: [rowSize])
            dst.add(Tensor(storage: rows.storage, offset: rows.offset + i * rowSize, shape: [rowSize]))
        }
    }
}
