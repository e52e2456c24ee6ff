#!/usr/bin/env python3
"""Golden fixtures for model building blocks, computed with PyTorch (same conventions as
make_pytorch_fixtures.py, whose helpers it uses).

Regenerate with:  pip install "torch==2.13.0+cpu" && python3 Tests/Fixtures/make_model_fixtures.py
Writes Tests/Fixtures/pytorch/batchnorm2d.json, tile_classifier.json and denoiser.json.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_pytorch_fixtures import OUT, case, rnd, save, t


def batchnorm2d():
    """BatchNorm2d(4) in training mode on [3, 4, 5, 5]: output, gradients, updated running
    statistics; then evaluation mode on another batch."""
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.copy_(rnd(4)); bn.bias.copy_(rnd(4))
    x_eval = rnd(2, 4, 3, 3)

    def extra(m):
        m.eval()
        with torch.no_grad():
            y_eval = m(x_eval)
        return {"running_mean": t(m.running_mean), "running_var": t(m.running_var),
                "eval_input": t(x_eval), "eval_output": t(y_eval)}
    case("batchnorm2d", bn, "norm", {"x": rnd(3, 4, 5, 5, scale=2) + 1}, lambda m, x: m(x), extra)


class Stage(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.max_pool2d(F.relu(self.norm(self.conv(x))), 2)


class TileClassifier(nn.Module):
    """The same network as Models.TileClassifier, parameters named as Transcriptile names them."""
    def __init__(self, depth, width, classes):
        super().__init__()
        channels = [width * 2 ** min(i, 3) for i in range(depth)]
        self.depth = depth
        for i, c in enumerate(channels):
            self.add_module(f"stage{i}", Stage(3 if i == 0 else channels[i - 1], c))
        self.output = nn.Linear(channels[-1], classes)

    def forward(self, x):
        for i in range(self.depth):
            x = getattr(self, f"stage{i}")(x)
        return self.output(x.mean(dim=(2, 3)))  # dropout 0


def tile_classifier():
    """Depth 2, width 4, 3 classes on a batch of 3 RGB 16×16 tiles, training mode: logits,
    the gradient of Σ logits ⊙ upstream for the input and every parameter, and the running
    statistics after the step."""
    model = TileClassifier(depth=2, width=4, classes=3).double()
    with torch.no_grad():
        for p in model.parameters():  # float32-representable starting values
            p.copy_(p.float().double())
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("norm.bias"):
                p.copy_(rnd(*p.shape) * 0.5 + (1 if name.endswith("weight") else 0))
    x = rnd(3, 3, 16, 16).requires_grad_()
    logits = model(x)
    buffers = {k: t(b) for k, b in model.named_buffers() if not k.endswith("num_batches_tracked")}
    save("tile_classifier", {"x": x}, dict(model.named_parameters()), logits, rnd(*logits.shape),
         {"buffers": buffers})


class DenoiserTwin:
    """RNA-CDM's diffusion denoiser (Sources/Models/Diffusion/Denoiser.swift), written
    functionally over a dict of parameters named as the Swift model names them: a super-resolution
    stage, so that every part (time, low-resolution noise level, null condition, cross-attention,
    skip convolutions) is in the graph."""

    def __init__(self, dim=8, mults=(1, 2), blocks=1, attention_levels=(1,), heads=2, groups=4, cond=6, latent=5, sr=True):
        self.p, self.dim, self.heads, self.groups, self.sr = {}, dim, heads, groups, sr
        self.mults, self.blocks, self.levels = mults, blocks, set(attention_levels)
        e = 4 * dim
        self.linear("time.0", dim, e); self.linear("time.1", e, e)
        if sr:
            self.linear("lowres_time.0", dim, e); self.linear("lowres_time.1", e, e)
        self.linear("condition", latent, cond); self.linear("condition_embedding", cond, e); self.linear("time_token", e, cond)
        self.p["null_condition"] = rnd(1, cond, scale=0.5)
        ch = [dim * m for m in mults]
        self.conv("unet.stem", 6 if sr else 3, ch[0], 3)
        prev = ch[0]
        for level, c in enumerate(ch):
            self.stage(f"unet.down{level}", level, prev, c, e, cond)
            if level < len(ch) - 1:
                self.conv(f"unet.down{level}.pool", c, c, 3)
            prev = c
        self.block("unet.middle", prev, prev, e)
        self.attention("unet.middle.attention", prev, cond)
        self.block("unet.middle.post", prev, prev, e)
        for level in range(len(ch) - 2, -1, -1):
            c = ch[level]
            self.conv(f"unet.up{level}.conv", prev, c, 3)
            self.stage(f"unet.up{level}", level, 2 * c, c, e, cond)
            prev = c
        self.norm("unet.head.norm", prev)
        self.conv("unet.head.conv", prev, 3, 3)
        for v in self.p.values():
            v.requires_grad_()

    def to(self, dtype):
        """The same weights in `dtype` (the benchmark runs float32)."""
        self.p = {k: v.detach().to(dtype).requires_grad_() for k, v in self.p.items()}
        return self

    def linear(self, name, i, o, bias=True):
        self.p[name + ".weight"] = rnd(o, i, scale=1 / i ** 0.5)
        if bias:
            self.p[name + ".bias"] = rnd(o, scale=0.1)

    def conv(self, name, i, o, k):
        self.p[name + ".weight"] = rnd(o, i, k, k, scale=1 / (i * k * k) ** 0.5)
        self.p[name + ".bias"] = rnd(o, scale=0.1)

    def norm(self, name, c):
        self.p[name + ".weight"] = rnd(c) * 0.2 + 1
        self.p[name + ".bias"] = rnd(c, scale=0.2)

    def block(self, name, i, o, e):
        self.norm(name + ".norm1", i); self.conv(name + ".conv1", i, o, 3); self.linear(name + ".embedding", e, o)
        self.norm(name + ".norm2", o); self.conv(name + ".conv2", o, o, 3)
        if i != o:
            self.conv(name + ".skip", i, o, 1)

    def attention(self, name, c, cond):
        self.norm(name + ".norm", c)
        for part, ctx in (("self", c), ("cross", cond)):
            self.linear(f"{name}.{part}.query", c, c, bias=False)
            self.linear(f"{name}.{part}.key", ctx, c, bias=False)
            self.linear(f"{name}.{part}.value", ctx, c, bias=False)
            self.linear(f"{name}.{part}.output", c, c)
        self.norm(name + ".context_norm", c)

    def stage(self, name, level, i, o, e, cond):
        for b in range(self.blocks):
            self.block(f"{name}.{b}", i if b == 0 else o, o, e)
            if level in self.levels:
                self.attention(f"{name}.attention{b}", o, cond)

    # forward
    def L(self, name, x):
        return F.linear(x, self.p[name + ".weight"], self.p.get(name + ".bias"))

    def C(self, name, x, stride=1):
        w = self.p[name + ".weight"]
        return F.conv2d(x, w, self.p[name + ".bias"], stride=stride, padding=w.shape[-1] // 2)

    def GN(self, name, x):
        return F.group_norm(x, self.groups, self.p[name + ".weight"], self.p[name + ".bias"], 1e-5)

    def res(self, name, x, e):
        h = self.C(name + ".conv1", F.silu(self.GN(name + ".norm1", x)))
        h = h + self.L(name + ".embedding", F.silu(e))[:, :, None, None]
        h = self.C(name + ".conv2", F.silu(self.GN(name + ".norm2", h)))
        return h + (self.C(name + ".skip", x) if name + ".skip.weight" in self.p else x)

    def mha(self, name, x, ctx):
        b, n, d = x.shape
        dh = d // self.heads
        split = lambda y: y.reshape(b, y.shape[1], self.heads, dh).permute(0, 2, 1, 3)
        q, k, v = split(self.L(name + ".query", x)), split(self.L(name + ".key", ctx)), split(self.L(name + ".value", ctx))
        a = torch.softmax(q @ k.transpose(-1, -2) / dh ** 0.5, dim=-1) @ v
        return self.L(name + ".output", a.permute(0, 2, 1, 3).reshape(b, n, d))

    def attend(self, name, x, context):
        b, c, h, w = x.shape
        tok = lambda y: y.reshape(b, c, h * w).permute(0, 2, 1)
        normed = tok(self.GN(name + ".norm", x))
        out = tok(x) + self.mha(name + ".self", normed, normed)
        ln = F.layer_norm(out, (c,), self.p[name + ".context_norm.weight"], self.p[name + ".context_norm.bias"], 1e-5)
        out = out + self.mha(name + ".cross", ln, context)
        return out.permute(0, 2, 1).reshape(b, c, h, w)

    def run_stage(self, name, level, x, e, context):
        for b in range(self.blocks):
            x = self.res(f"{name}.{b}", x, e)
            if level in self.levels:
                x = self.attend(f"{name}.attention{b}", x, context)
        return x

    def sinusoid(self, steps):
        half = self.dim // 2
        dtype = self.p["time.0.weight"].dtype
        f = torch.exp(-math.log(10000) * torch.arange(half, dtype=dtype) / half)
        a = torch.tensor(steps, dtype=dtype)[:, None] * f[None]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)

    def __call__(self, x, steps, latents, keep, lowres=None, lowres_steps=None):
        temb = self.L("time.1", F.silu(self.L("time.0", self.sinusoid(steps))))
        mask = torch.tensor([[1.0] if k else [0.0] for k in keep], dtype=x.dtype)
        cond = self.L("condition", latents) * mask + self.p["null_condition"] * (1 - mask)
        e = temb + self.L("condition_embedding", cond)
        if self.sr:
            e = e + self.L("lowres_time.1", F.silu(self.L("lowres_time.0", self.sinusoid(lowres_steps))))
            x = torch.cat([x, lowres], dim=1)
        context = torch.stack([cond, self.L("time_token", temb)], dim=1)
        h, skips = self.C("unet.stem", x), []
        for level in range(len(self.mults)):
            h = self.run_stage(f"unet.down{level}", level, h, e, context)
            if level < len(self.mults) - 1:
                skips.append(h)
                h = self.C(f"unet.down{level}.pool", h, stride=2)
        h = self.res("unet.middle", h, e)
        h = self.attend("unet.middle.attention", h, context)
        h = self.res("unet.middle.post", h, e)
        for level in range(len(self.mults) - 2, -1, -1):
            h = self.C(f"unet.up{level}.conv", F.interpolate(h, scale_factor=2, mode="nearest"))
            h = self.run_stage(f"unet.up{level}", level, torch.cat([h, skips.pop()], dim=1), e, context)
        return self.C("unet.head.conv", F.silu(self.GN("unet.head.norm", h)))


def denoiser():
    """The denoiser of a super-resolution stage (dim 8, levels ×1 ×2, attention at level 1 and in
    the middle, 2 heads, condition 6, latent 5) on 3 tiles of 8×8, the second without its RNA:
    ε̂ and the gradients of Σ ε̂ ⊙ upstream."""
    model = DenoiserTwin()
    x, lowres, latents = rnd(3, 3, 8, 8).requires_grad_(), rnd(3, 3, 8, 8), rnd(3, 5)
    steps, keep, lowres_steps = [3.0, 500.0, 999.0], [True, False, True], [200.0, 200.0, 200.0]
    out = model(x, steps, latents, keep, lowres, lowres_steps)
    save("denoiser", {"x": x}, model.p, out, rnd(*out.shape),
         {"conditioning": {"lowres": t(lowres), "latents": t(latents)}})


if __name__ == "__main__":
    torch.manual_seed(1)
    os.makedirs(OUT, exist_ok=True)
    batchnorm2d()
    tile_classifier()
    denoiser()
