"""Checks for notebook 02, "Training and the induction bump": the per-token loss, the
in-context-learning score, the loss on copies and its curve over training, both head scores from one
cached run, each head's formation step, attention by offset, and the phase-change window's shares."""

from __future__ import annotations

import torch

from .. import metrics
from ..data import repeated_tokens
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "per_token_loss": metrics.per_token_loss,
    "icl_score": metrics.icl_score,
    "loss_on_copies": metrics.loss_on_copies,
    "copy_loss_curves": metrics.copy_loss_curves,
    "formation_steps": metrics.formation_steps,
    "prev_and_induction_scores": metrics.prev_and_induction_scores,
    "attention_by_offset": metrics.attention_by_offset,
    "window_shares": metrics.window_shares,
}


def check_per_token_loss(fn):
    """fn(logits [batch, pos, d_vocab], tokens [batch, pos]) -> loss [batch, pos - 1]."""
    __tracebackhide__ = True
    shapes = [(2, 6, 5), (3, 9, 11), (1, 2, 7)]  # (batch, pos, d_vocab)
    for seed, (batch, seq, d_vocab) in enumerate(shapes):
        g = fixtures.generator(seed)
        logits = torch.randn(batch, seq, d_vocab, generator=g) * 2
        tokens = fixtures.tokens(g, batch, seq, d_vocab)
        expected = metrics.per_token_loss(logits, tokens)
        got = call("per_token_loss", fn, {"logits": logits, "tokens": tokens})
        log_probs = logits.log_softmax(-1)
        mistakes = {
            "you compared each position's logits with the token at the same position: the logits at "
            "position t predict the token at t + 1 (use logits[:, :-1] and tokens[:, 1:])":
                -log_probs.gather(-1, tokens[..., None])[..., 0][:, 1:],
            "you shifted the wrong way: logits[:, :-1] (positions 0 .. pos-2) predict tokens[:, 1:]":
                -log_probs[:, 1:].gather(-1, tokens[:, :-1, None])[..., 0],
            "your loss is negative: the loss is MINUS the log-probability of the right token": -expected,
            "you used the probability, not its log: loss = -log_softmax(logits)[right token]":
                -logits.softmax(-1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0],
            "you took log(softmax) over the wrong axis: normalise over the vocabulary (the last axis)":
                -logits.log_softmax(1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0],
            "you averaged the losses: return one loss per prediction, [batch, pos - 1]": expected.mean(),
            "you averaged over the batch: return one loss per prediction, [batch, pos - 1]": expected.mean(0),
        }
        compare("per_token_loss", got, expected, mistakes, axes="batch pos")
    done("per_token_loss", len(shapes))


def check_icl_score(fn):
    """fn(loss_by_token [..., pos - 1], early: slice, late: slice) -> a 0-d tensor."""
    __tracebackhide__ = True
    cases = [((4, 20), slice(0, 4), slice(15, 19)), ((2, 3, 31), slice(0, 6), slice(22, 31)),
             ((5, 12), slice(1, 3), slice(7, 12))]
    for seed, (shape, early, late) in enumerate(cases):
        loss = torch.rand(shape, generator=fixtures.generator(seed)) * 3
        expected = metrics.icl_score(loss, early, late)
        got = call("icl_score", fn, {"loss_by_token": loss, "early": early, "late": late})
        mistakes = {
            "your sign is flipped: the ICL score is late MINUS early, so it is negative when the "
            "model does better later in the context": -expected,
            "you summed the losses: use the mean over each range (the ranges may differ in length)":
                loss[..., late].sum() - loss[..., early].sum(),
            "you divided: the ICL score is a difference, late minus early": loss[..., late].mean() / loss[..., early].mean(),
            "you kept one score per sequence: average over every axis, to one number":
                loss[..., late].mean(-1) - loss[..., early].mean(-1),
            "you sliced the second axis (loss[:, late]): the positions are the LAST axis, and the losses may "
            "have more than two axes; slice with loss_by_token[..., late]": lambda: loss[:, late].mean() - loss[:, early].mean(),
            "you compared single positions: average over the whole early and late ranges":
                lambda: loss[..., late.start].mean() - loss[..., early.start].mean(),
        }
        compare("icl_score", got, expected, mistakes)
    done("icl_score", len(cases))


