import Tensors

/// How tile bytes become a `TileClassifier`'s input: x = (byte/255 − mean_c)/std_c per RGB
/// channel c, with the channel statistics of the training split's tiles (stored in the run plan,
/// so evaluation scales new tiles exactly as training did). Cohorts hold tiles as bytes
/// [count, S, S, 3], channels last; the network takes [count, 3, S, S].
public struct TileNormalizer: Codable, Sendable, Equatable {
    /// Per channel (R, G, B), of byte/255.
    public var mean: [Double]
    public var std: [Double]

    /// Callers pass three of each (the measuring init below; tests).
    public init(mean: [Double], std: [Double]) {
        precondition(mean.count == 3 && std.count == 3, "a TileNormalizer has 3 channels, got \(mean.count) means and \(std.count) deviations")
        (self.mean, self.std) = (mean, std)
    }

    enum CodingKeys: String, CodingKey { case mean, std }

    /// A run plan is a file: three finite means and positive deviations, or a decoding error.
    public init(from decoder: Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        let mean = try values.decode([Double].self, forKey: .mean), std = try values.decode([Double].self, forKey: .std)
        guard mean.count == 3, std.count == 3, mean.allSatisfy(\.isFinite), std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw DecodingError.dataCorruptedError(forKey: .mean, in: values,
                                                   debugDescription: "a tile normaliser needs 3 finite means and 3 positive deviations (R, G, B), got \(mean) and \(std)")
        }
        self.init(mean: mean, std: std)
    }

    /// The mean and (population) standard deviation of byte/255 per channel over every pixel of
    /// `batches`, each [tiles × S × S × 3] bytes. A constant channel gets std 1; no pixels at
    /// all give mean 0.5, std 0.25.
    public init(measuring batches: some Sequence<[UInt8]>) {
        var count = 0, sums = [Double](repeating: 0, count: 3), squares = [Double](repeating: 0, count: 3)
        for pixels in batches {
            let rgb = pixels.count / 3
            for c in 0..<3 {
                var sum: UInt64 = 0, square: UInt64 = 0
                for i in stride(from: c, to: 3 * rgb, by: 3) {
                    let byte = UInt64(pixels[i])
                    sum &+= byte
                    square &+= byte * byte
                }
                (sums[c], squares[c]) = (sums[c] + Double(sum), squares[c] + Double(square))
            }
            count += rgb
        }
        guard count > 0 else {
            self.init(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
            return
        }
        let mean = sums.map { $0 / Double(count) / 255 }
        let std = (0..<3).map { c in
            let variance = max(squares[c] / Double(count) / (255 * 255) - mean[c] * mean[c], 0)
            return variance > 1e-12 ? variance.squareRoot() : 1
        }
        self.init(mean: mean, std: std)
    }

    /// `pixels` [count × size × size × 3] → [count, 3, size, size], each tile i turned by
    /// `transforms[i]` when given (augmentation, one pass with the scaling).
    public func tensor(_ pixels: ArraySlice<UInt8>, size: Int, transforms: [TileTransform]? = nil, dtype: DType = .float32) -> Tensor {
        let plane = size * size, count = pixels.count / (3 * max(plane, 1))
        // `size` is the cohort's tile size, which the tile tasks check against the run's
        // (evaluate on another cohort); the transforms are drawn one per tile of these pixels.
        precondition(size > 0 && pixels.count == count * 3 * plane, "\(pixels.count) bytes are not whole RGB tiles of \(size) × \(size)")
        precondition(transforms.map { $0.count == count } ?? true, "\(transforms?.count ?? 0) transforms for \(count) tiles")
        let out = Tensor(zeros: [count, 3, size, size], dtype: dtype)
        switch dtype {
        case .float32: fill(out.pointer(Float.self), pixels, size, count, transforms)
        case .float64: fill(out.pointer(Double.self), pixels, size, count, transforms)
        }
        return out
    }

    private func fill<T: TensorScalar>(_ out: UnsafeMutablePointer<T>, _ pixels: ArraySlice<UInt8>, _ size: Int, _ count: Int, _ transforms: [TileTransform]?) {
        let plane = size * size
        // byte → byte·scale_c + shift_c = (byte/255 − mean_c)/std_c
        let scale = std.map { T(1 / (255 * $0)) }, shift = (0..<3).map { T(-mean[$0] / std[$0]) }
        pixels.withUnsafeBufferPointer { bytes in
            guard let base = bytes.baseAddress else { return }
            for tile in 0..<count {
                let transform = transforms?[tile] ?? .identity
                let input = base + tile * 3 * plane, output = out + tile * 3 * plane
                for row in 0..<size {
                    for column in 0..<size {
                        let (r, c) = transform.source(row: row, column: column, size: size)
                        let from = input + 3 * (r * size + c), to = output + row * size + column
                        for channel in 0..<3 { to[channel * plane] = T(from[channel]) * scale[channel] + shift[channel] }
                    }
                }
            }
        }
    }
}
