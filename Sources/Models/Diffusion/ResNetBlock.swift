import Autograd
import NN

/// The residual block of diffusion UNets (Ho et al. 2020):
///   GroupNorm → SiLU → Conv3×3 → GroupNorm → SiLU → Conv3×3, plus the input
/// (through a 1×1 conv when the channel count changes). [B, in, H, W] → [B, out, H, W].
public final class ResNetBlock: Module {
    public let norm1: GroupNorm, conv1: Conv2d, norm2: GroupNorm, conv2: Conv2d
    public let skip: Conv2d?

    /// Both channel counts must be multiples of `groups`.
    public init(_ arena: ParameterArena, _ name: String, _ inChannels: Int, _ outChannels: Int, groups: Int = 8) {
        norm1 = GroupNorm(arena, "\(name).norm1", groups: groups, channels: inChannels)
        conv1 = Conv2d(arena, "\(name).conv1", inChannels, outChannels, kernel: 3, padding: 1)
        norm2 = GroupNorm(arena, "\(name).norm2", groups: groups, channels: outChannels)
        conv2 = Conv2d(arena, "\(name).conv2", outChannels, outChannels, kernel: 3, padding: 1)
        skip = inChannels == outChannels ? nil : Conv2d(arena, "\(name).skip", inChannels, outChannels, kernel: 1)
    }

    public var children: [any Module] { [norm1, conv1, norm2, conv2] + (skip.map { [$0] } ?? []) }

    public func callAsFunction(_ x: Variable) -> Variable {
        let h = conv2(norm2(conv1(norm1(x).silu())).silu())
        return h + (skip.map { $0(x) } ?? x)
    }
}
