import Foundation

/// Figures of how well points (latents) separate classes, and how well a reconstruction follows
/// its target. Points are rows of a row-major [n × dimension] array; arithmetic is in Double.
public enum LatentMetrics {
    static func distance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
        var sum = 0.0
        for (x, y) in zip(a, b) { let d = Double(x) - Double(y); sum += d * d }
        return sum.squareRoot()
    }

    static func row(_ points: [Float], _ i: Int, _ dimension: Int) -> ArraySlice<Float> { points[(i * dimension)..<((i + 1) * dimension)] }

    /// The share of `queries` whose label is the majority label of their `k` nearest `reference`
    /// points (Euclidean); a tied vote goes to the tied label with the nearest member.
    public static func knnAccuracy(reference: [Float], referenceLabels: [Int], queries: [Float], queryLabels: [Int],
                                   dimension: Int, k: Int = 5) -> Double {
        guard !queryLabels.isEmpty, !referenceLabels.isEmpty else { return .nan }
        var correct = 0
        for q in queryLabels.indices {
            let query = row(queries, q, dimension)
            let nearest = referenceLabels.indices.map { (distance: distance(query, row(reference, $0, dimension)), label: referenceLabels[$0]) }
                .sorted { $0.distance < $1.distance }.prefix(k)
            var votes = [Int: Int]()
            for neighbour in nearest { votes[neighbour.label, default: 0] += 1 }
            let top = votes.values.max()!
            let predicted = nearest.first { votes[$0.label] == top }!.label
            if predicted == queryLabels[q] { correct += 1 }
        }
        return Double(correct) / Double(queryLabels.count)
    }

    /// The mean silhouette coefficient (Euclidean): for each point, (b − a) / max(a, b) with a
    /// the mean distance to its own class and b the smallest mean distance to another class; a
    /// point alone in its class scores 0 (as scikit-learn). Needs two classes or more.
    public static func silhouette(_ points: [Float], labels: [Int], dimension: Int) -> Double {
        let classes = Set(labels)
        guard classes.count >= 2 else { return .nan }
        var sizes = [Int: Int]()
        for label in labels { sizes[label, default: 0] += 1 }
        var total = 0.0
        for i in labels.indices {
            var sums = [Int: Double]()
            for j in labels.indices where j != i { sums[labels[j], default: 0] += distance(row(points, i, dimension), row(points, j, dimension)) }
            let own = sizes[labels[i]]! - 1
            guard own > 0 else { continue }
            let a = (sums[labels[i]] ?? 0) / Double(own)
            let b = classes.filter { $0 != labels[i] }.map { (sums[$0] ?? 0) / Double(sizes[$0]!) }.min()!
            total += max(a, b) > 0 ? (b - a) / max(a, b) : 0
        }
        return total / Double(labels.count)
    }

    /// The scores of the points on their first `count` principal components [n][count], and the
    /// share of the total variance each explains. Power iteration with deflation on the
    /// covariance; each component's sign makes its largest loading positive (deterministic).
    public static func principalComponents(_ points: [Float], dimension d: Int, count: Int = 2) -> (scores: [[Double]], explained: [Double]) {
        let n = points.count / d
        guard n > 1 else { return (Array(repeating: Array(repeating: 0, count: count), count: n), Array(repeating: .nan, count: count)) }
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(points[i * d + j]) / Double(n) } }
        var covariance = [Double](repeating: 0, count: d * d)
        for i in 0..<n {
            let centred = (0..<d).map { Double(points[i * d + $0]) - mean[$0] }
            for a in 0..<d where centred[a] != 0 { for b in 0..<d { covariance[a * d + b] += centred[a] * centred[b] / Double(n - 1) } }
        }
        let totalVariance = (0..<d).map { covariance[$0 * d + $0] }.reduce(0, +)
        var components = [[Double]](), explained = [Double]()
        for c in 0..<min(count, d) {
            var v = (0..<d).map { 1 + Double(($0 * 7919 + c * 104_729) % 97) / 97 }  // a fixed start, not orthogonal to much
            var eigenvalue = 0.0
            for _ in 0..<1000 {
                var w = [Double](repeating: 0, count: d)
                for a in 0..<d { for b in 0..<d { w[a] += covariance[a * d + b] * v[b] } }
                let norm = w.map { $0 * $0 }.reduce(0, +).squareRoot()
                guard norm > 0 else { break }
                let next = w.map { $0 / norm }
                let change = zip(next, v).map { abs($0 - $1) }.max()!
                (v, eigenvalue) = (next, norm)
                if change < 1e-12 { break }
            }
            if let largest = v.indices.max(by: { abs(v[$0]) < abs(v[$1]) }), v[largest] < 0 { v = v.map { -$0 } }
            for a in 0..<d { for b in 0..<d { covariance[a * d + b] -= eigenvalue * v[a] * v[b] } }
            components.append(v)
            explained.append(totalVariance > 0 ? eigenvalue / totalVariance : .nan)
        }
        let scores = (0..<n).map { i in components.map { v in (0..<d).map { (Double(points[i * d + $0]) - mean[$0]) * v[$0] }.reduce(0, +) } }
        return (scores, explained)
    }

    /// Pearson's r between column j of `a` and column j of `b` (both [n × columns]), for every
    /// column; nan where either column is constant.
    public static func columnCorrelations(_ a: [Float], _ b: [Float], columns: Int) -> [Double] {
        let n = a.count / columns
        return (0..<columns).map { j in
            var (sa, sb, saa, sbb, sab) = (0.0, 0.0, 0.0, 0.0, 0.0)
            for i in 0..<n {
                let x = Double(a[i * columns + j]), y = Double(b[i * columns + j])
                sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y
            }
            let count = Double(n)
            let covariance = sab - sa * sb / count, va = saa - sa * sa / count, vb = sbb - sb * sb / count
            return va > 1e-12 && vb > 1e-12 ? covariance / (va * vb).squareRoot() : .nan
        }
    }
}
