"""Inputs for the checks, chosen so that every parameter matters.

Biases are never zero (a forgotten bias shows), models have more layers and heads than the
notebooks' (a hard-coded layer or head count shows), batches vary in size, length and token ids
(a hard-coded shape, or an off-by-one at either end of the vocabulary, shows), and every draw is
seeded, so a check says the same thing each time it runs.
"""

from __future__ import annotations

import torch

from ..bridge import to_bridge
from ..model import Config, Transformer


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tokens(g: torch.Generator, batch: int, seq: int, d_vocab: int) -> torch.Tensor:
    """Random token ids [batch, seq] that include the first and the last id of the vocabulary."""
    ids = torch.randint(0, d_vocab, (batch, seq), generator=g)
    ids.view(-1)[0] = 0
    ids.view(-1)[-1] = d_vocab - 1
    return ids


def causal_patterns(seed: int, batch: int, heads: int, seq: int) -> torch.Tensor:
    """Random attention patterns [batch, head, query_pos, key_pos]: causal, rows summing to 1, and
    different on every diagonal, so that reading the wrong diagonal gives a different score."""
    scores = torch.randn(batch, heads, seq, seq, generator=generator(seed)) * 2
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


def attention_weights(g: torch.Generator, n_heads: int, d_model: int, d_head: int) -> dict[str, torch.Tensor]:
    """Random weights and (non-zero) biases of one attention layer, in TransformerLens shapes."""
    def r(*shape):
        return torch.randn(shape, generator=g) * 0.5

    return dict(W_Q=r(n_heads, d_model, d_head), b_Q=r(n_heads, d_head), W_K=r(n_heads, d_model, d_head),
                b_K=r(n_heads, d_head), W_V=r(n_heads, d_model, d_head), b_V=r(n_heads, d_head),
                W_O=r(n_heads, d_head, d_model), b_O=r(d_model))


def model(seed: int = 0, n_layers: int = 3, n_heads: int = 3, d_model: int = 12, d_vocab: int = 13, n_ctx: int = 12,
          attn_only: bool = False, d_input: int | None = None) -> Transformer:
    """A small random course Transformer in eval mode, every parameter jittered: no bias is zero and
    no LayerNorm scale is one. With MLPs and LayerNorm unless attn_only (then neither, as in 01, and
    smaller weights: without LayerNorm, three layers of large weights give logits in the hundreds)."""
    cfg = Config(d_vocab=d_vocab, n_ctx=n_ctx, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                 attn_only=attn_only, d_mlp=None if attn_only else 2 * d_model,
                 normalization_type=None if attn_only else "LN", init_range=0.3 if attn_only else 0.5, seed=seed,
                 d_input=d_input)
    built = Transformer(cfg).eval()
    g = generator(seed + 100)
    with torch.no_grad():
        for p in built.parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.1 if attn_only else 0.3))
    return built


def vector_model(seed: int = 0) -> Transformer:
    """A small random model that reads vectors of 3 numbers (notebook 13's kind, with d = 2): 4 points."""
    return model(seed, n_layers=2, n_heads=2, d_model=8, d_vocab=1, n_ctx=8, d_input=3)


def bridge(seed: int = 0, **shape) -> object:
    """`model(seed, **shape)` as a TransformerBridge: the same weights, the same logits, TransformerLens's
    own hook points (where a hook on the wrong one can behave differently than on the course's model)."""
    return to_bridge(model(seed, **shape)).eval()
