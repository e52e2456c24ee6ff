import Tensors

// Elementwise arithmetic with broadcasting. A broadcast operand's gradient is the output
// gradient summed back to its shape (`Tensor.sum(to:)`).

public func + (a: Variable, b: Variable) -> Variable {
    Variable(Tensor.binary(a.value, b.value, .add), parents: [a, b]) { g in
        if a.requiresGrad { a.accumulate(g.sum(to: a.shape)) }
        if b.requiresGrad { b.accumulate(g.sum(to: b.shape)) }
    }
}

public func - (a: Variable, b: Variable) -> Variable {
    Variable(Tensor.binary(a.value, b.value, .subtract), parents: [a, b]) { g in
        if a.requiresGrad { a.accumulate(g.sum(to: a.shape)) }
        if b.requiresGrad { b.accumulate(g.map(.negate).sum(to: b.shape)) }
    }
}

public func * (a: Variable, b: Variable) -> Variable {
    Variable(Tensor.binary(a.value, b.value, .multiply), parents: [a, b]) { g in
        if a.requiresGrad { a.accumulate(Tensor.binary(g, b.value, .multiply).sum(to: a.shape)) }
        if b.requiresGrad { b.accumulate(Tensor.binary(g, a.value, .multiply).sum(to: b.shape)) }
    }
}

public func / (a: Variable, b: Variable) -> Variable {
    let y = Tensor.binary(a.value, b.value, .divide)
    return Variable(y, parents: [a, b]) { g in
        let gOverB = Tensor.binary(g, b.value, .divide)
        if a.requiresGrad { a.accumulate(gOverB.sum(to: a.shape)) }
        // d(a/b)/db = −(a/b)/b
        if b.requiresGrad { b.accumulate(Tensor.binary(gOverB, y, .multiply).map(.negate).sum(to: b.shape)) }
    }
}

public func * (a: Variable, s: Double) -> Variable { a.map(.affine(scale: s, shift: 0)) }
public func * (s: Double, a: Variable) -> Variable { a.map(.affine(scale: s, shift: 0)) }
public func + (a: Variable, s: Double) -> Variable { a.map(.affine(scale: 1, shift: s)) }
public func - (a: Variable, s: Double) -> Variable { a.map(.affine(scale: 1, shift: -s)) }
public prefix func - (a: Variable) -> Variable { a.map(.negate) }

extension Variable {
    /// `op` applied elementwise; its derivative comes from `Tensor.unaryBackward`.
    public func map(_ op: UnaryOp) -> Variable {
        let y = value.map(op)
        return Variable(y, parents: [self]) { g in
            self.accumulate(Tensor.unaryBackward(op, x: self.value, y: y, gradient: g))
        }
    }

    public func exp() -> Variable { map(.exp) }
    public func log() -> Variable { map(.log) }
    public func sqrt() -> Variable { map(.sqrt) }
    public func square() -> Variable { map(.square) }
    public func tanh() -> Variable { map(.tanh) }
    public func sigmoid() -> Variable { map(.sigmoid) }
    public func relu() -> Variable { map(.relu) }
    public func leakyReLU(_ slope: Double = 0.01) -> Variable { map(.leakyReLU(slope: slope)) }
    public func silu() -> Variable { map(.silu) }
    public func gelu() -> Variable { map(.gelu) }
    public func softplus() -> Variable { map(.softplus) }

    /// Sums down to `shape` (which broadcasts to this one); `[]` sums everything.
    public func sum(to shape: [Int] = []) -> Variable {
        Variable(value.sum(to: shape), parents: [self]) { g in
            self.accumulate(Tensor.binary(Tensor(zeros: self.shape, dtype: self.dtype), g, .add))
        }
    }

    /// The mean down to `shape` (which broadcasts to this one); `[]` averages everything.
    public func mean(to shape: [Int] = []) -> Variable {
        let reduced = shape.reduce(1, *)
        return sum(to: shape) * (Double(reduced) / Double(max(value.count, 1)))
    }
}
