"""Checks for notebook 03, "Finding induction heads": the previous-token, induction and
duplicate-token scores of attention patterns; a head's QK circuit between two sets of inputs; the
composition score of two heads, and of every pair against a random baseline; a head's attention
scores split by the source of its keys; the eigenvalue score
and the top-1 accuracy of full OV circuits; how much of a generated text repeats itself."""

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
    "qk_circuit": metrics.qk_circuit,
    "composition_excess": metrics.composition_excess,
    "key_scores_by_source": metrics.key_scores_by_source,
    "ov_eigenvalue_score": metrics.ov_eigenvalue_score,
    "full_ov_top1_accuracy": metrics.full_ov_top1_accuracy,
    "repetition_rate": metrics.repetition_rate,
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


def check_qk_circuit(fn):
    """fn(X_query [n_query, d_model], X_key [n_key, d_model], W_Q, W_K [d_model, d_head]) -> [n_query, n_key]."""
    __tracebackhide__ = True
    shapes = [(7, 7, 10, 3), (5, 9, 8, 4), (6, 6, 12, 2)]  # (n_query, n_key, d_model, d_head): d_head != d_model
    for seed, (n_q, n_k, d_model, d_head) in enumerate(shapes):
        g = fixtures.generator(seed)
        X_q, X_k = torch.randn(n_q, d_model, generator=g), torch.randn(n_k, d_model, generator=g)
        W_Q, W_K = torch.randn(d_model, d_head, generator=g), torch.randn(d_model, d_head, generator=g)
        expected = metrics.qk_circuit(X_q, X_k, W_Q, W_K)
        got = call("qk_circuit", fn, {"X_query": X_q, "X_key": X_k, "W_Q": W_Q, "W_K": W_K})
        raw = (X_q @ W_Q) @ (X_k @ W_K).T
        future = torch.triu(torch.ones(n_q, n_k, dtype=torch.bool), diagonal=1)
        mistakes = {
            "you did not divide by sqrt(d_head): the model scales every attention score by 1 / sqrt(d_head) "
            "before the softmax, and the circuit should show the scores the model uses": raw,
            "you divided by d_head: the scale is its square root, sqrt(d_head)": raw / d_head,
            "you divided by sqrt(d_model): the scale is sqrt(d_head), the width of one head (W_Q.shape[1])":
                raw / d_model ** 0.5,
            "your rows are the keys and your columns the queries (the answer is transposed): row i is "
            "query X_query[i], column j is key X_key[j]": expected.T,
            "you swapped W_Q and W_K: the query side reads through W_Q, the key side through W_K":
                (X_q @ W_K) @ (X_k @ W_Q).T / d_head ** 0.5,
            "you applied a softmax: the QK circuit is the scores themselves, before any softmax": expected.softmax(-1),
            "you used X_query on the key side too: the keys are the rows of X_key":
                (X_q @ W_Q) @ (X_q @ W_K).T / d_head ** 0.5,
            "you masked the future: the circuit holds every pair's score; the causal mask belongs to the "
            "model's forward pass, not to the weights": expected.masked_fill(future, float("-inf")),
        }
        compare("qk_circuit", got, expected, mistakes, atol=1e-4, axes="query key")
    done("qk_circuit", len(shapes))


def _eigenvalue_fixture(seed, heads, n, k):
    """A [heads, n, k], B [heads, k, n] whose products lean, head by head, to copying (B near A^T),
    to anti-copying (B near -A^T) or to neither, so the scores differ in sign and size."""
    g = fixtures.generator(seed)
    A = torch.randn(heads, n, k, generator=g)
    lean = torch.linspace(1.0, -0.6, heads)[:, None, None]
    B = lean * A.transpose(-2, -1) + torch.randn(heads, k, n, generator=g) * 0.8
    return A, B


