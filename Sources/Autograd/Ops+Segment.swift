import Tensors

// Softmax and weighted sums over segments of rows (bags packed as one tensor with `offsets`
// [B + 1], bag b being rows offsets[b]..<offsets[b + 1]): together, attention-MIL pooling.

extension Variable {
    /// Softmax down the rows of each segment, per head: self [N] or [N, H] (see
    /// `Tensor.segmentSoftmax`). Backward: dx = y ⊙ (g − Σ_{segment} g⊙y).
    public func segmentSoftmax(offsets: [Int]) -> Variable {
        let y = value.segmentSoftmax(offsets: offsets)
        return Variable(y, parents: [self]) { g in
            self.accumulate(Tensor.segmentSoftmaxBackward(output: y, gradient: g, offsets: offsets))
        }
    }
}

/// Per segment and head, Σ_{i in segment} w[i, h] · v[i]: weights [N, H] and values [N, D] give
/// [B, H, D], weights [N] give [B, D]; an empty segment gives zeros (see `Tensor.segmentWeightedSum`).
/// Backward: dw[i, h] = v[i] · g[b, h], dv[i] = Σ_h w[i, h] · g[b, h].
public func segmentWeightedSum(weights: Variable, values: Variable, offsets: [Int]) -> Variable {
    Variable(Tensor.segmentWeightedSum(weights: weights.value, values: values.value, offsets: offsets),
             parents: [weights, values]) { g in
        Tensor.segmentWeightedSumBackward(weights: weights.value, values: values.value, offsets: offsets, gradient: g,
                                          weightsGradient: weights.gradientBuffer(), valuesGradient: values.gradientBuffer())
    }
}
