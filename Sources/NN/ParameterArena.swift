import Autograd
import Tensors

/// All parameters of a model in one contiguous arena, their gradients in a second with the same
/// layout (DESIGN §3), and non-trainable buffers (running statistics) in a third.
///
/// Layers `declare` their parameters while the model is built; `seal()` then allocates the
/// arenas once and runs the initialisers, each drawing from its own Philox stream keyed by
/// (seed, declaration index), so a model's initial weights depend only on the seed. Layers keep
/// `Parameter` handles: named views (offset, shape) into the arenas. Optimizers, all-reduce
/// buckets and checkpoints work on the flat arenas as contiguous slices.
public final class ParameterArena {
    /// One named tensor's place in an arena.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let offset: Int
        public let shape: [Int]
        public var count: Int { shape.reduce(1, *) }
    }

    /// How a parameter starts.
    public enum Initializer: Sendable {
        case zeros, ones
        case constant(Double)
        /// U(−bound, bound)
        case uniform(bound: Double)
        /// N(0, std²)
        case normal(std: Double)
    }

    public let dtype: DType
    public let seed: UInt64
    public private(set) var entries: [Entry] = []
    public private(set) var bufferEntries: [Entry] = []
    private var initializers: [Initializer] = []
    private var bufferFills: [Double] = []
    private var storages: (values: TensorStorage, gradients: TensorStorage, buffers: TensorStorage)?

    public init(dtype: DType = .float32, seed: UInt64 = 0) {
        self.dtype = dtype
        self.seed = seed
    }

    /// Number of trainable elements.
    public var count: Int { entries.last.map { $0.offset + $0.count } ?? 0 }
    public var isSealed: Bool { storages != nil }

    /// Reserves a trainable tensor. Names must be unique.
    public func declare(_ name: String, shape: [Int], initializer: Initializer) -> Parameter {
        precondition(!isSealed, "declare(\(name)) after the arena was sealed")
        precondition(!entries.contains { $0.name == name }, "parameter \(name) declared twice")
        entries.append(Entry(name: name, offset: count, shape: shape))
        initializers.append(initializer)
        return Parameter(arena: self, index: entries.count - 1)
    }

    /// Reserves a non-trainable tensor (no gradient, not optimised) filled with `value`.
    public func declareBuffer(_ name: String, shape: [Int], value: Double) -> Buffer {
        precondition(!isSealed, "declareBuffer(\(name)) after the arena was sealed")
        let offset = bufferEntries.last.map { $0.offset + $0.count } ?? 0
        bufferEntries.append(Entry(name: name, offset: offset, shape: shape))
        bufferFills.append(value)
        return Buffer(arena: self, index: bufferEntries.count - 1)
    }

    /// Allocates the arenas and initialises every parameter and buffer. The gradient arena is
    /// `gradients` when given (memory a gradient exchange owns; `count` elements, zeroed).
    public func seal(gradients: TensorStorage? = nil) {
        precondition(!isSealed, "arena sealed twice")
        precondition(gradients.map { $0.count == count && $0.dtype == dtype } ?? true,
                     "gradient storage of \(gradients!.count) \(gradients!.dtype) for an arena of \(count) \(dtype)")
        let bufferCount = bufferEntries.last.map { $0.offset + $0.count } ?? 0
        storages = (TensorStorage(dtype: dtype, count: count), gradients ?? TensorStorage(dtype: dtype, count: count),
                    TensorStorage(dtype: dtype, count: bufferCount))
        for (i, entry) in entries.enumerated() {
            let view = values(of: entry)
            switch initializers[i] {
            case .zeros: break
            case .ones: view.fill(1)
            case let .constant(c): view.fill(c)
            case let .uniform(bound):
                let u = RandomKey(seed: seed, stream: RandomStream.initialization, sample: UInt32(i)).uniform(entry.count)
                view.assign(u.map { (2 * $0 - 1) * bound })
            case let .normal(std):
                view.assign(RandomKey(seed: seed, stream: RandomStream.initialization, sample: UInt32(i)).normal(entry.count).map { $0 * std })
            }
        }
        for (entry, fill) in zip(bufferEntries, bufferFills) { buffer(entry).fill(fill) }
    }

    /// The whole parameter arena as one tensor [count].
    public var values: Tensor { Tensor(storage: sealed.values, shape: [count]) }
    /// The whole gradient arena as one tensor [count].
    public var gradients: Tensor { Tensor(storage: sealed.gradients, shape: [count]) }
    /// The whole buffer arena.
    public var buffers: Tensor { Tensor(storage: sealed.buffers, shape: [sealed.buffers.count]) }

    public func values(of entry: Entry) -> Tensor { Tensor(storage: sealed.values, offset: entry.offset, shape: entry.shape) }
    public func gradients(of entry: Entry) -> Tensor { Tensor(storage: sealed.gradients, offset: entry.offset, shape: entry.shape) }
    func buffer(_ entry: Entry) -> Tensor { Tensor(storage: sealed.buffers, offset: entry.offset, shape: entry.shape) }

    /// The entry called `name`, if any.
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// Sets every gradient to zero (start of a step; micro-batches then accumulate).
    public func zeroGradients() { gradients.fill(0) }

    private var sealed: (values: TensorStorage, gradients: TensorStorage, buffers: TensorStorage) {
        guard let storages else { preconditionFailure("the parameter arena is used before seal()") }
        return storages
    }
}

/// A trainable tensor: a named view into a `ParameterArena`.
public struct Parameter {
    let arena: ParameterArena
    let index: Int

    public var entry: ParameterArena.Entry { arena.entries[index] }
    public var value: Tensor { arena.values(of: entry) }
    public var gradient: Tensor { arena.gradients(of: entry) }
    /// A leaf for one forward pass, accumulating into the gradient arena.
    public var variable: Variable { Variable(value, gradient: gradient) }
}

/// A non-trainable tensor (e.g. BatchNorm running statistics) in a `ParameterArena`.
public struct Buffer {
    let arena: ParameterArena
    let index: Int

    public var value: Tensor { arena.buffer(arena.bufferEntries[index]) }
}
