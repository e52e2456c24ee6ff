import Synchronization

/// Memory for tensor elements of one dtype, zero-initialised, 64-byte aligned.
public final class TensorStorage: @unchecked Sendable {
    public let dtype: DType
    public let count: Int
    @usableFromInline let base: UnsafeMutableRawPointer
    private let bytes: Int
    /// Whether `base` came from the pool (else it is borrowed and its owner frees it).
    private let pooled: Bool

    public convenience init(dtype: DType, count: Int) {
        self.init(dtype: dtype, count: count, zeroed: true)
    }

    /// `zeroed: false` leaves the contents undefined, for kernels that write every element.
    init(dtype: DType, count: Int, zeroed: Bool) {
        self.dtype = dtype
        self.count = count
        bytes = BufferPool.roundedSize(count * dtype.byteWidth)
        base = BufferPool.shared.take(bytes)
        pooled = true
        if zeroed { base.initializeMemory(as: UInt8.self, repeating: 0, count: count * dtype.byteWidth) }
        switch dtype {
        case .float32: base.bindMemory(to: Float.self, capacity: count)
        case .float64: base.bindMemory(to: Double.self, capacity: count)
        }
    }

    /// Elements in memory owned elsewhere (e.g. a gradient arena in a shared-memory window),
    /// which must outlive this storage. Float32 only.
    public init(borrowing memory: UnsafeMutableBufferPointer<Float>) {
        dtype = .float32
        count = memory.count
        bytes = memory.count * 4
        base = UnsafeMutableRawPointer(memory.baseAddress ?? UnsafeMutablePointer<Float>.allocate(capacity: 1))
        pooled = false
    }

    deinit { if pooled { BufferPool.shared.give(base, bytes) } }
}

/// Freed tensor buffers kept for reuse, by size class. Training allocates and frees the same
/// activation and gradient buffers every step; fresh large allocations would be mapped from the
/// kernel, which zeroes every page (about a tenth of a UNet step). At most `capacity` bytes are
/// kept; beyond that, buffers are returned to the system.
final class BufferPool: Sendable {
    static let shared = BufferPool(capacity: 4 << 30)
    private let capacity: Int
    private let free = Mutex<(buffers: [Int: [UInt]], bytes: Int)>(([:], 0))  // addresses by size

    init(capacity: Int) { self.capacity = capacity }

    /// Sizes round up to a power of two (small ones) or a multiple of 1 MiB (large ones), so that
    /// buffers of nearby sizes share a class.
    static func roundedSize(_ bytes: Int) -> Int {
        let size = max(bytes, 64)
        return size <= 1 << 20 ? 1 << (Int.bitWidth - (size - 1).leadingZeroBitCount) : (size + (1 << 20) - 1) & ~((1 << 20) - 1)
    }

    func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        let reused = free.withLock { pool -> UInt? in
            guard let address = pool.buffers[bytes]?.popLast() else { return nil }
            pool.bytes -= bytes
            return address
        }
        return reused.flatMap(UnsafeMutableRawPointer.init(bitPattern:)) ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    func give(_ buffer: UnsafeMutableRawPointer, _ bytes: Int) {
        let kept = free.withLock { pool -> Bool in
            guard pool.bytes + bytes <= capacity else { return false }
            pool.buffers[bytes, default: []].append(UInt(bitPattern: buffer))
            pool.bytes += bytes
            return true
        }
        if !kept { buffer.deallocate() }
    }
}

