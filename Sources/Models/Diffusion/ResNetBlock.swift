import Autograd
import NN

/// The residual block of diffusion UNets (Ho et al. 2020):
///   GroupNorm → SiLU → Conv3×3 [+ Linear(SiLU(embedding)) per channel] → GroupNorm → SiLU →
///   Conv3×3, plus the input (through a 1×1 conv when the channel count changes).
/// [B, in, H, W] (and an embedding [B, E] when built with `embeddingDim`) → [B, out, H, W].
public final class ResNetBlock: Module {
    public let norm1: GroupNorm, conv1: Conv2d, norm2: GroupNorm, conv2: Conv2d
    public let skip: Conv2d?
    /// Projects the timestep (and conditioning) embedding to a shift per channel.
    public let embedding: Linear?

    /// Both channel counts must be multiples of `groups`.
    public init(_ arena: ParameterArena, _ name: String, _ inChannels: Int, _ outChannels: Int, groups: Int = 8, embeddingDim: Int? = nil) {
        norm1 = GroupNorm(arena, "\(name).norm1", groups: groups, channels: inChannels)
        conv1 = Conv2d(arena, "\(name).conv1", inChannels, outChannels, kernel: 3, padding: 1)
        embedding = embeddingDim.map { Linear(arena, "\(name).embedding", $0, outChannels) }
        norm2 = GroupNorm(arena, "\(name).norm2", groups: groups, channels: outChannels)
        conv2 = Conv2d(arena, "\(name).conv2", outChannels, outChannels, kernel: 3, padding: 1)
        skip = inChannels == outChannels ? nil : Conv2d(arena, "\(name).skip", inChannels, outChannels, kernel: 1)
    }

    public var children: [any Module] { [norm1, conv1] + (embedding.map { [$0] } ?? []) + [norm2, conv2] + (skip.map { [$0] } ?? []) }

    /// `embedding` [B, E] is required exactly when the block was built with `embeddingDim`.
    public func callAsFunction(_ x: Variable, embedding e: Variable? = nil) -> Variable {
        var h = conv1(norm1(x).silu())
        if let embedding, let e {
            let shift = embedding(e.silu())
            h = h + shift.reshaped([shift.shape[0], shift.shape[1], 1, 1])
        }
        h = conv2(norm2(h).silu())
        return h + (skip.map { $0(x) } ?? x)
    }
}
