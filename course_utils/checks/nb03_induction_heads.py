"""Checks for notebook 03, "Finding induction heads": the previous-token, induction and
duplicate-token scores of attention patterns, and the composition score of two heads."""

from __future__ import annotations

import torch

from .. import metrics
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "prev_token_score": metrics.prev_token_score,
    "induction_score": metrics.induction_score,
    "duplicate_token_score": metrics.duplicate_token_score,
    "composition_score": metrics.composition_score,
}

# Pattern sizes (batch, head, pos) and periods: no period is half the length, so a score that
# hard-codes `pos // 2` (or ignores `period`) gives a different answer.
_PATTERNS = [((3, 4, 12), 5), ((2, 3, 15), 4), ((4, 2, 9), 3)]


def _diagonal_mean(pattern, offset, skip=0):
    """Mean of a pattern's diagonal at `offset`, without its first `skip` entries, over positions and batch."""
    return pattern.diagonal(offset=offset, dim1=-2, dim2=-1)[..., skip:].mean(-1).mean(0)


def _averaging_mistakes(pattern, offset, skip):
    diagonal = pattern.diagonal(offset=offset, dim1=-2, dim2=-1)[..., skip:]  # [batch, head, n]
    return {
        "you averaged over the heads too: keep one score per head, shape [head]": diagonal.mean(),
        "you kept the batch axis: average over the batch as well, to shape [head]": diagonal.mean(-1),
        "you kept the position axis: average over the positions as well, to shape [head]": diagonal.mean(0),
        "you summed over the positions: average them, so the score is a share of attention (0 to 1)":
            diagonal.sum(-1).mean(0),
    }


def check_prev_token_score(fn):
    """fn(pattern [batch, head, query_pos, key_pos]) -> [head]."""
    __tracebackhide__ = True
    for seed, (shape, _) in enumerate(_PATTERNS):
        pattern = fixtures.causal_patterns(seed, *shape)
        expected = metrics.prev_token_score(pattern)
        got = call("prev_token_score", fn, {"pattern": pattern})
        mistakes = {
            "you read the diagonal above the main one (offset +1): that is attention to the NEXT "
            "token, which the causal mask sets to 0; the previous token is offset -1":
                _diagonal_mean(pattern, 1),
            "you read the main diagonal: that is attention to the token itself; use offset -1":
                _diagonal_mean(pattern, 0),
            "you read offset -2, two tokens back: the previous token is offset -1": _diagonal_mean(pattern, -2),
            **_averaging_mistakes(pattern, -1, 0),
        }
        compare("prev_token_score", got, expected, mistakes, axes="head")
    done("prev_token_score", len(_PATTERNS))


def check_induction_score(fn):
    """fn(pattern [batch, head, query_pos, key_pos], period) -> [head]."""
    __tracebackhide__ = True
    for seed, (shape, period) in enumerate(_PATTERNS):
        pattern = fixtures.causal_patterns(seed, *shape)
        expected = metrics.induction_score(pattern, period)
        got = call("induction_score", fn, {"pattern": pattern, "period": period})
        mistakes = {
            "you measured attention to the previous occurrence of the same token (offset -period): "
            "that is the duplicate-token score; an induction head attends to the token AFTER it, "
            "offset -(period - 1)": _diagonal_mean(pattern, -period),
            "you included the query at position period - 1, which is still in the first copy (it "
            "attends back to position 0 by chance, not by induction): drop the first entry of the "
            "diagonal": _diagonal_mean(pattern, -(period - 1)),
            "you read offset -(period + 1): an induction head attends to the token just AFTER the "
            "previous occurrence, offset -(period - 1)": _diagonal_mean(pattern, -(period + 1)),
            "you used half the sequence length as the period: use the `period` argument":
                lambda: _diagonal_mean(pattern, -(pattern.shape[-1] // 2 - 1), skip=1),
            **_averaging_mistakes(pattern, -(period - 1), 1),
        }
        compare("induction_score", got, expected, mistakes, axes="head")
    done("induction_score", len(_PATTERNS))


def check_duplicate_token_score(fn):
    """fn(pattern [batch, head, query_pos, key_pos], period) -> [head]."""
    __tracebackhide__ = True
    for seed, (shape, period) in enumerate(_PATTERNS):
        pattern = fixtures.causal_patterns(seed, *shape)
        expected = metrics.duplicate_token_score(pattern, period)
        got = call("duplicate_token_score", fn, {"pattern": pattern, "period": period})
        mistakes = {
            "you measured attention to the token AFTER the previous occurrence (offset "
            "-(period - 1)): that is induction; a duplicate-token head attends to the previous "
            "occurrence itself, offset -period": _diagonal_mean(pattern, -(period - 1), skip=1),
            "you read offset +period, above the diagonal, where the causal mask leaves only zeros: "
            "the previous occurrence is `period` positions back, offset -period": _diagonal_mean(pattern, period),
            "you read the diagonal just below the main one (offset -1): that is the previous-token score":
                _diagonal_mean(pattern, -1),
            "you used half the sequence length as the period: use the `period` argument":
                lambda: _diagonal_mean(pattern, -(pattern.shape[-1] // 2)),
            **_averaging_mistakes(pattern, -period, 0),
        }
        compare("duplicate_token_score", got, expected, mistakes, axes="head")
    done("duplicate_token_score", len(_PATTERNS))


def check_composition_score(fn):
    """fn(W_A [d, m], W_B [m, e]) -> ||W_A W_B||_F / (||W_A||_F ||W_B||_F), a 0-d tensor."""
    __tracebackhide__ = True
    shapes = [(6, 6, 6), (8, 8, 5), (5, 3, 7)]  # (d, m, e): the first square, the last with m < d
    for seed, (d, m, e) in enumerate(shapes):
        g = fixtures.generator(seed)
        A, B = torch.randn(d, m, generator=g) * 3, torch.randn(m, e, generator=g) * 0.5
        expected = metrics.composition_score(A, B)
        got = call("composition_score", fn, {"W_A": A, "W_B": B})
        mistakes = {
            "you did not normalise: divide ||W_A W_B|| by ||W_A|| * ||W_B||, so the score does not "
            "depend on the weights' scale": (A @ B).norm(),
            "you multiplied in the wrong order: the writer's output W_A comes first, W_A @ W_B":
                lambda: (B @ A).norm() / (A.norm() * B.norm()),
            "you divided by the squared norms: use the plain Frobenius norms, ||W_A||_F * ||W_B||_F":
                (A @ B).norm() / (A.norm() ** 2 * B.norm() ** 2),
            "you added the norms: divide by their product, ||W_A||_F * ||W_B||_F": (A @ B).norm() / (A.norm() + B.norm()),
            "you used the squared Frobenius norms throughout: take the square roots, .norm()":
                (A @ B).pow(2).sum() / (A.pow(2).sum() * B.pow(2).sum()),
        }
        compare("composition_score", got, expected, mistakes, atol=1e-4)
    done("composition_score", len(shapes))
