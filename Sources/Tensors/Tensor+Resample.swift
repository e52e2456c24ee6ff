/// Bilinear upsampling over [B, C, H, W] by an integer factor, and its adjoint: PyTorch's
/// `F.interpolate(x, scale_factor: f, mode: "bilinear", align_corners: false)`.
extension Tensor {
    /// [B, C, H, W] → [B, C, fH, fW]. Output pixel (oy, ox) blends the four input pixels around
    /// the source point ((oy + ½)/f − ½, (ox + ½)/f − ½), clamped to the image as PyTorch does.
    public func upsampleBilinear(_ factor: Int) -> Tensor {
        precondition(rank == 4 && factor >= 1, "bilinear upsampling needs [B, C, H, W] and a factor ≥ 1, got \(shape) and \(factor)")
        let out = Tensor(uninitialized: [shape[0], shape[1], shape[2] * factor, shape[3] * factor], dtype: dtype)
        switch dtype {
        case .float32: Tensor.upsampleBilinearKernel(self, out, factor, Float.self)
        case .float64: Tensor.upsampleBilinearKernel(self, out, factor, Double.self)
        }
        return out
    }

    /// The adjoint of `upsampleBilinear`: each output gradient spread over its four input pixels
    /// with the forward's weights. `inputShape` is [B, C, H, W].
    public static func upsampleBilinearBackward(gradient g: Tensor, inputShape: [Int], factor: Int) -> Tensor {
        let dx = Tensor(zeros: inputShape, dtype: g.dtype)
        switch g.dtype {
        case .float32: upsampleBilinearBackwardKernel(g, dx, factor, Float.self)
        case .float64: upsampleBilinearBackwardKernel(g, dx, factor, Double.self)
        }
        return dx
    }

    /// Where one output coordinate reads along an axis: input coordinates `lower` and `upper`
    /// (equal at the far edge) and the weight of `upper`.
    struct BilinearTap<T: TensorScalar> {
        let lower: Int, upper: Int, weight: T

        /// The taps of every output coordinate when an axis of `length` grows `factor` times.
        /// PyTorch's source coordinate for align_corners = false is s = (o + ½)/f − ½, clamped
        /// below at 0; lower = ⌊s⌋, upper = lower + 1 unless lower is the last pixel.
        static func axis(length: Int, factor: Int) -> [BilinearTap] {
            let scale = 1 / Double(factor)
            return (0..<length * factor).map { o in
                let source = max(scale * (Double(o) + 0.5) - 0.5, 0)
                let lower = min(Int(source), length - 1)
                return BilinearTap(lower: lower, upper: min(lower + 1, length - 1), weight: T(source - Double(lower)))
            }
        }
    }

    static func upsampleBilinearKernel<T: TensorScalar>(_ x: Tensor, _ out: Tensor, _ factor: Int, _: T.Type) {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]), (ho, wo) = (h * factor, w * factor)
        let rowTaps = BilinearTap<T>.axis(length: h, factor: factor), columnTaps = BilinearTap<T>.axis(length: w, factor: factor)
        let px = x.pointer(T.self), py = out.pointer(T.self)
        columnTaps.withUnsafeBufferPointer { columns in
            Parallel.forRanges(planes, cost: ho * wo) { range in
                for p in range {
                    for (oy, row) in rowTaps.enumerated() {
                        let top = px + (p * h + row.lower) * w, bottom = px + (p * h + row.upper) * w
                        let y = py + (p * ho + oy) * wo
                        for ox in 0..<wo {
                            let c = columns[ox]
                            let upper = (1 - c.weight) * bottom[c.lower] + c.weight * bottom[c.upper]
                            let lower = (1 - c.weight) * top[c.lower] + c.weight * top[c.upper]
                            y[ox] = (1 - row.weight) * lower + row.weight * upper
                        }
                    }
                }
            }
        }
    }

    static func upsampleBilinearBackwardKernel<T: TensorScalar>(_ g: Tensor, _ dx: Tensor, _ factor: Int, _: T.Type) {
        let (planes, h, w) = (dx.shape[0] * dx.shape[1], dx.shape[2], dx.shape[3]), (ho, wo) = (h * factor, w * factor)
        let rowTaps = BilinearTap<T>.axis(length: h, factor: factor), columnTaps = BilinearTap<T>.axis(length: w, factor: factor)
        let pg = g.pointer(T.self), pdx = dx.pointer(T.self)
        columnTaps.withUnsafeBufferPointer { columns in
            // Planes are split across threads: every scatter stays inside its own plane.
            Parallel.forRanges(planes, cost: ho * wo) { range in
                for p in range {
                    for (oy, row) in rowTaps.enumerated() {
                        let top = pdx + (p * h + row.lower) * w, bottom = pdx + (p * h + row.upper) * w
                        let gy = pg + (p * ho + oy) * wo
                        for ox in 0..<wo {
                            let c = columns[ox]
                            let toTop = (1 - row.weight) * gy[ox], toBottom = row.weight * gy[ox]
                            top[c.lower] += (1 - c.weight) * toTop
                            top[c.upper] += c.weight * toTop
                            bottom[c.lower] += (1 - c.weight) * toBottom
                            bottom[c.upper] += c.weight * toBottom
                        }
                    }
                }
            }
        }
    }
}
