#!/usr/bin/env python3
"""Golden fixtures for the numerical core, computed with PyTorch (float64 inputs rounded to
float32, so both sides start from identical values).

Regenerate with:  pip install "torch==2.13.0+cpu" && python3 Tests/Fixtures/make_pytorch_fixtures.py
Each file in Tests/Fixtures/pytorch/ holds, for one layer or loss: inputs, parameters (named as
Transcriptile names them), the upstream gradient dL/dy, the output, and the gradients of every
input and parameter. Optimizer fixtures hold the parameters after each of 5 steps.
PyTorch is used only here, never by the project.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch")
torch.manual_seed(0)


def t(x):
    return {"shape": list(x.shape), "data": [float(v) for v in x.detach().double().flatten().tolist()]}


def rnd(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=torch.float64) * scale).float().double()


def save(name, inputs, params, output, upstream, extra=None):
    (output * upstream).sum().backward()
    record = {
        "inputs": {k: t(v) for k, v in inputs.items()},
        "parameters": {k: t(p) for k, p in params.items()},
        "upstream": t(upstream),
        "output": t(output),
        "input_grads": {k: t(v.grad) for k, v in inputs.items() if v.grad is not None},
        "parameter_grads": {k: t(p.grad) for k, p in params.items()},
    }
    record.update(extra or {})
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(record, f)


def case(name, module, prefix, inputs, forward, extra=None):
    module = module.double()
    for p in module.parameters():  # float32-representable starting values
        with torch.no_grad():
            p.copy_(p.float().double())
    params = {f"{prefix}.{k}": p for k, p in module.named_parameters()}
    for v in inputs.values():
        v.requires_grad_(v.dtype == torch.float64)
    y = forward(module, **inputs)
    save(name, inputs, params, y, rnd(*y.shape), extra(module) if extra else None)


class Attention(nn.Module):
    """The same math as NN.MultiHeadAttention, from separate projections. A query whose keys are
    all masked gets zero from scaled_dot_product_attention, as in Transcriptile."""
    def __init__(self, dim, heads, context_dim=None):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(context_dim or dim, dim, bias=False)
        self.value = nn.Linear(context_dim or dim, dim, bias=False)
        self.output = nn.Linear(dim, dim)

    def forward(self, x, context=None, key_mask=None):
        c = x if context is None else context
        b, n, d = x.shape
        h = self.heads
        q = self.query(x).view(b, n, h, d // h).transpose(1, 2)
        k = self.key(c).view(b, c.shape[1], h, d // h).transpose(1, 2)
        v = self.value(c).view(b, c.shape[1], h, d // h).transpose(1, 2)
        mask = None if key_mask is None else key_mask[:, None, None, :]  # [B, 1, 1, S], True = attend
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.output(o.transpose(1, 2).reshape(b, n, d))


def main():
    os.makedirs(OUT, exist_ok=True)
    case("linear", nn.Linear(5, 3), "fc", {"x": rnd(4, 5)}, lambda m, x: m(x))
    case("linear_tokens", nn.Linear(6, 4), "fc", {"x": rnd(2, 3, 6)}, lambda m, x: m(x))
    case("conv2d", nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), "conv", {"x": rnd(2, 4, 7, 7)}, lambda m, x: m(x))
    case("conv2d_same", nn.Conv2d(3, 5, 3, padding=1), "conv", {"x": rnd(2, 3, 6, 5)}, lambda m, x: m(x))
    gn = nn.GroupNorm(2, 4)
    with torch.no_grad():
        gn.weight.copy_(rnd(4)); gn.bias.copy_(rnd(4))
    case("groupnorm", gn, "norm", {"x": rnd(2, 4, 3, 3, scale=2)}, lambda m, x: m(x))
    ln = nn.LayerNorm(6)
    with torch.no_grad():
        ln.weight.copy_(rnd(6)); ln.bias.copy_(rnd(6))
    case("layernorm", ln, "norm", {"x": rnd(3, 6, scale=3)}, lambda m, x: m(x))
    bn = nn.BatchNorm1d(5)
    with torch.no_grad():
        bn.weight.copy_(rnd(5)); bn.bias.copy_(rnd(5))
    x_eval = rnd(3, 5)

    def bn_extra(m):
        m.eval()
        with torch.no_grad():
            y_eval = m(x_eval)
        return {"running_mean": t(m.running_mean), "running_var": t(m.running_var),
                "eval_input": t(x_eval), "eval_output": t(y_eval)}
    case("batchnorm1d", bn, "norm", {"x": rnd(8, 5, scale=2) + 1}, lambda m, x: m(x), bn_extra)
    case("embedding", nn.Embedding(10, 4), "emb", {"indices": torch.tensor([3, 1, 3, 7])}, lambda m, indices: m(indices))

    case("self_attention", Attention(8, 2), "attn", {"x": rnd(2, 5, 8)}, lambda m, x: m(x))
    case("cross_attention", Attention(8, 2, 6), "attn", {"x": rnd(2, 5, 8), "context": rnd(2, 3, 6)},
         lambda m, x, context: m(x, context))

    activations = {
        "relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "silu": F.silu, "gelu": F.gelu,
        "tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": F.softplus,
    }
    for name, f in activations.items():
        x = rnd(3, 4, scale=2).requires_grad_()
        save("activation_" + name, {"x": x}, {}, f(x), rnd(3, 4))

    # Losses (scalar outputs, upstream 1).
    def loss_case(name, inputs, f, extra=None):
        for v in inputs.values():
            if v.dtype == torch.float64:
                v.requires_grad_()
        save(name, inputs, {}, f(**inputs), torch.ones((), dtype=torch.float64), extra)
    target = rnd(4, 3)
    loss_case("mse", {"x": rnd(4, 3)}, lambda x: F.mse_loss(x, target), {"target": t(target)})
    labels01 = (torch.rand(4, 3) > 0.5).double()
    loss_case("bce_with_logits", {"x": rnd(4, 3, scale=3)}, lambda x: F.binary_cross_entropy_with_logits(x, labels01),
              {"target": t(labels01)})
    classes = torch.tensor([2, 0, 1, 2, 4])
    loss_case("cross_entropy", {"x": rnd(5, 5, scale=2)}, lambda x: F.cross_entropy(x, classes),
              {"labels": classes.tolist()})
    loss_case("gaussian_kl", {"mu": rnd(4, 3), "logvar": rnd(4, 3, scale=0.5)},
              lambda mu, logvar: torch.mean(-0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1)))
    times = torch.tensor([5.0, 3.0, 3.0, 8.0, 1.0, 3.0, 8.0, 2.0])
    events = torch.tensor([1, 1, 0, 1, 0, 1, 1, 0], dtype=torch.bool)

    def cox(risk):
        """Breslow: every j with t_j >= t_i is in i's risk set (direct sums, no tricks)."""
        terms = [risk[i] - torch.logsumexp(risk[times >= times[i]], 0) for i in range(len(times)) if events[i]]
        return -torch.stack(terms).sum() / events.sum()
    loss_case("cox", {"risk": rnd(8, scale=2)}, cox, {"times": times.tolist(), "events": events.int().tolist()})

    ts = torch.tensor([0.0, 1.0, 10.0, 999.0], dtype=torch.float64)
    half = 4
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    angles = ts[:, None] * freqs[None]
    with open(os.path.join(OUT, "timestep_embedding.json"), "w") as f:
        json.dump({"timesteps": ts.tolist(), "dim": 8, "output": t(torch.cat([angles.sin(), angles.cos()], 1))}, f)

    # Optimizers: a tiny MLP, MSE loss, 5 steps each.
    x, y = rnd(6, 4), rnd(6, 3)
    for name, make in {
        "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
        "sgd_momentum": lambda p: torch.optim.SGD(p, lr=5e-2, momentum=0.9, weight_decay=1e-3),
    }.items():
        torch.manual_seed(1)
        mlp = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
        for p in mlp.parameters():
            with torch.no_grad():
                p.copy_(p.float().double())
        names = {"0.weight": "fc1.weight", "0.bias": "fc1.bias", "2.weight": "fc2.weight", "2.bias": "fc2.bias"}
        initial = {names[k]: t(p) for k, p in mlp.named_parameters()}
        opt = make(mlp.parameters())
        history = []
        for _ in range(5):
            opt.zero_grad()
            F.mse_loss(mlp(x), y).backward()
            opt.step()
            history.append({names[k]: t(p) for k, p in mlp.named_parameters()})
        with open(os.path.join(OUT, f"optimizer_{name}.json"), "w") as f:
            json.dump({"x": t(x), "y": t(y), "initial": initial, "steps": history}, f)

    vae()
    bags_upsampling_masks()


