import Foundation

/// Named figures as aligned lines ("  knn_accuracy             0.9167"), sorted by name: whole
/// numbers (counts) without decimals, others with four. The end of a run and `evaluate` print
/// their figures this way.
public func figureLines(_ figures: [String: Double], indent: String = "  ") -> [String] {
    let width = max(24, (figures.keys.map(\.count).max() ?? 0) + 1)
    return figures.sorted { $0.key < $1.key }.map { name, value in
        let text = value.isFinite && value == value.rounded() && abs(value) < 1e12 ? String(Int64(value)) : String(format: "%.4f", value)
        return indent + name.padding(toLength: width, withPad: " ", startingAt: 0) + text
    }
}
