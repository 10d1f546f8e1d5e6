"""Checks for notebook 02, "Training and the induction bump": the per-token loss and the
in-context-learning score."""

from __future__ import annotations

import torch

from .. import metrics
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "per_token_loss": metrics.per_token_loss,
    "icl_score": metrics.icl_score,
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
