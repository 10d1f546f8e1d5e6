"""Checks for notebook 08, "Multiple-choice heads": the correct-letter score of a head, the label
mutations, what a head's output adds to each label's logit, the compression of queries and keys to
their top k directions, the positions of a question with two (option, label) pairs swapped, the
logits with those positions, and how much a head prefers one letter."""

from __future__ import annotations

import torch

from .. import correct_letter as cl
from .. import multiple_choice as mcq
from . import fixtures
from .framework import ExerciseError, _check_dtype, _check_kind, _shape_message, call, compare, done

REFERENCES = {
    "correct_letter_score": cl.correct_letter_score,
    "mutated_labels": mcq.mutated_labels,
    "head_label_logits": cl.head_label_logits,
    "compress": cl.compress,
    "swapped_positions": cl.swapped_positions,
    "logits_at_positions": cl.logits_at_positions,
    "letter_peak": cl.letter_peak,
}

_OPTIONS = [(0, 5, 4), (1, 3, 3), (2, 6, 5)]  # (seed, batch, n_options)


def _correct_and_other(g: torch.Generator, batch: int, n_options: int):
    correct = torch.randint(0, n_options, (batch,), generator=g)
    other = (correct + torch.randint(1, n_options, (batch,), generator=g)) % n_options
    return correct, other


def check_correct_letter_score(fn):
    """fn(pattern [batch, head, query_pos, key_pos], correct [batch]) -> [head]."""
    __tracebackhide__ = True
    for seed, batch, n in _OPTIONS:
        pattern = fixtures.causal_patterns(seed, batch, 3, 2 * n + 3)
        correct, _ = _correct_and_other(fixtures.generator(seed), batch, n)
        expected = cl.correct_letter_score(pattern, correct)
        got = call("correct_letter_score", fn, {"pattern": pattern, "correct": correct})
        rows = torch.arange(batch)
        labels, options = mcq.label_positions(n)[correct], mcq.option_positions(n)[correct]
        mistakes = {
            "you read the correct option's position, not its label's: each label sits just after its "
            "option, at 3 + 2 * slot": pattern[rows, :, -1, options].mean(0),
            "your scores are all 0: you read the first query row, or the attention FROM the label TO the last "
            "position (in the label's future, so masked to 0); the query is the last position: "
            "pattern[b, :, -1, label]": pattern[rows, :, 0, labels].mean(0),
            "you summed over the questions: average them": pattern[rows, :, -1, labels].sum(0),
            "you kept one score per question: average over the batch, to [head]": pattern[rows, :, -1, labels],
            "you read the label of slot `correct` as if labels sat at 2 + 2 * slot (that is the option); "
            "or the label of the first option in every question": pattern[:, :, -1, 3].mean(0),
        }
        compare("correct_letter_score", got, expected, mistakes, axes="head")
    done("correct_letter_score", len(_OPTIONS))


def _fail(message: str) -> None:
    __tracebackhide__ = True
    raise ExerciseError(f"[mutated_labels] {message}")