def check_ov_eigenvalue_score(fn):
    """fn(A [..., n, k], B [..., k, n]) -> sum(eig(A B)) / sum(|eig(A B)|), real, [...]."""
    __tracebackhide__ = True
    shapes = [(3, 10, 3), (2, 7, 7), (4, 12, 2)]  # (heads, n, k)
    for seed, (heads, n, k) in enumerate(shapes):
        A, B = _eigenvalue_fixture(seed, heads, n, k)
        expected = metrics.ov_eigenvalue_score(A, B)
        got = call("ov_eigenvalue_score", fn, {"A": A, "B": B})
        eig = torch.linalg.eigvals(B @ A)  # the k non-zero eigenvalues of A B
        product = A @ B
        diagonal = product.diagonal(dim1=-2, dim2=-1)
        mistakes = {
            "your score is 1 for every head, whatever the matrix: either you used singular values "
            "(FactoredMatrix.S, svdvals), which are never negative, or you took absolute values in the "
            "numerator too. Use the eigenvalues, whose sign says whether the map keeps a direction or flips "
            "it, and the plain sum on top: sum(eigenvalues) / sum(|eigenvalues|)": torch.ones(heads),
            "you divided by the sum of |real parts|: divide by the sum of the eigenvalues' absolute "
            "values, |a + bi| = sqrt(a^2 + b^2)": lambda: eig.sum(-1).real / eig.real.abs().sum(-1),
            "you counted the positive eigenvalues: weight each by its size, sum(eigenvalues) / sum(|eigenvalues|)":
                lambda: (eig.real > 0).float().mean(-1),
            "you used the diagonal entries of A B, not its eigenvalues (their sum is the same, the sum of "
            "their absolute values is not)": diagonal.sum(-1) / diagonal.abs().sum(-1),
        }
        compare("ov_eigenvalue_score", got, expected, mistakes, atol=1e-4, axes="head")
    done("ov_eigenvalue_score", len(shapes))


def _ov_fixture(seed, d_vocab, d_model, d_head, lead):
    """W_E, W_V, W_O, W_U where each head copies some tokens and not others: W_V W_O is a scaled
    projection plus noise, its strength varying by head, so top-1 accuracies spread between 0 and 1."""
    g = fixtures.generator(seed)
    W_E = torch.randn(d_vocab, d_model, generator=g) * (0.5 + torch.rand(d_vocab, 1, generator=g))
    W_U = W_E.T + torch.randn(d_model, d_vocab, generator=g) * 0.2
    basis = torch.linalg.qr(torch.randn(*lead, d_model, d_model, generator=g))[0][..., :d_head]  # [..., d_model, d_head]
    n = 1
    for size in lead:
        n *= size
    strength = torch.linspace(3.0, -0.5, n).reshape(*lead, 1, 1)
    W_V = basis + torch.randn(*lead, d_model, d_head, generator=g) * 0.2
    W_O = strength * basis.transpose(-2, -1) + torch.randn(*lead, d_head, d_model, generator=g) * 0.1
    return W_E, W_V, W_O, W_U


def check_full_ov_top1_accuracy(fn):
    """fn(W_E [d_vocab, d_model], W_V [..., d_model, d_head], W_O [..., d_head, d_model], W_U [d_model, d_vocab]) -> [...]."""
    __tracebackhide__ = True
    cases = [(11, 8, 4, (2, 3)), (13, 10, 3, (4,)), (9, 6, 6, (2, 2))]  # (d_vocab, d_model, d_head, leading axes)
    for seed, (d_vocab, d_model, d_head, lead) in enumerate(cases):
        W_E, W_V, W_O, W_U = _ov_fixture(seed, d_vocab, d_model, d_head, lead)
        expected = metrics.full_ov_top1_accuracy(W_E, W_V, W_O, W_U)
        got = call("full_ov_top1_accuracy", fn, {"W_E": W_E, "W_V": W_V, "W_O": W_O, "W_U": W_U})
        full = W_E @ W_V @ W_O @ W_U  # [..., attended token, logit]
        own = torch.arange(d_vocab)
        mistakes = {
            "you took the argmax down each column (over the attended tokens): row t of the full OV circuit "
            "is what attending to token t does to every logit, so look along the row, argmax(-1)":
                (full.argmax(-2) == own).float().mean(-1),
            "you took the largest entry in absolute value: a large negative entry pushes that logit DOWN; "
            "the top-1 is the logit raised most, the plain argmax": (full.abs().argmax(-1) == own).float().mean(-1),
            "you returned a percentage: return the fraction of tokens, from 0 to 1": expected * 100,
            "you counted the tokens: divide by d_vocab, so the accuracy is a fraction (0 to 1)":
                (full.argmax(-1) == own).float().sum(-1),
            "you compared the diagonal entry with the row's mean: top-1 means larger than EVERY other entry "
            "of the row": (full.diagonal(dim1=-2, dim2=-1) > full.mean(-1)).float().mean(-1),
            "you compared the diagonal entry with the column's largest: compare it with its own row":
                (full.diagonal(dim1=-2, dim2=-1) >= full.max(-2).values).float().mean(-1),
        }
        compare("full_ov_top1_accuracy", got, expected, mistakes, axes=" ".join(["layer", "head"][-len(lead):]))
    done("full_ov_top1_accuracy", len(cases))


