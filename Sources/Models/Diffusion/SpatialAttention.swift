import Autograd
import NN

/// Attention over a feature map's positions, for the diffusion UNet's lower resolutions:
///   tokens = x as [B, H·W, C];  h = tokens + SelfAttention(GroupNorm(x) as tokens);
///   h = h + CrossAttention(LayerNorm(h), context)   (when built with `contextDim`),
/// back to [B, C, H, W]. The context is the conditioning's tokens (the RNA latent's, the time's).
public final class SpatialAttention: Module {
    public let norm: GroupNorm, selfAttention: MultiHeadAttention
    public let contextNorm: LayerNorm?, crossAttention: MultiHeadAttention?

    /// `channels` must be a multiple of `groups` and of `heads`.
    public init(_ arena: ParameterArena, _ name: String, channels: Int, heads: Int, groups: Int, contextDim: Int?) {
        norm = GroupNorm(arena, "\(name).norm", groups: groups, channels: channels)
        selfAttention = MultiHeadAttention(arena, "\(name).self", dim: channels, heads: heads)
        contextNorm = contextDim.map { _ in LayerNorm(arena, "\(name).context_norm", channels) }
        crossAttention = contextDim.map { MultiHeadAttention(arena, "\(name).cross", dim: channels, heads: heads, contextDim: $0) }
    }

    public var children: [any Module] { [norm, selfAttention] + ([contextNorm, crossAttention] as [(any Module)?]).compactMap { $0 } }

    /// x [B, C, H, W], context [B, S, contextDim] (used when built with `contextDim`).
    public func callAsFunction(_ x: Variable, context: Variable? = nil) -> Variable {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func tokens(_ y: Variable) -> Variable { y.reshaped([b, c, h * w]).permuted([0, 2, 1]) }
        var out = tokens(x) + selfAttention(tokens(norm(x)))
        if let contextNorm, let crossAttention, let context { out = out + crossAttention(contextNorm(out), context: context) }
        return out.permuted([0, 2, 1]).reshaped([b, c, h, w])
    }
}
