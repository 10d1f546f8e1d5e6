"""Checks for the exercises.

`check_embed(embed)` runs your function against the course's reference on a few inputs. When yours
is right it says so; when it is wrong it raises `ExerciseError` saying what is wrong, and when the
answer matches a mistake people often make, it names the mistake and how to fix it.

After a check, `carry_on("embed", embed)` gives you your function if it passed, or the reference
if it did not, so the rest of the notebook runs either way.
"""

from __future__ import annotations

import torch

from . import model as reference


class ExerciseError(AssertionError):
    """Your answer to an exercise is not right yet; the message says why."""


_passed: dict[str, bool] = {}


def _inputs(seed: int):
    return torch.Generator().manual_seed(seed)


def _run(name: str, fn, *args):
    """Call the learner's function, turning a crash or a missing answer into a clear message."""
    __tracebackhide__ = True
    if not callable(fn):
        raise ExerciseError(f"[{name}] expected a function, got {type(fn).__name__}")
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotImplementedError(
            f"Exercise '{name}' is not done yet: replace the `raise NotImplementedError(...)` line "
            f"with your code. The notebook carries on with the reference implementation meanwhile."
        ) from None
    except Exception as err:  # the learner's code crashed: say where, briefly
        shapes = ", ".join(str(tuple(a.shape)) for a in args if isinstance(a, torch.Tensor))
        raise ExerciseError(
            f"[{name}] your function raised {type(err).__name__}: {err}\n"
            f"It was called with tensors of shapes {shapes}."
        ) from None


