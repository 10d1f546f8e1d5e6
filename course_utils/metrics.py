"""Scores read off attention patterns and losses.

Patterns are [..., query_pos, key_pos] (TransformerLens's `hook_pattern` is
[batch, head, query_pos, key_pos]); every score averages over the batch and the positions it
looks at, and keeps the head axis.
"""

from __future__ import annotations

import torch


def _check_pattern(pattern: torch.Tensor, name: str = "pattern") -> None:
    if not isinstance(pattern, torch.Tensor) or pattern.ndim < 2 or pattern.shape[-1] != pattern.shape[-2]:
        shape = tuple(pattern.shape) if isinstance(pattern, torch.Tensor) else type(pattern).__name__
        raise ValueError(f"{name} must be a tensor [..., query_pos, key_pos] with query_pos == key_pos, got {shape}")


def _check_period(pattern: torch.Tensor, period: int) -> None:
    seq = pattern.shape[-1]
    if not isinstance(period, int) or not 1 <= period < seq - 1:
        raise ValueError(f"period must be an int in [1, {seq - 2}] for sequences of length {seq}, got {period!r}")


def prev_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from each position to the one before it. [batch, head, q, k] -> [head]."""
    _check_pattern(pattern)
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1).mean(0)


def induction_score(pattern: torch.Tensor, period: int) -> torch.Tensor:
    """On a sequence repeating with this period: mean attention from each position in the repeat
    to the token *after* its previous occurrence (query t -> key t - period + 1). -> [head]."""
    _check_pattern(pattern)
    _check_period(pattern, period)
    return pattern.diagonal(offset=-(period - 1), dim1=-2, dim2=-1)[..., 1:].mean(-1).mean(0)


def duplicate_token_score(pattern: torch.Tensor, period: int) -> torch.Tensor:
    """On a sequence repeating with this period: mean attention from each position in the repeat
    to the previous occurrence of its own token (query t -> key t - period). -> [head]."""
    _check_pattern(pattern)
    _check_period(pattern, period)
    return pattern.diagonal(offset=-period, dim1=-2, dim2=-1).mean(-1).mean(0)


def head_scores(model, tokens: torch.Tensor, score, **kwargs) -> torch.Tensor:
    """score(pattern, **kwargs) for every head of every layer: [n_layers, n_heads].

    Works on a course Transformer and on a TransformerBridge alike.
    """
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return torch.stack([score(cache[name], **kwargs) for name in names])