/// A dense, contiguous, row-major tensor: a shape over a run of elements in a storage.
///
/// Tensors are references to their storage: a view (`reshaped`, `slice(rows:)`, or a tensor made
/// over an arena) shares elements with the tensor it came from, and writing through `pointer`
/// is seen by every view. Operations return new tensors and never write their inputs, except
/// where a name says so (`add(into:)`, `fill`).
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: TensorStorage
    /// Index of the first element in `storage`.
    public let offset: Int
    public let shape: [Int]
    /// Number of elements, the product of `shape`.
    public let count: Int

    public init(storage: TensorStorage, offset: Int = 0, shape: [Int]) {
        let count = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(offset >= 0 && offset + count <= storage.count,
                     "view of \(count) elements at \(offset) exceeds a storage of \(storage.count)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.count = count
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int], dtype: DType = .float32) {
        self.init(storage: TensorStorage(dtype: dtype, count: shape.reduce(1, *)), shape: shape)
    }

    /// A tensor whose elements are undefined until written: the output of a kernel that writes
    /// every element (saves a pass over memory).
    init(uninitialized shape: [Int], dtype: DType) {
        self.init(storage: TensorStorage(dtype: dtype, count: shape.reduce(1, *), zeroed: false), shape: shape)
    }

    /// A tensor holding `values` (row-major), in `dtype`.
    public init<S: BinaryFloatingPoint>(shape: [Int], values: [S], dtype: DType = .float32) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(zeros: shape, dtype: dtype)
        switch dtype {
        case .float32: for (i, v) in values.enumerated() { pointer(Float.self)[i] = Float(v) }
        case .float64: for (i, v) in values.enumerated() { pointer(Double.self)[i] = Double(v) }
        }
    }

    /// A tensor of `shape` filled with `value`.
    public init(repeating value: Double, shape: [Int], dtype: DType = .float32) {
        self.init(zeros: shape, dtype: dtype)
        fill(value)
    }

    public var dtype: DType { storage.dtype }
    public var rank: Int { shape.count }

    /// The elements, typed. Traps unless `T` is this tensor's element type.
    @inlinable
    public func pointer<T: TensorScalar>(_: T.Type = T.self) -> UnsafeMutablePointer<T> {
        precondition(T.dtype == storage.dtype, "tensor holds \(storage.dtype), accessed as \(T.dtype)")
        return storage.base.assumingMemoryBound(to: T.self) + offset
    }

    /// The elements as a typed buffer.
    @inlinable
    public func buffer<T: TensorScalar>(_: T.Type = T.self) -> UnsafeMutableBufferPointer<T> {
        UnsafeMutableBufferPointer(start: pointer(T.self), count: count)
    }

    /// The same elements under another shape with the same count (a view).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var newShape = newShape
        if let infer = newShape.firstIndex(of: -1) {
            newShape[infer] = count / max(1, newShape.filter { $0 != -1 }.reduce(1, *))
        }
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return Tensor(storage: storage, offset: offset, shape: newShape)
    }

    /// Rows `range` of the first axis (a view).
    public func slice(rows range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "rows \(range) of shape \(shape)")
        let rowSize = shape.dropFirst().reduce(1, *)
        return Tensor(storage: storage, offset: offset + range.lowerBound * rowSize, shape: [range.count] + shape.dropFirst())
    }

    /// A new tensor with the same shape and elements.
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape, dtype: dtype)
        let bytes = count * dtype.byteWidth
        out.storage.base.advanced(by: out.offset * dtype.byteWidth)
            .copyMemory(from: storage.base.advanced(by: offset * dtype.byteWidth), byteCount: bytes)
        return out
    }

    /// Sets every element to `value`.
    public func fill(_ value: Double) {
        switch dtype {
        case .float32: buffer(Float.self).update(repeating: Float(value))
        case .float64: buffer(Double.self).update(repeating: value)
        }
    }

    /// Overwrites the elements with `values` (same count).
    public func assign(_ values: [Double]) {
        precondition(values.count == count, "\(values.count) values for \(count) elements")
        switch dtype {
        case .float32: for i in 0..<count { pointer(Float.self)[i] = Float(values[i]) }
        case .float64: for i in 0..<count { pointer(Double.self)[i] = values[i] }
        }
    }

    /// The elements converted to Double (for tests, metrics and printing).
    public var scalars: [Double] {
        switch dtype {
        case .float32: buffer(Float.self).map(Double.init)
        case .float64: Array(buffer(Double.self))
        }
    }

    /// The elements as Float.
    public var floats: [Float] {
        switch dtype {
        case .float32: Array(buffer(Float.self))
        case .float64: buffer(Double.self).map(Float.init)
        }
    }

    /// This tensor's elements in another dtype.
    public func converted(to target: DType) -> Tensor {
        target == dtype ? copy() : Tensor(shape: shape, values: scalars, dtype: target)
    }

    public var description: String {
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(dtype), \(shape): [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
