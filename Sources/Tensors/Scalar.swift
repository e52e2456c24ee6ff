import COpenBLAS
import RealModule

/// The element types tensors hold. Models train in `float32`; `float64` exists so gradient checks
/// and numerically delicate reference computations can run the very same code in double precision.
public enum DType: String, Sendable, Codable {
    case float32, float64

    /// Bytes per element.
    public var byteWidth: Int { self == .float32 ? 4 : 8 }
}

/// A tensor element: `Float` or `Double`, with its BLAS matrix product.
public protocol TensorScalar: Real, BinaryFloatingPoint, SIMDScalar, Sendable, Codable {
    static var dtype: DType { get }
    /// eˣ for elementwise kernels. Float uses a branch-free polynomial that the compiler can
    /// vectorise (relative error < 3·10⁻⁷, saturating below −87.3 and above 88.3, NaN kept); Double uses libm.
    static func fastExp(_ x: Self) -> Self
    /// tanh x for elementwise kernels: Float builds it on `fastExp` (branch-free, relative error
    /// < 1·10⁻⁶); Double uses libm.
    static func fastTanh(_ x: Self) -> Self
    /// C ← α·op(A)·op(B) + β·C, row-major (cblas_?gemm).
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

@inlinable
func cblasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: TensorScalar {
    public static var dtype: DType { .float32 }

    /// Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, then a degree-6 Taylor polynomial for eʳ
    /// and 2ⁿ built in the exponent bits. Adding 1.5·2²³ rounds x·log₂e to the integer n and
    /// leaves n in the low mantissa bits, so 2ⁿ comes from integer arithmetic on those bits: no
    /// float→int conversion (which would trap on NaN and keeps loops from vectorising). NaN
    /// propagates.
    @inlinable @inline(__always)
    public static func fastExp(_ x: Float) -> Float {
        let clamped: Float = x > -87.3 ? (x < 88.3 ? x : 88.3) : -87.3  // NaN → −87.3; 2ⁿ stays finite
        let shifter: Float = 12_582_912  // 1.5·2²³, bit pattern 0x4B40_0000
        let shifted = clamped * 1.442_695_04 + shifter
        let n = shifted - shifter
        let r = (clamped - n * 0.693_145_75) - n * 1.428_606_8e-6
        var p: Float = 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let twoToN = Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
        return x.isNaN ? x : p * twoToN
    }

    /// tanh|x| = (1 − e)/(1 + e) with e = e^(−2|x|), which never overflows; below |x| = 1/16,
    /// where 1 − e would cancel, the Taylor series x − x³/3 + 2x⁵/15 (next term < 10⁻⁸·|x|).
    @inlinable @inline(__always)
    public static func fastTanh(_ x: Float) -> Float {
        let a = abs(x), e = fastExp(-2 * a)
        let large = (1 - e) / (1 + e), x2 = a * a
        let small = a * (1 + x2 * (-1.0 / 3 + x2 * (2.0 / 15)))
        let magnitude = a < 0.0625 ? small : large
        return x.isNaN ? x : (x < 0 ? -magnitude : magnitude)
    }

    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB), Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double: TensorScalar {
    public static var dtype: DType { .float64 }

    @inlinable @inline(__always)
    public static func fastExp(_ x: Double) -> Double { Double.exp(x) }

    @inlinable @inline(__always)
    public static func fastTanh(_ x: Double) -> Double { Double.tanh(x) }

    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB), Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// OpenBLAS's thread count for this process.
public enum BLASThreads {
    public static var count: Int { Int(copenblas_threads()) }
    public static func set(_ n: Int) { copenblas_set_threads(Int32(n)) }

    /// Runs `body` over 0..<count split across this process's threads, each calling BLAS
    /// single-threaded (coarse-grained parallelism: many small GEMMs scale better side by side
    /// than each split across threads). `body(slot, range)` as `Parallel.forPieces`: the threads
    /// claim ranges of about count / (threads · 8) indices in turn; `slot` is below
    /// `slots(for: count)`. With one thread, or one index, BLAS keeps its own threads. `cost`,
    /// the work per index in elements, keeps small jobs on the calling thread (as
    /// `Parallel.forRanges`); by default every index is worth a thread.
    public static func splittingWork(_ count: Int, cost: Int = Parallel.grain, _ body: (_ slot: Int, Range<Int>) -> Void) {
        let threads = min(slots(for: count), max(1, count * max(cost, 1) / Parallel.grain))
        guard threads > 1 else { return body(0, 0..<count) }
        singleThreaded { Parallel.forPieces(count, pieces: threads * Parallel.piecesPerThread, threads: threads, body) }
    }

    /// Runs `body` with BLAS on one thread (the calling one), then restores the thread count.
    public static func singleThreaded<Result>(_ body: () -> Result) -> Result {
        let original = count
        guard original > 1 else { return body() }
        set(1)
        defer { set(original) }
        return body()
    }

    /// How many threads `splittingWork(count)` uses: its slots are 0..<slots(for: count).
    public static func slots(for count: Int) -> Int { max(1, min(self.count, count)) }
}
