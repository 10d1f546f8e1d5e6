"""Checks for notebook 01, "Build a two-layer transformer": embedding, positional embedding, causal
attention, multi-head attention, unembedding, and the forward pass that puts them together."""

from __future__ import annotations

import einops
import torch
import torch.nn.functional as F

from .. import model as reference
from .. import validate
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "embed": reference.embed,
    "pos_embed": reference.pos_embed,
    "attention_pattern": reference.attention_pattern,
    "multi_head_attention": reference.multi_head_attention,
    "unembed": reference.unembed,
}


def check_embed(fn):
    """fn(tokens [batch, pos], W_E [d_vocab, d_model]) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    shapes = [(2, 5, 11, 7), (3, 9, 20, 16), (1, 6, 8, 8)]  # (batch, pos, d_vocab, d_model); the last is square
    for seed, (batch, seq, d_vocab, d_model) in enumerate(shapes):
        g = fixtures.generator(seed)
        tokens = fixtures.tokens(g, batch, seq, d_vocab)
        W_E = torch.randn(d_vocab, d_model, generator=g)
        expected = reference.embed(tokens, W_E)
        got = call("embed", fn, {"tokens": tokens, "W_E": W_E})
        mistakes = {
            "you looked the tokens up in W_E.T: W_E is [d_vocab, d_model], so the embedding of token t "
            "is row t of W_E, W_E[tokens]": lambda: W_E.T[tokens],
            "your output is [pos, batch, d_model]: keep the batch axis first": expected.transpose(0, 1),
            "you returned one-hot vectors, not embeddings: look the rows up in W_E":
                lambda: F.one_hot(tokens, d_vocab).float(),
            "you embedded only the first sequence of the batch: index W_E with the whole tokens tensor":
                W_E[tokens[0]],
        }
        compare("embed", got, expected, mistakes, axes="batch pos d_model")
    done("embed", len(shapes))


def check_pos_embed(fn):
    """fn(tokens [batch, pos], W_pos [n_ctx, d_model]) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    shapes = [(2, 5, 12, 12, 6), (3, 7, 10, 10, 4), (4, 1, 9, 30, 5)]  # (batch, pos, n_ctx, d_vocab, d_model)
    for seed, (batch, seq, n_ctx, d_vocab, d_model) in enumerate(shapes):
        g = fixtures.generator(seed)
        tokens = fixtures.tokens(g, batch, seq, d_vocab)
        W_pos = torch.randn(n_ctx, d_model, generator=g)
        expected = reference.pos_embed(tokens, W_pos)
        got = call("pos_embed", fn, {"tokens": tokens, "W_pos": W_pos})
        mistakes = {
            "you indexed W_pos with the token ids: positional embeddings depend on the position "
            "(0, 1, ..., pos-1), not on which token is there": lambda: W_pos[tokens],
            "you returned all n_ctx rows of W_pos: take only the first `pos` rows, W_pos[:pos]":
                W_pos.expand(batch, n_ctx, d_model),
            "you forgot the batch axis: expand W_pos[:pos] to [batch, pos, d_model]": W_pos[:seq],
            "you took the first `batch` rows of W_pos: the positions are the second axis of tokens, "
            "tokens.shape[1]": W_pos[:batch].expand(batch, batch, d_model),
        }
        compare("pos_embed", got, expected, mistakes, axes="batch pos d_model")
    done("pos_embed", len(shapes))


_PATTERN_NAN = ("a row of the pattern is NaN when every score in it is -inf (the softmax divides 0 by 0): "
                "mask only the keys after the query (torch.triu(..., diagonal=1)), so each query keeps itself")


