import Tensors

/// softmax(q·kᵀ·scale)·v for q [N, T, d], k and v [N, S, d], computed in blocks
/// (`Tensor.blockAttention`): neither the forward nor the backward holds the [T, S] scores, only
/// one block of them and a log-sum-exp per query row.
public func blockAttention(_ q: Variable, _ k: Variable, _ v: Variable, scale: Double) -> Variable {
    let (output, logSumExp) = Tensor.blockAttention(q.value, k.value, v.value, scale: scale)
    return Variable(output, parents: [q, k, v]) { g in
        let (dq, dk, dv) = Tensor.blockAttentionBackward(q.value, k.value, v.value, output: output, logSumExp: logSumExp, gradient: g, scale: scale)
        if q.requiresGrad { q.accumulate(dq) }
        if k.requiresGrad { k.accumulate(dk) }
        if v.requiresGrad { v.accumulate(dv) }
    }
}
