import Tensors

extension Variable {
    /// The same elements under another shape (−1 infers one dimension).
    public func reshaped(_ shape: [Int]) -> Variable {
        Variable(value.reshaped(shape), parents: [self]) { g in self.accumulate(g) }
    }

    /// Axes reordered: output axis i is input axis `axes[i]`. Backward: the inverse permutation.
    public func permuted(_ axes: [Int]) -> Variable {
        Variable(value.permuted(axes), parents: [self]) { g in
            self.accumulate(g.permuted(Tensor.inversePermutation(axes)))
        }
    }

    /// Elements `range` along `axis`. Backward: the gradient added back into that block.
    public func slice(axis: Int, _ range: Range<Int>) -> Variable {
        Variable(value.slice(axis: axis, range), parents: [self]) { g in
            self.gradientBuffer()?.copyBlock(from: g, axis: axis, at: range.lowerBound, adding: true)
        }
    }

    /// Rows `indices` of the first axis (an embedding lookup). Backward: scatter-add.
    public func gatherRows(_ indices: [Int]) -> Variable {
        Variable(value.gatherRows(indices), parents: [self]) { g in
            self.gradientBuffer()?.scatterAddRows(g, indices)
        }
    }

    /// Softmax over the last axis.
    public func softmax() -> Variable {
        let y = value.softmax()
        return Variable(y, parents: [self]) { g in self.accumulate(Tensor.softmaxBackward(output: y, gradient: g)) }
    }

    /// log-softmax over the last axis.
    public func logSoftmax() -> Variable {
        let y = value.logSoftmax()
        return Variable(y, parents: [self]) { g in self.accumulate(Tensor.logSoftmaxBackward(output: y, gradient: g)) }
    }
}

/// The variables joined along `axis`. Backward: each part gets its block of the gradient.
public func concatenate(_ parts: [Variable], axis: Int) -> Variable {
    Variable(Tensor.concatenate(parts.map(\.value), axis: axis), parents: parts) { g in
        var start = 0
        for part in parts {
            let length = part.shape[axis]
            if part.requiresGrad { part.accumulate(g.slice(axis: axis, start..<(start + length))) }
            start += length
        }
    }
}
