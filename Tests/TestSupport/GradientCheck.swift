import Autograd
import NN
import Tensors
import XCTest

/// Finite-difference gradient checks in Double.
///
/// `f` maps input variables to an output; the check forms L = Σ w ⊙ f(inputs) with fixed random
/// weights w, back-propagates once, and compares every analytic derivative of L (with respect
/// to the inputs and, if given, the arena's parameters) with the central difference
/// (L(x + h) − L(x − h)) / 2h, h = 1e-6. Up to `samples` elements per tensor are checked.
public func checkGradients(
    _ inputs: [Tensor], arena: ParameterArena? = nil, samples: Int = 24, tolerance: Double = 1e-6,
    file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Variable]) -> Variable
) {
    precondition(inputs.allSatisfy { $0.dtype == .float64 } && (arena?.dtype ?? .float64) == .float64, "gradient checks run in Double")
    let variables = inputs.map { Variable($0, gradient: Tensor(zeros: $0.shape, dtype: .float64)) }
    arena?.zeroGradients()
    let output = f(variables)
    let weights = Tensor(shape: output.shape, values: RandomKey(seed: 99, stream: 7).normal(output.value.count), dtype: .float64)
    (output * Variable(weights)).sum().backward()

    func loss() -> Double {
        GradMode.withoutGradients {
            Tensor.binary(f(inputs.map { Variable($0) }).value, weights, .multiply).sumAll()
        }
    }
    var checked: [(String, Tensor, Tensor)] = inputs.enumerated().map { ("input \($0)", $1, variables[$0].grad!) }
    if let arena {
        checked += arena.entries.map { ($0.name, arena.values(of: $0), arena.gradients(of: $0)) }
    }
    let h = 1e-6
    for (name, value, analytic) in checked {
        let picks = value.count <= samples ? Array(0..<value.count)
            : RandomKey(seed: 5, stream: 8).uniform(samples).map { Int($0 * Double(value.count)) }
        let p = value.pointer(Double.self), a = analytic.pointer(Double.self)
        for i in picks {
            let saved = p[i]
            p[i] = saved + h
            let up = loss()
            p[i] = saved - h
            let down = loss()
            p[i] = saved
            let numeric = (up - down) / (2 * h)
            let error = abs(numeric - a[i]) / max(1, abs(numeric), abs(a[i]))
            if error > tolerance {
                XCTFail("\(name)[\(i)]: analytic \(a[i]) vs numeric \(numeric) (relative error \(error))", file: file, line: line)
                break
            }
        }
    }
}

/// A Double tensor of standard normal values from a fixed key.
public func randomTensor(_ shape: [Int], seed: UInt64 = 1, scale: Double = 1, dtype: DType = .float64) -> Tensor {
    Tensor(shape: shape, values: RandomKey(seed: seed, stream: 3).normal(shape.reduce(1, *)).map { $0 * scale }, dtype: dtype)
}

/// Asserts equal shapes, then every element within `absolute + relative·|expected|`,
/// reporting the worst element.
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, absolute: Double = 1e-5, relative: Double = 1e-4, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        return XCTFail("\(message): shape \(actual.shape) ≠ expected \(expected.shape)", file: file, line: line)
    }
    let a = actual.scalars, e = expected.scalars
    var worst = (index: -1, excess: 0.0)
    for i in a.indices {
        let excess = abs(a[i] - e[i]) - (absolute + relative * abs(e[i]))
        if excess > worst.excess || !a[i].isFinite { worst = (i, a[i].isFinite ? excess : .infinity) }
    }
    if worst.index >= 0 {
        XCTFail("\(message): element \(worst.index) is \(a[worst.index]), expected \(e[worst.index]) (max |Δ| over tolerance by \(worst.excess))", file: file, line: line)
    }
}
