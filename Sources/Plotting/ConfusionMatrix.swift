import Foundation

/// A classifier's confusion matrix: a row per true class, a column per predicted class, each
/// cell printed with its count and coloured by its share of the row (viridis, 0 … 1), so the
/// errors of a rare class show as plainly as a common one's. A class with no samples is a grey
/// row. Drawn as a `HeatMap`; counts are printed while the cells are large enough for them.
public struct ConfusionMatrix: Sendable {
    public var title: String
    public var classNames: [String]
    /// counts[true class][predicted class]
    public var counts: [[Int]]
    public var width: Double
    public var height: Double

    public init(title: String, classNames: [String], counts: [[Int]], width: Double = 700, height: Double = 600) {
        (self.title, self.classNames, self.counts, self.width, self.height) = (title, classNames, counts, width, height)
    }

    /// The counts of pairs (`truth[i]`, `predicted[i]`) of class indices; a pair with an index
    /// outside `classNames` is left out, as are the extra entries of the longer list.
    public init(title: String, classNames: [String], truth: [Int], predicted: [Int], width: Double = 700, height: Double = 600) {
        let classes = classNames.indices
        var counts = Array(repeating: Array(repeating: 0, count: classNames.count), count: classNames.count)
        for (t, p) in zip(truth, predicted) where classes.contains(t) && classes.contains(p) { counts[t][p] += 1 }
        self.init(title: title, classNames: classNames, counts: counts, width: width, height: height)
    }

    /// Writes `base.png` and `base.svg` (see `PlotFiles`); throws `PlotError`.
    @discardableResult
    public func write(to base: URL, scale: Double = 2) throws -> PlotFiles { try heatMap.write(to: base, scale: scale) }

    var heatMap: HeatMap {
        let shares = counts.map { row in
            let total = row.reduce(0.0) { $0 + Double($1) }
            return row.map { total > 0 ? Double($0) / total : .nan }
        }
        var map = HeatMap(title: title, values: shares, rowLabels: classNames, columnLabels: classNames,
                          xLabel: "predicted", yLabel: "true", valueLabel: "share of the true class", width: width, height: height)
        map.range = 0...1
        map.cellLabels = counts.map { $0.map(String.init) }
        return map
    }
}
