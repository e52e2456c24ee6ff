import CMPI

/// The scalar types collectives carry. Public API never exposes MPI's own datatype handles.
public enum ScalarKind: Sendable {
    case float32, float64, int32, int64

    var mpiType: MPI_Datatype {
        switch self {
        case .float32: cmpi_type_float()
        case .float64: cmpi_type_double()
        case .int32: cmpi_type_int32()
        case .int64: cmpi_type_int64()
        }
    }
}

/// A scalar that can be reduced across ranks: `Float`, `Double`, `Int32`, `Int64`.
public protocol CollectiveElement: Numeric, Comparable, Sendable {
    static var scalarKind: ScalarKind { get }
    /// The mean of `count` contributions whose sum is `sum`. Integers round toward zero.
    static func mean(ofSum sum: Self, count: Int) -> Self
}

extension Float: CollectiveElement {
    public static var scalarKind: ScalarKind { .float32 }
    public static func mean(ofSum sum: Float, count: Int) -> Float { sum / Float(count) }
}

extension Double: CollectiveElement {
    public static var scalarKind: ScalarKind { .float64 }
    public static func mean(ofSum sum: Double, count: Int) -> Double { sum / Double(count) }
}

extension Int32: CollectiveElement {
    public static var scalarKind: ScalarKind { .int32 }
    public static func mean(ofSum sum: Int32, count: Int) -> Int32 { sum / Int32(count) }
}

extension Int64: CollectiveElement {
    public static var scalarKind: ScalarKind { .int64 }
    public static func mean(ofSum sum: Int64, count: Int) -> Int64 { sum / Int64(count) }
}

/// How a reduction combines the ranks' values element by element.
public enum ReduceOp: String, CaseIterable, Sendable {
    case sum, max, min
    /// The sum divided by the number of ranks (computed as a sum, divided after it completes).
    case average

    var mpiOp: MPI_Op {
        switch self {
        case .sum, .average: cmpi_op_sum()
        case .max: cmpi_op_max()
        case .min: cmpi_op_min()
        }
    }
}

extension UnsafeMutableBufferPointer where Element: CollectiveElement {
    /// Finishes an `.average` reduction: divides the summed elements by `ranks`.
    func divideSums(byRanks ranks: Int) {
        for i in indices { self[i] = Element.mean(ofSum: self[i], count: ranks) }
    }
}