def check_mutated_labels(fn):
    """fn(kind, size, n_options, gen) -> [size, n_options] letter indices (0 is A)."""
    __tracebackhide__ = True
    cases = [("fixed", 6, 4), ("shuffled", 40, 4), ("random", 40, 4), ("shuffled", 30, 5), ("random", 30, 3)]
    for i, (kind, size, n) in enumerate(cases):
        expected = mcq.mutated_labels(kind, size, n, fixtures.generator(i))
        got = call("mutated_labels", fn, {"kind": kind, "size": size, "n_options": n, "gen": fixtures.generator(i)})
        if kind == "fixed":
            compare("mutated_labels", got, expected, {}, axes="question option")
            continue
        _check_kind("mutated_labels", got, expected)
        _check_dtype("mutated_labels", got, expected)
        if got.shape != expected.shape:
            raise ExerciseError(_shape_message("mutated_labels", got, expected, ["question", "option"]))
        again = fn(kind, size, n, fixtures.generator(i))
        if not isinstance(again, torch.Tensor) or not torch.equal(again, got):
            _fail(f"kind={kind!r}: two calls with generators seeded alike gave different labels: draw every "
                  f"random number with `generator=gen`, so that a seed gives the same questions")
        if got.min() < 0 or got.max() >= len(mcq.LETTERS):
            _fail(f"kind={kind!r}: letter indices must lie in [0, 26), got {int(got.min())} to {int(got.max())}")
        rows = [r.tolist() for r in got]
        if any(len(set(r)) != n for r in rows):
            _fail(f"kind={kind!r}: a question has the same letter twice ({next(r for r in rows if len(set(r)) != n)}): "
                  f"the labels of one question must be distinct (draw without replacement: a random "
                  f"permutation, argsort of torch.rand, then keep the first n_options)")
        if len({tuple(r) for r in rows}) == 1:
            _fail(f"kind={kind!r}: every question got the same labels {rows[0]}: draw a new order for each question")
        if kind == "shuffled" and any(sorted(r) != list(range(n)) for r in rows):
            _fail(f"kind='shuffled': each question must use the letters 0 .. n_options - 1 (A, B, C, ...) in "
                  f"some order, got {next(r for r in rows if sorted(r) != list(range(n)))}")
        if kind == "random" and all(sorted(r) == list(range(n)) for r in rows):
            _fail("kind='random': every question uses only the first n_options letters: that is 'shuffled'; "
                  "draw the letters from the whole alphabet (26)")
        if kind == "random" and all(r == sorted(r) for r in rows):
            _fail("kind='random': the letters of every question are in alphabetical order: their order must be random too")
    done("mutated_labels", len(cases))


def _label_setup(seed: int, batch: int, n: int):
    model = fixtures.model(seed, n_layers=3, n_heads=3, d_model=12, d_vocab=13, n_ctx=16)
    g = fixtures.generator(seed)
    tokens = fixtures.tokens(g, batch, 2 * n + 3, model.cfg.d_vocab)
    labels = torch.stack([torch.randperm(model.cfg.d_vocab, generator=g)[:n] for _ in range(batch)])
    return model, tokens, labels


def check_head_label_logits(fn):
    """fn(model, tokens, labels [batch, option], layer, head) -> [batch, option]."""
    __tracebackhide__ = True
    cases = [(_OPTIONS[0], 2, 1), (_OPTIONS[1], 1, 0), (_OPTIONS[2], 0, 2)]
    for (seed, batch, n), layer, head in cases:
        model, tokens, labels = _label_setup(seed, batch, n)
        expected = cl.head_label_logits(model, tokens, labels, layer, head)
        got = call("head_label_logits", fn, {"model": model, "tokens": tokens, "labels": labels, "layer": layer, "head": head})
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        z = cache[f"blocks.{layer}.attn.hook_z"][:, :, head]  # [batch, pos, d_head]
        scale = cache["ln_final.hook_scale"]  # [batch, pos, 1]
        W_O, W_U, w = model.W_O[layer, head].detach(), model.W_U.detach(), model.ln_final.w.detach()

        def through(out, pos=-1, centre=True, divide=True, weight=True, bias=False, which=labels):
            if centre:
                out = out - out.mean(-1, keepdim=True)
            if divide:
                out = out / scale[:, pos]
            if weight:
                out = out * w
            logits = out @ W_U + (model.b_U.detach() if bias else 0)
            return logits.gather(1, which)

        out = z[:, -1] @ W_O
        mistakes = {
            "you did not divide by the final LayerNorm's scale (cache['ln_final.hook_scale'][:, -1]): the "
            "model divides the whole residual stream by it before unembedding": through(out, divide=False),
            "you did not centre the head's output: the final LayerNorm subtracts each vector's mean first": through(out, centre=False),
            "you left out the final LayerNorm's weight ln_final.w, which multiplies every direction before W_U": through(out, weight=False),
            "you added b_U: the unembedding's bias belongs to no head": through(out, bias=True),
            "you read the head at the first position: the model answers at the last, z[:, -1]": through(z[:, 0] @ W_O, pos=0),
            "you read the labels of the first question in every question: gather each question's own labels, "
            "logits.gather(1, labels)": through(out, which=labels[:1].expand_as(labels)),
            "you added b_O: the attention layer's bias belongs to no head": through(out + model.b_O[layer].detach()),
        }
        compare("head_label_logits", got, expected, mistakes, atol=1e-4, axes="batch option")
    done("head_label_logits", len(cases))