def _copied_masks(g: torch.Generator, batch: int, seq: int) -> torch.Tensor:
    """A bool mask [batch, seq] of copied tokens: sequences with different numbers of copies (one with
    none), never the first token, and a copy at the last position (an off-by-one at the end shows)."""
    copied = torch.rand(batch, seq, generator=g) < 0.4
    copied[:, 0] = False
    copied[0] = False
    copied[0, seq // 2:] = True  # the first sequence: one long copy
    copied[-1, -1] = True
    if batch > 2:
        copied[1] = False  # a sequence without any copy
    return copied


def check_loss_on_copies(fn):
    """fn(loss_by_token [batch, pos - 1], copied [batch, pos] bool) -> [2] (copied, other)."""
    __tracebackhide__ = True
    shapes = [(4, 9), (3, 14), (6, 7)]  # (batch, pos)
    for seed, (batch, seq) in enumerate(shapes):
        g = fixtures.generator(seed)
        loss = torch.rand(batch, seq - 1, generator=g) * 4
        copied = _copied_masks(g, batch, seq)
        expected = metrics.loss_on_copies(loss, copied)
        got = call("loss_on_copies", fn, {"loss_by_token": loss, "copied": copied})
        mask = copied[:, 1:]

        def per_sequence(mask=mask, loss=loss):
            return torch.stack([((loss * m).sum(1) / m.sum(1)).mean() for m in (mask, ~mask)])

        mistakes = {
            "you lined the mask up with the wrong tokens: copied[b, t] marks TOKEN t, and loss[b, t] is the "
            "prediction of token t + 1, so the predictions of copied tokens are copied[:, 1:]":
                lambda: torch.stack([loss[copied[:, :-1]].mean(), loss[~copied[:, :-1]].mean()]),
            "your two numbers are the wrong way round: first the loss on copied tokens, then on the others":
                expected.flip(0),
            "you averaged each sequence first, then the sequences: sequences hold different numbers of copied "
            "tokens (some none); average over all the predictions of copied tokens at once":
                per_sequence,
            "you divided by the number of ALL predictions (a mean of loss * mask): divide each sum by the number "
            "of predictions it adds up (or index the losses with the mask and take .mean())":
                torch.stack([(loss * mask).mean(), (loss * ~mask).mean()]),
            "you compared copied tokens with ALL tokens: the second number is the loss on the tokens that are "
            "NOT copied": torch.stack([expected[0], loss.mean()]),
        }
        compare("loss_on_copies", got, expected, mistakes, axes="copied_or_other",
                nan_hint="a mean over no entries is NaN: did you index with a mask that selects nothing?")
    done("loss_on_copies", len(shapes))


def check_copy_loss_curves(fn):
    """fn(history {step: model}, tokens [batch, pos], copied [batch, pos] bool) -> [n_checkpoints, 2]."""
    __tracebackhide__ = True
    cases = [([300, 0, 1000, 150], 4, 9), ([50, 20, 10], 3, 12), ([0, 7, 3, 12, 5], 5, 7)]  # steps in the dict's order
    for seed, (steps, batch, seq) in enumerate(cases):
        history = {step: fixtures.model(seed=10 * seed + i, n_layers=1 + i % 3, attn_only=True)
                   for i, step in enumerate(steps)}
        g = fixtures.generator(seed)
        tokens = fixtures.tokens(g, batch, seq, 13)
        copied = _copied_masks(g, batch, seq)
        expected = metrics.copy_loss_curves(history, tokens, copied)
        got = call("copy_loss_curves", fn, {"history": history, "tokens": tokens, "copied": copied})

        def rows(order):
            with torch.no_grad():
                return torch.stack([metrics.loss_on_copies(metrics.per_token_loss(history[step](tokens), tokens), copied)
                                    for step in order])

        mistakes = {
            "your rows follow the order of the dict, not of the training steps: loop over sorted(history), so "
            "that row i is the i-th checkpoint in training": lambda: rows(steps),
            "your rows run from the last step to the first: sort the steps in increasing order": expected.flip(0),
            "your curves are [2, n_checkpoints]: return one row per checkpoint, [n_checkpoints, 2]": expected.T,
            "your two columns are the wrong way round: first the loss on copied tokens, then on the others":
                expected.flip(1),
            "every row is the same model's: use each checkpoint's own model, history[step]":
                lambda: rows([max(steps)] * len(steps)),
            "you averaged the two losses: keep both, the loss on copied tokens and on the others, [n_checkpoints, 2]":
                lambda: expected.mean(1),
        }
        compare("copy_loss_curves", got, expected, mistakes, axes="step copied_or_other")
    done("copy_loss_curves", len(cases))


def check_prev_and_induction_scores(fn):
    """fn(model, tokens [batch, 2 * period], period) -> [2, n_layers, n_heads]."""
    __tracebackhide__ = True
    cases = [(fixtures.model(seed=3, attn_only=True), 5), (fixtures.bridge(seed=4, n_layers=4, n_heads=2), 6),
             (fixtures.model(seed=5, n_layers=2, n_heads=4), 4)]
    for seed, (model, period) in enumerate(cases):
        tokens = repeated_tokens(3 + seed, period, model.cfg.d_vocab, seed=seed)
        expected = metrics.prev_and_induction_scores(model, tokens, period)
        got = call("prev_and_induction_scores", fn, {"model": model, "tokens": tokens, "period": period})
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        patterns = [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.cfg.n_layers)]

        def both(prev, induction):
            return torch.stack([torch.stack([prev(p) for p in patterns]), torch.stack([induction(p) for p in patterns])])

        mistakes = {
            "your two scores are the wrong way round: [0] is the previous-token score, [1] the induction score":
                expected.flip(0),
            "your [1] is the duplicate-token score (query t -> key t - period): an induction head attends to the "
            "token AFTER the previous occurrence, key t - period + 1 (metrics.induction_score(pattern, period))":
                lambda: both(metrics.prev_token_score, lambda p: metrics.duplicate_token_score(p, period)),
            "your layers are stacked along the wrong axis: return [score, layer, head]":
                lambda: expected.transpose(0, 1),
            "you scored only the first layer's pattern for every layer: read blocks.{layer}.attn.hook_pattern "
            "of each layer": lambda: both(lambda p: metrics.prev_token_score(patterns[0]),
                                          lambda p: metrics.induction_score(patterns[0], period)),
            "you averaged over the heads: keep one score per head, [2, n_layers, n_heads]":
                lambda: expected.mean(-1, keepdim=True).expand_as(expected),
        }
        compare("prev_and_induction_scores", got, expected, mistakes, axes="score layer head")
    done("prev_and_induction_scores", len(cases))


