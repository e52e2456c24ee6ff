import Autograd
import NN

/// An image-to-image UNet [B, in, H, W] → [B, out, H, W], the denoiser's skeleton:
///
///   stem    Conv3×3 in → channels[0]
///   down    per level: `blocks` `ResNetBlock`s to channels[level] (each followed by a
///           `SpatialAttention` at attention levels), then (all but the last level) a stride-2
///           Conv3×3, keeping the blocks' output as a skip
///   middle  a `ResNetBlock`; with attention, then attention and a second block (`middle.post`)
///   up      per level, deepest first: nearest upsample ×2 → Conv3×3 → concatenate the skip →
///           `blocks` `ResNetBlock`s (with attention at attention levels)
///   head    GroupNorm → SiLU → Conv3×3 → out
///
/// With `embeddingDim`, every block adds its projection of an embedding [B, E] (the timestep's,
/// and the conditioning's); with `attention`, the blocks at its levels attend over their
/// positions and, given a context dimension, to the conditioning's tokens.
///
/// H and W must be multiples of 2^(levels − 1). Parameter names, after `prefix`: `stem`, `down{level}.{block}`,
/// `down{level}.attention{block}`, `down{level}.pool`, `middle`, `middle.attention`,
/// `middle.post`, `up{level}.conv`, `up{level}.{block}`, `up{level}.attention{block}`,
/// `head.norm`, `head.conv`.
public final class UNet: Module {
    /// Where a UNet attends: the levels (0 = full resolution), heads, and the conditioning
    /// tokens' width for cross-attention (nil: self-attention only).
    public struct Attention: Sendable {
        public var levels: Set<Int>, heads: Int, contextDim: Int?
        public init(levels: Set<Int>, heads: Int, contextDim: Int?) { (self.levels, self.heads, self.contextDim) = (levels, heads, contextDim) }
    }

    /// One level's blocks, each with its attention where the level attends.
    private struct Stage {
        var blocks: [ResNetBlock], attention: [SpatialAttention]
        var modules: [any Module] {
            blocks.indices.flatMap { index -> [any Module] in [blocks[index]] + (index < attention.count ? [attention[index]] : []) }
        }

        func callAsFunction(_ x: Variable, embedding: Variable?, context: Variable?) -> Variable {
            var h = x
            for (index, block) in blocks.enumerated() {
                h = block(h, embedding: embedding)
                if index < attention.count { h = attention[index](h, context: context) }
            }
            return h
        }
    }

    private let stem: Conv2d
    private let down: [(stage: Stage, pool: Conv2d?)]
    private let middle: Stage
    private let up: [(conv: Conv2d, stage: Stage)]
    private let headNorm: GroupNorm, headConv: Conv2d

    /// Every entry of `channels` must be a multiple of `groups` (and of the heads at attention
    /// levels); `blocks` ≥ 1.
    public init(_ arena: ParameterArena, prefix: String = "", inChannels: Int = 3, outChannels: Int = 3, channels: [Int] = [32, 64, 128], blocks: Int = 2,
                groups: Int = 8, embeddingDim: Int? = nil, attention: Attention? = nil) {
        func stage(_ name: String, level: Int?, _ inChannels: Int, _ c: Int) -> Stage {
            let blockList = (0..<blocks).map { ResNetBlock(arena, "\(name).\($0)", $0 == 0 ? inChannels : c, c, groups: groups, embeddingDim: embeddingDim) }
            guard let attention, let level, attention.levels.contains(level) else { return Stage(blocks: blockList, attention: []) }
            return Stage(blocks: blockList, attention: (0..<blocks).map {
                SpatialAttention(arena, "\(name).attention\($0)", channels: c, heads: attention.heads, groups: groups, contextDim: attention.contextDim)
            })
        }
        stem = Conv2d(arena, "\(prefix)stem", inChannels, channels[0], kernel: 3, padding: 1)
        var down = [(stage: Stage, pool: Conv2d?)](), previous = channels[0]
        for (level, c) in channels.enumerated() {
            let last = level == channels.count - 1
            down.append((stage("\(prefix)down\(level)", level: level, previous, c), last ? nil : Conv2d(arena, "\(prefix)down\(level).pool", c, c, kernel: 3, stride: 2, padding: 1)))
            previous = c
        }
        self.down = down
        var middleBlocks = [ResNetBlock(arena, "\(prefix)middle", previous, previous, groups: groups, embeddingDim: embeddingDim)], middleAttention = [SpatialAttention]()
        if let attention {
            middleAttention = [SpatialAttention(arena, "\(prefix)middle.attention", channels: previous, heads: attention.heads, groups: groups, contextDim: attention.contextDim)]
            middleBlocks.append(ResNetBlock(arena, "\(prefix)middle.post", previous, previous, groups: groups, embeddingDim: embeddingDim))
        }
        middle = Stage(blocks: middleBlocks, attention: middleAttention)
        var up = [(conv: Conv2d, stage: Stage)]()
        for level in stride(from: channels.count - 2, through: 0, by: -1) {
            let c = channels[level]
            up.append((Conv2d(arena, "\(prefix)up\(level).conv", previous, c, kernel: 3, padding: 1), stage("\(prefix)up\(level)", level: level, 2 * c, c)))
            previous = c
        }
        self.up = up
        headNorm = GroupNorm(arena, "\(prefix)head.norm", groups: groups, channels: previous)
        headConv = Conv2d(arena, "\(prefix)head.conv", previous, outChannels, kernel: 3, padding: 1)
    }

    public var children: [any Module] {
        var modules: [any Module] = [stem]
        for level in down { modules += level.stage.modules + (level.pool.map { [$0] } ?? []) }
        modules += middle.modules
        for level in up { modules += [level.conv] + level.stage.modules }
        return modules + [headNorm, headConv]
    }

    /// x [B, in, H, W]; `embedding` [B, E] when built with `embeddingDim`; `context` [B, S,
    /// contextDim] when built with cross-attention.
    public func callAsFunction(_ x: Variable, embedding: Variable? = nil, context: Variable? = nil) -> Variable {
        var h = stem(x), skips = [Variable]()
        for (stage, pool) in down {
            h = stage(h, embedding: embedding, context: context)
            if let pool { skips.append(h); h = pool(h) }
        }
        h = middle(h, embedding: embedding, context: context)
        for (conv, stage) in up {
            h = conv(h.upsampleNearest(2))
            h = stage(concatenate([h, skips.removeLast()], axis: 1), embedding: embedding, context: context)
        }
        return headConv(headNorm(h).silu())
    }
}