def vae():
    """RNA-CDM's β-VAE (SCIENCE.md) shrunk to genes 12, hidden [10, 6], latent 3, in training
    mode (BatchNorm on batch statistics), input dropout off, the noise ε given: the scalar loss
    MSE + β·KL, its two terms, μ, and the gradients of every parameter and of x."""
    torch.manual_seed(2)
    genes, hidden, latent, beta, slope = 12, [10, 6], 3, 0.005, 0.01
    params = {}

    def linear(name, n_in, n_out):
        layer = nn.Linear(n_in, n_out).double()
        params[name + ".weight"] = layer.weight.detach().float().double().requires_grad_()
        params[name + ".bias"] = layer.bias.detach().float().double().requires_grad_()

    def norm(name, n):
        params[name + ".weight"] = (rnd(n, scale=0.3) + 1).requires_grad_()
        params[name + ".bias"] = rnd(n, scale=0.1).requires_grad_()

    widths = [genes] + hidden
    for i in range(len(hidden)):
        linear(f"encoder.{i}", widths[i], widths[i + 1]); norm(f"encoder.{i}.norm", widths[i + 1])
    linear("encoder.mean", hidden[-1], latent); linear("encoder.log_variance", hidden[-1], latent)
    back = [latent] + hidden[::-1]
    for i in range(len(hidden)):
        linear(f"decoder.{i}", back[i], back[i + 1]); norm(f"decoder.{i}.norm", back[i + 1])
    linear("decoder.output", hidden[0], genes)

    def block(name, h):
        h = F.linear(h, params[name + ".weight"], params[name + ".bias"])
        h = F.batch_norm(h, None, None, params[name + ".norm.weight"], params[name + ".norm.bias"], training=True, eps=1e-5)
        return F.leaky_relu(h, slope)

    x = (rnd(6, genes, scale=0.8)).requires_grad_()
    noise = rnd(6, latent)
    h = x
    for i in range(len(hidden)):
        h = block(f"encoder.{i}", h)
    mu = F.linear(h, params["encoder.mean.weight"], params["encoder.mean.bias"])
    logvar = F.linear(h, params["encoder.log_variance.weight"], params["encoder.log_variance.bias"])
    h = mu + torch.exp(0.5 * logvar) * noise
    for i in range(len(hidden)):
        h = block(f"decoder.{i}", h)
    out = torch.tanh(F.linear(h, params["decoder.output.weight"], params["decoder.output.bias"]))
    reconstruction = F.mse_loss(out, x)
    divergence = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(dim=1)).mean()
    loss = reconstruction + beta * divergence
    save("vae", {"x": x, "noise": noise}, params, loss, torch.ones((), dtype=torch.float64),
         {"reconstruction": reconstruction.item(), "divergence": divergence.item(), "mean": t(mu),
          "config": {"genes": genes, "hidden": hidden, "latent": latent, "beta": beta, "leaky_slope": slope}})