def check_attention_by_offset(fn):
    """fn(pattern [batch, head, query_pos, key_pos]) -> [head, offset]."""
    __tracebackhide__ = True
    shapes = [(2, 3, 7), (3, 2, 10), (1, 4, 5)]  # (batch, head, pos)
    for seed, (batch, heads, seq) in enumerate(shapes):
        pattern = fixtures.causal_patterns(seed, batch, heads, seq)
        expected = metrics.attention_by_offset(pattern)
        got = call("attention_by_offset", fn, {"pattern": pattern})

        def diagonals(reduce, sign=-1):
            return torch.stack([reduce(pattern.diagonal(offset=sign * d, dim1=-2, dim2=-1)) for d in range(seq)], -1)

        mistakes = {
            "you read the diagonals ABOVE the main one (key after query), where a causal pattern is 0: offset d "
            "is pattern[..., q, q - d], the diagonal(offset=-d)": lambda: diagonals(lambda x: x.mean(-1), sign=1).mean(0),
            "you divided each diagonal's sum by the number of positions: the diagonal at offset d has only "
            "pos - d entries; take the mean of the diagonal itself": lambda: diagonals(lambda x: x.sum(-1) / seq).mean(0),
            "you summed along each diagonal: average over the queries that have a key that far back":
                lambda: diagonals(lambda x: x.sum(-1)).mean(0),
            "you kept the batch axis: average over the batch too, to [head, offset]":
                lambda: diagonals(lambda x: x.mean(-1)),
            "you averaged over the queries: that is the attention each KEY POSITION gets, not the attention "
            "at each distance back": lambda: pattern.mean(-2).mean(0),
            "your offsets run backwards: entry d is the attention d positions back (d = 0: the token itself)":
                lambda: expected.flip(-1),
            "you averaged over the heads: keep one row per head": lambda: expected.mean(0, keepdim=True).expand_as(expected),
            "you started at offset 1: offset 0, the query attending to itself, comes first (offsets 0 .. pos - 1)":
                lambda: expected[:, 1:],
            "you left out the last offset, pos - 1 (the last query attending to the first key): offsets run "
            "0 .. pos - 1": lambda: expected[:, :-1],
        }
        compare("attention_by_offset", got, expected, mistakes, axes="head offset")
    done("attention_by_offset", len(shapes))


