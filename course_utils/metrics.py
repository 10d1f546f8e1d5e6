"""Scores read off attention patterns and losses.

Patterns are [..., query_pos, key_pos] (TransformerLens's `hook_pattern` is
[batch, head, query_pos, key_pos]); every score averages over the batch and the positions it
looks at, and keeps the head axis.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float, Int, Real
from torch import Tensor
from transformer_lens import FactoredMatrix
from transformer_lens.utilities.matrix import composition_scores as tl_composition_scores

from . import validate
from .data import EVAL_SEED, SyntheticLanguage, repeated_tokens
from .model import next_token_loss


def _validate_pattern(pattern: torch.Tensor, period: int | None = None) -> None:
    validate.tensor(pattern, "pattern", "... query_pos key_pos", dtype="float")
    if pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(f"pattern must be square, query_pos == key_pos, got shape {tuple(pattern.shape)}")
    validate.positions_at_least(pattern, 2, "pattern", "a score of attention to earlier positions")
    validate.finite(pattern, "pattern")
    if period is not None:
        seq_len = pattern.shape[-1]
        validate.int_in(period, 1, seq_len - 2, "period", f"sequences have length {seq_len}")


def prev_token_score(pattern: Float[Tensor, "batch head_index query_pos key_pos"]) -> Float[Tensor, " head_index"]:
    """Mean attention from each position to the one before it. [batch, head, q, k] -> [head]."""
    _validate_pattern(pattern)
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1).mean(0)


def induction_score(pattern: Float[Tensor, "batch head_index query_pos key_pos"], period: int) -> Float[Tensor, " head_index"]:
    """On a sequence repeating with this period: mean attention from each position in the repeat
    to the token *after* its previous occurrence (query t -> key t - period + 1). -> [head]."""
    _validate_pattern(pattern, period)
    return pattern.diagonal(offset=-(period - 1), dim1=-2, dim2=-1)[..., 1:].mean(-1).mean(0)


def duplicate_token_score(pattern: Float[Tensor, "batch head_index query_pos key_pos"], period: int) -> Float[Tensor, " head_index"]:
    """On a sequence repeating with this period: mean attention from each position in the repeat
    to the previous occurrence of its own token (query t -> key t - period). -> [head]."""
    _validate_pattern(pattern, period)
    return pattern.diagonal(offset=-period, dim1=-2, dim2=-1).mean(-1).mean(0)


def head_scores(model, tokens: Int[Tensor, "batch pos"], score, **kwargs) -> Float[Tensor, "layer head_index"]:
    """score(pattern, **kwargs) for every head of every layer: [n_layers, n_heads].

    Works on a course Transformer and on a TransformerBridge alike.
    """
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    if not callable(score):
        raise TypeError(f"score must be a function pattern -> [head] (e.g. induction_score), got {score!r}")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return torch.stack([score(cache[name], **kwargs) for name in names])


def attention_by_offset(pattern: Float[Tensor, "batch head_index query_pos key_pos"]) -> Float[Tensor, "head_index offset"]:
    """Mean attention from each query to the key `offset` positions before it, for every offset:
    [batch, head, query_pos, key_pos] -> [head, offset] (offset 0 .. pos - 1; each entry averages
    over the batch and over the queries that have a key that far back).

    Offset 1 is the previous-token score; on a sequence repeating with period p, offset p - 1 is where
    an induction head looks and offset p where a duplicate-token head looks. Notebook 02 builds it.
    """
    _validate_pattern(pattern)
    if pattern.ndim < 3:
        raise ValueError(f"pattern must be [batch, head, query_pos, key_pos], got shape {tuple(pattern.shape)}")
    n = pattern.shape[-1]
    by_offset = [pattern.diagonal(offset=-offset, dim1=-2, dim2=-1).mean(-1) for offset in range(n)]
    return torch.stack(by_offset, dim=-1).mean(0)


def prev_and_induction_scores(model, tokens: Int[Tensor, "batch pos"], period: int) -> Float[Tensor, "2 layer head_index"]:
    """The previous-token and the induction score of every head, from one cached run on `tokens`
    (a sequence repeating with `period`): [2, n_layers, n_heads], [0] previous-token, [1] induction.
    Notebook 02 builds it to follow both scores over training."""
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    prev = torch.stack([prev_token_score(cache[name]) for name in names])
    induction = torch.stack([induction_score(cache[name], period) for name in names])
    return torch.stack([prev, induction])


# ---- losses by position, and in-context learning ------------------------------------------------


def per_token_loss(logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch predicted_pos"]:
    """logits [batch, pos, d_vocab], tokens [batch, pos] -> the loss of predicting each next token,
    [batch, pos - 1] (entry t is the loss of predicting tokens[:, t + 1] from logits[:, t])."""
    validate.tensor(logits, "logits", "batch pos d_vocab", dtype="float")
    validate.finite(logits, "logits")
    return next_token_loss(logits, tokens, per_token=True)


def icl_score(loss_by_token: Float[Tensor, "... predicted_pos"], early: slice, late: slice) -> Float[Tensor, ""]:
    """In-context-learning score (Olsson et al. 2022): mean loss late in the context minus mean loss
    early in it. Negative: the model predicts better once it has seen more context.

    loss_by_token [..., pos - 1]; early, late: slices of predicted positions.
    """
    validate.tensor(loss_by_token, "loss_by_token", "... predicted_pos", dtype="float")
    validate.finite(loss_by_token, "loss_by_token")
    n = loss_by_token.shape[-1]
    for name, s in (("early", early), ("late", late)):
        if not isinstance(s, slice) or len(range(n)[s]) == 0:
            raise ValueError(f"{name} must be a non-empty slice of the {n} predicted positions, got {s!r}")
    return loss_by_token[..., late].mean() - loss_by_token[..., early].mean()


def loss_on_copies(loss_by_token: Float[Tensor, "batch predicted_pos"], copied: Bool[Tensor, "batch pos"]) -> Float[Tensor, " 2"]:
    """Mean loss on copied tokens and on all other tokens: [2] (copied, other).

    loss_by_token [batch, pos - 1] (entry t predicts token t + 1); copied [batch, pos], a bool mask of
    the TOKENS that are copies induction can predict (`SyntheticLanguage.sample(...).copied`). Each
    mean is over all such predictions at once, whatever sequence they are in. Notebook 02 builds it.
    """
    validate.tensor(loss_by_token, "loss_by_token", "batch predicted_pos", dtype="float")
    if not isinstance(copied, torch.Tensor) or copied.dtype != torch.bool:
        got = copied.dtype if isinstance(copied, torch.Tensor) else type(copied).__name__
        raise TypeError(f"copied must be a bool tensor [batch, pos], got {got}")
    if copied.ndim != 2 or copied.shape != (loss_by_token.shape[0], loss_by_token.shape[1] + 1):
        raise ValueError(f"copied must be [batch, pos] with pos one more than the losses' "
                         f"{tuple(loss_by_token.shape)}, got {tuple(copied.shape)}")
    predicted_copy = copied[:, 1:]  # loss[:, t] is the prediction of token t + 1
    return torch.stack([loss_by_token[predicted_copy].mean(), loss_by_token[~predicted_copy].mean()])


def phase_window(steps, values, width: float) -> tuple[int, int, float]:
    """The stretch of at most `width` training steps in which `values` changed the most.

    Returns (first step, last step, share of the total change, first to last value, that happened
    inside the window). A sudden phase change puts most of the change in a short window.
    """
    steps, values = list(steps), [float(v) for v in values]
    if len(steps) != len(values) or len(steps) < 3:
        raise ValueError(f"steps and values must be sequences of the same length, at least 3; "
                         f"got lengths {len(steps)} and {len(values)}")
    validate.finite(torch.tensor(values), "values")  # NaN compares false: the window would be silently wrong
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"width must be a number of steps > 0, got {width!r}")
    total = values[-1] - values[0]
    best = (steps[0], steps[0], 0.0)
    if total == 0:
        return best
    for i, start in enumerate(steps):
        for j in range(i + 1, len(steps)):
            if steps[j] - start > width:
                break
            share = (values[j] - values[i]) / total
            if share > best[2]:
                best = (start, steps[j], share)
    return best


def window_shares(steps: Real[Tensor, " n_checkpoints"], values: Float[Tensor, " n_checkpoints"],
                  width: float) -> Float[Tensor, "start end"]:
    """For every window of checkpoints, the share of the total change of `values` made inside it:
    [start, end], entry (i, j) = (values[j] - values[i]) / (values[-1] - values[0]) for each window
    that ends after it starts and is at most `width` training steps long (steps[j] - steps[i]), 0 for
    the others. The largest entry is `phase_window`'s window. Notebook 02 builds it.

    steps [n_checkpoints] (int or float); values [n_checkpoints] float.
    """
    validate.tensor(steps, "steps", "n_checkpoints")
    validate.tensor(values, "values", "n_checkpoints", dtype="float")
    if steps.shape != values.shape or len(steps) < 2:
        raise ValueError(f"steps and values must have one entry per checkpoint (at least 2), got shapes "
                         f"{tuple(steps.shape)} and {tuple(values.shape)}")
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"width must be a number of training steps > 0, got {width!r}")
    if values[-1] == values[0]:
        raise ValueError("values end where they start: there is no total change to share out")
    change = values[None, :] - values[:, None]  # [start, end]: values[end] - values[start]
    length = steps[None, :] - steps[:, None]
    inside = (length > 0) & (length <= width)
    return torch.where(inside, change / (values[-1] - values[0]), torch.zeros_like(change))


# ---- weight-level circuits (Elhage et al. 2021) -----------------------------------------------------


def full_ov_circuit(model, layer: int, head: int):
    """W_E W_V W_O W_U of one head, a FactoredMatrix [d_vocab, d_vocab]: row t is what attending
    to token t does to the logits (ignoring biases and, for models with LayerNorm, its scaling)."""
    validate.head(model, layer, head)
    return model.W_E @ model.OV[layer, head] @ model.W_U


def positional_qk_circuit(model, layer: int, head: int) -> Float[Tensor, "query_pos key_pos"]:
    """W_pos W_Q W_K^T W_pos^T / sqrt(d_head): [query_pos, key_pos] attention scores that come from
    positions alone. A previous-token head has large entries just below the diagonal."""
    validate.head(model, layer, head)
    W_pos = model.W_pos
    return (W_pos @ model.QK[layer, head] @ W_pos.T).AB / model.cfg.d_head**0.5


def token_qk_circuit(model, layer: int, head: int) -> Float[Tensor, "query_token key_token"]:
    """W_E W_Q W_K^T W_E^T / sqrt(d_head): [query_token, key_token] attention scores that come from
    the tokens alone, wherever they are."""
    validate.head(model, layer, head)
    W_E = model.W_E
    return (W_E @ model.QK[layer, head] @ W_E.T).AB / model.cfg.d_head**0.5


def qk_circuit(X_query: Float[Tensor, "n_query d_model"], X_key: Float[Tensor, "n_key d_model"],
               W_Q: Float[Tensor, "d_model d_head"], W_K: Float[Tensor, "d_model d_head"]) -> Float[Tensor, "n_query n_key"]:
    """(X_query W_Q)(X_key W_K)^T / sqrt(d_head): [n_query, n_key] attention scores of one head between
    rows of X_query (queries) and rows of X_key (keys), e.g. W_pos and W_pos for the positional part of a
    QK circuit, W_E and W_E for its token part. X_* [n, d_model], W_Q, W_K [d_model, d_head]. Notebook 03."""
    for name, value, shape in (("X_query", X_query, "n_query d_model"), ("X_key", X_key, "n_key d_model"),
                               ("W_Q", W_Q, "d_model d_head"), ("W_K", W_K, "d_model d_head")):
        validate.tensor(value, name, shape, dtype="float")
    if not X_query.shape[1] == X_key.shape[1] == W_Q.shape[0] == W_K.shape[0] or W_Q.shape != W_K.shape:
        raise ValueError(f"X_query, X_key [n, d_model] and W_Q, W_K [d_model, d_head] must share d_model and d_head, got "
                         f"shapes {tuple(X_query.shape)}, {tuple(X_key.shape)}, {tuple(W_Q.shape)}, {tuple(W_K.shape)}")
    return (X_query @ W_Q) @ (X_key @ W_K).T / W_Q.shape[1] ** 0.5


def key_scores_by_source(q: Float[Tensor, "batch query_pos d_head"], components: Float[Tensor, "component batch key_pos d_model"],
                         W_K: Float[Tensor, "d_model d_head"]) -> Float[Tensor, "component batch query_pos key_pos"]:
    """One head's attention scores split by where its keys come from: component c of the residual stream
    (embedding, positional embedding, an earlier head's output, ...) read through W_K against the queries,
    q . (components[c] W_K) / sqrt(d_head). The key bias is left out: it shifts every key of a query's row
    by the same amount, which the softmax ignores. q [batch, query_pos, d_head], components
    [component, batch, key_pos, d_model], W_K [d_model, d_head] -> [component, batch, query_pos, key_pos].
    Summed over components (plus the key bias's term) they give the head's scores. Notebook 03."""
    validate.tensor(q, "q", "batch query_pos d_head", dtype="float")
    validate.tensor(components, "components", "component batch key_pos d_model", dtype="float")
    validate.tensor(W_K, "W_K", "d_model d_head", dtype="float")
    if components.shape[1] != q.shape[0] or components.shape[-1] != W_K.shape[0] or q.shape[-1] != W_K.shape[1]:
        raise ValueError(f"q [batch, query_pos, d_head], components [component, batch, key_pos, d_model] and W_K "
                         f"[d_model, d_head] do not fit together: shapes {tuple(q.shape)}, {tuple(components.shape)}, "
                         f"{tuple(W_K.shape)}")
    keys = components @ W_K  # [component, batch, key_pos, d_head]
    return q[None] @ keys.transpose(-2, -1) / W_K.shape[1] ** 0.5


def ov_eigenvalue_score(A: Float[Tensor, "... n k"], B: Float[Tensor, "... k n"]) -> Float[Tensor, "..."]:
    """sum(eigenvalues) / sum(|eigenvalues|) of the square product A B, computed as FactoredMatrix(A, B).eigenvalues
    (the non-zero eigenvalues of A B are those of the small B A). A [..., n, k], B [..., k, n] -> [...], real:
    +1 when every eigenvalue is positive (copying), -1 when all are negative. Notebook 03."""
    validate.tensor(A, "A", "... n k", dtype="float")
    validate.tensor(B, "B", "... k n", dtype="float")
    if A.shape[-1] != B.shape[-2] or A.shape[-2] != B.shape[-1]:
        raise ValueError(f"A [..., n, k] and B [..., k, n] must make a square product, got shapes {tuple(A.shape)} "
                         f"and {tuple(B.shape)}")
    eig = FactoredMatrix(A, B).eigenvalues
    return (eig.sum(-1) / eig.abs().sum(-1)).real


def full_ov_top1_accuracy(W_E: Float[Tensor, "d_vocab d_model"], W_V: Float[Tensor, "... d_model d_head"],
                          W_O: Float[Tensor, "... d_head d_model"], W_U: Float[Tensor, "d_model d_vocab"]) -> Float[Tensor, "..."]:
    """Per head, the fraction of tokens t for which attending to t raises t's own logit more than any
    other: row t of the full OV circuit W_E W_V W_O W_U peaks at column t. W_E [d_vocab, d_model],
    W_V [..., d_model, d_head], W_O [..., d_head, d_model], W_U [d_model, d_vocab] -> [...]. Notebook 03."""
    validate.tensor(W_E, "W_E", "d_vocab d_model", dtype="float")
    validate.tensor(W_V, "W_V", "... d_model d_head", dtype="float")
    validate.tensor(W_O, "W_O", "... d_head d_model", dtype="float")
    validate.tensor(W_U, "W_U", "d_model d_vocab", dtype="float")
    if not (W_E.shape[1] == W_V.shape[-2] == W_O.shape[-1] == W_U.shape[0] and W_V.shape[-1] == W_O.shape[-2]
            and W_E.shape[0] == W_U.shape[1]):
        raise ValueError(f"W_E [d_vocab, d_model], W_V [..., d_model, d_head], W_O [..., d_head, d_model], W_U [d_model, "
                         f"d_vocab] do not fit together: shapes {tuple(W_E.shape)}, {tuple(W_V.shape)}, "
                         f"{tuple(W_O.shape)}, {tuple(W_U.shape)}")
    full_ov = FactoredMatrix(W_E @ W_V, W_O @ W_U).AB  # [..., d_vocab (attended token), d_vocab (logit)]
    own = torch.arange(W_E.shape[0], device=W_E.device)
    return (full_ov.argmax(-1) == own).to(W_E.dtype).mean(-1)


def composition_excess(writers: Float[Tensor, "n_writer d m"], readers: Float[Tensor, "n_reader m e"],
                       random_writers: Float[Tensor, "s d m"],
                       random_readers: Float[Tensor, "t m e"]) -> Float[Tensor, "n_writer n_reader"]:
    """Composition score of every (writer, reader) pair minus a baseline: the mean score over every pair of
    random matrices. writers [n_writer, d, m], readers [n_reader, m, e], random_writers [s, d, m],
    random_readers [t, m, e] -> [n_writer, n_reader]. Notebook 03."""
    for name, value in (("writers", writers), ("readers", readers), ("random_writers", random_writers),
                        ("random_readers", random_readers)):
        validate.tensor(value, name, "n rows columns", dtype="float")
    if writers.shape[1:] != random_writers.shape[1:] or readers.shape[1:] != random_readers.shape[1:] \
            or writers.shape[2] != readers.shape[1]:
        raise ValueError(f"writers [n, d, m] and readers [n, m, e] must fit together, and the random ones have their "
                         f"shapes, got {tuple(writers.shape)}, {tuple(readers.shape)}, {tuple(random_writers.shape)}, "
                         f"{tuple(random_readers.shape)}")

    def scores(A, B):  # [n_A, n_B]
        return (A[:, None] @ B[None]).norm(dim=(-2, -1)) / (A.norm(dim=(-2, -1))[:, None] * B.norm(dim=(-2, -1))[None])

    return scores(writers, readers) - scores(random_writers, random_readers).mean()


def eigenvalue_copying_score(matrix) -> float:
    """sum(eigenvalues) / sum(|eigenvalues|) of a square (Factored)Matrix: +1 when every eigenvalue
    is positive (the map sends each token towards itself: copying), -1 when all are negative."""
    if isinstance(matrix, FactoredMatrix):
        validate.finite(matrix.A, "matrix.A")
        validate.finite(matrix.B, "matrix.B")
        with torch.no_grad():
            eig = matrix.eigenvalues
    elif isinstance(matrix, torch.Tensor) and matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1]:
        validate.finite(matrix, "matrix")
        eig = torch.linalg.eigvals(matrix.detach())
    else:
        error = ValueError if isinstance(matrix, torch.Tensor) else TypeError
        got = f"shape {tuple(matrix.shape)}" if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise error(f"matrix must be a square FactoredMatrix or a square 2-d tensor, got {got}")
    validate.nonzero(eig, "matrix", "its copying score sum(eigenvalues) / sum(|eigenvalues|)")
    return float((eig.sum() / eig.abs().sum()).real)


def copying_score(full_ov) -> float:
    """Fraction of tokens t whose own logit is the one that attending to t raises most (row t of
    the full OV circuit peaks at column t). A copying head scores well above 1 / d_vocab."""
    if hasattr(full_ov, "AB"):
        full_ov = full_ov.AB
    validate.tensor(full_ov, "full_ov", "d_vocab d_vocab")
    if full_ov.shape[0] != full_ov.shape[1]:
        raise ValueError(f"full_ov must be square, [d_vocab, d_vocab], got shape {tuple(full_ov.shape)}")
    validate.finite(full_ov, "full_ov")
    return float((full_ov.argmax(-1) == torch.arange(full_ov.shape[0], device=full_ov.device)).float().mean())


def composition_score(W_A: Float[Tensor, "... d m"], W_B: Float[Tensor, "... m e"]) -> Float[Tensor, ""]:
    """||W_A W_B||_F / (||W_A||_F ||W_B||_F): how much W_B reads of what W_A writes (0 to 1)."""
    validate.tensor(W_A, "W_A", "... d m", dtype="float")
    validate.tensor(W_B, "W_B", "... m e", dtype="float")
    if W_A.shape[-1] != W_B.shape[-2]:
        raise ValueError(f"W_A [d, m] and W_B [m, e] must share m, got shapes {tuple(W_A.shape)} and {tuple(W_B.shape)}")
    for name, W in (("W_A", W_A), ("W_B", W_B)):
        validate.finite(W, name)
        validate.nonzero(W, name, "the composition score ||W_A W_B|| / (||W_A|| ||W_B||)")
    return (W_A @ W_B).norm() / (W_A.norm() * W_B.norm())


def composition_scores(model, mode: str) -> Float[Tensor, "layer head_index layer head_index"]:
    """Composition scores of every pair of heads: [layer, head, layer, head] (writer, then reader).

    mode "Q", "K" or "V": how much the writer's OV output is read by the reader's queries, keys or
    values: ||W_OV^writer W^reader||_F / (||W_OV^writer||_F ||W^reader||_F). Only writer layer <
    reader layer is meaningful. Works on a course Transformer and on a TransformerBridge.
    """
    validate.model(model)
    readers = {"Q": lambda: model.QK, "K": lambda: model.QK.T, "V": lambda: model.OV}
    if mode not in readers:
        raise ValueError(f"mode must be 'Q', 'K' or 'V', got {mode!r}")
    for name in ("W_Q", "W_K", "W_V", "W_O"):
        validate.head_weights(getattr(model, name), f"model.{name}", "a composition score")
    return tl_composition_scores(model.OV, readers[mode]())


def random_composition_baseline(model, mode: str, samples: int = 20, seed: int = 0) -> float:
    """The mean composition score of random Gaussian weights of the model's shapes: what a score
    looks like when nothing composes. Subtract it from composition_scores."""
    if mode not in ("Q", "K", "V"):
        raise ValueError(f"mode must be 'Q', 'K' or 'V', got {mode!r}")
    validate.model(model)
    validate.positive(samples=samples)
    validate.integer(seed=seed)
    d_model, d_head = model.cfg.d_model, model.cfg.d_head
    g = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(samples):
        def r(*shape):
            return torch.randn(shape, generator=g)

        ov = FactoredMatrix(r(d_model, d_head), r(d_head, d_model))
        qk = FactoredMatrix(r(d_model, d_head), r(d_head, d_model))
        reader = {"Q": qk, "K": qk.T, "V": FactoredMatrix(r(d_model, d_head), r(d_head, d_model))}[mode]
        scores.append(float(tl_composition_scores(ov, reader, broadcast_dims=False)))
    return sum(scores) / len(scores)


# ---- the story of a training run ---------------------------------------------------------------------

def icl_slices(language) -> tuple[slice, slice]:
    """(early, late) predicted positions for the ICL score on a SyntheticLanguage.

    A copied span is at least min_span long and its copy starts after it, so the first min_span
    predictions can never be of a copied token: that is "early". "late" is the last 30% of the
    context, where copies are common. For the course's 32-token language: slice(0, 6), slice(22, 31).
    """
    validate.instance(language, SyntheticLanguage, "language")
    n = language.n_ctx - 1
    return slice(0, language.min_span), slice(round(0.7 * n), n)


def training_curves(history: dict, language, eval_size: int = 256, seed: int = EVAL_SEED) -> dict:
    """For each checkpoint {step: model}: the loss, the ICL score, and every head's induction score.

    Returns {"steps": [...], "loss": [...], "icl": [...], "induction": tensor [step, layer, head],
    "best_induction": [...] (the highest induction score of any head, at each step)}.
    """
    if not isinstance(history, dict) or not history:
        raise ValueError(f"history must be a non-empty dict {{step: model}}, got {history!r:.80}")
    early, late = icl_slices(language)
    batch = language.sample(eval_size, seed=seed).tokens
    period = language.n_ctx // 2
    rep = repeated_tokens(eval_size // 4, period, language.d_vocab, seed=seed)
    steps = sorted(history)
    loss, icl, induction = [], [], []
    for step in steps:
        model = history[step]
        with torch.no_grad():
            by_token = per_token_loss(model(batch), batch)
        loss.append(float(by_token.mean()))
        icl.append(float(icl_score(by_token, early, late)))
        induction.append(head_scores(model, rep, induction_score, period=period))
    induction = torch.stack(induction)
    best = induction.flatten(1).max(-1).values.tolist()
    return {"steps": steps, "loss": loss, "icl": icl, "induction": induction, "best_induction": best}


def first_step_above(steps, values, threshold: float):
    """The first step at which values reach threshold (None if they never do)."""
    steps, values = list(steps), [float(v) for v in values]
    if len(steps) != len(values) or not steps:
        raise ValueError(f"steps and values must be non-empty and of the same length, got {len(steps)} and {len(values)}")
    validate.finite(torch.tensor(values), "values")  # NaN never reaches a threshold: "never" would be silently wrong
    _validate_threshold(threshold)
    return next((s for s, v in zip(steps, values) if v >= threshold), None)


def _validate_threshold(threshold) -> None:
    is_number = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    if not is_number or not math.isfinite(threshold):
        raise (ValueError if is_number else TypeError)(f"threshold must be a finite number, got {threshold!r}")


def formation_steps(steps: Real[Tensor, " n_checkpoints"], scores: Float[Tensor, "n_checkpoints ..."],
                    threshold: float) -> Float[Tensor, "..."]:
    """When each score formed: the step of the first checkpoint from which the score is at or above
    `threshold` at that checkpoint and at every later one. A score that pokes above the threshold and
    falls back has not formed yet. NaN where the score is below the threshold at the last checkpoint
    (it never formed, or had not formed by the end).

    steps [n_checkpoints] (increasing); scores [n_checkpoints, ...] float (e.g. [step, layer, head])
    -> [...], float like scores. Notebook 02 builds it.
    """
    validate.tensor(steps, "steps", "n_checkpoints")
    validate.tensor(scores, "scores", "...", dtype="float")
    if scores.ndim == 0 or scores.shape[0] != steps.shape[0] or len(steps) == 0:
        raise ValueError(f"scores must be [n_checkpoints, ...] with one row per entry of steps {tuple(steps.shape)}, "
                         f"got shape {tuple(scores.shape)}")
    if not (steps[1:] > steps[:-1]).all():
        raise ValueError(f"steps must increase from one checkpoint to the next, got {steps.tolist()}")
    validate.finite(scores, "scores")
    _validate_threshold(threshold)
    above = (scores >= threshold).int()
    stays = above.flip(0).cummin(0).values.flip(0)  # [i] is 1 when the score is above at i and at every later checkpoint
    first = stays.argmax(0)  # the first 1 (stays is 0 ... 0 1 ... 1); 0 when all are 0
    formed = steps.to(scores.device)[first].to(scores.dtype)
    return torch.where(stays[-1].bool(), formed, torch.full_like(formed, float("nan")))


def copy_loss_curves(history: dict, tokens: Int[Tensor, "batch pos"],
                     copied: Bool[Tensor, "batch pos"]) -> Float[Tensor, "n_checkpoints 2"]:
    """`loss_on_copies` at every checkpoint of a training run {step: model}, in the order of the steps:
    [n_checkpoints, 2], column 0 the mean loss on copied tokens, column 1 on the others. tokens [batch, pos],
    copied [batch, pos] bool (`SyntheticLanguage.sample(...)`). Notebook 02 builds it."""
    if not isinstance(history, dict) or not history:
        raise ValueError(f"history must be a non-empty dict {{step: model}}, got {history!r:.80}")
    if not all(isinstance(step, int) and not isinstance(step, bool) for step in history):
        raise TypeError(f"history's keys must be training steps (ints), got {sorted(map(repr, history))[:5]}")
    rows = []
    for step in sorted(history):
        model = history[step]
        validate.model(model, f"history[{step}]")
        validate.tokens(tokens, model.cfg)
        with torch.no_grad():
            loss = per_token_loss(model(tokens), tokens)
        rows.append(loss_on_copies(loss, copied))
    return torch.stack(rows)


def phase_change(steps, icl_two_layer, icl_one_layer, best_induction, width: float) -> dict:
    """The phase change of a two-layer model, against a one-layer model trained the same way.

    Both learn a little in-context behaviour early on; what only two layers can do is the
    difference of their ICL scores, the "two-layer excess". Returns the excess at every step, its
    final value, the window of at most `width` steps holding the largest share of its change, that
    share, and the step at which the two-layer model's best induction score made half its rise.
    """
    steps = list(steps)
    if not len(steps) == len(icl_two_layer) == len(icl_one_layer) == len(best_induction):
        lengths = [len(steps), len(icl_two_layer), len(icl_one_layer), len(best_induction)]
        raise ValueError(f"steps, both ICL curves and best_induction must have one value per checkpoint, "
                         f"got lengths {lengths}")
    excess = [float(a) - float(b) for a, b in zip(icl_two_layer, icl_one_layer)]
    start, end, share = phase_window(steps, excess, width)
    ind = [float(x) for x in best_induction]
    half_rise = first_step_above(steps, ind, ind[0] + 0.5 * (ind[-1] - ind[0]))
    return {"excess": excess, "excess_final": excess[-1], "window": [start, end], "share_in_window": share,
            "induction_half_rise_step": half_rise}


def repetition_rate(tokens: Int[Tensor, "batch pos"], n: int, start: int) -> Float[Tensor, " batch"]:
    """[batch]: the fraction of n-grams ending at positions start, start + 1, ... (the generated text)
    that occurred earlier in the same sequence, ending at an earlier position (overlaps allowed).
    0: every generated n-gram is new; 1: the text only repeats itself (notebook 03, generation)."""
    validate.tensor(tokens, "tokens", "batch pos", dtype="int")
    validate.positive(n=n)
    validate.int_in(start, n - 1, tokens.shape[1] - 1, "start", f"an n-gram must end there: n={n}, the tokens have {tokens.shape[1]} positions")
    grams = tokens.unfold(1, n, 1)  # [batch, gram, n]: gram j ends at position j + n - 1
    same = (grams[:, :, None] == grams[:, None, :]).all(-1)  # [batch, gram, earlier gram]
    earlier = torch.ones(same.shape[1], same.shape[1], dtype=torch.bool, device=tokens.device).tril(-1)
    seen = (same & earlier).any(-1)  # [batch, gram]
    return seen[:, start - n + 1:].float().mean(-1)
