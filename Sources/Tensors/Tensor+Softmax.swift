extension Tensor {
    /// Softmax over the last axis (max-subtracted, so no exponent overflows).
    public func softmax() -> Tensor { softmaxFamily(log: false) }

    /// log-softmax over the last axis: x − max − log Σ exp(x − max).
    public func logSoftmax() -> Tensor { softmaxFamily(log: true) }

    /// Softmax backward: dx = y ⊙ (g − Σ g⊙y) per row, with y the softmax output.
    public static func softmaxBackward(output y: Tensor, gradient g: Tensor) -> Tensor {
        rowKernel(y, g, log: false)
    }

    /// log-softmax backward: dx = g − softmax(x) · Σ g per row, with y the log-softmax output.
    public static func logSoftmaxBackward(output y: Tensor, gradient g: Tensor) -> Tensor {
        rowKernel(y, g, log: true)
    }

    private func softmaxFamily(log: Bool) -> Tensor {
        switch dtype {
        case .float32: return softmaxKernel(log, Float.self)
        case .float64: return softmaxKernel(log, Double.self)
        }
    }
    func softmaxKernel<T: TensorScalar>(_ log: Bool, _: T.Type) -> Tensor {
        let n = shape.last ?? 1, rows = count / max(n, 1)
        let out = Tensor(zeros: shape, dtype: dtype)
        let x = pointer(T.self), y = out.pointer(T.self)
        for r in 0..<rows {
            let xr = x + r * n, yr = y + r * n
            var top = -T.infinity
            for j in 0..<n { top = max(top, xr[j]) }
            var sum: T = 0
            for j in 0..<n { let e = T.exp(xr[j] - top); yr[j] = e; sum += e }
            if log {
                let lse = top + T.log(sum)
                for j in 0..<n { yr[j] = xr[j] - lse }
            } else {
                let inv = 1 / sum
                for j in 0..<n { yr[j] *= inv }
            }
        }
        return out
    }

    private static func rowKernel(_ y: Tensor, _ g: Tensor, log: Bool) -> Tensor {
        switch y.dtype {
        case .float32: return softmaxBackwardKernel(y, g, log, Float.self)
        case .float64: return softmaxBackwardKernel(y, g, log, Double.self)
        }
    }
    static func softmaxBackwardKernel<T: TensorScalar>(_ y: Tensor, _ g: Tensor, _ log: Bool, _: T.Type) -> Tensor {
        let n = y.shape.last ?? 1, rows = y.count / max(n, 1)
        let out = Tensor(zeros: y.shape, dtype: y.dtype)
        let py = y.pointer(T.self), pg = g.pointer(T.self), po = out.pointer(T.self)
        for r in 0..<rows {
            let yr = py + r * n, gr = pg + r * n, o = po + r * n
            if log {
                var s: T = 0
                for j in 0..<n { s += gr[j] }
                for j in 0..<n { o[j] = gr[j] - T.exp(yr[j]) * s }
            } else {
                var s: T = 0
                for j in 0..<n { s += gr[j] * yr[j] }
                for j in 0..<n { o[j] = yr[j] * (gr[j] - s) }
            }
        }
        return out
    }
}
