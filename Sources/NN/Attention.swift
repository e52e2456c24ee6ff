import Autograd
import RealModule
import Tensors

/// Multi-head attention (Vaswani et al.): self-attention over x [B, T, D], or cross-attention
/// from x to a context [B, S, Dc] (e.g. an RNA latent token, for the diffusion UNet).
///   q = x·Wqᵀ, k = c·Wkᵀ, v = c·Wvᵀ, split into heads of D/heads;
///   out = softmax(q·kᵀ/√(D/heads) + mask)·v, heads joined, then ·Woᵀ + bo,
/// where the mask is 0 for keys attended to and −∞ for keys masked out. Without a mask the
/// softmax runs in blocks (`blockAttention`), so memory grows with T + S, not T·S.
public final class MultiHeadAttention: Module {
    public let heads: Int
    public let query: Linear, key: Linear, value: Linear, output: Linear

    public init(_ arena: ParameterArena, _ name: String, dim: Int, heads: Int, contextDim: Int? = nil) {
        precondition(dim % heads == 0, "attention dim \(dim) is not divisible by \(heads) heads")
        self.heads = heads
        query = Linear(arena, "\(name).query", dim, dim, bias: false)
        key = Linear(arena, "\(name).key", contextDim ?? dim, dim, bias: false)
        value = Linear(arena, "\(name).value", contextDim ?? dim, dim, bias: false)
        output = Linear(arena, "\(name).output", dim, dim)
    }

    public var children: [any Module] { [query, key, value, output] }

    /// x [B, T, D], context [B, S, Dc] (nil: self-attention, S = T) → [B, T, D].
    ///
    /// `keyMask` [B][S]: true = attend, false = masked out (e.g. padding); masked keys get zero
    /// weight. A sample with every key masked attends to nothing: its heads' output is zero, so
    /// the layer returns the output bias bo (PyTorch's `scaled_dot_product_attention` likewise).
    public func callAsFunction(_ x: Variable, context: Variable? = nil, keyMask: [[Bool]]? = nil) -> Variable {
        let c = context ?? x
        let (b, t, d) = (x.shape[0], x.shape[1], x.shape[2]), s = c.shape[1], dh = d / heads
        func split(_ y: Variable, _ length: Int) -> Variable {  // [B, L, D] → [B, H, L, dh]
            y.reshaped([b, length, heads, dh]).permuted([0, 2, 1, 3])
        }
        let q = split(query(x), t), k = split(key(c), s), v = split(value(c), s)
        let scale = 1 / Double(dh).squareRoot()
        let attended: Variable  // [B, H, T, dh]
        if let keyMask {
            let scores = q.matmul(k, transposeOther: true) * scale + Variable(Self.maskBias(keyMask, batch: b, keys: s, dtype: x.dtype))
            attended = scores.softmax().matmul(v)
        } else {  // in blocks: the [T, S] scores are never held whole (4096² per head at 64 × 64)
            attended = blockAttention(q.reshaped([b * heads, t, dh]), k.reshaped([b * heads, s, dh]), v.reshaped([b * heads, s, dh]), scale: scale)
                .reshaped([b, heads, t, dh])
        }
        return output(attended.permuted([0, 2, 1, 3]).reshaped([b, t, d]))
    }

    /// The additive mask [B, 1, 1, S]: 0 where a key is attended to, −∞ where it is masked out.
    private static func maskBias(_ keyMask: [[Bool]], batch: Int, keys: Int, dtype: DType) -> Tensor {
        // A mask is built by model code from the batch it pads, never read from input: a wrong
        // shape is a programming error.
        precondition(keyMask.count == batch && keyMask.allSatisfy { $0.count == keys },
                     "key mask must be [\(batch)][\(keys)], got [\(keyMask.count)][\(keyMask.first?.count ?? 0)…]")
        return Tensor(shape: [batch, 1, 1, keys], values: keyMask.joined().map { $0 ? 0 : -Double.infinity }, dtype: dtype)
    }
}

/// The sinusoidal embedding of diffusion timesteps (Ho et al. 2020; Vaswani et al. 2017):
/// for frequencies fᵢ = 10000^(−i/half), i < half = dim/2, row b is
/// [sin(t_b·f₀) … sin(t_b·f_{half−1}), cos(t_b·f₀) … cos(t_b·f_{half−1})]. [B] → [B, dim].
public func timestepEmbedding(_ timesteps: [Double], dim: Int, dtype: DType = .float32) -> Tensor {
    precondition(dim % 2 == 0, "timestep embedding dim \(dim) must be even")
    let half = dim / 2
    var values = [Double]()
    values.reserveCapacity(timesteps.count * dim)
    for t in timesteps {
        let angles = (0..<half).map { t * Double.exp(-Double.log(10_000) * Double($0) / Double(half)) }
        values += angles.map { Double.sin($0) } + angles.map { Double.cos($0) }
    }
    return Tensor(shape: [timesteps.count, dim], values: values, dtype: dtype)
}