def check_window_shares(fn):
    """fn(steps [n_checkpoints], values [n_checkpoints], width) -> [start, end]."""
    __tracebackhide__ = True
    cases = [  # uneven steps (a width counted in checkpoints shows), a width equal to some window (<= shows);
        # in the first, a width in checkpoints keeps some windows too long, but not all of them
        ([0, 1, 2, 4, 7, 8, 12, 16], [0.5, 0.45, 0.6, 0.4, 1.8, 2.1, 2.0, 2.2], 4),
        ([0, 50, 100, 200, 400, 450, 700, 1000], [0.0, -0.1, -0.05, -0.2, -0.9, -1.2, -0.95, -1.1], 250),
        ([0, 100, 200, 300, 400, 500, 600], [1.0, 0.9, 1.1, 2.5, 3.0, 2.9, 3.1], 200),
        ([0, 10, 40, 50, 90, 100, 160, 200, 210], [0.3, 0.1, 0.5, 0.4, 0.9, 1.3, 1.2, 1.6, 1.5], 50.0),
    ]
    for steps, values, width in cases:
        steps, values = torch.tensor(steps), torch.tensor(values)
        expected = metrics.window_shares(steps, values, width)
        got = call("window_shares", fn, {"steps": steps, "values": values, "width": width})
        change, length = values[None, :] - values[:, None], steps[None, :] - steps[:, None]
        total, n = values[-1] - values[0], len(steps)
        index = torch.arange(n)

        def shares(inside, share=change / total):
            return torch.where(inside, share, torch.zeros_like(share))

        inside = (length > 0) & (length <= width)
        mistakes = {
            "your windows run backwards: entry [i, j] is the change from checkpoint i (start) to checkpoint j "
            "(end), values[j] - values[i]": lambda: expected.T,
            "your shares have the wrong sign: divide values[end] - values[start] by values[-1] - values[0], "
            "both with their signs": lambda: -expected,
            "you did not divide by the total change (values[-1] - values[0]): a share is a fraction of it":
                lambda: shares(inside, change),
            "you divided by the range (max - min): the total change is values[-1] - values[0], so that a window "
            "holding the whole rise has share 1": lambda: shares(inside, change / (values.max() - values.min())),
            "you took the absolute change: keep its sign, so that a window going against the overall trend has a "
            "negative share": lambda: shares(inside, (change / total).abs()),
            "you measured the width in checkpoints: width is in training steps; compare steps[j] - steps[i] with it":
                lambda: shares((index[None, :] > index[:, None]) & (index[None, :] - index[:, None] <= width)),
            "you left out the windows exactly `width` steps long: at most `width` means <=":
                lambda: shares((length > 0) & (length < width)),
            "you kept windows that end before they start (or where they start): keep only steps[j] > steps[i]":
                lambda: shares(length.abs() <= width),
            "you kept every window, however long: keep only those at most `width` steps long":
                lambda: shares(length > 0),
            "you gave percentages: a share is a fraction of the total change (1 is all of it)": lambda: 100 * expected,
        }
        compare("window_shares", got, expected, mistakes, axes="start end",
                nan_hint="a pair that is not an allowed window (too long, or not ending after it starts) gets "
                         "a share of 0, not NaN or infinity")
    done("window_shares", len(cases))


