import Foundation

/// XXH64 with seed 0 (xxHash, Collet), streaming: the checksum of checkpoint files (what
/// `xxhsum -H64` prints) and the content checksum of a zstd frame, whose low 32 bits close every
/// frame (RFC 8878 §3.1.1). Several GB/s, so hashing never holds a save back.
struct XXH64 {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F,
                       p3: UInt64 = 0x1656_67B1_9E37_79F9, p4: UInt64 = 0x85EB_CA77_C2B2_AE63,
                       p5: UInt64 = 0x27D4_EB2F_1656_67C5

    private var lanes = (p1 &+ p2, p2, UInt64(0), 0 &- p1)
    /// Bytes not yet hashed: fewer than a 32-byte stripe.
    private var pending = [UInt8]()
    private var total = 0

    init() { pending.reserveCapacity(32) }

    /// The hash of `bytes` alone.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash = XXH64()
        hash.update(bytes)
        return hash.finalize()
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        total += bytes.count
        var rest = bytes
        if !pending.isEmpty {
            let taken = min(32 - pending.count, rest.count)
            pending += rest.prefix(taken)
            rest = UnsafeRawBufferPointer(rebasing: rest[taken...])
            guard pending.count == 32 else { return }
            pending.withUnsafeBytes { consumeStripes($0) }
            pending.removeAll(keepingCapacity: true)
        }
        let whole = rest.count / 32 * 32
        consumeStripes(UnsafeRawBufferPointer(rebasing: rest[..<whole]))
        pending += rest[whole...]
    }

    /// The hash of everything passed to `update`; the canonical text is its 16 hex digits.
    func finalize() -> UInt64 {
        var h: UInt64
        if total >= 32 {
            let (v1, v2, v3, v4) = lanes
            h = Self.rotate(v1, 1) &+ Self.rotate(v2, 7) &+ Self.rotate(v3, 12) &+ Self.rotate(v4, 18)
            for v in [v1, v2, v3, v4] { h = (h ^ Self.round(0, v)) &* Self.p1 &+ Self.p4 }
        } else {
            h = Self.p5
        }
        h &+= UInt64(total)
        pending.withUnsafeBytes { tail in
            var offset = 0
            while offset + 8 <= tail.count {
                h = Self.rotate(h ^ Self.round(0, Self.word(tail.baseAddress!, offset)), 27) &* Self.p1 &+ Self.p4
                offset += 8
            }
            if offset + 4 <= tail.count {
                let word = UInt64(UInt32(littleEndian: tail.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                h = Self.rotate(h ^ word &* Self.p1, 23) &* Self.p2 &+ Self.p3
                offset += 4
            }
            for byte in tail[offset...] { h = Self.rotate(h ^ UInt64(byte) &* Self.p5, 11) &* Self.p1 }
        }
        h ^= h >> 33; h &*= Self.p2
        h ^= h >> 29; h &*= Self.p3
        return h ^ h >> 32
    }

    /// Hashes whole 32-byte stripes (`bytes.count` is a multiple of 32).
    private mutating func consumeStripes(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var (v1, v2, v3, v4) = lanes
        for offset in stride(from: 0, to: bytes.count, by: 32) {
            v1 = Self.round(v1, Self.word(base, offset)); v2 = Self.round(v2, Self.word(base, offset + 8))
            v3 = Self.round(v3, Self.word(base, offset + 16)); v4 = Self.round(v4, Self.word(base, offset + 24))
        }
        lanes = (v1, v2, v3, v4)
    }

    @inline(__always) private static func word(_ base: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always) private static func rotate(_ x: UInt64, _ r: UInt64) -> UInt64 { x << r | x >> (64 - r) }

    @inline(__always) private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotate(accumulator &+ input &* p2, 31) &* p1
    }
}

extension UInt64 {
    /// 16 hex digits, most significant first (xxHash's canonical form).
    var canonicalHex: String { String(format: "%016llx", self) }
}