def bags_upsampling_masks():
    """Attention-MIL pooling over bags packed as rows with offsets (an empty and a one-row bag
    included), bilinear upsampling (align_corners=False) and attention with a key mask (one
    sample fully masked). Seeded on its own, so the cases above keep their random draws."""
    torch.manual_seed(3)

    def op_case(name, inputs, f, extra):
        for v in inputs.values():
            v.requires_grad_()
        y = f(**inputs)
        save(name, inputs, {}, y, rnd(*y.shape), extra)

    offsets = [0, 4, 4, 9, 10]
    bags = list(zip(offsets, offsets[1:]))
    op_case("segment_softmax", {"x": rnd(10, 2, scale=3)},
            lambda x: torch.cat([torch.softmax(x[a:b], dim=0) for a, b in bags]), {"offsets": offsets})
    op_case("segment_weighted_sum", {"weights": rnd(10, 2), "values": rnd(10, 5)},
            lambda weights, values: torch.stack([torch.einsum("nh,nd->hd", weights[a:b], values[a:b]) for a, b in bags]),
            {"offsets": offsets})
    for name, factor in [("upsample_bilinear", 2), ("upsample_bilinear_x3", 3)]:
        op_case(name, {"x": rnd(2, 3, 4, 5)},
                lambda x: F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False), {"factor": factor})
    key_mask = torch.tensor([[True, True, False, True, False], [False] * 5, [True] * 5])
    case("masked_attention", Attention(8, 2, 6), "attn", {"x": rnd(3, 4, 8), "context": rnd(3, 5, 6)},
         lambda m, x, context: m(x, context, key_mask), lambda m: {"key_mask": key_mask.tolist()})


if __name__ == "__main__":
    main()
