import Foundation

/// The Fréchet distance between two sets of feature vectors, each summarised as a Gaussian
/// (Heusel et al. 2017's FID, in whatever feature space is given):
///   d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½,
/// with unbiased covariances. Symmetric square roots come from a cyclic Jacobi eigensolver,
/// written here because the feature spaces are small (tens of dimensions) and exactness matters
/// more than speed; negative eigenvalues from rounding are taken as 0.
public enum FrechetDistance {
    /// d² between `a` [n × dimension] and `b` [m × dimension]; n, m ≥ 2.
    public static func squared(_ a: [Float], _ b: [Float], dimension d: Int) -> Double {
        let (meanA, covarianceA) = moments(a, d), (meanB, covarianceB) = moments(b, d)
        let rootA = symmetricSquareRoot(covarianceA, d)
        let inner = symmetricSquareRoot(multiply(multiply(rootA, covarianceB, d), rootA, d), d)
        var distance = zip(meanA, meanB).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        for i in 0..<d { distance += covarianceA[i * d + i] + covarianceB[i * d + i] - 2 * inner[i * d + i] }
        return max(0, distance)
    }

    /// The mean and unbiased covariance [d × d] of rows of `x`.
    static func moments(_ x: [Float], _ d: Int) -> (mean: [Double], covariance: [Double]) {
        let n = x.count / d
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i * d + j]) } }
        mean = mean.map { $0 / Double(n) }
        var covariance = [Double](repeating: 0, count: d * d)
        var centred = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for j in 0..<d { centred[j] = Double(x[i * d + j]) - mean[j] }
            for j in 0..<d where centred[j] != 0 { for k in j..<d { covariance[j * d + k] += centred[j] * centred[k] } }
        }
        for j in 0..<d { for k in j..<d { covariance[j * d + k] /= Double(max(1, n - 1)); covariance[k * d + j] = covariance[j * d + k] } }
        return (mean, covariance)
    }

    public static func multiply(_ a: [Double], _ b: [Double], _ d: Int) -> [Double] {
        var c = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for k in 0..<d where a[i * d + k] != 0 { for j in 0..<d { c[i * d + j] += a[i * d + k] * b[k * d + j] } } }
        return c
    }

    /// V·diag(√max(λ, 0))·Vᵀ of a symmetric matrix.
    public static func symmetricSquareRoot(_ a: [Double], _ d: Int) -> [Double] {
        let (values, vectors) = symmetricEigen(a, d)
        var out = [Double](repeating: 0, count: d * d)
        for k in 0..<d {
            let root = max(values[k], 0).squareRoot()
            guard root > 0 else { continue }
            for i in 0..<d { for j in 0..<d { out[i * d + j] += vectors[i * d + k] * root * vectors[j * d + k] } }
        }
        return out
    }

    /// Eigenvalues and eigenvectors (columns of V) of a symmetric matrix by cyclic Jacobi
    /// rotations, until the off-diagonal mass is below 1e-22 of the whole.
    public static func symmetricEigen(_ matrix: [Double], _ d: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix, v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { v[i * d + i] = 1 }
        let total = a.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<d { for q in (p + 1)..<max(p + 1, d) { off += 2 * a[p * d + q] * a[p * d + q] } }
            if off <= 1e-22 * max(total, .leastNormalMagnitude) { break }
            for p in 0..<d {
                for q in (p + 1)..<max(p + 1, d) where a[p * d + q] != 0 {
                    let theta = (a[q * d + q] - a[p * d + p]) / (2 * a[p * d + q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<d {  // columns p, q
                        let (akp, akq) = (a[k * d + p], a[k * d + q])
                        a[k * d + p] = c * akp - s * akq
                        a[k * d + q] = s * akp + c * akq
                    }
                    for k in 0..<d {  // rows p, q
                        let (apk, aqk) = (a[p * d + k], a[q * d + k])
                        a[p * d + k] = c * apk - s * aqk
                        a[q * d + k] = s * apk + c * aqk
                    }
                    for k in 0..<d {
                        let (vkp, vkq) = (v[k * d + p], v[k * d + q])
                        v[k * d + p] = c * vkp - s * vkq
                        v[k * d + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<d).map { a[$0 * d + $0] }, v)
    }
}
