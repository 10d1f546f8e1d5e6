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
        raise ExerciseError(f"[{name}] expected a function as fn (pass the function itself, not its result), "
                            f"got {type(fn).__name__}")
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
    from . import ablation, clamping, function_vectors, lens, metrics, patching

    if _passed.get(name):
        return fn
    for module in (reference, metrics, ablation, clamping, lens, patching, function_vectors):
        if hasattr(module, name):
            print(f"(using the reference `{name}` from course_utils.{module.__name__.split('.')[-1]}: "
                  f"yours has not passed its check yet)")
            return getattr(module, name)
    raise KeyError(f"no reference implementation named {name!r} in course_utils: name must be the name of "
                   f"an exercise's function, e.g. 'embed' or 'induction_score'")


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


# ---- notebook 02 -----------------------------------------------------------------------------


def check_per_token_loss(fn):
    """fn(logits [batch, pos, d_vocab], tokens [batch, pos]) -> loss [batch, pos - 1]."""
    __tracebackhide__ = True
    from . import metrics

    for seed, (batch, seq, d_vocab) in enumerate([(2, 6, 5), (3, 9, 11)]):
        g = _inputs(seed)
        logits = torch.randn(batch, seq, d_vocab, generator=g) * 2
        tokens = torch.randint(0, d_vocab, (batch, seq), generator=g)
        got = _run("per_token_loss", fn, logits, tokens)
        log_probs = logits.log_softmax(-1)
        mistakes = {
            "you compared each position's logits with the token at the same position: the logits at "
            "position t predict the token at t + 1 (use logits[:, :-1] and tokens[:, 1:])":
                -log_probs.gather(-1, tokens[..., None])[..., 0][:, 1:],
            "your loss is negative: the loss is MINUS the log-probability of the right token":
                log_probs[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0],
            "you used the probability, not its log: loss = -log_softmax(logits)[right token]":
                -logits.softmax(-1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0],
            "you took log(softmax) over the wrong axis: normalise over the vocabulary (the last axis)":
                -logits.log_softmax(1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0],
        }
        _compare("per_token_loss", got, metrics.per_token_loss(logits, tokens), mistakes)
    _done("per_token_loss", 2)


def check_icl_score(fn):
    """fn(loss_by_token [..., pos - 1], early: slice, late: slice) -> a scalar tensor."""
    __tracebackhide__ = True
    from . import metrics

    for seed, (shape, early, late) in enumerate([((4, 20), slice(0, 4), slice(15, 19)),
                                                 ((2, 3, 31), slice(0, 6), slice(22, 31))]):
        loss = torch.rand(shape, generator=_inputs(seed)) * 3
        got = _run("icl_score", fn, loss, early, late)
        if isinstance(got, (int, float)):
            got = torch.tensor(float(got))
        mistakes = {
            "your sign is flipped: the ICL score is late MINUS early, so it is negative when the "
            "model does better later in the context": loss[..., early].mean() - loss[..., late].mean(),
            "you summed the losses: use the mean over each range (the ranges may differ in length)":
                loss[..., late].sum() - loss[..., early].sum(),
        }
        _compare("icl_score", got, metrics.icl_score(loss, early, late), mistakes)
    _done("icl_score", 2)


# ---- notebook 03 -----------------------------------------------------------------------------


def _random_patterns(seed: int, batch=3, heads=4, seq=12):
    g = _inputs(seed)
    scores = torch.randn(batch, heads, seq, seq, generator=g) * 2
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


def _diag_mean(pattern, offset, skip=0):
    return pattern.diagonal(offset=offset, dim1=-2, dim2=-1)[..., skip:].mean(-1).mean(0)


def check_prev_token_score(fn):
    """fn(pattern [batch, head, q, k]) -> [head]."""
    __tracebackhide__ = True
    from . import metrics

    for seed in range(2):
        pattern = _random_patterns(seed)
        got = _run("prev_token_score", fn, pattern)
        mistakes = {
            "you read the diagonal above the main one (offset +1): that is attention to the NEXT "
            "token, which the causal mask sets to 0; the previous token is offset -1":
                _diag_mean(pattern, 1),
            "you read the main diagonal: that is attention to the token itself; use offset -1":
                _diag_mean(pattern, 0),
            "you averaged over the heads too: keep one score per head, shape [head]":
                _diag_mean(pattern, -1).mean(),
        }
        _compare("prev_token_score", got, metrics.prev_token_score(pattern), mistakes)
    _done("prev_token_score", 2)


