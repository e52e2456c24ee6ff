import Foundation
import Tensors

/// Renders one H&E-like tile from cell-type fractions (tumour, lymphocyte, stroma, necrosis):
/// an eosin-pink background — fibrous where stroma dominates, pale and mottled where necrosis
/// does — with haematoxylin-purple nuclei whose number, size and shape follow the fractions:
/// large pleomorphic tumour nuclei, small dark round lymphocytes, thin spindle stromal nuclei,
/// and pale fragments of debris in necrosis.
struct TileRenderer {
    let size: Int
    let fractions: [Double]
    let draws: RandomKey

    /// RGB bytes, row-major [size, size, 3].
    func render() -> [UInt8] {
        var random = Draws(draws.uniform(4096))
        let n = size * size
        var red = [Double](repeating: 0, count: n), green = red, blue = red
        // Background: a fraction-weighted mix of tissue colours, with low-frequency mottling.
        let (tumour, lymph, stroma, necrosis) = (fractions[0], fractions[1], fractions[2], fractions[3])
        let phase = (random.next() * 6.3, random.next() * 6.3), angle = random.next() * .pi
        let (ca, sa) = (Foundation.cos(angle), Foundation.sin(angle))
        for y in 0..<size {
            for x in 0..<size {
                let (fx, fy) = (Double(x), Double(y))
                let fibres = 0.5 + 0.5 * Foundation.sin((fx * ca + fy * sa) * 0.9 + phase.0)
                let mottle = 0.5 + 0.5 * Foundation.sin(fx * 0.21 + phase.1) * Foundation.cos(fy * 0.17 + phase.0)
                let i = y * size + x
                red[i] = 238 - 18 * stroma * fibres - 6 * necrosis * mottle
                green[i] = 198 - 45 * stroma * fibres - 10 * tumour + 22 * necrosis * mottle
                blue[i] = 220 - 20 * stroma * fibres + 4 * necrosis * mottle
            }
        }
        // Nuclei, densest for lymphocytes; counts scale with the tile area (64×64 reference).
        let area = Double(n) / 4096
        let kinds: [(fraction: Double, density: Double, radius: Double, elongation: Double, colour: (Double, Double, Double), strength: Double)] = [
            (tumour, 34, 3.6, 1.4, (95, 55, 140), 0.85),
            (lymph, 70, 1.9, 1.05, (55, 30, 105), 0.95),
            (stroma, 22, 1.3, 3.5, (100, 60, 135), 0.8),
            (necrosis, 40, 0.9, 1.3, (170, 120, 175), 0.6),
        ]
        for kind in kinds {
            let count = Int((kind.fraction * kind.density * area + random.next()).rounded(.down))
            for _ in 0..<count {
                let cx = random.next() * Double(size), cy = random.next() * Double(size)
                let r = kind.radius * (0.75 + 0.5 * random.next())
                let theta = random.next() * .pi, (c, s) = (Foundation.cos(theta), Foundation.sin(theta))
                let (a, b) = (r * kind.elongation, r / kind.elongation.squareRoot())
                let reach = Int(a.rounded(.up)) + 1
                for y in max(0, Int(cy) - reach)...min(size - 1, Int(cy) + reach) {
                    for x in max(0, Int(cx) - reach)...min(size - 1, Int(cx) + reach) {
                        let (dx, dy) = (Double(x) - cx, Double(y) - cy)
                        let u = (dx * c + dy * s) / a, v = (-dx * s + dy * c) / b
                        let d = u * u + v * v
                        guard d < 1.3 else { continue }
                        let alpha = kind.strength * min(1, max(0, (1.3 - d) / 0.5))
                        let i = y * size + x
                        red[i] += alpha * (kind.colour.0 - red[i])
                        green[i] += alpha * (kind.colour.1 - green[i])
                        blue[i] += alpha * (kind.colour.2 - blue[i])
                    }
                }
            }
        }
        var pixels = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let grain = (random.next() - 0.5) * 10
            pixels[3 * i] = UInt8(clamping: Int((red[i] + grain).rounded()))
            pixels[3 * i + 1] = UInt8(clamping: Int((green[i] + grain).rounded()))
            pixels[3 * i + 2] = UInt8(clamping: Int((blue[i] + grain).rounded()))
        }
        return pixels
    }
}

/// Cycles through a block of uniform draws.
struct Draws {
    private let values: [Double]
    private var cursor = 0
    init(_ values: [Double]) { self.values = values }
    mutating func next() -> Double {
        defer { cursor = (cursor + 1) % values.count }
        return values[cursor]
    }
}
