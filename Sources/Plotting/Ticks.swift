import Foundation

/// Axis ranges, tick positions at "nice" steps, and their labels.
///
/// Steps are 1, 2 or 5 × 10^k (Heckbert, "Nice numbers for graph labels", Graphics Gems, 1990):
/// the step nearest span / (target − 1) in that series, and the ticks are the step's multiples
/// inside the range. Non-finite inputs never crash: they give no ticks, or are skipped.
public enum Ticks {
    /// The nice step for about `target` ticks over `span` (> 0 and finite; else 0).
    public static func step(span: Double, target: Int) -> Double {
        guard span.isFinite, span > 0 else { return 0 }
        let raw = span / Double(max(target - 1, 1)), exponent = (log10(raw)).rounded(.down)
        let power = pow(10, exponent), fraction = raw / power
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        return nice * power
    }

    /// About `target` ticks at a nice step, every one inside `low…high` (ends included). A range
    /// of one value gives that value; a reversed or non-finite range gives none.
    public static func linear(_ low: Double, _ high: Double, target: Int = 5) -> [Double] {
        guard low.isFinite, high.isFinite, low <= high else { return [] }
        if low == high { return [low] }
        var span = high - low, halved = false
        if !span.isFinite { (span, halved) = (high / 2 - low / 2, true) }  // both near ±max: halve, then double the step
        var step = self.step(span: span, target: target)
        if halved { step *= 2 }
        guard step > 0, step.isFinite else { return [low, high] }
        // Multiples i × step, computed as i × mantissa / 10^−k so that 0.1-steps print exactly.
        let exponent = log10(step).rounded(.down), mantissa = (step / pow(10, exponent)).rounded()
        func value(_ i: Double) -> Double {
            exponent < 0 ? i * mantissa / pow(10, -exponent) : i * mantissa * pow(10, exponent)
        }
        // A hair of tolerance: 0.3 / 0.1 is 2.9999999999999996, and 0.3 belongs on a 0…0.3 axis.
        let first = (low / step - 1e-9).rounded(.up), last = (high / step + 1e-9).rounded(.down)
        // A range narrower than the doubles' spacing at its magnitude has no distinct multiples.
        guard last - first < 1000, abs(first) < 1e15 else { return [low, high] }
        var ticks = [Double]()
        var i = first
        while i <= last {
            let tick = value(i)
            if tick >= low - step * 1e-9 && tick <= high + step * 1e-9 { ticks.append(tick == 0 ? 0 : tick) }
            i += 1
        }
        return ticks
    }

    /// Ticks for a logarithmic axis over `low…high` (both > 0): powers of ten, thinned to about
    /// `target`; with fewer than two decades inside, 1, 2 and 5 × 10^k; with fewer than two of
    /// those, linear ticks.
    public static func logarithmic(_ low: Double, _ high: Double, target: Int = 6) -> [Double] {
        guard low.isFinite, high.isFinite, low > 0, low <= high else { return [] }
        let a = log10(low).rounded(.up), b = log10(high).rounded(.down)
        if b - a >= 1 {
            let every = max(((b - a + 1) / Double(max(target, 2))).rounded(.up), 1)
            return stride(from: a, through: b, by: every).map { pow(10, $0) }
        }
        var ticks = [Double]()
        for k in stride(from: log10(low).rounded(.down), through: log10(high).rounded(.up), by: 1) {
            for m in [1.0, 2, 5] {
                let tick = k < 0 ? m / pow(10, -k) : m * pow(10, k)
                if tick >= low * (1 - 1e-12) && tick <= high * (1 + 1e-12) { ticks.append(tick) }
            }
        }
        return ticks.count >= 2 ? ticks : linear(low, high, target: target)
    }

    /// The range an axis shows for `values`: their finite minimum and maximum, widened by
    /// `padding` × span on each side so that markers at the extremes are drawn whole. One value
    /// v gets v ± 10 % (± 1 for zero); no finite value gives 0…1.
    public static func paddedRange(_ values: [Double], padding: Double = 0.05) -> ClosedRange<Double> {
        var low = Double.infinity, high = -Double.infinity
        for value in values where value.isFinite { (low, high) = (min(low, value), max(high, value)) }
        guard low <= high else { return 0...1 }
        let limit = Double.greatestFiniteMagnitude
        if low == high {
            let delta = low == 0 ? 1 : abs(low) * 0.1
            return max(low - delta, -limit)...min(high + delta, limit)
        }
        // Half the span cannot overflow; a padding that is negative or not finite counts as none.
        let pad = (high / 2 - low / 2) * (padding.isFinite ? 2 * max(padding, 0) : 0)
        return max(low - pad, -limit)...min(high + pad, limit)
    }

    /// Labels for `ticks`: the fewest decimals that show every tick exactly (the same for all,
    /// unless `perTick`), "×10ⁿ" notation below 0.001 or from 10⁶ on, and a true minus sign.
    public static func labels(_ ticks: [Double], perTick: Bool = false) -> [String] {
        let largest = ticks.lazy.filter(\.isFinite).map(abs).max() ?? 0
        if largest >= 1e6 || (largest > 0 && largest < 1e-3) { return ticks.map(scientific) }
        let decimals = ticks.map(decimalsNeeded)
        let shared = decimals.max() ?? 0
        return zip(ticks, decimals).map { tick, own in plain(tick, decimals: perTick ? own : shared) }
    }

    private static func decimalsNeeded(_ value: Double) -> Int {
        guard value.isFinite else { return 0 }
        for decimals in 0...6 {
            let scale = pow(10, Double(decimals))
            if abs((value * scale).rounded() / scale - value) <= 1e-9 * max(1, abs(value)) { return decimals }
        }
        return 6
    }

    private static func plain(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        let text = String(format: "%.\(decimals)f", value)
        return text.hasPrefix("-") ? (Double(text) == 0 ? String(text.dropFirst()) : "−" + text.dropFirst()) : text
    }

    private static func scientific(_ value: Double) -> String {
        guard value.isFinite, value != 0 else { return value == 0 ? "0" : "\(value)" }
        var exponent = log10(abs(value)).rounded(.down)
        var mantissa = value / pow(10, exponent)
        if abs(mantissa) >= 9.9999995 { (mantissa, exponent) = (mantissa / 10, exponent + 1) }
        let power = "10" + superscript(Int(exponent))
        let digits = String(format: "%.6g", abs(mantissa))
        let sign = value < 0 ? "−" : ""
        return digits == "1" ? sign + power : sign + digits + "×" + power
    }

    private static func superscript(_ n: Int) -> String {
        let digits: [Character] = ["⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"]
        return (n < 0 ? "⁻" : "") + String(String(abs(n)).compactMap { $0.wholeNumberValue.map { digits[$0] } })
    }
}
