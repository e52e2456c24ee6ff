#!/usr/bin/env python3
"""Golden fixtures for model building blocks, computed with PyTorch (same conventions as
make_pytorch_fixtures.py, whose helpers it uses).

Regenerate with:  pip install "torch==2.13.0+cpu" && python3 Tests/Fixtures/make_model_fixtures.py
Writes Tests/Fixtures/pytorch/batchnorm2d.json and tile_classifier.json.
"""
import json
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


if __name__ == "__main__":
    torch.manual_seed(1)
    os.makedirs(OUT, exist_ok=True)
    batchnorm2d()
    tile_classifier()