def _all_pairs(A, B, reader_first=False):
    """Composition scores of every pair (A[i], B[j]): [len(A), len(B)]; reader_first multiplies B[j] @ A[i]."""
    products = B[None] @ A[:, None] if reader_first else A[:, None] @ B[None]
    return products.norm(dim=(-2, -1)) / (A.norm(dim=(-2, -1))[:, None] * B.norm(dim=(-2, -1))[None])


def check_composition_excess(fn):
    """fn(writers [n_writer, d, m], readers [n_reader, m, e], random_writers [s, d, m], random_readers [t, m, e])
    -> [n_writer, n_reader]: each pair's composition score minus the mean score of every random pair."""
    __tracebackhide__ = True
    cases = [(3, 4, 5, 6, 8, 8, 8), (4, 4, 3, 3, 6, 6, 6), (2, 5, 4, 2, 7, 5, 6)]  # (n_w, n_r, s, t, d, m, e)
    for seed, (n_w, n_r, s, t, d, m, e) in enumerate(cases):
        g = fixtures.generator(seed)
        shared = torch.randn(m, 2, generator=g)  # some writers and readers share a subspace: real scores vary
        writers = torch.randn(n_w, d, m, generator=g) * 0.5
        writers[0, :2] += shared.T * 3
        readers = torch.randn(n_r, m, e, generator=g) * 2
        readers[-1, :, :2] += shared * 3
        random_writers, random_readers = torch.randn(s, d, m, generator=g), torch.randn(t, m, e, generator=g)
        inputs = {"writers": writers, "readers": readers, "random_writers": random_writers, "random_readers": random_readers}
        expected = metrics.composition_excess(*inputs.values())
        got = call("composition_excess", fn, inputs)
        real, baseline = _all_pairs(writers, readers), _all_pairs(random_writers, random_readers)
        mistakes = {
            "you did not subtract the baseline: return each score minus the mean score of the random pairs": real,
            "you divided by the baseline: the excess is a difference, score minus baseline": real / baseline.mean(),
            "your answer is transposed: rows are the writers, columns the readers, [n_writer, n_reader]": expected.T,
            "you multiplied in the wrong order: the writer's output is read by the reader, writer @ reader":
                lambda: _all_pairs(writers, readers, reader_first=True)
                - _all_pairs(random_writers, random_readers, reader_first=True).mean(),
            "your baseline pairs random_writers[i] only with random_readers[i]: average over every pair (i, j), "
            "as the real table does": lambda: real - baseline.diagonal().mean(),
            "you subtracted the mean of the real scores (that centres the table; it is not a baseline): "
            "subtract the mean score of the random pairs": real - real.mean(),
            "you did not normalise the scores: divide ||W_A W_B|| by ||W_A|| ||W_B||, for the real and the "
            "random pairs alike": (writers[:, None] @ readers[None]).norm(dim=(-2, -1))
                - (random_writers[:, None] @ random_readers[None]).norm(dim=(-2, -1)).mean(),
        }
        compare("composition_excess", got, expected, mistakes, atol=1e-4, axes="writer reader")
    done("composition_excess", len(cases))


def check_key_scores_by_source(fn):
    """fn(q [batch, query_pos, d_head], components [component, batch, key_pos, d_model], W_K [d_model, d_head])
    -> [component, batch, query_pos, key_pos]."""
    __tracebackhide__ = True
    cases = [(4, 2, 6, 8, 3), (3, 3, 5, 6, 2), (5, 1, 7, 10, 4)]  # (component, batch, pos, d_model, d_head)
    for seed, (n_c, batch, pos, d_model, d_head) in enumerate(cases):
        g = fixtures.generator(seed)
        q = torch.randn(batch, pos, d_head, generator=g)
        components = torch.randn(n_c, batch, pos, d_model, generator=g) * torch.linspace(0.2, 2, n_c)[:, None, None, None]
        W_K = torch.randn(d_model, d_head, generator=g)
        expected = metrics.key_scores_by_source(q, components, W_K)
        got = call("key_scores_by_source", fn, {"q": q, "components": components, "W_K": W_K})
        raw = expected * d_head ** 0.5
        future = torch.triu(torch.ones(pos, pos, dtype=torch.bool), diagonal=1)
        mistakes = {
            "you did not divide by sqrt(d_head): the model scales its attention scores by 1 / sqrt(d_head), and "
            "the parts should add up to the scores it uses": raw,
            "you divided by d_head: the scale is its square root, sqrt(d_head)": raw / d_head,
            "you divided by sqrt(d_model): the scale is sqrt(d_head), the width of one head (W_K.shape[1])":
                raw / components.shape[-1] ** 0.5,
            "your last two axes are [key_pos, query_pos]: the query is the row, as in hook_attn_scores": expected.transpose(-2, -1),
            "you summed over the components: keep one score table per component, [component, batch, query_pos, key_pos]":
                expected.sum(0),
            "you applied a softmax to each component: softmax is not linear, so softmaxed parts do not add up "
            "to anything; return the scores": expected.softmax(-1),
            "you masked the future: return every pair's score (the mask is applied later, to the total)":
                expected.masked_fill(future, float("-inf")),
        }
        compare("key_scores_by_source", got, expected, mistakes, atol=1e-4, axes="component batch query key")
    done("key_scores_by_source", len(cases))


