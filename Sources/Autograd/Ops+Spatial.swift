import Tensors

extension Variable {
    /// 2-D convolution of self [B, C, H, W] with `weight` [O, C/groups, k, k], plus an optional
    /// per-channel `bias` [O].
    public func conv2d(_ weight: Variable, bias: Variable? = nil, _ geometry: Conv2dGeometry) -> Variable {
        let x = self
        let y = Tensor.conv2d(x.value, weight.value, bias: bias?.value, geometry)
        return Variable(y, parents: [x, weight] + (bias.map { [$0] } ?? [])) { g in
            Tensor.conv2dBackward(x.value, weight.value, gradient: g, geometry, gradInput: x.gradientBuffer(),
                                  gradWeight: weight.gradientBuffer(), gradBias: bias?.gradientBuffer())
        }
    }

    /// GroupNorm of self [B, C, …] in `groups` groups with the per-channel affine `weight`·x̂ + `bias`
    /// (see `Tensor.groupNorm`).
    public func groupNorm(groups: Int, weight: Variable, bias: Variable, epsilon: Double) -> Variable {
        let x = self
        let (y, mean, inverseStd) = Tensor.groupNorm(x.value, groups: groups, weight: weight.value, bias: bias.value, epsilon: epsilon)
        return Variable(y, parents: [x, weight, bias]) { g in
            let dx = Tensor.groupNormBackward(
                x.value, groups: groups, mean: mean, inverseStd: inverseStd, weight: weight.value, gradient: g,
                weightGradient: weight.gradientBuffer(), biasGradient: bias.gradientBuffer())
            x.accumulate(dx)
        }
    }

    /// BatchNorm in training of self [B, C, …]: each channel standardised with the mean and biased
    /// variance of its values in the batch, then `weight`·x̂ + `bias` (see `Tensor.batchNorm`).
    /// Also returns those per-channel means and variances, for the running statistics.
    public func batchNorm(weight: Variable, bias: Variable, epsilon: Double) -> (output: Variable, mean: Tensor, variance: Tensor) {
        let x = self
        let (y, mean, variance, inverseStd) = Tensor.batchNorm(x.value, weight: weight.value, bias: bias.value, epsilon: epsilon)
        let output = Variable(y, parents: [x, weight, bias]) { g in
            let dx = Tensor.batchNormBackward(
                x.value, mean: mean, inverseStd: inverseStd, weight: weight.value, gradient: g,
                weightGradient: weight.gradientBuffer(), biasGradient: bias.gradientBuffer())
            x.accumulate(dx)
        }
        return (output, mean, variance)
    }

    /// Average pooling over k×k windows with `stride`.
    public func averagePool(kernel: Int, stride: Int) -> Variable {
        Variable(value.averagePool(kernel: kernel, stride: stride), parents: [self]) { g in
            self.accumulate(Tensor.averagePoolBackward(gradient: g, inputShape: self.shape, kernel: kernel, stride: stride))
        }
    }

    /// Max pooling over k×k windows with `stride`; the gradient goes to each window's maximum.
    public func maxPool(kernel: Int, stride: Int) -> Variable {
        let (y, argmax) = value.maxPool(kernel: kernel, stride: stride)
        return Variable(y, parents: [self]) { g in
            self.accumulate(Tensor.maxPoolBackward(gradient: g, inputShape: self.shape, argmax: argmax))
        }
    }

    /// Nearest-neighbour upsampling by an integer factor.
    public func upsampleNearest(_ factor: Int) -> Variable {
        Variable(value.upsampleNearest(factor), parents: [self]) { g in
            self.accumulate(Tensor.upsampleNearestBackward(gradient: g, factor: factor))
        }
    }

    /// Bilinear upsampling of [B, C, H, W] by an integer factor, as PyTorch's
    /// `F.interpolate(mode: "bilinear", align_corners: false)`.
    public func upsampleBilinear(_ factor: Int) -> Variable {
        Variable(value.upsampleBilinear(factor), parents: [self]) { g in
            self.accumulate(Tensor.upsampleBilinearBackward(gradient: g, inputShape: self.shape, factor: factor))
        }
    }

    /// Each run of `rowLength` elements standardised to mean 0 and variance 1 (see
    /// `Tensor.standardizedRows`). Also returns the rows' means and biased variances.
    public func standardizedRows(_ rowLength: Int, epsilon: Double) -> (output: Variable, mean: Tensor, variance: Tensor) {
        let (y, inverseStd, mean, variance) = value.standardizedRows(rowLength, epsilon: epsilon)
        let out = Variable(y, parents: [self]) { g in
            self.accumulate(Tensor.standardizedRowsBackward(output: y, inverseStd: inverseStd, gradient: g))
        }
        return (out, mean, variance)
    }
}
