import Tensors

/// What a classifier's logits say.
enum Classification {
    /// The class of each row of `logits` [rows × classes] (the first of equal scores).
    static func predictions(_ logits: Tensor) -> [Int] {
        let values = logits.floats, classes = logits.shape.last ?? 1
        return (0..<(values.count / max(classes, 1))).map { row in
            let scores = values[(row * classes)..<((row + 1) * classes)]
            return (scores.indices.max { scores[$0] < scores[$1] } ?? row * classes) - row * classes
        }
    }

    /// The share of the commonest label: what always guessing it would score.
    static func chance(_ labels: [Int]) -> Double {
        Double(Dictionary(grouping: labels, by: { $0 }).values.map(\.count).max() ?? 0) / Double(max(labels.count, 1))
    }
}
