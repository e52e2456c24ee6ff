#!/usr/bin/env python3
"""The normalisation layers and reference models of `transcriptile bench core`, in PyTorch,
timed the same way (one warm-up run, median of N; a layer = forward + backward in training
mode; a model step = zero_grad + forward + backward + AdamW).

    pip install "torch==2.13.0+cpu"
    python3 launch/compare/pytorch_core.py --threads 1 [--repeats 5]

A comparison tool only: Transcriptile never depends on PyTorch.
"""
import argparse
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures"))
from make_model_fixtures import DenoiserTwin  # noqa: E402  (the twin the golden test checks)


class VAE(nn.Module):
    def __init__(self, genes=5000):
        super().__init__()
        self.enc = nn.ModuleList([nn.Linear(genes, 1024), nn.Linear(1024, 256)])
        self.mu, self.logvar = nn.Linear(256, 128), nn.Linear(256, 128)
        self.dec = nn.ModuleList([nn.Linear(128, 256), nn.Linear(256, 1024), nn.Linear(1024, genes)])

    def loss(self, x, noise):
        h = x
        for layer in self.enc:
            h = F.leaky_relu(layer(h), 0.2)
        mu, logvar = self.mu(h), self.logvar(h)
        y = mu + (0.5 * logvar).exp() * noise
        for i, layer in enumerate(self.dec):
            y = torch.tanh(layer(y)) if i == len(self.dec) - 1 else F.leaky_relu(layer(y), 0.2)
        kl = torch.mean(-0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1))
        return F.mse_loss(y, x) + 0.005 * kl


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.c2(F.silu(self.n2(self.c1(F.silu(self.n1(x)))))) + self.skip(x)


class UNet(nn.Module):
    def __init__(self, channels=(32, 64, 128)):
        super().__init__()
        self.stem = nn.Conv2d(3, channels[0], 3, padding=1)
        self.down, prev = nn.ModuleList(), channels[0]
        for level, c in enumerate(channels):
            last = level == len(channels) - 1
            self.down.append(nn.ModuleList([Block(prev, c), Block(c, c)] + ([] if last else [nn.Conv2d(c, c, 3, stride=2, padding=1)])))
            prev = c
        self.middle = Block(prev, prev)
        self.up = nn.ModuleList()
        for level in range(len(channels) - 2, -1, -1):
            c = channels[level]
            self.up.append(nn.ModuleList([nn.Conv2d(prev, c, 3, padding=1), Block(2 * c, c), Block(c, c)]))
            prev = c
        self.norm, self.head = nn.GroupNorm(8, prev), nn.Conv2d(prev, 3, 3, padding=1)

    def loss(self, x, target):
        h, skips = self.stem(x), []
        for mods in self.down:
            h = mods[1](mods[0](h))
            if len(mods) == 3:
                skips.append(h)
                h = mods[2](h)
        h = self.middle(h)
        for conv, b1, b2 in self.up:
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = b2(b1(torch.cat([h, skips.pop()], 1)))
        return F.mse_loss(self.head(F.silu(self.norm(h))), target)


class Cox(nn.Module):
    def __init__(self, genes=5000):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(genes, 512), nn.ReLU(), nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 1))

    def loss(self, x, times, events):
        risk = self.net(x).flatten()
        order = torch.argsort(times, descending=True)
        r, e = risk[order], events[order]
        lse = torch.logcumsumexp(r, 0)  # Breslow without tie grouping: close enough for timing
        return -((r - lse) * e).sum() / e.sum()


