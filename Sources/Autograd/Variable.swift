import Tensors

/// A tensor in a computation whose gradient can be taken: reverse-mode automatic differentiation.
///
/// Each operation returns a new `Variable` holding its result, its inputs, and its backward rule
/// (a closure written beside the forward, which *adds* the inputs' gradients). `backward()`
/// orders the graph topologically from the loss and runs the rules in reverse — the tape.
/// Leaves are constants (no gradient) or parameters, whose `grad` is a view into the model's
/// gradient arena, so gradients of successive micro-batches accumulate there until zeroed.
public final class Variable {
    public let value: Tensor
    /// dLoss/dvalue, once `backward` has reached this variable (parameters: always allocated).
    public private(set) var grad: Tensor?
    /// Whether gradients flow to this variable.
    public let requiresGrad: Bool
    private var parents: [Variable]
    /// Whether `grad` was adopted from a contribution rather than allocated here.
    private var gradIsShared = false
    private var backwardRule: ((Tensor) -> Void)?

    /// A leaf. With `gradient` (a parameter's slot in the gradient arena) it requires grad.
    public init(_ value: Tensor, gradient: Tensor? = nil) {
        precondition(gradient.map { $0.shape == value.shape && $0.dtype == value.dtype } ?? true,
                     "gradient buffer \(gradient!.shape) does not match value \(value.shape)")
        self.value = value
        grad = gradient
        requiresGrad = gradient != nil
        parents = []
    }

    /// The result of an operation on `parents`; `backward` receives dLoss/d(this value) and adds
    /// each parent's gradient with `accumulate`. Records nothing in no-grad mode or when no
    /// parent requires grad.
    public init(_ value: Tensor, parents: [Variable], backward: @escaping (Tensor) -> Void) {
        self.value = value
        requiresGrad = GradMode.isEnabled && parents.contains { $0.requiresGrad }
        self.parents = requiresGrad ? parents : []
        backwardRule = requiresGrad ? backward : nil
    }

    public var shape: [Int] { value.shape }
    public var dtype: DType { value.dtype }

    /// Adds `gradient` into this variable's gradient. The first contribution is adopted without
    /// a copy (most are fresh kernel outputs); since it may be shared — one upstream gradient
    /// passed to both operands of `a + b` — it is copied before anything is added into it.
    public func accumulate(_ gradient: Tensor) {
        guard requiresGrad else { return }
        precondition(gradient.count == value.count, "gradient \(gradient.shape) for value \(value.shape)")
        if grad != nil {
            ownGradient().add(gradient)
        } else {
            grad = gradient.reshaped(value.shape)
            gradIsShared = true
        }
    }

    /// A writable gradient buffer (allocated as zeros if needed), for rules that add into it
    /// directly, e.g. with `Tensor.matmul(into:accumulate:)`.
    public func gradientBuffer() -> Tensor? {
        guard requiresGrad else { return nil }
        if grad == nil { grad = Tensor(zeros: value.shape, dtype: value.dtype) }
        return ownGradient()
    }

    /// The gradient, copied first if it is an adopted (possibly shared) tensor.
    private func ownGradient() -> Tensor {
        if gradIsShared {
            grad = grad!.copy()
            gradIsShared = false
        }
        return grad!
    }

    /// Back-propagates from this variable, seeded with `seed` (default: 1, for a scalar loss).
    /// Frees the graph afterwards; intermediate gradients are released, leaves keep theirs.
    ///
    /// `leafFinished` is called with a leaf's gradient as soon as no remaining rule will add to
    /// it — leaves viewing the same elements (one parameter taken twice) count as one — which
    /// is what lets a data-parallel step exchange gradients while backward is still running.
    public func backward(seed: Tensor? = nil, leafFinished: ((Tensor) -> Void)? = nil) {
        guard requiresGrad else { return }
        accumulate(seed ?? Tensor(repeating: 1, shape: value.shape, dtype: value.dtype))
        let order = topologicalOrder()
        var waiting = [LeafKey: Int]()
        if leafFinished != nil {
            for node in order { for parent in node.parents where parent.isLeaf { waiting[LeafKey(parent), default: 0] += 1 } }
        }
        for node in order.reversed() {
            guard let rule = node.backwardRule, let g = node.grad else { continue }
            rule(g)
            if let leafFinished {
                for parent in node.parents where parent.isLeaf {
                    let key = LeafKey(parent)
                    waiting[key]! -= 1
                    if waiting[key] == 0 { leafFinished(parent.grad!) }
                }
            }
            node.backwardRule = nil
            node.parents = []
            node.grad = nil
            node.gradIsShared = false
        }
    }

    /// A leaf that takes gradients: a parameter (a view into the gradient arena).
    private var isLeaf: Bool { requiresGrad && backwardRule == nil && parents.isEmpty && grad != nil }

    /// The elements a leaf's gradient occupies: leaves over the same view are the same parameter.
    private struct LeafKey: Hashable {
        let storage: ObjectIdentifier, offset: Int, count: Int
        init(_ leaf: Variable) {
            let g = leaf.grad!
            (storage, offset, count) = (ObjectIdentifier(g.storage), g.offset, g.count)
        }
    }

    /// Nodes reachable from this one that need gradients, each after all its inputs.
    private func topologicalOrder() -> [Variable] {
        var order = [Variable](), visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for parent in node.parents where parent.requiresGrad { stack.append((parent, false)) }
        }
        return order
    }
}

/// Whether operations record their backward rules (on by default). Evaluation runs in
/// `GradMode.withoutGradients { … }`: nothing is recorded and no gradient memory is held.
public enum GradMode {
    @TaskLocal public static var isEnabled = true

    public static func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
        try $isEnabled.withValue(false, operation: body)
    }
}
