import Autograd
import NN
import Tensors

/// An MLP from a normalised RNA profile to class logits (e.g. cancer type): the runtime's
/// proving task, and a baseline for what the RNA alone says about a tumour.
/// Each hidden layer is Linear → LayerNorm → GELU → Dropout.
public final class ExpressionClassifier: Module {
    public struct Config: Codable, Sendable, Equatable {
        public var hidden = [256, 64]
        public var dropout = 0.1

        public init(hidden: [Int] = [256, 64], dropout: Double = 0.1) { (self.hidden, self.dropout) = (hidden, dropout) }

        /// Problems with the sizes, each naming its key.
        public func problems() -> [String] {
            (!hidden.isEmpty && hidden.allSatisfy { (1...maxWidth).contains($0) } ? [] : ["hidden: one or more layer widths, each in 1…\(maxWidth), got \(hidden)"])
                + ((0..<1).contains(dropout) ? [] : ["dropout: must be in [0, 1), got \(dropout)"])
        }
    }

    private let layers: [(Linear, LayerNorm)]
    private let output: Linear
    private let dropout: Dropout

    /// Declares the parameters in `arena` (sealed by the caller), named `<prefix>hidden{i}`,
    /// `<prefix>norm{i}` and `<prefix>output`.
    public init(_ arena: ParameterArena, config: Config, genes: Int, classes: Int, prefix: String = "") {
        var width = genes
        var layers = [(Linear, LayerNorm)]()
        for (i, next) in config.hidden.enumerated() {
            layers.append((Linear(arena, "\(prefix)hidden\(i)", width, next), LayerNorm(arena, "\(prefix)norm\(i)", next)))
            width = next
        }
        self.layers = layers
        output = Linear(arena, "\(prefix)output", width, classes)
        dropout = Dropout(config.dropout)
    }

    public var children: [any Module] { layers.flatMap { [$0.0, $0.1] as [any Module] } + [output, dropout] }

    /// Logits [rows × classes] for `expression` [rows × genes]; `key` seeds dropout.
    public func callAsFunction(_ expression: Variable, key: RandomKey) -> Variable {
        var x = expression
        for (index, (linear, norm)) in layers.enumerated() {
            var layerKey = key
            layerKey.sample &+= UInt32(truncatingIfNeeded: index) << 24
            x = dropout(norm(linear(x)).gelu(), key: layerKey)
        }
        return output(x)
    }
}
