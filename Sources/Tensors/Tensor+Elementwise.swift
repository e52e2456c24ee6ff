/// Elementwise arithmetic with broadcasting, unary functions with their derivatives, and the
/// reduction that undoes a broadcast (`sum(to:)`).
public enum BinaryOp: Sendable {
    case add, subtract, multiply, divide

    /// Runs `body` with this operator as a function (inlined, so `body` is specialised for it).
    @inline(__always)
    func withFunction<T: TensorScalar>(_: T.Type, _ body: ((T, T) -> T) -> Void) {
        switch self {
        case .add: body(+)
        case .subtract: body(-)
        case .multiply: body(*)
        case .divide: body(/)
        }
    }
}

/// A unary function and its derivative, side by side.
public enum UnaryOp: Sendable, Equatable {
    case negate, exp, log, sqrt, square, tanh, sigmoid, relu, silu, gelu, softplus
    case leakyReLU(slope: Double)
    /// a·x + b
    case affine(scale: Double, shift: Double)
    /// xᵖ (for x > 0 unless p is an integer)
    case power(Double)
}

extension Tensor {
    /// `a op b` elementwise, broadcasting as NumPy does.
    public static func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp) -> Tensor {
        precondition(a.dtype == b.dtype, "dtypes differ: \(a.dtype) and \(b.dtype)")
        switch a.dtype {
        case .float32: return binaryKernel(a, b, op, Float.self)
        case .float64: return binaryKernel(a, b, op, Double.self)
        }
    }
    static func binaryKernel<T: TensorScalar>(_ a: Tensor, _ b: Tensor, _ op: BinaryOp, _: T.Type) -> Tensor {
        let pa = a.pointer(T.self), pb = b.pointer(T.self)
        // The switch on `op` sits inside each loop body so that the loops are specialised for
        // the operator (and vectorised) even when they run on several threads.
        if a.shape == b.shape {
            let out = Tensor(uninitialized: a.shape, dtype: a.dtype)
            let po = out.pointer(T.self)
            Parallel.forRanges(a.count) { range in
                op.withFunction(T.self) { f in for i in range { po[i] = f(pa[i], pb[i]) } }
            }
            return out
        }
        let plan = Broadcast(a.shape, b.shape)
        let out = Tensor(uninitialized: plan.shape, dtype: a.dtype)
        let po = out.pointer(T.self)
        let n = plan.rowLength, sa = plan.innerStride(0), sb = plan.innerStride(1)
        Parallel.forRanges(plan.rows, cost: n) { rows in
            plan.forEachRow(in: rows) { o, offsets in
                let ra = pa + offsets[0], rb = pb + offsets[1], ro = po + o
                op.withFunction(T.self) { f in
                    switch (sa, sb) {
                    case (1, 1): for j in 0..<n { ro[j] = f(ra[j], rb[j]) }
                    case (1, _): let y = rb[0]; for j in 0..<n { ro[j] = f(ra[j], y) }
                    case (_, 1): let x = ra[0]; for j in 0..<n { ro[j] = f(x, rb[j]) }
                    default: let v = f(ra[0], rb[0]); for j in 0..<n { ro[j] = v }
                    }
                }
            }
        }
        return out
    }

    /// `op` applied to every element.
    public func map(_ op: UnaryOp) -> Tensor {
        switch dtype {
        case .float32: return mapKernel(op, Float.self)
        case .float64: return mapKernel(op, Double.self)
        }
    }
    func mapKernel<T: TensorScalar>(_ op: UnaryOp, _: T.Type) -> Tensor {
        let out = Tensor(uninitialized: shape, dtype: dtype)
        let x = pointer(T.self), y = out.pointer(T.self)
        Parallel.forRanges(count) { range in
        @inline(__always) func each(_ f: (T) -> T) { for i in range { y[i] = f(x[i]) } }
        switch op {
        case .negate: each { -$0 }
        case .exp: each { T.fastExp($0) }
        case .log: each { T.log($0) }
        case .sqrt: each { $0.squareRoot() }
        case .square: each { $0 * $0 }
        case .tanh: each { T.fastTanh($0) }
        case .sigmoid: each { sigmoid($0) }
        case .relu: each { $0 > 0 ? $0 : 0 }
        case .silu: each { $0 * sigmoid($0) }
        case .gelu: each { $0 * normalCDF($0) }
        case .softplus: each { softplus($0) }
        case let .leakyReLU(slope): let s = T(slope); each { $0 > 0 ? $0 : s * $0 }
        case let .affine(scale, shift): let a = T(scale), b = T(shift); each { a * $0 + b }
        case let .power(p): let e = T(p); each { T.pow($0, e) }
        }
        }
        return out
    }

    /// dL/dx = g · f′(x) for `op`, given the input `x`, the output `y = f(x)` and `g = dL/dy`.
    public static func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor, gradient g: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: return unaryBackwardKernel(op, x, y, g, Float.self)
        case .float64: return unaryBackwardKernel(op, x, y, g, Double.self)
        }
    }
    static func unaryBackwardKernel<T: TensorScalar>(_ op: UnaryOp, _ x: Tensor, _ y: Tensor, _ g: Tensor, _: T.Type) -> Tensor {
        let out = Tensor(uninitialized: x.shape, dtype: x.dtype)
        let px = x.pointer(T.self), py = y.pointer(T.self), pg = g.pointer(T.self), po = out.pointer(T.self)
        Parallel.forRanges(x.count) { range in
        @inline(__always) func each(_ f: (T, T) -> T) { for i in range { po[i] = pg[i] * f(px[i], py[i]) } }
        switch op {
        case .negate: each { _, _ in -1 }
        case .exp: each { _, y in y }
        case .log: each { x, _ in 1 / x }
        case .sqrt: each { _, y in 1 / (2 * y) }
        case .square: each { x, _ in 2 * x }
        case .tanh: each { _, y in 1 - y * y }
        case .sigmoid: each { _, y in y * (1 - y) }
        case .relu: each { x, _ in x > 0 ? 1 : 0 }
        case .silu: each { x, _ in let s = sigmoid(x); return s * (1 + x * (1 - s)) }
        case .gelu: each { x, _ in normalCDF(x) + x * T.exp(-x * x / 2) / (2 * T.pi).squareRoot() }
        case .softplus: each { x, _ in sigmoid(x) }
        case let .leakyReLU(slope): let s = T(slope); each { x, _ in x > 0 ? 1 : s }
        case let .affine(scale, _): let a = T(scale); each { _, _ in a }
        case let .power(p): let e = T(p); each { x, _ in e * T.pow(x, e - 1) }
        }
        }
        return out
    }

    /// Sums this tensor down to `target`, a shape that broadcasts to this one: the adjoint of
    /// broadcasting (used for the gradients of broadcast operands).
    public func sum(to target: [Int]) -> Tensor {
        if target == shape { return self }
        switch dtype {
        case .float32: return sumToKernel(target, Float.self)
        case .float64: return sumToKernel(target, Double.self)
        }
    }
    func sumToKernel<T: TensorScalar>(_ target: [Int], _: T.Type) -> Tensor {
        let plan = Broadcast(shape, target)
        precondition(plan.shape == shape, "cannot sum \(shape) down to \(target)")
        let out = Tensor(zeros: target, dtype: dtype)
        let pin = pointer(T.self), pout = out.pointer(T.self)
        let n = plan.rowLength, inner = plan.innerStride(1)
        plan.forEachRow { i, offsets in
            let row = pin + i, o = pout + offsets[1]
            if inner == 1 {
                for j in 0..<n { o[j] += row[j] }
            } else {
                o[0] += T(simdSum(row, n))
            }
        }
        return out
    }

    /// The sum of all elements (accumulated in Double).
    public func sumAll() -> Double {
        switch dtype {
        case .float32: return buffer(Float.self).reduce(0.0) { $0 + Double($1) }
        case .float64: return buffer(Double.self).reduce(0, +)
        }
    }

    /// self += other · scale, elementwise, in place (same shape). Gradient accumulation.
    public func add(_ other: Tensor, scaledBy scale: Double = 1) {
        precondition(other.count == count && other.dtype == dtype, "add(into:): \(other.shape) into \(shape)")
        switch dtype {
        case .float32: axpy(other, Float(scale))
        case .float64: axpy(other, scale)
        }
    }
    func axpy<T: TensorScalar>(_ other: Tensor, _ scale: T) {
        let y = pointer(T.self), x = other.pointer(T.self)
        Parallel.forRanges(count) { range in
            if scale == 1 {
                for i in range { y[i] += x[i] }
            } else {
                for i in range { y[i] += scale * x[i] }
            }
        }
    }
}

@inline(__always)
func sigmoid<T: TensorScalar>(_ x: T) -> T {
    // fastExp saturates instead of overflowing, so 1/(1 + e⁻ˣ) is safe on both sides.
    1 / (1 + T.fastExp(-x))
}

/// log(1 + eˣ) without overflow.
@inline(__always)
func softplus<T: TensorScalar>(_ x: T) -> T {
    max(x, 0) + T.log(onePlus: T.exp(-abs(x)))
}

/// Φ(x), the standard normal CDF (exact GELU uses x·Φ(x)).
@inline(__always)
func normalCDF<T: TensorScalar>(_ x: T) -> T {
    (1 + T.erf(x / T(2).squareRoot())) / 2
}
