import Autograd
import NN

/// An image-to-image UNet [B, in, H, W] → [B, out, H, W] (the denoiser's skeleton, without
/// timestep or RNA conditioning yet):
///
///   stem    Conv3×3 in → channels[0]
///   down    per level: two `ResNetBlock`s to channels[level], then (all but the last level) a
///           stride-2 Conv3×3, keeping the blocks' output as a skip
///   middle  one `ResNetBlock`
///   up      per level, deepest first: nearest upsample ×2 → Conv3×3 → concatenate the skip →
///           two `ResNetBlock`s
///   head    GroupNorm → SiLU → Conv3×3 → out
///
/// H and W must be multiples of 2^(levels − 1). Parameter names: `stem`, `down{level}.{0,1}`,
/// `down{level}.pool`, `middle`, `up{level}.conv`, `up{level}.{0,1}`, `head.norm`, `head.conv`.
public final class UNet: Module {
    private let stem: Conv2d
    private let down: [(blocks: [ResNetBlock], pool: Conv2d?)]
    private let middle: ResNetBlock
    private let up: [(conv: Conv2d, blocks: [ResNetBlock])]
    private let headNorm: GroupNorm, headConv: Conv2d

    /// Every entry of `channels` must be a multiple of `groups`.
    public init(_ arena: ParameterArena, inChannels: Int = 3, outChannels: Int = 3, channels: [Int] = [32, 64, 128], groups: Int = 8) {
        stem = Conv2d(arena, "stem", inChannels, channels[0], kernel: 3, padding: 1)
        var down = [(blocks: [ResNetBlock], pool: Conv2d?)](), previous = channels[0]
        for (level, c) in channels.enumerated() {
            let blocks = [ResNetBlock(arena, "down\(level).0", previous, c, groups: groups), ResNetBlock(arena, "down\(level).1", c, c, groups: groups)]
            let last = level == channels.count - 1
            down.append((blocks, last ? nil : Conv2d(arena, "down\(level).pool", c, c, kernel: 3, stride: 2, padding: 1)))
            previous = c
        }
        self.down = down
        middle = ResNetBlock(arena, "middle", previous, previous, groups: groups)
        var up = [(conv: Conv2d, blocks: [ResNetBlock])]()
        for level in stride(from: channels.count - 2, through: 0, by: -1) {
            let c = channels[level]
            up.append((Conv2d(arena, "up\(level).conv", previous, c, kernel: 3, padding: 1),
                       [ResNetBlock(arena, "up\(level).0", 2 * c, c, groups: groups), ResNetBlock(arena, "up\(level).1", c, c, groups: groups)]))
            previous = c
        }
        self.up = up
        headNorm = GroupNorm(arena, "head.norm", groups: groups, channels: previous)
        headConv = Conv2d(arena, "head.conv", previous, outChannels, kernel: 3, padding: 1)
    }

    public var children: [any Module] {
        var modules: [any Module] = [stem]
        for level in down { modules += level.blocks + (level.pool.map { [$0] } ?? []) }
        modules.append(middle)
        for level in up { modules += [level.conv] + level.blocks }
        return modules + [headNorm, headConv]
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        var h = stem(x), skips = [Variable]()
        for (blocks, pool) in down {
            h = blocks.reduce(h) { $1($0) }
            if let pool { skips.append(h); h = pool(h) }
        }
        h = middle(h)
        for (conv, blocks) in up {
            h = conv(h.upsampleNearest(2))
            h = blocks.reduce(concatenate([h, skips.removeLast()], axis: 1)) { $1($0) }
        }
        return headConv(headNorm(h).silu())
    }
}