def check_induction_score(fn):
    """fn(pattern [batch, head, q, k], period) -> [head]."""
    __tracebackhide__ = True
    from . import metrics

    for seed, period in [(0, 5), (1, 6)]:
        pattern = _random_patterns(seed)
        got = _run("induction_score", fn, pattern, period)
        mistakes = {
            "you measured attention to the previous occurrence of the same token (offset -period): "
            "that is the duplicate-token score; an induction head attends to the token AFTER it, "
            "offset -(period - 1)": _diag_mean(pattern, -period),
            "you included the query at position period - 1, which is still in the first copy (it "
            "attends back to position 0 by chance, not by induction): drop the first entry of the "
            "diagonal": _diag_mean(pattern, -(period - 1)),
            "you averaged over the heads too: keep one score per head, shape [head]":
                _diag_mean(pattern, -(period - 1), skip=1).mean(),
        }
        _compare("induction_score", got, metrics.induction_score(pattern, period), mistakes)
    _done("induction_score", 2)


def check_duplicate_token_score(fn):
    """fn(pattern [batch, head, q, k], period) -> [head]."""
    __tracebackhide__ = True
    from . import metrics

    for seed, period in [(0, 5), (1, 6)]:
        pattern = _random_patterns(seed)
        got = _run("duplicate_token_score", fn, pattern, period)
        mistakes = {
            "you measured attention to the token AFTER the previous occurrence (offset "
            "-(period - 1)): that is induction; a duplicate-token head attends to the previous "
            "occurrence itself, offset -period": _diag_mean(pattern, -(period - 1), skip=1),
            "you averaged over the heads too: keep one score per head, shape [head]":
                _diag_mean(pattern, -period).mean(),
        }
        _compare("duplicate_token_score", got, metrics.duplicate_token_score(pattern, period), mistakes)
    _done("duplicate_token_score", 2)


def check_composition_score(fn):
    """fn(W_A [d, m], W_B [m, d']) -> ||W_A W_B||_F / (||W_A||_F ||W_B||_F)."""
    __tracebackhide__ = True
    for seed, (d, m, e) in enumerate([(6, 6, 6), (8, 8, 5)]):
        g = _inputs(seed)
        A, B = torch.randn(d, m, generator=g), torch.randn(m, e, generator=g)
        got = _run("composition_score", fn, A, B)
        if isinstance(got, (int, float)):
            got = torch.tensor(float(got))
        from . import metrics

        expected = metrics.composition_score(A, B)
        mistakes = {
            "you did not normalise: divide ||W_A W_B|| by ||W_A|| * ||W_B||, so the score does not "
            "depend on the weights' scale": (A @ B).norm(),
            "you multiplied in the wrong order: the writer's output W_A comes first, W_A @ W_B":
                (B @ A).norm() / (A.norm() * B.norm()) if d == e else torch.tensor(float("nan")),
            "you divided by the squared norms: use the plain Frobenius norms, ||W_A||_F * ||W_B||_F":
                (A @ B).norm() / (A.norm() ** 2 * B.norm() ** 2),
        }
        _compare("composition_score", got.reshape(()), expected, mistakes, atol=1e-4)
    _done("composition_score", 2)


# ---- notebook 04 -----------------------------------------------------------------------------


def _unchanged(name: str, before: torch.Tensor, after: torch.Tensor, what: str):
    __tracebackhide__ = True
    if not torch.equal(before, after):
        raise ExerciseError(f"[{name}] you changed {what} in place: clone it first (`{what} = {what}.clone()`), "
                            f"then write into the copy; a hook that edits its input in place also edits the "
                            f"cache you stored it in")


def check_ablate_head(fn):
    """fn(z [batch, pos, head, d_head], head, replacement) -> z with that head's output replaced."""
    __tracebackhide__ = True
    from . import ablation

    batch, pos, heads, d_head = 3, 5, 4, 6
    for seed, kind in enumerate(["zero", "mean", "resample"]):
        g = _inputs(seed)
        z = torch.randn(batch, pos, heads, d_head, generator=g)
        other = torch.randn(batch, pos, d_head, generator=g)
        replacement = {"zero": torch.zeros(()), "mean": other.mean(0), "resample": other}[kind]
        head = 1 + seed
        before = z.clone()
        got = _run("ablate_head", fn, z, head, replacement)
        _unchanged("ablate_head", before, z, "z")
        rep = replacement.expand(batch, pos, d_head)
        everyone = z.clone()
        everyone[:] = rep[:, :, None]
        added = z.clone()
        added[:, :, head] += rep
        zeroed = z.clone()
        zeroed[:, :, head] = 0
        mistakes = {
            "you replaced every head's output: only z[:, :, head] changes (the head axis is the third)": everyone,
            "you added the replacement to the head's output: ablation REPLACES it": added,
            "you zeroed the head whatever the replacement: set z[:, :, head] = replacement (zeros, the "
            "mean, or another input's output)": zeroed,
        }
        _compare("ablate_head", got, ablation.ablate_head(z, head, replacement), mistakes)
    _done("ablate_head", 3)


