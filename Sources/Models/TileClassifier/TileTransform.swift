import Tensors

/// One of the eight symmetries of a square tile (the dihedral group D₄): the augmentation of
/// tiles, whose orientation on the slide means nothing. A transformed tile O of side S takes
/// each pixel from the original I at `source`:
///
/// | transform | O[r][c] = |
/// |---|---|
/// | `identity` | I[r][c] |
/// | `rotate90` (counter-clockwise) | I[c][S−1−r] |
/// | `rotate180` | I[S−1−r][S−1−c] |
/// | `rotate270` | I[S−1−c][r] |
/// | `flipHorizontal` (left ↔ right) | I[r][S−1−c] |
/// | `flipVertical` (top ↔ bottom) | I[S−1−r][c] |
/// | `transpose` (about the main diagonal) | I[c][r] |
/// | `antiTranspose` (about the other diagonal) | I[S−1−c][S−1−r] |
public enum TileTransform: Int, CaseIterable, Sendable {
    case identity, rotate90, rotate180, rotate270, flipHorizontal, flipVertical, transpose, antiTranspose

    /// The pixel of the original tile of side `size` that lands at (`row`, `column`).
    @inlinable
    public func source(row r: Int, column c: Int, size: Int) -> (row: Int, column: Int) {
        let last = size - 1
        switch self {
        case .identity: return (r, c)
        case .rotate90: return (c, last - r)
        case .rotate180: return (last - r, last - c)
        case .rotate270: return (last - c, r)
        case .flipHorizontal: return (r, last - c)
        case .flipVertical: return (last - r, c)
        case .transpose: return (c, r)
        case .antiTranspose: return (last - c, last - r)
        }
    }

    /// The transform `key` draws (stream `augmentation`), each of the eight equally likely.
    public static func random(_ key: RandomKey) -> TileTransform {
        var key = key
        key.stream = RandomStream.augmentation
        return allCases[min(Int(key.uniform(1)[0] * 8), 7)]
    }

    /// One transform per sample of a micro-batch whose first sample is `key.sample`: sample i's
    /// is drawn from `key.sample + i`, so a sample's transform does not depend on how the global
    /// batch was cut into micro-batches.
    public static func random(count: Int, key: RandomKey) -> [TileTransform] {
        (0..<count).map { i in
            var sampleKey = key
            sampleKey.sample &+= UInt32(truncatingIfNeeded: i)
            return random(sampleKey)
        }
    }
}