def check_compress(fn):
    """fn(vectors [n, d_head], k) -> [n, d_head]: the vectors projected onto their top-k directions."""
    __tracebackhide__ = True
    cases = [(0, 40, 8, 1), (1, 30, 6, 2), (2, 50, 10, 3)]
    for seed, n, d, k in cases:
        g = fixtures.generator(seed)
        scales = torch.linspace(3, 0.2, d)
        vectors = (torch.randn(n, d, generator=g) * scales) @ torch.linalg.qr(torch.randn(d, d, generator=g)).Q + torch.randn(d, generator=g)
        expected = cl.compress(vectors, k)
        got = call("compress", fn, {"vectors": vectors, "k": k})
        U, S, Vh = torch.linalg.svd(vectors, full_matrices=False)
        mean = vectors.mean(0)
        Uc, Sc, Vc = torch.linalg.svd(vectors - mean, full_matrices=False)
        mistakes = {
            "you centred the vectors before the SVD and projected the centred ones: a query's or key's mean is "
            "part of what it carries (and the model never sees centred vectors); take the SVD of the vectors themselves":
                (vectors - mean) @ Vc[:k].T @ Vc[:k],
            "you centred for the SVD and added the mean back: keep the SVD of the vectors themselves (uncentred)":
                (vectors - mean) @ Vc[:k].T @ Vc[:k] + mean,
            "you kept the k directions with the SMALLEST singular values: the top directions are the first rows of Vh":
                vectors @ Vh[-k:].T @ Vh[-k:],
            "you returned the coordinates in the k directions, [n, k]: project back, (vectors @ V.T) @ V": vectors @ Vh[:k].T,
            "you used columns of Vh instead of rows (Vh[:, :k]): the directions are the rows of Vh":
                vectors @ Vh[:, :k] @ Vh[:, :k].T,
            "you kept k + 1 directions": vectors @ Vh[: k + 1].T @ Vh[: k + 1],
            "you kept k - 1 directions": vectors @ Vh[: k - 1].T @ Vh[: k - 1],
            "you scaled by the singular values: a projection keeps lengths along the kept directions, "
            "U[:, :k] * S[:k] @ Vh[:k] is the same only if you use U and S together, not S twice":
                U[:, :k] * S[:k] ** 2 @ Vh[:k],
        }
        compare("compress", got, expected, mistakes, atol=1e-4, axes="vector d_head")
    done("compress", len(cases))


