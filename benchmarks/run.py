"""Speed of the course model, as ratios against baselines measured in the same run.

- training step (forward, backward, AdamW) of the course `Transformer` with no hooks attached, vs.
  a minimal plain-PyTorch model of the same size using F.scaled_dot_product_attention
  (target: at most 1.10x), and vs. `TransformerBridge.boot_native` on the same config;
- `run_with_cache` vs. a plain forward pass of the course model.

The three models are timed in interleaved rounds and each figure is the median over rounds, so
that a slow moment of a noisy machine hits them all alike.

Usage: python benchmarks/run.py [--rounds N] [--steps-per-round N]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.bridge import to_bridge
from course_utils.model import Config, Transformer


class PlainAttention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x):
        b, p, d = x.shape
        q, k, v = self.qkv(x).view(b, p, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(z.transpose(1, 2).reshape(b, p, d))


class PlainModel(nn.Module):
    """The same attention-only transformer, with nothing between PyTorch and the math."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.pos = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.layers = nn.ModuleList([PlainAttention(cfg) for _ in range(cfg.n_layers)])
        self.unembed = nn.Linear(cfg.d_model, cfg.d_vocab)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1]))
        for layer in self.layers:
            x = x + layer(x)
        return self.unembed(x)


def lm_loss(logits, tokens):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def step_fn(model, tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        loss = lm_loss(model(tokens), tokens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps-per-round", type=int, default=20)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    cfg = Config(d_vocab=64, n_ctx=64, d_model=64, n_heads=4, n_layers=2, attn_only=True)
    tokens = torch.randint(0, cfg.d_vocab, (32, cfg.n_ctx))
    course = Transformer(cfg)
    contenders = {
        "plain PyTorch (SDPA)": step_fn(PlainModel(cfg), tokens),
        "course Transformer": step_fn(course, tokens),
        "TransformerBridge.boot_native": step_fn(to_bridge(Transformer(cfg)), tokens),
    }
    with torch.no_grad():
        contenders["course forward"] = lambda: course(tokens)
        contenders["course run_with_cache"] = lambda: course.run_with_cache(tokens)
    times = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up
        time_per_call(fn, 3)
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            if "forward" in name or "cache" in name:
                with torch.no_grad():
                    times[name].append(time_per_call(fn, args.steps_per_round))
            else:
                times[name].append(time_per_call(fn, args.steps_per_round))
    median = {name: statistics.median(ts) for name, ts in times.items()}

    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"model: {cfg.n_layers} layers, {cfg.n_heads} heads, d_model {cfg.d_model}, batch {tokens.shape}")
    print(f"{'what':34s} {'ms/call':>9s}  ratio")
    base = median["plain PyTorch (SDPA)"]
    for name in ["plain PyTorch (SDPA)", "course Transformer", "TransformerBridge.boot_native"]:
        print(f"train step, {name:22s} {1000 * median[name]:9.2f}  {median[name] / base:.2f}x plain")
    ratio = median["course Transformer"] / base
    print(f"course vs bridge: {median['course Transformer'] / median['TransformerBridge.boot_native']:.2f}x "
          f"(below 1 means faster than the bridge)")
    fwd = median["course forward"]
    print(f"forward, course Transformer        {1000 * fwd:9.2f}  1.00x")
    print(f"run_with_cache, course Transformer {1000 * median['course run_with_cache']:9.2f}  "
          f"{median['course run_with_cache'] / fwd:.2f}x forward")
    verdict = "met" if ratio <= 1.10 else "MISSED"
    print(f"target: course train step <= 1.10x plain PyTorch: {ratio:.2f}x ({verdict})")
    return 0 if math.isfinite(ratio) else 1


if __name__ == "__main__":
    raise SystemExit(main())