class TileCNN(nn.Module):
    """The tile-classifier task's CNN (depth 3, width 16): {Conv3×3 no bias → BatchNorm2d → ReLU →
    MaxPool 2} per stage, global average pool, dropout, linear; its input is tile bytes
    [B, S, S, 3] scaled per channel and turned by one of the eight flips/rotations per tile."""

    def __init__(self, depth=3, width=16, classes=4):
        super().__init__()
        layers, c = [], 3
        for stage in range(depth):
            o = width << min(stage, 3)
            layers += [nn.Conv2d(c, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
            c = o
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(c, classes))
        self.register_buffer("scale", 1 / (255 * torch.tensor([0.15, 0.20, 0.15])).view(1, 3, 1, 1))
        self.register_buffer("shift", -(torch.tensor([0.70, 0.55, 0.70]) / torch.tensor([0.15, 0.20, 0.15])).view(1, 3, 1, 1))

    def loss(self, pixels, turns, labels):
        x = pixels.permute(0, 3, 1, 2).float() * self.scale + self.shift
        x = torch.stack([torch.rot90(t.flip(2) if turn >= 4 else t, turn % 4, (1, 2)) for t, turn in zip(x, turns)])
        return F.cross_entropy(self.net(x), labels)


class Denoiser:
    """RNA-CDM's base denoiser at demo size, as `bench core` builds it (ReferenceDenoiser): the
    functional twin the golden test checks (Tests/Fixtures/make_model_fixtures.py), in float32."""

    def __init__(self, batch=16):
        self.twin = DenoiserTwin(dim=32, mults=(1, 2, 4), blocks=1, attention_levels=(1, 2), heads=4, groups=8, cond=64,
                                 latent=32, sr=False).to(torch.float32)
        self.steps = [float(i * 997 % 1000) for i in range(batch)]
        self.keep = [i % 10 != 9 for i in range(batch)]
        alpha = torch.cos((torch.tensor(self.steps) / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # ≈ the cosine schedule's ᾱ
        self.weights = ((1 + alpha / (1 - alpha)) ** -0.5).clamp(max=1)[:, None, None, None]

    def parameters(self):
        return list(self.twin.p.values())

    def loss(self, x, noise, latents):
        return (((self.twin(x, self.steps, latents, self.keep) - noise) ** 2) * self.weights).mean()

    def guided(self, x, latents):
        """One guided sampling step's network work: 2 × batch rows, no gradients."""
        with torch.no_grad():
            return self.twin(torch.cat([x, x]), self.steps * 2, torch.cat([latents, latents]), [True] * len(x) + [False] * len(x))


def median_seconds(step, repeats):
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_step(model, *batch):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad()
        model.loss(*batch).backward()
        opt.step()
    return step


def layer_step(layer, x):
    """Forward+backward of a layer in training mode; the gradients add into preallocated ones."""
    x.requires_grad_()
    upstream = torch.full_like(x, 1e-3)
    return lambda: layer(x).backward(upstream)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--filter", default="", help="only cases whose name contains this text")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [  # built eagerly, so that every run initialises the same way
        ("step-vae-mlp-5000-b64", "ms/step", model_step(VAE(), torch.randn(64, 5000), torch.randn(64, 128))),
        ("step-unet-64x64-b16", "ms/step", model_step(UNet(), torch.randn(16, 3, 64, 64), torch.randn(16, 3, 64, 64))),
        ("step-cox-mlp-5000-b256", "ms/step",
         model_step(Cox(), torch.randn(256, 5000), torch.randint(0, 3000, (256,)).float(), (torch.rand(256) < 0.6).float())),
        ("step-tile-cnn-64x64-b32", "ms/step",
         model_step(TileCNN(), torch.randint(0, 256, (32, 64, 64, 3), dtype=torch.uint8), torch.randint(0, 8, (32,)).tolist(),
                    torch.randint(0, 4, (32,)))),
        ("step-denoiser-32x32-b16", "ms/step", model_step(Denoiser(), torch.randn(16, 3, 32, 32), torch.randn(16, 3, 32, 32), torch.randn(16, 32))),
        ("sample-denoiser-32x32-b16", "ms/step", (lambda d, x, z: lambda: d.guided(x, z))(Denoiser(), torch.randn(16, 3, 32, 32), torch.randn(16, 32))),
        ("batchnorm2d-b32-c16-64x64-fwd+bwd", "ms", layer_step(nn.BatchNorm2d(16), torch.randn(32, 16, 64, 64))),
        ("groupnorm8-b32-c16-64x64-fwd+bwd", "ms", layer_step(nn.GroupNorm(8, 16), torch.randn(32, 16, 64, 64))),
    ]
    print(f"# pytorch {torch.__version__}, {args.threads} thread(s), medians of {args.repeats}")
    for name, unit, step in cases:
        if args.filter not in name:
            continue
        print(f"{name:40s} {median_seconds(step, args.repeats) * 1e3:10.1f} {unit}")


if __name__ == "__main__":
    main()