def check_swapped_positions(fn):
    """fn(correct [batch], other [batch], n_options) -> positions [batch, 2 * n_options + 3]."""
    __tracebackhide__ = True
    for seed, batch, n in _OPTIONS:
        correct, other = _correct_and_other(fixtures.generator(seed), batch, n)
        expected = cl.swapped_positions(correct, other, n)
        got = call("swapped_positions", fn, {"correct": correct, "other": other, "n_options": n})
        rows = torch.arange(batch)
        plain = torch.arange(2 * n + 3).expand(batch, -1)

        def swap(offsets, shift=0):
            p = plain.clone()
            for off in offsets:
                pc, po = 2 + 2 * correct + off + shift, 2 + 2 * other + off + shift
                p[rows, pc], p[rows, po] = po, pc
            return p

        mistakes = {
            "you swapped the options' positions but not their labels': the pair (option, label) moves together": swap([0]),
            "you swapped the labels' positions but not their options': the pair (option, label) moves together": swap([1]),
            "your pairs are (label, next option): an option sits at 2 + 2 * slot and its label just after it, at 3 + 2 * slot":
                lambda: swap([0, 1], shift=1),
            "you returned the positions of the unswapped question": plain.clone(),
            "you wrote the swapped slots, not positions: return a position (0 .. 2 * n_options + 2) for every token": lambda: torch.where(
                plain == 2 + 2 * correct[:, None], other[:, None], torch.where(plain == 2 + 2 * other[:, None], correct[:, None], plain)),
        }
        compare("swapped_positions", got, expected, mistakes, axes="batch pos")
    done("swapped_positions", len(_OPTIONS))


def check_logits_at_positions(fn):
    """fn(model, tokens [batch, pos], positions [batch, pos]) -> [batch, d_vocab] at the last position."""
    __tracebackhide__ = True
    for seed, batch, n in _OPTIONS:
        model, tokens, _ = _label_setup(seed, batch, n)
        if seed == 2:
            model = fixtures.bridge(seed, n_layers=3, n_heads=3, d_model=12, d_vocab=13, n_ctx=16)
        g = fixtures.generator(seed + 10)
        positions = torch.stack([torch.randperm(tokens.shape[1], generator=g) for _ in range(batch)])
        expected = cl.logits_at_positions(model, tokens, positions)
        got = call("logits_at_positions", fn, {"model": model, "tokens": tokens, "positions": positions})

        def run(replacement, last=True):
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[("hook_pos_embed", lambda pe, hook: replacement(pe))])
            return logits[:, -1] if last else logits

        W_pos = model.W_pos.detach()
        mistakes = {
            "you returned the model's own logits: the positions were not changed (does your hook return the new embedding?)":
                lambda: run(lambda pe: pe),
            "you used the first question's positions for every question: index W_pos with the whole [batch, pos] tensor":
                lambda: run(lambda pe: W_pos[positions[0]].expand_as(pe)),
            "you added the moved embedding to the old one: replace the positional embedding, do not add to it":
                lambda: run(lambda pe: pe + W_pos[positions]),
            "you returned the logits at every position: the answer is read at the last, [:, -1]":
                lambda: run(lambda pe: W_pos[positions], last=False),
            "you moved the tokens (tokens[positions]) instead of telling each token a new position": lambda: (
                model(tokens.gather(1, positions))[:, -1].detach()),
        }
        compare("logits_at_positions", got, expected, mistakes, atol=1e-4, axes="batch d_vocab")
    done("logits_at_positions", len(_OPTIONS))


def check_letter_peak(fn):
    """fn(preference [layer, head, letter]) -> [layer, head]: the largest minus the mean."""
    __tracebackhide__ = True
    cases = [(0, 2, 4, 26), (1, 3, 3, 4), (2, 1, 2, 6)]
    for seed, layers, heads, letters in cases:
        preference = torch.rand(layers, heads, letters, generator=fixtures.generator(seed)) * 0.5
        expected = cl.letter_peak(preference)
        got = call("letter_peak", fn, {"preference": preference})
        mistakes = {
            "you returned the largest attention alone: subtract the head's mean over the letters": preference.max(-1).values,
            "you subtracted the smallest, not the mean: the peak is measured against the head's average letter":
                preference.max(-1).values - preference.min(-1).values,
            "you returned which letter is the peak (argmax): the exercise asks how large the peak is": preference.argmax(-1),
            "you subtracted the mean over every head and letter: subtract each head's own mean over the letters, "
            "mean(-1)": preference.max(-1).values - preference.mean(),
        }
        compare("letter_peak", got, expected, mistakes, axes="layer head")
    done("letter_peak", len(cases))