def check_keys_without(fn):
    """fn(k [batch, pos, head, d_head], removed [batch, pos, d_model], W_K [head, d_model, d_head], head)."""
    __tracebackhide__ = True
    from . import ablation

    for seed, (batch, pos, heads, d_head, d_model) in enumerate([(2, 5, 3, 4, 8), (3, 6, 4, 2, 8)]):
        g = _inputs(seed)
        k = torch.randn(batch, pos, heads, d_head, generator=g)
        removed = torch.randn(batch, pos, d_model, generator=g)
        W_K = torch.randn(heads, d_model, d_head, generator=g)
        head = seed + 1
        before = k.clone()
        got = _run("keys_without", fn, k, removed, W_K, head)
        _unchanged("keys_without", before, k, "k")
        image = removed @ W_K[head]
        added, every = k.clone(), k - torch.einsum("bpd,hde->bphe", removed, W_K)
        added[:, :, head] += image
        dropped = k.clone()
        dropped[:, :, head] = 0
        mistakes = {
            "you added the writer's contribution: to remove it from the keys, subtract removed @ W_K[head]": added,
            "you removed it from every head's keys: only the reader head's keys change": every,
            "you zeroed the head's keys: that removes everything it reads, not only the writer's part": dropped,
        }
        _compare("keys_without", got, ablation.keys_without(k, removed, W_K, head), mistakes, atol=1e-4)
    _done("keys_without", 2)


def check_perfect_prev_token_pattern(fn):
    """fn(n_ctx) -> [n_ctx, n_ctx]: query i attends only to key i - 1; query 0 to itself."""
    __tracebackhide__ = True
    from . import clamping

    for n in (4, 7):
        got = _run("perfect_prev_token_pattern", fn, n)
        if isinstance(got, torch.Tensor):
            got = got.float()
        expected = clamping.perfect_prev_token_pattern(n)
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
        }
        _compare("perfect_prev_token_pattern", got, expected, mistakes)
    _done("perfect_prev_token_pattern", 2)


# ---- notebook 05 -----------------------------------------------------------------------------


def _small_ln_model(seed: int = 0, n_layers: int = 2):
    """A small random model with MLPs and LayerNorm, its weights jittered so no bias is zero."""
    cfg = reference.Config(d_vocab=13, n_ctx=10, d_model=8, n_heads=2, n_layers=n_layers, attn_only=False,
                           d_mlp=16, normalization_type="LN", seed=seed)
    model = reference.Transformer(cfg).eval()
    g = _inputs(seed + 100)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def check_decompose_resid(fn):
    """fn(cache, n_layers) -> [component, batch, pos, d_model]."""
    __tracebackhide__ = True
    from . import lens

    for seed, n_layers in [(0, 2), (1, 3)]:
        model = _small_ln_model(seed, n_layers)
        tokens = torch.randint(0, 13, (2, 7), generator=_inputs(seed))
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        got = _run("decompose_resid", fn, cache, n_layers)
        expected = lens.decompose_resid(cache, n_layers)
        mistakes = {
            "you left out the positional embedding (hook_pos_embed): it is written into the residual "
            "stream next to the token embedding": torch.cat([expected[:1], expected[2:]]),
            "you left out the MLP outputs (blocks.L.hook_mlp_out)":
                torch.cat([expected[:2], expected[2::2]]),
            "you stacked the residual stream after each layer (hook_resid_post), which accumulates "
            "everything before it; stack what each part adds (hook_attn_out, hook_mlp_out)":
                torch.stack([cache["hook_embed"], cache["hook_pos_embed"]]
                            + [cache[f"blocks.{l}.hook_{k}"] for l in range(n_layers) for k in ("resid_mid", "resid_post")]),
        }
        _compare("decompose_resid", got, expected, mistakes)
    _done("decompose_resid", 2)


