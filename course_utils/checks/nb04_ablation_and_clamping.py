"""Checks for notebook 04, "Ablation and clamping": replacing one head's output, removing a writer
from a reader's keys (K-path ablation), and the perfect previous-token pattern used for clamping."""

from __future__ import annotations

import einops
import torch

from .. import ablation, clamping
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "ablate_head": ablation.ablate_head,
    "keys_without": ablation.keys_without,
    "perfect_prev_token_pattern": clamping.perfect_prev_token_pattern,
}


def check_ablate_head(fn):
    """fn(z [batch, pos, head, d_head], head, replacement) -> z with that head's output replaced."""
    __tracebackhide__ = True
    cases = [("zero", (3, 5, 4, 6)), ("mean", (2, 6, 3, 4)), ("resample", (3, 4, 5, 2)), ("zero, as a float", (2, 3, 2, 3))]
    for seed, (kind, (batch, pos, heads, d_head)) in enumerate(cases):
        g = fixtures.generator(seed)
        z = torch.randn(batch, pos, heads, d_head, generator=g)
        other = torch.randn(batch, pos, d_head, generator=g)
        replacement = {"zero": torch.zeros(()), "mean": other.mean(0), "resample": other, "zero, as a float": 0.0}[kind]
        head = (1 + seed) % heads
        expected = ablation.ablate_head(z, head, replacement)
        got = call("ablate_head", fn, {"z": z, "head": head, "replacement": replacement})
        rep = torch.as_tensor(replacement, dtype=z.dtype).expand(batch, pos, d_head)

        def edited(edit):
            copy = z.clone()
            edit(copy)
            return copy

        mistakes = {
            "you replaced every head's output: only z[:, :, head] changes (the head axis is the third)":
                edited(lambda c: c.copy_(rep[:, :, None].expand_as(c))),
            "you added the replacement to the head's output: ablation REPLACES it":
                edited(lambda c: c[:, :, head].add_(rep)),
            "you zeroed the head whatever the replacement: set z[:, :, head] = replacement (zeros, the "
            "mean, or another input's output)": edited(lambda c: c[:, :, head].zero_()),
            "you indexed the position axis: z[:, head] is position `head`; the head axis is the third, "
            "z[:, :, head]": lambda: edited(lambda c: c[:, head].copy_(rep[:, head, None].expand_as(c[:, head]))),
            "you indexed the first axis, the batch: the head axis is the third, z[:, :, head]":
                lambda: edited(lambda c: c[head].copy_(rep[head, :, None].expand_as(c[head]))),
        }
        compare("ablate_head", got, expected, mistakes, axes="batch pos head d_head")
    done("ablate_head", len(cases))


def check_keys_without(fn):
    """fn(k [batch, pos, head, d_head], removed [batch, pos, d_model], W_K [head, d_model, d_head], head) -> new k."""
    __tracebackhide__ = True
    shapes = [(2, 5, 3, 4, 8), (3, 6, 4, 2, 8), (1, 4, 2, 5, 5)]  # (batch, pos, heads, d_head, d_model)
    for seed, (batch, pos, heads, d_head, d_model) in enumerate(shapes):
        g = fixtures.generator(seed)
        k = torch.randn(batch, pos, heads, d_head, generator=g)
        removed = torch.randn(batch, pos, d_model, generator=g)
        W_K = torch.randn(heads, d_model, d_head, generator=g)
        head = (seed + 1) % heads
        expected = ablation.keys_without(k, removed, W_K, head)
        got = call("keys_without", fn, {"k": k, "removed": removed, "W_K": W_K, "head": head})
        image = removed @ W_K[head]
        added, dropped = k.clone(), k.clone()
        added[:, :, head] += image
        dropped[:, :, head] = 0
        mistakes = {
            "you added the writer's contribution: to remove it from the keys, subtract removed @ W_K[head]": added,
            "you removed it from every head's keys: only the reader head's keys change":
                k - einops.einsum(removed, W_K, "batch pos d_model, head d_model d_head -> batch pos head d_head"),
            "you zeroed the head's keys: that removes everything it reads, not only the writer's part": dropped,
            "you returned only the head's keys [batch, pos, d_head]: return all the keys, with that head's changed":
                expected[:, :, head],
            "you multiplied by W_K[head].T: W_K[head] is [d_model, d_head], so removed @ W_K[head]":
                lambda: torch.cat([k[:, :, :head], (k[:, :, head] - removed @ W_K[head].T)[:, :, None],
                                   k[:, :, head + 1:]], 2),
        }
        compare("keys_without", got, expected, mistakes, atol=1e-4, axes="batch pos head d_head")
    done("keys_without", len(shapes))


def check_perfect_prev_token_pattern(fn):
    """fn(n_ctx) -> [n_ctx, n_ctx] float: query i attends only to key i - 1; query 0 to itself."""
    __tracebackhide__ = True
    sizes = (4, 7, 2)
    for n in sizes:
        expected = clamping.perfect_prev_token_pattern(n)
        got = call("perfect_prev_token_pattern", fn, {"n_ctx": n})
        no_first = expected.clone()
        no_first[0, 0] = 0
        mistakes = {
            "you put the ones above the diagonal (offset +1): that is attention to the NEXT token, which "
            "the causal mask forbids; the previous token is diagonal offset -1":
                torch.diag(torch.ones(n - 1), diagonal=1),
            "the pattern is the identity: each token attends to itself, not to the one before it": torch.eye(n),
            "row 0 is all zeros, so it does not sum to 1: query 0 has no previous token, let it attend to "
            "itself": no_first,
            "your pattern is transposed: rows are queries, columns are keys": expected.T,
            "that is uniform attention over the past (every earlier key equally): a previous-token head puts "
            "all its attention on the one key just before the query":
                torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None],
        }
        compare("perfect_prev_token_pattern", got, expected, mistakes, axes="query_pos key_pos")
    done("perfect_prev_token_pattern", len(sizes))