def _first_above(steps, scores, threshold, strict=False, never=float("nan")):
    """The step of the first checkpoint at or above threshold (not requiring it to stay): a mistake."""
    above = scores > threshold if strict else scores >= threshold
    first = steps[above.int().argmax(0)].to(scores.dtype)
    return torch.where(above.any(0), first, torch.full_like(first, never))


def check_formation_steps(fn):
    """fn(steps [n_checkpoints], scores [n_checkpoints, ...], threshold) -> [...]: the step from which each
    score stays at or above threshold, NaN where it is below at the last checkpoint."""
    __tracebackhide__ = True
    cases = [  # (steps, scores, threshold): uneven steps, scores that poke above and fall back, one that only
        # reaches the threshold exactly (>= shows), one never formed, one formed from the start
        ([0, 150, 300, 450, 600, 900],
         [[[0.1, 0.05, 0.3], [0.2, 0.1, 0.6]], [[0.5, 0.1, 0.3], [0.3, 0.1, 0.7]], [[0.2, 0.1, 0.2], [0.4, 0.1, 0.8]],
          [[0.6, 0.3, 0.5], [0.5, 0.2, 0.9]], [[0.7, 0.1, 0.4], [0.6, 0.2, 0.9]], [[0.8, 0.2, 0.5], [0.7, 0.3, 0.9]]], 0.5),
        ([10, 20, 40, 80, 160], [[0.2, 0.9, 0.1], [0.7, 0.9, 0.4], [0.3, 0.8, 0.4], [0.75, 0.3, 0.4], [0.8, 0.85, 0.39]], 0.4),
        ([0, 1, 2, 3, 5, 8, 13],
         [[-0.2, 0.0], [-0.1, 0.3], [0.4, 0.1], [-0.3, 0.2], [0.5, 0.25], [0.6, 0.2], [0.7, 0.25]], 0.25),
    ]
    for steps, scores, threshold in cases:
        steps, scores = torch.tensor(steps), torch.tensor(scores)
        expected = metrics.formation_steps(steps, scores, threshold)
        got = call("formation_steps", fn, {"steps": steps, "scores": scores, "threshold": threshold})
        above = (scores >= threshold).int()
        stays = above.flip(0).cummin(0).values.flip(0)
        index = stays.argmax(0).to(scores.dtype)
        mistakes = {
            "you took the first checkpoint at or above the threshold: a score that pokes above it and falls back "
            "has not formed; find the first checkpoint from which it STAYS at or above the threshold":
                _first_above(steps, scores, threshold),
            "you returned the checkpoint's index, not its training step: look the index up in steps":
                torch.where(stays[-1].bool(), index, torch.full_like(index, float("nan"))),
            "a score that never stays above the threshold got a step: it has not formed, so give it NaN "
            "(torch.where with the last checkpoint's score, or stays[-1], as the condition)":
                lambda: torch.where(stays[-1].bool(), expected, steps[0].to(scores.dtype)),
            "a score that has not formed by the end got the last step: it has not formed, so give it NaN":
                lambda: torch.where(stays[-1].bool(), expected, steps[-1].to(scores.dtype)),
            "a score that has not formed by the end got -1: give it NaN (not a step, so no comparison with a "
            "step is true by accident)": lambda: torch.where(stays[-1].bool(), expected, torch.tensor(-1.0)),
            "you required the score to be strictly above the threshold: 'reaches' means at or above (>=)":
                lambda: metrics.formation_steps(steps, scores, threshold + 1e-6),
            "you took the first checkpoint from which the score stays BELOW the threshold: find where it stays "
            "at or above it": lambda: metrics.formation_steps(steps, -scores, -threshold + 1e-6),
        }
        compare("formation_steps", got, expected, mistakes, axes=" ".join(["layer", "head"][-(scores.ndim - 1):]) or None,
                nan_hint="only a score below the threshold at the last checkpoint (never formed) gets NaN")
    done("formation_steps", len(cases))