def check_unembed_resid(fn):
    """fn(resid [..., d_model], w, b, W_U, b_U, eps) -> logits [..., d_vocab]."""
    __tracebackhide__ = True
    from . import lens

    for seed, shape in enumerate([(3, 2, 5, 8), (2, 4, 8)]):
        g = _inputs(seed)
        resid = torch.randn(shape, generator=g) * 3 + 1
        d_model, d_vocab = shape[-1], 11
        w, b = torch.rand(d_model, generator=g) + 0.5, torch.randn(d_model, generator=g)
        W_U, b_U = torch.randn(d_model, d_vocab, generator=g), torch.randn(d_vocab, generator=g)
        got = _run("unembed_resid", fn, resid, w, b, W_U, b_U, 1e-5)
        centred = resid - resid.mean(-1, keepdim=True)
        mistakes = {
            "you skipped the final LayerNorm: the unembedding was trained on normalised vectors, so "
            "normalise first": resid @ W_U + b_U,
            "you did not subtract the mean before dividing by the RMS (LayerNorm centres first)":
                (resid / (resid.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * w + b) @ W_U + b_U,
            "you forgot the LayerNorm's own weight w and bias b":
                (centred / (centred.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()) @ W_U + b_U,
            "you left out b_U": lens.unembed_resid(resid, w, b, W_U, b_U) - b_U,
        }
        _compare("unembed_resid", got, lens.unembed_resid(resid, w, b, W_U, b_U, 1e-5), mistakes, atol=1e-4)
    _done("unembed_resid", 2)


def check_kl_to_final(fn):
    """fn(lens_logits [layer, ..., d_vocab], final_logits [..., d_vocab]) -> [layer]."""
    __tracebackhide__ = True
    from . import lens

    for seed, shape in enumerate([(4, 2, 3, 7), (3, 5, 9)]):
        g = _inputs(seed)
        lens_logits = torch.randn(shape, generator=g) * 2
        final = torch.randn(shape[1:], generator=g) * 2
        got = _run("kl_to_final", fn, lens_logits, final)
        p, q = final.log_softmax(-1), lens_logits.log_softmax(-1)
        mistakes = {
            "you computed KL(lens || final): we ask how far the lens is from the model's real output, "
            "KL(final || lens) = sum p_final (log p_final - log p_lens)":
                (q.exp() * (q - p)).sum(-1).flatten(1).mean(-1),
            "you summed over positions (and batch) instead of averaging":
                (p.exp() * (p - q)).sum(-1).flatten(1).sum(-1),
            "you used probabilities where the formula has log-probabilities":
                (p.exp() * (p.exp() - q.exp())).sum(-1).flatten(1).mean(-1),
        }
        _compare("kl_to_final", got, lens.kl_to_final(lens_logits, final), mistakes, atol=1e-4)
    _done("kl_to_final", 2)


def check_logit_attribution(fn):
    """fn(stack [component, batch, pos, d_model], W_U [d_model, d_vocab], tokens [batch, pos]) -> [component, batch, pos - 1]."""
    __tracebackhide__ = True
    from . import lens

    for seed, (comp, batch, seq, d_model, d_vocab) in enumerate([(3, 2, 6, 5, 9), (4, 3, 8, 6, 11)]):
        g = _inputs(seed)
        stack = torch.randn(comp, batch, seq, d_model, generator=g)
        W_U = torch.randn(d_model, d_vocab, generator=g)
        tokens = torch.randint(0, d_vocab, (batch, seq), generator=g)
        got = _run("logit_attribution", fn, stack, W_U, tokens)
        logits = stack @ W_U  # [comp, batch, pos, d_vocab]
        mistakes = {
            "you read the logit of the token at the same position: position t predicts tokens[:, t + 1]":
                logits[:, :, :-1].gather(-1, tokens[None, :, :-1, None].expand(comp, -1, -1, 1))[..., 0],
            "you kept the last position: it has no next token to predict, so the output has pos - 1 entries":
                logits.gather(-1, torch.cat([tokens[:, 1:], tokens[:, :1]], 1)[None, ..., None].expand(comp, -1, -1, 1))[..., 0],
            "you returned every logit: keep only the correct next token's, with gather or indexing":
                logits[:, :, :-1],
        }
        _compare("logit_attribution", got, lens.logit_attribution(stack, W_U, tokens), mistakes, atol=1e-4)
    _done("logit_attribution", 2)


# ---- notebook 06 -----------------------------------------------------------------------------


def check_normalized_metric(fn):
    """fn(value, clean_value, corrupted_value) -> 0 at the corrupted value, 1 at the clean one."""
    __tracebackhide__ = True
    from . import patching

    cases = [(torch.tensor(-2.0), torch.tensor(-0.5), torch.tensor(-3.0)),
             (torch.tensor([-1.0, 0.2, -4.0]), torch.tensor(0.5), torch.tensor(-4.0))]
    for value, clean, corrupted in cases:
        got = _run("normalized_metric", fn, value, clean, corrupted)
        if isinstance(got, (int, float)):
            got = torch.tensor(float(got))
        mistakes = {
            "your scale is upside down: the corrupted run should score 0 and the clean run 1, "
            "(value - corrupted) / (clean - corrupted)": (clean - value) / (clean - corrupted),
            "you divided by the clean value alone: divide by the gap between clean and corrupted":
                (value - corrupted) / clean,
            "you forgot to subtract the corrupted value first": value / (clean - corrupted),
        }
        _compare("normalized_metric", got, patching.normalized_metric(value, clean, corrupted), mistakes)
    _done("normalized_metric", 2)


def check_patch_resid_pre(fn):
    """fn(model, corrupted_tokens, clean_cache, metric, layer, pos) -> metric of the patched run."""
    __tracebackhide__ = True
    from . import patching

    model = _small_ln_model(0, 2)
    clean, corrupted = patching.clean_and_corrupted(4, 5, 13, seed=0)
    metric = patching.patching_metric(model, clean, corrupted, slice(5, 9))
    with torch.no_grad():
        _, cache = model.run_with_cache(clean)

        def patched(name, index):
            def hook(act, hook):
                act[index] = cache[name][index]
                return act
            return metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)]))

        for layer, pos in [(1, 2), (0, 4), (1, 7)]:
            got = _run("patch_resid_pre", fn, model, corrupted, cache, metric, layer, pos)
            if isinstance(got, (int, float)):
                got = torch.tensor(float(got))
            pre = f"blocks.{layer}.hook_resid_pre"
            mistakes = {
                "you patched every position: put back only position `pos`, resid[:, pos]":
                    patched(pre, (slice(None), slice(None))),
                "you patched the residual stream leaving the layer (hook_resid_post): patch the one "
                "entering it, blocks.LAYER.hook_resid_pre": patched(f"blocks.{layer}.hook_resid_post", (slice(None), pos)),
                "you indexed the batch axis: the residual stream is [batch, pos, d_model], so index "
                "resid[:, pos]": patched(pre, (pos,)) if pos < 4 else torch.tensor(float("nan")),
            }
            expected = patching.patch_resid_pre(model, corrupted, cache, metric, layer, pos)
            _compare("patch_resid_pre", got.reshape(()), expected, mistakes, atol=1e-4)
    _done("patch_resid_pre", 3)


