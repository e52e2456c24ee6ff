import Foundation

/// One axis of a chart: the range it shows (in its scale's coordinates: log₁₀ of the value on a
/// log axis), its ticks and their labels, and the map from values to a fraction of its length.
struct Axis {
    let low: Double, high: Double
    let log: Bool
    let ticks: [Double]
    let labels: [String]

    /// An axis showing `values` (or `range`, when given), padded; about `target` ticks.
    init(values: [Double], range: ClosedRange<Double>?, log: Bool, target: Int) {
        self.log = log
        let shown = range.map { [$0.lowerBound, $0.upperBound] } ?? values
        let scaled = Ticks.paddedRange(log ? shown.compactMap { $0 > 0 ? log10($0) : nil } : shown)
        (low, high) = (scaled.lowerBound, scaled.upperBound)
        if log {
            ticks = Ticks.logarithmic(pow(10, low), pow(10, high), target: target)
            labels = Ticks.labels(ticks, perTick: true)
        } else {
            ticks = Ticks.linear(low, high, target: target)
            labels = Ticks.labels(ticks)
        }
    }

    /// Where `value` lies along the axis (0 at `low`, 1 at `high`); nil for values the axis
    /// cannot show (non-finite; ≤ 0 on a log axis). Values far outside an explicit range are
    /// held within 1000 axis lengths, so their page positions stay finite and within cairo's
    /// fixed-point range, and lines towards them keep their slope to well under a pixel.
    func fraction(_ value: Double) -> Double? {
        guard value.isFinite, !log || value > 0 else { return nil }
        let v = log ? log10(value) : value
        // Halves, so that a span near the largest double cannot overflow.
        let span = high / 2 - low / 2
        return span > 0 ? min(max((v / 2 - low / 2) / span, -1000), 1000) : 0.5
    }
}
