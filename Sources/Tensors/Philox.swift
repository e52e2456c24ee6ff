import RealModule

/// Philox 4×32-10 (Salmon et al., SC'11): a counter-based generator. Each (key, counter) pair
/// maps to four independent 32-bit words, so any sample's randomness can be recomputed from its
/// coordinates alone — nothing rank-specific to save or restore (DESIGN §5).
public struct Philox: Sendable {
    public let key: (UInt32, UInt32)

    public init(seed: UInt64) { key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)) }

    /// The four words for `counter`.
    @inlinable
    public func block(_ counter: (UInt32, UInt32, UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0), p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            (c0, c1, c2, c3) = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0, UInt32(truncatingIfNeeded: p1),
                                UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1, UInt32(truncatingIfNeeded: p0))
            k0 &+= 0x9E37_79B9
            k1 &+= 0xBB67_AE85
        }
        return (c0, c1, c2, c3)
    }
}

/// Where a random draw belongs: the run's seed, a stream (what the randomness is for: dropout,
/// noise, initialisation, …), the step, and the global sample index. The same key always gives
/// the same numbers, on any rank and any number of workers.
public struct RandomKey: Sendable, Hashable {
    public var seed: UInt64
    public var stream: UInt32
    public var step: UInt32
    public var sample: UInt32

    public init(seed: UInt64, stream: UInt32, step: UInt32 = 0, sample: UInt32 = 0) {
        (self.seed, self.stream, self.step, self.sample) = (seed, stream, step, sample)
    }

    /// `count` uniform numbers in [0, 1) (24-bit resolution for Float, 32 for Double).
    public func uniform(_ count: Int) -> [Double] {
        let philox = Philox(seed: seed)
        var out = [Double]()
        out.reserveCapacity(count + 3)
        var block: UInt32 = 0
        while out.count < count {
            let (a, b, c, d) = philox.block((block, sample, step, stream))
            for word in [a, b, c, d] { out.append(Double(word) * 0x1p-32) }
            block += 1
        }
        return Array(out.prefix(count))
    }

    /// `count` standard normal numbers (Box–Muller on pairs of uniforms).
    public func normal(_ count: Int) -> [Double] {
        let u = uniform(count + count % 2)
        var out = [Double]()
        out.reserveCapacity(u.count)
        for i in stride(from: 0, to: u.count, by: 2) {
            let r = (-2 * Double.log(1 - u[i])).squareRoot(), theta = 2 * Double.pi * u[i + 1]
            out.append(r * Double.cos(theta))
            out.append(r * Double.sin(theta))
        }
        return Array(out.prefix(count))
    }
}