# ---- notebook 07: function vectors ------------------------------------------------------------


def _fv_setup(seed: int):
    """A small random model with MLPs and LayerNorm, and random prompts for it."""
    from .model import Config

    cfg = Config(d_vocab=13, n_ctx=12, d_model=16, n_heads=2, n_layers=2, attn_only=False,
                 normalization_type="LN", init_range=0.5, seed=seed)
    g = _inputs(seed)
    model = reference.Transformer(cfg).eval()
    with torch.no_grad():  # nonzero biases, so that a mistake with b_O shows
        for name, p in model.named_parameters():
            if name.split(".")[-1].startswith("b_"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    tokens = torch.randint(0, cfg.d_vocab, (5, 9), generator=g)
    answers = torch.randint(0, cfg.d_vocab, (5,), generator=g)
    return model, tokens, answers, g


def check_mean_head_outputs(fn):
    """fn(model, tokens [batch, pos]) -> [layer, head, d_model]."""
    __tracebackhide__ = True
    from . import function_vectors as fv

    for seed in range(2):
        model, tokens, _, _ = _fv_setup(seed)
        got = _run("mean_head_outputs", fn, model, tokens)
        names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        z = torch.stack([cache[n] for n in names], dim=2)  # [batch, pos, layer, head, d_head]
        out = torch.einsum("bplhe,lhed->bplhd", z, model.W_O.detach())
        mistakes = {
            "you returned the mean z (each head's value mix, [layer, head, d_head]): multiply it by "
            "the head's slice of W_O to get what the head writes into the residual stream": z[:, -1].mean(0),
            "you averaged over every position: a function vector is read at the last position only "
            "(tokens[:, -1], where the model answers)": out.mean((0, 1)),
            "you took the first position, not the last: use [:, -1]": out[:, 0].mean(0),
            "you summed over the prompts instead of averaging": out[:, -1].sum(0),
            "you added the bias b_O to every head: b_O belongs to no head (and would count once per head)":
                out[:, -1].mean(0) + model.b_O.detach()[:, None],
        }
        _compare("mean_head_outputs", got, fv.mean_head_outputs(model, tokens), mistakes)
    _done("mean_head_outputs", 2)


def check_indirect_effect(fn):
    """fn(model, tokens, answers, mean_z, layer, head) -> [batch]: gain in P(answer)."""
    __tracebackhide__ = True
    from . import function_vectors as fv

    cases = [(0, 0, 1), (1, 1, 0)]
    for seed, layer, head in cases:
        model, tokens, answers, g = _fv_setup(seed)
        mean_z = torch.randn(model.cfg.n_layers, model.cfg.n_heads, model.cfg.d_head, generator=g) * 2
        got = _run("indirect_effect", fn, model, tokens, answers, mean_z, layer, head)
        name = f"blocks.{layer}.attn.hook_z"

        def patched(positions, probs=True):
            def hook(z, hook):
                z = z.clone()
                z[:, positions, head] = mean_z[layer, head]
                return z
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])[:, -1]
            scores = logits.softmax(-1) if probs else logits.log_softmax(-1)
            return scores.gather(1, answers[:, None])[:, 0]

        with torch.no_grad():
            clean_logits = model(tokens)[:, -1]
        clean = clean_logits.softmax(-1).gather(1, answers[:, None])[:, 0]
        clean_lp = clean_logits.log_softmax(-1).gather(1, answers[:, None])[:, 0]
        mistakes = {
            "you returned P(answer) with the patch, not the gain: subtract P(answer) without it":
                patched(-1),
            "your sign is flipped: the effect is P(patched) - P(clean)": clean - patched(-1),
            "you patched the head at every position: patch the last position only, where the "
            "model answers": patched(slice(None)) - clean,
            "you measured the gain in log-probability: the indirect effect is a gain in probability "
            "(softmax, not log_softmax)": patched(-1, probs=False) - clean_lp,
            "you averaged over the prompts: return one number per prompt, [batch]":
                (patched(-1) - clean).mean(),
        }
        _compare("indirect_effect", got, fv.indirect_effect(model, tokens, answers, mean_z, layer, head),
                 mistakes, atol=1e-6)
    _done("indirect_effect", len(cases))