def _repeats(tokens, n, start, earlier_by=1, sources_before=None, first=None, reduce="mean"):
    """Per sequence, how many n-grams ending at `first` (start - n + 1: ending at start) onwards were
    seen before, ending at least `earlier_by` positions earlier (and before `sources_before`)."""
    grams = tokens.unfold(1, n, 1)  # [batch, gram, n]
    same = (grams[:, :, None] == grams[:, None, :]).all(-1)
    count = same.shape[1]
    allowed = torch.ones(count, count, dtype=torch.bool).tril(-earlier_by) if earlier_by else ~torch.eye(count, dtype=torch.bool)
    if sources_before is not None:
        allowed &= (torch.arange(count) + n - 1 < sources_before)[None]
    seen = (same & allowed).any(-1)[:, start - n + 1 if first is None else first:]
    return seen.float().sum(-1) if reduce == "sum" else seen.float().mean(-1)


def check_repetition_rate(fn):
    """fn(tokens [batch, pos], n, start) -> [batch]: the fraction of n-grams ending at positions >= start
    that already ended at an earlier position of the same sequence."""
    __tracebackhide__ = True
    cases = [(4, 14, 4, 2, 6), (3, 11, 3, 3, 5), (5, 12, 6, 2, 3), (2, 10, 3, 4, 4)]  # (batch, pos, vocab, n, start)
    for seed, (batch, seq, vocab, n, start) in enumerate(cases):
        tokens = fixtures.tokens(fixtures.generator(seed), batch, seq, vocab)
        tokens[-1, start - 2:] = 1  # a run of one token: overlapping n-grams
        expected = metrics.repetition_rate(tokens.clone(), n, start)
        got = call("repetition_rate", fn, {"tokens": tokens, "n": n, "start": start})
        mistakes = {
            "you counted an n-gram that occurs anywhere else, later too: only an occurrence that ENDS at an "
            "earlier position counts (the text repeats something already written)": _repeats(tokens, n, start, earlier_by=0),
            "every n-gram counts as repeated: did you compare each n-gram with itself? Only strictly earlier "
            "ones count": torch.ones(batch),
            "you counted the n-grams that START at `start` or later: the generated n-grams are those that END "
            "there (the first one may begin in the prompt)": _repeats(tokens, n, start, first=start),
            "you looked for earlier occurrences in the prompt only: anything earlier in the sequence counts, "
            "generated text included (that is how loops show)": _repeats(tokens, n, start, sources_before=start),
            "you counted over the whole sequence, prompt included: only n-grams ending at `start` or later":
                _repeats(tokens, n, start, first=0),
            "you returned counts: divide by the number of generated n-grams, a fraction in [0, 1]":
                _repeats(tokens, n, start, reduce="sum"),
            "an overlapping earlier occurrence counts too (in 5 5 5, the second 5 5 repeats the first): "
            "any n-gram ending at an earlier position": _repeats(tokens, n, start, earlier_by=n),
            "you compared single tokens: compare n tokens at a time (tokens.unfold(1, n, 1))":
                _repeats(tokens, 1, start) if n > 1 else None,
            "you averaged over the batch: return one rate per sequence, [batch]": expected.mean(),
        }
        compare("repetition_rate", got, expected, {k: v for k, v in mistakes.items() if v is not None}, axes="batch")
    done("repetition_rate", len(cases))
