import Foundation

/// Prints a bench's results on one rank: an aligned table, or one JSON object per row
/// (`{"bench", "case", "value", "unit", …columns}`) when `json` is set.
final class BenchTable {
    /// A column: its table header and its JSON key.
    struct Column {
        var header: String
        var key: String
    }

    private let bench: String
    private let json: Bool
    private let isPrinter: Bool
    private let labelled: Bool
    private let columns: [Column]

    /// `labelled` tables print each row's case name as their first column.
    init(bench: String, json: Bool, isPrinter: Bool, labelled: Bool = false, title: String, columns: [Column]) {
        (self.bench, self.json, self.isPrinter, self.labelled, self.columns) = (bench, json, isPrinter, labelled, columns)
        guard isPrinter, !json else { return }
        print("# \(bench): \(title)")
        print(((labelled ? [Self.label("case")] : []) + columns.map { Self.pad($0.header) }).joined(separator: " "))
    }

    /// A remark under the header (tables only).
    func note(_ text: String) {
        if isPrinter && !json { print("# \(text)") }
    }

    /// One measurement: `values` fill the columns (numbers or text); `value`/`unit` are the
    /// headline figure.
    func row(case name: String, values: [Any], value: Double, unit: String) {
        guard isPrinter else { return }
        if json {
            // JSON has no NaN or infinity: a figure that is not a number is written as null.
            func jsonValue(_ v: Any) -> Any { (v as? Double).map { $0.isFinite ? $0 as Any : NSNull() } ?? v }
            var object: [String: Any] = ["bench": bench, "case": name, "value": jsonValue(value), "unit": unit]
            for (column, v) in zip(columns, values) { object[column.key] = jsonValue(v) }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(((labelled ? [Self.label(name)] : []) + values.map { Self.pad(Self.format($0)) }).joined(separator: " "))
        }
        fflush(nil)
    }

    private static func pad(_ text: String) -> String {
        String(repeating: " ", count: max(0, 12 - text.count)) + text
    }

    private static func label(_ text: String) -> String {
        text + String(repeating: " ", count: max(0, 40 - text.count))
    }

    private static func format(_ value: Any) -> String {
        guard let x = value as? Double else { return "\(value)" }
        return x >= 100 ? String(format: "%.1f", x) : String(format: "%.3f", x)
    }
}

/// The median wall time in seconds of `repeats` runs (at least one) of `body`, after one warm-up
/// run when `warmUp`.
func medianSeconds(repeats: Int, warmUp: Bool = false, _ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    if warmUp { try body() }
    var times = [Double]()
    for _ in 0..<max(1, repeats) {
        let start = clock.now
        try body()
        times.append((clock.now - start).seconds)
    }
    return times.sorted()[times.count / 2]
}