def _compare(name: str, got, expected: torch.Tensor, mistakes: dict[str, torch.Tensor], atol=1e-5):
    """Raise ExerciseError unless got == expected; name the mistake when `got` matches one."""
    __tracebackhide__ = True
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"[{name}] expected a torch.Tensor, got {type(got).__name__}")
    for hint, wrong in mistakes.items():
        if wrong.shape == got.shape and torch.allclose(got, wrong, atol=atol, equal_nan=True):
            if not (wrong.shape == expected.shape and torch.allclose(wrong, expected, atol=atol)):
                raise ExerciseError(f"[{name}] {hint}")
    if got.shape != expected.shape:
        raise ExerciseError(f"[{name}] expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    if got.dtype != expected.dtype:
        raise ExerciseError(f"[{name}] expected dtype {expected.dtype}, got {got.dtype}")
    if torch.isnan(got).any():
        raise ExerciseError(f"[{name}] your output contains NaN (did a whole row get masked?)")
    if not torch.allclose(got, expected, atol=atol):
        diff = (got - expected).abs()
        where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
        raise ExerciseError(
            f"[{name}] right shape, wrong values: the largest difference is {diff.max():.3g} at "
            f"index {where} (yours {got[where]:.4g}, expected {expected[where]:.4g})."
        )


def _done(name: str, cases: int):
    _passed[name] = True
    print(f"✓ {name}: correct on {cases} test cases.")


def carry_on(name: str, fn):
    """Your `fn` if its check passed, else the course's reference implementation of `name`."""
    if _passed.get(name):
        return fn
    print(f"(using the reference `{name}` from course_utils: yours has not passed its check yet)")
    return getattr(reference, name)


# ---- notebook 01 -----------------------------------------------------------------------------


def check_embed(fn):
    """fn(tokens [batch, pos], W_E [d_vocab, d_model]) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    for seed, (batch, seq, d_vocab, d_model) in enumerate([(2, 5, 11, 7), (3, 9, 20, 16)]):
        g = _inputs(seed)
        tokens = torch.randint(0, d_vocab, (batch, seq), generator=g)
        W_E = torch.randn(d_vocab, d_model, generator=g)
        got = _run("embed", fn, tokens, W_E)
        mistakes = {
            "you multiplied by W_E.T: the embedding of token t is row t of W_E, i.e. W_E[tokens]":
                W_E.T[:, tokens].permute(1, 2, 0) if d_vocab == d_model else torch.empty(0),
            "your output is [pos, batch, d_model]: keep the batch axis first":
                W_E[tokens].transpose(0, 1),
            "you returned one-hot vectors, not embeddings: look the rows up in W_E":
                torch.nn.functional.one_hot(tokens, d_vocab).float(),
        }
        _compare("embed", got, reference.embed(tokens, W_E), mistakes)
    _done("embed", 2)


def check_pos_embed(fn):
    """fn(tokens [batch, pos], W_pos [n_ctx, d_model]) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    for seed, (batch, seq, n_ctx, d_vocab, d_model) in enumerate([(2, 5, 12, 12, 6), (3, 7, 10, 10, 4)]):
        g = _inputs(seed)
        tokens = torch.randint(0, d_vocab, (batch, seq), generator=g)
        W_pos = torch.randn(n_ctx, d_model, generator=g)
        got = _run("pos_embed", fn, tokens, W_pos)
        mistakes = {
            "you indexed W_pos with the token ids: positional embeddings depend on the position "
            "(0, 1, ..., pos-1), not on which token is there": W_pos[tokens],
            "you returned all n_ctx rows of W_pos: take only the first `pos` rows, W_pos[:pos]":
                W_pos.expand(batch, n_ctx, d_model),
            "you forgot the batch axis: expand W_pos[:pos] to [batch, pos, d_model]": W_pos[:seq],
        }
        _compare("pos_embed", got, reference.pos_embed(tokens, W_pos), mistakes)
    _done("pos_embed", 2)


def _pattern_mistakes(q, k):
    d_head, seq = q.shape[-1], q.shape[-2]
    scores = q @ k.transpose(-2, -1) / d_head**0.5
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    return {
        "your pattern puts weight on future positions: did you apply the causal mask "
        "(scores above the diagonal set to -inf) before the softmax?": scores.softmax(-1),
        "your scores are not divided by sqrt(d_head): without the scale the softmax is too sharp":
            (scores * d_head**0.5).masked_fill(future, float("-inf")).softmax(-1),
        "your rows do not sum to 1: take the softmax over the last axis (the keys), not the queries":
            scores.masked_fill(future, float("-inf")).softmax(-2),
        "you masked after the softmax: rows no longer sum to 1; mask the scores with -inf first":
            scores.softmax(-1).masked_fill(future, 0.0),
        "your pattern is transposed: rows are queries, columns are keys (a query attends to "
        "earlier keys, so the pattern is lower-triangular)":
            scores.masked_fill(future, float("-inf")).softmax(-1).transpose(-2, -1),
    }


def check_attention_pattern(fn):
    """fn(q [..., pos, d_head], k [..., pos, d_head]) -> pattern [..., query_pos, key_pos]."""
    __tracebackhide__ = True
    shapes = [(1, 4, 3), (2, 6, 8), (2, 3, 5, 4)]  # the last has a head axis: [batch, head, pos, d_head]
    for seed, shape in enumerate(shapes):
        g = _inputs(seed)
        q, k = torch.randn(shape, generator=g) * 2, torch.randn(shape, generator=g) * 2
        got = _run("attention_pattern", fn, q, k)
        _compare("attention_pattern", got, reference.attention_pattern(q, k), _pattern_mistakes(q, k))
    _done("attention_pattern", len(shapes))


def _random_attention_weights(g, n_heads, d_model, d_head):
    def r(*shape):
        return torch.randn(shape, generator=g) * 0.5

    return dict(W_Q=r(n_heads, d_model, d_head), b_Q=r(n_heads, d_head), W_K=r(n_heads, d_model, d_head),
                b_K=r(n_heads, d_head), W_V=r(n_heads, d_model, d_head), b_V=r(n_heads, d_head),
                W_O=r(n_heads, d_head, d_model), b_O=r(d_model))


def check_multi_head_attention(fn):
    """fn(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    for seed, (batch, seq, n_heads, d_head) in enumerate([(2, 5, 2, 3), (1, 7, 4, 2)]):
        g = _inputs(seed)
        d_model = n_heads * d_head
        x = torch.randn(batch, seq, d_model, generator=g)
        w = _random_attention_weights(g, n_heads, d_model, d_head)
        args = [x] + [w[n] for n in ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O")]
        got = _run("multi_head_attention", fn, *args)
        no_b_O = reference.multi_head_attention(*args[:-1], torch.zeros_like(w["b_O"]))
        no_mask_args = dict(w)
        q = torch.einsum("bpd,hde->bhpe", x, w["W_Q"]) + w["b_Q"][:, None]
        k = torch.einsum("bpd,hde->bhpe", x, w["W_K"]) + w["b_K"][:, None]
        v = torch.einsum("bpd,hde->bhpe", x, w["W_V"]) + w["b_V"][:, None]
        mistakes = {
            "you left out b_O, the output bias": no_b_O,
            "your heads see the future: apply the causal mask inside each head":
                torch.einsum("bhpe,hed->bpd", (q @ k.transpose(-2, -1) / d_head**0.5).softmax(-1) @ v,
                             no_mask_args["W_O"]) + w["b_O"],
            "you averaged the heads' outputs: heads write into the residual stream by adding up, "
            "so sum over the head axis":
                torch.einsum("bhpe,hed->bpd", reference.attention_pattern(q, k) @ v, w["W_O"]) / n_heads
                + w["b_O"],
            "your output still has a head axis: sum the heads' outputs into [batch, pos, d_model]":
                torch.einsum("bhpe,hed->bhpd", reference.attention_pattern(q, k) @ v, w["W_O"]),
        }
        _compare("multi_head_attention", got, reference.multi_head_attention(*args), mistakes, atol=1e-4)
    _done("multi_head_attention", 2)


def check_unembed(fn):
    """fn(resid [batch, pos, d_model], W_U [d_model, d_vocab], b_U [d_vocab]) -> logits."""
    __tracebackhide__ = True
    for seed, (batch, seq, d_model, d_vocab) in enumerate([(2, 3, 4, 9), (1, 5, 6, 6)]):
        g = _inputs(seed)
        resid = torch.randn(batch, seq, d_model, generator=g)
        W_U, b_U = torch.randn(d_model, d_vocab, generator=g), torch.randn(d_vocab, generator=g)
        got = _run("unembed", fn, resid, W_U, b_U)
        mistakes = {
            "you left out the bias b_U": resid @ W_U,
            "you applied a softmax: the unembedding returns logits, not probabilities":
                (resid @ W_U + b_U).softmax(-1),
        }
        _compare("unembed", got, reference.unembed(resid, W_U, b_U), mistakes)
    _done("unembed", 2)


def check_forward(fn, model):
    """fn(tokens, model) -> logits: your forward pass, using `model`'s weights, vs. `model(tokens)`."""
    __tracebackhide__ = True
    if not isinstance(model, reference.Transformer):
        raise TypeError(f"model must be a course_utils Transformer, got {type(model).__name__}")
    tokens = torch.randint(0, model.cfg.d_vocab, (2, min(12, model.cfg.n_ctx)), generator=_inputs(0))
    tokens = tokens.to(model.W_E.device)
    with torch.no_grad():
        expected = model(tokens)
        got = _run("forward", fn, tokens, model)
        resid = model.W_E[tokens] + model.W_pos[: tokens.shape[1]]
        mistakes = {
            "you forgot the positional embedding": model.unembed(_blocks(model, model.W_E[tokens])),
            "you replaced the residual stream by each layer's output instead of adding to it: "
            "resid = resid + attention(resid)": model.unembed(_blocks(model, resid, residual=False)),
        }
    _compare("forward", got, expected, mistakes, atol=1e-4)
    _done("forward", 1)


def _blocks(model, resid, residual=True):
    for block in model.blocks:
        out = block.attn(resid)
        resid = resid + out if residual else out
    return resid