def _pattern_mistakes(q, k):
    d_head, seq = q.shape[-1], q.shape[-2]
    scores = q @ k.transpose(-2, -1) / d_head**0.5
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    return {
        "your pattern puts weight on future positions: did you apply the causal mask "
        "(scores above the diagonal set to -inf) before the softmax?": scores.softmax(-1),
        "your scores are not divided by sqrt(d_head): without the scale the softmax is too sharp":
            (scores * d_head**0.5).masked_fill(future, float("-inf")).softmax(-1),
        "you divided the scores by d_head: divide by its square root, sqrt(d_head)":
            (scores / d_head**0.5).masked_fill(future, float("-inf")).softmax(-1),
        "your rows do not sum to 1: take the softmax over the last axis (the keys), not the queries":
            scores.masked_fill(future, float("-inf")).softmax(-2),
        "you masked after the softmax: rows no longer sum to 1; mask the scores with -inf first":
            scores.softmax(-1).masked_fill(future, 0.0),
        "you set the masked scores to 0: exp(0) = 1, so future keys still get weight; set them to -inf":
            scores.masked_fill(future, 0.0).softmax(-1),
        "your pattern is transposed: rows are queries, columns are keys (a query attends to "
        "earlier keys, so the pattern is lower-triangular)":
            scores.masked_fill(future, float("-inf")).softmax(-1).transpose(-2, -1),
        "you masked the diagonal too: a query may attend to its own position (query 0 has nothing "
        "else), so mask only above the diagonal, torch.triu(..., diagonal=1)":
            scores.masked_fill(torch.triu(torch.ones(seq, seq, dtype=torch.bool)), float("-inf")).softmax(-1),
    }


def check_attention_pattern(fn):
    """fn(q [..., pos, d_head], k [..., pos, d_head]) -> pattern [..., query_pos, key_pos]."""
    __tracebackhide__ = True
    shapes = [(1, 4, 3), (2, 6, 8), (2, 3, 5, 4)]  # the last has a head axis: [batch, head, pos, d_head]
    for seed, shape in enumerate(shapes):
        g = fixtures.generator(seed)
        q, k = torch.randn(shape, generator=g) * 2, torch.randn(shape, generator=g) * 2
        expected = reference.attention_pattern(q, k)
        got = call("attention_pattern", fn, {"q": q, "k": k})
        axes = " ".join(["batch", "head"][: len(shape) - 2] + ["query_pos", "key_pos"])
        compare("attention_pattern", got, expected, _pattern_mistakes(q, k), axes=axes, nan_hint=_PATTERN_NAN)
    done("attention_pattern", len(shapes))


_WEIGHT_NAMES = ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O")


def _attention(x, w, mask=True, reduce="sum", scale=True):
    """Multi-head attention written out, with the switches that make the common mistakes."""
    project = "batch pos d_model, head d_model d_head -> batch head pos d_head"
    q = einops.einsum(x, w["W_Q"], project) + w["b_Q"][:, None]
    k = einops.einsum(x, w["W_K"], project) + w["b_K"][:, None]
    v = einops.einsum(x, w["W_V"], project) + w["b_V"][:, None]
    if mask:  # without the scale: k * sqrt(d_head) cancels the division inside attention_pattern
        pattern = reference.attention_pattern(q, k if scale else k * q.shape[-1] ** 0.5)
    else:
        pattern = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)
    out = einops.einsum(pattern @ v, w["W_O"], "batch head pos d_head, head d_head d_model -> batch head pos d_model")
    if reduce == "keep":
        return out
    return (out.sum(1) if reduce == "sum" else out.mean(1)) + w["b_O"]


