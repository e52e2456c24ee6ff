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
public protocol TensorScalar: Real, BinaryFloatingPoint, Sendable {
    static var dtype: DType { get }
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
}
