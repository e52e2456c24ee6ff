import Autograd
import RealModule
import Tensors

/// Losses, each averaged as PyTorch's default `reduction="mean"` does.
public enum Loss {
    /// mean((prediction − target)²)
    public static func meanSquaredError(_ prediction: Variable, _ target: Variable) -> Variable {
        (prediction - target).square().mean()
    }

    /// mean over elements of −[y·log σ(x) + (1 − y)·log(1 − σ(x))], computed stably as
    /// max(x, 0) − x·y + log(1 + e^−|x|). Gradient: (σ(x) − y)/N.
    public static func binaryCrossEntropyWithLogits(_ logits: Variable, _ targets: Tensor) -> Variable {
        let x = logits.value.scalars, y = targets.scalars, n = Double(x.count)
        precondition(x.count == y.count, "BCE: \(x.count) logits for \(y.count) targets")
        var loss = 0.0
        for i in x.indices { loss += max(x[i], 0) - x[i] * y[i] + Double.log(onePlus: Double.exp(-abs(x[i]))) }
        return Variable(Tensor(shape: [], values: [loss / n], dtype: logits.dtype), parents: [logits]) { g in
            let scale = g.scalars[0] / n
            let grad = x.indices.map { i in (1 / (1 + Double.exp(-x[i])) - y[i]) * scale }
            logits.accumulate(Tensor(shape: logits.shape, values: grad, dtype: logits.dtype))
        }
    }

    /// Cross-entropy of logits [N, C] against class indices: −mean log softmax(x)[i, yᵢ].
    /// Gradient: (softmax − onehot)/N.
    public static func crossEntropy(_ logits: Variable, labels: [Int]) -> Variable {
        let (n, c) = (logits.shape[0], logits.shape[1])
        precondition(labels.count == n && labels.allSatisfy { (0..<c).contains($0) }, "cross-entropy: labels must be \(n) values in 0..<\(c)")
        let logProbabilities = logits.value.logSoftmax().scalars
        let loss = -labels.enumerated().map { logProbabilities[$0 * c + $1] }.reduce(0, +) / Double(n)
        return Variable(Tensor(shape: [], values: [loss], dtype: logits.dtype), parents: [logits]) { g in
            let scale = g.scalars[0] / Double(n)
            var grad = logProbabilities.map { Double.exp($0) * scale }
            for (i, label) in labels.enumerated() { grad[i * c + label] -= scale }
            logits.accumulate(Tensor(shape: logits.shape, values: grad, dtype: logits.dtype))
        }
    }

    /// KL(N(μ, σ²) ‖ N(0, 1)) summed over latent dimensions, averaged over the batch:
    /// mean_b −½ Σ (1 + log σ² − μ² − σ²), for μ, log σ² [B, Z].
    public static func gaussianKL(mean mu: Variable, logVariance logVar: Variable) -> Variable {
        let batch = Double(mu.shape[0])
        let terms = logVar + 1 - mu.square() - logVar.exp()
        return terms.sum() * (-0.5 / batch)
    }

    /// Cox negative log partial likelihood (Breslow's handling of ties), averaged over events:
    ///   L = −(1/E) Σ_{i: eventᵢ} (θᵢ − log Σ_{j: tⱼ ≥ tᵢ} e^{θⱼ})
    /// Every sample whose time is ≥ tᵢ, tied ones included, is in i's risk set. Log-sums are
    /// running log-sum-exps over times in descending order, and the gradient
    ///   ∂L/∂θₖ = −(1/E) (δₖ − e^{θₖ} Σ_{i: event, tᵢ ≤ tₖ} e^{−lseᵢ})
    /// is formed in log space, so no exponent can overflow. Computed in Double. A batch with no
    /// events has loss 0 and gradient 0.
    public static func coxPartialLikelihood(risk: Variable, times: [Double], events: [Bool]) -> Variable {
        let theta = risk.value.scalars, n = theta.count
        precondition(times.count == n && events.count == n, "Cox: \(n) risks, \(times.count) times, \(events.count) events")
        let eventCount = events.filter { $0 }.count
        guard eventCount > 0 else {
            return Variable(Tensor(shape: [], values: [0.0], dtype: risk.dtype), parents: [risk]) { _ in }
        }
        let order = (0..<n).sorted { times[$0] > times[$1] }  // descending time
        // lse[i]: log Σ_{j: tⱼ ≥ tᵢ} e^{θⱼ}, equal within a group of tied times.
        var lse = [Double](repeating: 0, count: n)
        var running = -Double.infinity
        var start = 0
        while start < n {
            var end = start
            while end < n && times[order[end]] == times[order[start]] { end += 1 }
            for k in start..<end { running = logAddExp(running, theta[order[k]]) }
            for k in start..<end { lse[order[k]] = running }
            start = end
        }
        var loss = 0.0
        for i in 0..<n where events[i] { loss -= theta[i] - lse[i] }
        loss /= Double(eventCount)

        return Variable(Tensor(shape: [], values: [loss], dtype: risk.dtype), parents: [risk]) { g in
            // logC[k] = log Σ_{i: event, tᵢ ≤ tₖ} e^{−lseᵢ}, in ascending time, ties together.
            var logC = [Double](repeating: -.infinity, count: n)
            var acc = -Double.infinity
            var end = n
            while end > 0 {
                var begin = end - 1
                while begin > 0 && times[order[begin - 1]] == times[order[end - 1]] { begin -= 1 }
                for k in begin..<end where events[order[k]] { acc = logAddExp(acc, -lse[order[k]]) }
                for k in begin..<end { logC[order[k]] = acc }
                end = begin
            }
            let scale = g.scalars[0] / Double(eventCount)
            let grad = (0..<n).map { k in -scale * ((events[k] ? 1 : 0) - Double.exp(theta[k] + logC[k])) }
            risk.accumulate(Tensor(shape: risk.shape, values: grad, dtype: risk.dtype))
        }
    }

    /// log(eᵃ + eᵇ) without overflow.
    static func logAddExp(_ a: Double, _ b: Double) -> Double {
        let top = max(a, b)
        return top == -.infinity ? top : top + Double.log(Double.exp(a - top) + Double.exp(b - top))
    }
}