def check_multi_head_attention(fn):
    """fn(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    shapes = [(2, 5, 2, 3), (1, 7, 4, 2), (3, 4, 3, 4)]  # (batch, pos, n_heads, d_head)
    for seed, (batch, seq, n_heads, d_head) in enumerate(shapes):
        g = fixtures.generator(seed)
        d_model = n_heads * d_head
        x = torch.randn(batch, seq, d_model, generator=g)
        w = fixtures.attention_weights(g, n_heads, d_model, d_head)
        inputs = {"x": x, **{name: w[name] for name in _WEIGHT_NAMES}}
        expected = reference.multi_head_attention(*inputs.values())
        got = call("multi_head_attention", fn, inputs)
        no_qkv_bias = dict(w, b_Q=torch.zeros_like(w["b_Q"]), b_K=torch.zeros_like(w["b_K"]),
                           b_V=torch.zeros_like(w["b_V"]))
        mistakes = {
            "you left out b_O, the output bias": expected - w["b_O"],
            "you left out the biases b_Q, b_K and b_V: add each to its projection": _attention(x, no_qkv_bias),
            "your heads see the future: apply the causal mask inside each head": _attention(x, w, mask=False),
            "your scores are not divided by sqrt(d_head)": _attention(x, w, scale=False),
            "you averaged the heads' outputs: heads write into the residual stream by adding up, "
            "so sum over the head axis": _attention(x, w, reduce="mean"),
            "your output still has a head axis: sum the heads' outputs into [batch, pos, d_model]":
                _attention(x, w, reduce="keep"),
        }
        compare("multi_head_attention", got, expected, mistakes, atol=1e-4, axes="batch pos d_model",
                nan_hint=_PATTERN_NAN)
    done("multi_head_attention", len(shapes))


def check_unembed(fn):
    """fn(resid [batch, pos, d_model], W_U [d_model, d_vocab], b_U [d_vocab]) -> logits [batch, pos, d_vocab]."""
    __tracebackhide__ = True
    shapes = [(2, 3, 4, 9), (1, 5, 6, 6), (3, 2, 5, 7)]  # (batch, pos, d_model, d_vocab); the second is square
    for seed, (batch, seq, d_model, d_vocab) in enumerate(shapes):
        g = fixtures.generator(seed)
        resid = torch.randn(batch, seq, d_model, generator=g)
        W_U, b_U = torch.randn(d_model, d_vocab, generator=g), torch.randn(d_vocab, generator=g)
        expected = reference.unembed(resid, W_U, b_U)
        got = call("unembed", fn, {"resid": resid, "W_U": W_U, "b_U": b_U})
        mistakes = {
            "you left out the bias b_U": resid @ W_U,
            "you applied a softmax: the unembedding returns logits, not probabilities": expected.softmax(-1),
            "you applied a log_softmax: the unembedding returns the logits themselves": expected.log_softmax(-1),
            "you multiplied by W_U.T: W_U is [d_model, d_vocab], so resid @ W_U": lambda: resid @ W_U.T + b_U,
        }
        compare("unembed", got, expected, mistakes, axes="batch pos d_vocab")
    done("unembed", len(shapes))


def _forward(tokens, model, pos=True, residual=True, layers=None, b_U=True, unembed=True):
    """The forward pass of notebook 01 written out, with the switches that make the common mistakes."""
    resid = reference.embed(tokens, model.W_E) + (reference.pos_embed(tokens, model.W_pos) if pos else 0)
    for block in list(model.blocks)[:layers]:
        a = block.attn
        out = reference.multi_head_attention(resid, a.W_Q, a.b_Q, a.W_K, a.b_K, a.W_V, a.b_V, a.W_O, a.b_O)
        resid = resid + out if residual else out
    if not unembed:
        return resid
    return reference.unembed(resid, model.W_U, model.b_U if b_U else torch.zeros_like(model.b_U))


def check_forward(fn, model):
    """fn(tokens, model) -> logits: your forward pass with `model`'s weights, against `model(tokens)`.

    Tried on `model` and on two more attention-only models with three layers and non-zero biases,
    with batches of different lengths."""
    __tracebackhide__ = True
    validate.instance(model, reference.Transformer, "model")
    if not model.cfg.attn_only or model.cfg.normalization_type is not None:
        raise ValueError("model must be attention-only without LayerNorm, like notebook 01's "
                         f"(attn_only=True, normalization_type=None), got {model.cfg}")
    models = [model, fixtures.model(seed=1, attn_only=True), fixtures.model(seed=2, n_heads=2, attn_only=True)]
    cases = 0
    for seed, m in enumerate(models):
        device = m.W_E.device
        for batch, seq in [(2, min(12, m.cfg.n_ctx)), (3, min(5, m.cfg.n_ctx))]:
            tokens = fixtures.tokens(fixtures.generator(seed), batch, seq, m.cfg.d_vocab).to(device)
            with torch.no_grad():
                expected = m(tokens)
                got = call("forward", fn, {"tokens": tokens, "model": m})
                mistakes = {
                    "you forgot the positional embedding": lambda: _forward(tokens, m, pos=False),
                    "you replaced the residual stream by each layer's output instead of adding to it: "
                    "resid = resid + attention(resid)": lambda: _forward(tokens, m, residual=False),
                    "you ran only the first block: is the `return` (or the unembedding) inside the loop over "
                    "model.blocks?": lambda: _forward(tokens, m, layers=1),
                    "you left out the unembedding's bias b_U": lambda: _forward(tokens, m, b_U=False),
                    "you returned the residual stream: finish with the unembedding, which gives logits":
                        lambda: _forward(tokens, m, unembed=False),
                }
            compare("forward", got, expected, mistakes, atol=1e-4, axes="batch pos d_vocab", nan_hint=_PATTERN_NAN)
            cases += 1
    done("forward", cases)