def check_logits_with_vector(fn):
    """fn(model, tokens, vector [d_model], layer) -> [batch, d_vocab]: last-position logits with the
    vector added to block `layer`'s attention output at the last position."""
    __tracebackhide__ = True
    from . import function_vectors as fv

    for seed, layer in [(0, 1), (1, 0)]:
        model, tokens, _, g = _fv_setup(seed)
        vector = torch.randn(model.cfg.d_model, generator=g) * 3

        def added(hook_name, positions):
            def hook(resid, hook):
                resid = resid.clone()
                resid[:, positions] += vector
                return resid
            with torch.no_grad():
                return model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook)])[:, -1]

        out = f"blocks.{layer}.hook_attn_out"
        with torch.no_grad():
            plain = model(tokens)[:, -1]
        mistakes = {
            "your logits are the model's own: the vector was not added (does your hook return the "
            "changed activation?)": plain,
            "you added the vector at every position: add it at the last position only":
                added(out, slice(None)),
            f"you added the vector before block {layer} (hook_resid_pre): add it to the block's "
            f"attention output, as if its heads had written it (blocks.{layer}.hook_attn_out)":
                added(f"blocks.{layer}.hook_resid_pre", -1),
            f"you added the vector after the whole block {layer} (hook_resid_post): add it to the "
            f"block's attention output, before its MLP (blocks.{layer}.hook_attn_out)":
                added(f"blocks.{layer}.hook_resid_post", -1),
        }
        got = _run("logits_with_vector", fn, model, tokens, vector, layer)
        if isinstance(got, torch.Tensor) and got.ndim == 3:
            raise ExerciseError("[logits_with_vector] you returned the logits at every position: "
                                "return the last position's, [batch, d_vocab]")
        _compare("logits_with_vector", got, fv.logits_with_vector(model, tokens, vector, layer), mistakes)
    _done("logits_with_vector", 2)
