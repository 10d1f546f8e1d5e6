"""Checks for notebook 10, "Grokking": the train/test split, the Fourier basis, the key
frequencies of an embedding, the restricted and the excluded logits, the phases of a training run,
and the fit of the logits by a sum of cos(w (a + b - c))."""

from __future__ import annotations

import math

import torch

from .. import modular_addition as ma
from . import fixtures
from .framework import ExerciseError, _pair, call, compare, done

REFERENCES = {
    "train_test_split": ma.train_test_split,
    "fourier_basis": ma.fourier_basis,
    "key_frequencies": ma.key_frequencies,
    "restricted_logits": ma.restricted_logits,
    "excluded_logits": ma.excluded_logits,
    "grokking_phases": ma.grokking_phases,
    "cos_fit": ma.cos_fit,
}

_PRIMES = (13, 7, 11)  # small moduli, none the notebook's: a hard-coded 59 shows


def check_train_test_split(fn):
    """fn(p, train_fraction, seed) -> (train indices, test indices)."""
    __tracebackhide__ = True
    cases = [(13, 0.3, 0), (7, 0.5, 3), (11, 0.75, 1)]  # 0.3 * 169 = 50.7: rounding and truncating differ
    for p, fraction, seed in cases:
        expected = ma.train_test_split(p, fraction, seed)
        got = _pair("train_test_split", call("train_test_split", fn, {"p": p, "train_fraction": fraction, "seed": seed}),
                    "train indices, test indices")
        again = _pair("train_test_split", call("train_test_split", fn, {"p": p, "train_fraction": fraction, "seed": seed}),
                      "train indices, test indices")
        if all(isinstance(t, torch.Tensor) for t in got + again) and any(
                a.shape != b.shape or not torch.equal(a, b) for a, b in zip(got, again)):
            raise ExerciseError("[train_test_split] two calls with the same seed gave different splits: draw the "
                                "permutation with the seeded generator, torch.randperm(..., generator=generator(seed))")
        order = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
        n = round(fraction * p * p)
        mistakes = {
            "you swapped the two: return (train, test), the first round(train_fraction * p * p) of the permutation "
            "for training": order[n:],
            "you truncated train_fraction * p * p with int(): round it, so that 30% of 169 pairs is 51, not 50":
                order[: int(fraction * p * p)],
            "you took a fraction of p, not of the p * p pairs": order[: round(fraction * p)],
            "you sorted the indices: keep them in the order of the permutation": order[:n].sort().values,
        }
        compare("train_test_split", got[0], expected[0], mistakes, axes="train")
        compare("train_test_split", got[1], expected[1], {"you swapped the two: the test indices are the rest of the "
                                                           "permutation, after the training ones": order[:n]}, axes="test")
    done("train_test_split", len(cases))


def check_fourier_basis(fn):
    """fn(p) -> [p, p]: the constant, then cos and sin of each frequency, rows of unit norm."""
    __tracebackhide__ = True
    for p in _PRIMES:
        expected = ma.fourier_basis(p)
        got = call("fourier_basis", fn, {"p": p})
        x = torch.arange(p, dtype=torch.float32)
        ks = range(1, (p - 1) // 2 + 1)

        def rows(w_of, swap=False, norm=True, first=torch.ones(p)):
            out = [first]
            for k in ks:
                pair = [torch.cos(w_of(k) * x), torch.sin(w_of(k) * x)]
                out += pair[::-1] if swap else pair
            out = torch.stack(out)
            return out / out.norm(dim=1, keepdim=True) if norm else out

        def w(k):
            return 2 * math.pi * k / p

        mistakes = {
            "your rows do not have unit norm: divide each row by its norm (the constant by sqrt(p), each wave by "
            "sqrt(p / 2))": rows(w, norm=False),
            "you divided every row by sqrt(p): a wave's squared norm is p / 2, not p (only the constant's is p)":
                rows(w, norm=False) / math.sqrt(p),
            "your sin and cos are in the other order: cos first, then sin, for each frequency": rows(w, swap=True),
            "your frequencies are k / p radians: w = 2 pi k / p": rows(lambda k: k / p),
            "you returned the basis transposed: one row per component (constant, cos 1, sin 1, ...), one column "
            "per x": expected.T,
        }
        compare("fourier_basis", got, expected, mistakes, atol=1e-5, axes="component x")
    done("fourier_basis", len(_PRIMES))


def _waves(p: int, amplitudes: dict[int, float], d: int, seed: int) -> torch.Tensor:
    """[p, d]: a random mix of cos and sin of each frequency k with weight amplitudes[k], a large constant
    row, and a little noise."""
    g = fixtures.generator(seed)
    x = torch.arange(p, dtype=torch.float32)
    W = 5.0 + torch.randn(p, d, generator=g) * 0.02
    for k, a in amplitudes.items():
        w = 2 * math.pi * k / p
        W = W + a * (torch.cos(w * x)[:, None] * torch.randn(d, generator=g) + torch.sin(w * x)[:, None] * torch.randn(d, generator=g))
    return W


def check_key_frequencies(fn):
    """fn(W [p, d], share) -> the fewest frequencies carrying >= share of W's non-constant squared norm, largest first."""
    __tracebackhide__ = True
    cases = [(13, {4: 2.0, 2: 1.5, 5: 0.3}, 6, 0.9, 0), (11, {1: 1.0, 3: 1.2, 5: 1.1}, 8, 0.8, 1),
             (17, {8: 1.0, 2: 0.6}, 5, 0.95, 2)]
    for p, amplitudes, d, share, seed in cases:
        W = _waves(p, amplitudes, d, seed)
        expected = ma.key_frequencies(W, share)
        got = call("key_frequencies", fn, {"W": W, "share": share})
        coefficients = ma.fourier_basis(p) @ W
        squared = coefficients[1:].pow(2).sum(-1).view(-1, 2).sum(-1)
        plain = coefficients[1:].norm(dim=-1).view(-1, 2).sum(-1)

        def fewest(norms, total, offset=1):
            order = norms.argsort(descending=True)
            n = int((norms[order].cumsum(0) / total < share).sum()) + 1
            return order[:n] + offset

        with_constant = coefficients.pow(2).sum(-1)
        with_constant = torch.cat([with_constant[:1], with_constant[1:].view(-1, 2).sum(-1)])
        mistakes = {
            "your frequencies start at 0: entry k - 1 of the norms is frequency k, so add 1 to the indices":
                expected - 1,
            "you counted the constant row: it says nothing about x, so leave it out of the total (and of the answer)":
                lambda: fewest(with_constant, with_constant.sum(), offset=0),
            "you added up norms, not squared norms: a frequency's share is of the squared norm (the energy)":
                lambda: fewest(plain, plain.sum()),
            "you sorted the frequencies by number: list them largest first": expected.sort().values,
            "you returned every frequency, not the fewest that carry `share`": squared.argsort(descending=True) + 1,
            "you took the frequencies in order until their share passed `share`, but stopped one early: include "
            "the frequency that takes the total to `share` or more": expected[:-1],
        }
        compare("key_frequencies", got, expected, mistakes, axes="key")
    done("key_frequencies", len(cases))


def _table(p: int, keys: list[int], seed: int) -> torch.Tensor:
    """[p, p, p + 1]: cos(w (a + b - c)) waves at `keys`, plus noise, plus a column for `=`."""
    g = fixtures.generator(seed)
    x = torch.arange(p)
    phase = (x[:, None, None] + x[None, :, None] - x[None, None, :]).float()
    waves = sum((1.0 + i) * torch.cos(2 * math.pi * k / p * phase) for i, k in enumerate(keys))
    table = torch.cat([waves, torch.full((p, p, 1), -3.0)], dim=-1)
    return table + torch.randn(table.shape, generator=g) + 0.5


_TABLES = [(13, [2, 5], 0), (11, [3], 1), (7, [1, 3], 2)]


def _sum_wave_parts(logits, keys, cos_only=False, minus=False, normalise=True):
    p = logits.shape[0]
    s = torch.arange(p)[:, None] + torch.arange(p)[None, :]
    if minus:
        s = torch.arange(p)[:, None] - torch.arange(p)[None, :]
    out = torch.zeros_like(logits)
    for k in keys.tolist():
        for f in (torch.cos,) if cos_only else (torch.cos, torch.sin):
            wave = f(2 * math.pi * k / p * s.float())
            scale = wave.pow(2).sum() if normalise else 1.0
            out = out + torch.einsum("ab,abc->c", wave, logits)[None, None] * wave[..., None] / scale
    return out


def check_restricted_logits(fn):
    """fn(logits [p, p, d_vocab], frequencies) -> [p, p, d_vocab]: the mean over (a, b) plus the parts along
    cos(w (a + b)) and sin(w (a + b)) of each key frequency, for every answer c."""
    __tracebackhide__ = True
    for p, keys, seed in _TABLES:
        logits, keys = _table(p, keys, seed), torch.tensor(keys)
        expected = ma.restricted_logits(logits, keys)
        got = call("restricted_logits", fn, {"logits": logits, "frequencies": keys})
        mean = logits.mean((0, 1), keepdim=True)
        mistakes = {
            "you left out the mean over the pairs (the constant term): restricted logits keep it": expected - mean,
            "you kept cos(w (a + b)) only: sin(w (a + b)) carries the other half of each wave": mean + _sum_wave_parts(logits, keys, cos_only=True),
            "you used a - b, not a + b: the answer depends on the sum": mean + _sum_wave_parts(logits, keys, minus=True),
            "your waves are not normalised: divide each projection by the wave's squared norm (p * p / 2)":
                mean + _sum_wave_parts(logits, keys, normalise=False),
            "you took the mean over the answers c instead of over the pairs (a, b)":
                expected - mean + logits.mean(-1, keepdim=True),
        }
        compare("restricted_logits", got, expected, mistakes, atol=1e-4, axes="a b c")
    done("restricted_logits", len(_TABLES))


def check_excluded_logits(fn):
    """fn(logits [p, p, d_vocab], frequencies) -> [p, p, d_vocab]: the logits minus their parts along
    cos(w (a + b)) and sin(w (a + b)) of each key frequency."""
    __tracebackhide__ = True
    for p, keys, seed in _TABLES:
        logits, keys = _table(p, keys, seed), torch.tensor(keys)
        expected = ma.excluded_logits(logits, keys)
        got = call("excluded_logits", fn, {"logits": logits, "frequencies": keys})
        mean = logits.mean((0, 1), keepdim=True)
        mistakes = {
            "you returned the part you should remove: excluded logits are the logits minus it": logits - expected,
            "you removed the mean over the pairs too: excluded logits keep everything but the key waves": expected - mean,
            "you removed cos(w (a + b)) only: remove sin(w (a + b)) as well": logits - _sum_wave_parts(logits, keys, cos_only=True),
            "you returned the logits minus the restricted logits, which removes the mean too: subtract only the "
            "key waves": logits - ma.restricted_logits(logits, keys),
        }
        compare("excluded_logits", got, expected, mistakes, atol=1e-4, axes="a b c")
    done("excluded_logits", len(_TABLES))


def check_grokking_phases(fn):
    """fn(steps, train_accuracy, test_loss, test_accuracy, chance_loss) -> [memorised, circuit_formed, generalised]."""
    __tracebackhide__ = True
    cases = [  # uneven steps; a test loss below chance before memorisation; a run that never generalises;
        # thresholds reached exactly (>= shows)
        ([0, 50, 100, 200, 400, 600, 800, 1000], [0.1, 0.6, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0],
         [4.0, 8.0, 12.0, 13.0, 11.0, 3.0, 0.5, 0.1], [0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.95, 1.0], 4.1),
        ([0, 100, 200, 300, 400], [0.05, 0.5, 0.995, 1.0, 1.0], [4.0, 6.0, 9.0, 10.0, 11.0], [0.0, 0.1, 0.2, 0.3, 0.35], 4.1),
        ([0, 10, 30, 60, 90, 120], [0.2, 0.98, 1.0, 1.0, 1.0, 1.0], [2.9, 3.5, 3.0, 2.0, 0.2, 0.05],
         [0.1, 0.2, 0.3, 0.5, 0.96, 0.99], 3.0),
    ]
    for steps, train_acc, test_loss, test_acc, chance in cases:
        steps, train_acc, test_loss, test_acc = (torch.tensor(steps), torch.tensor(train_acc), torch.tensor(test_loss),
                                                 torch.tensor(test_acc))
        expected = ma.grokking_phases(steps, train_acc, test_loss, test_acc, chance)
        inputs = {"steps": steps, "train_accuracy": train_acc, "test_loss": test_loss, "test_accuracy": test_acc,
                  "chance_loss": chance}
        got = call("grokking_phases", fn, inputs)

        def first(condition):
            hits = torch.nonzero(condition)
            return float(steps[hits[0, 0]]) if len(hits) else math.nan

        def index_of(condition):
            hits = torch.nonzero(condition)
            return float(hits[0, 0]) if len(hits) else math.nan

        mem, gen = expected[0].item(), expected[2].item()
        mistakes = {
            "your circuit_formed ignores memorisation: look for the test loss below chance only from the memorised "
            "step on (at the start, before any training, the loss is near chance anyway)":
                torch.tensor([mem, first(test_loss < chance), gen]),
            "you returned checkpoint indices, not training steps: look each index up in steps":
                torch.tensor([index_of(train_acc >= ma.MEMORISED),
                              index_of((steps >= mem) & (test_loss < chance)), index_of(test_acc >= ma.GENERALISED)]),
            "you used strict inequalities: 'reaches' means at or above (>=) the accuracy thresholds":
                torch.tensor([first(train_acc > ma.MEMORISED), first((steps > mem) & (test_loss < chance)) if mem == mem else math.nan,
                              first(test_acc > ma.GENERALISED)]),
            "a boundary never reached got the last step: it was never reached, so give it NaN":
                torch.nan_to_num(expected, nan=float(steps[-1])),
            "a boundary never reached got 0: give it NaN (not a step)": torch.nan_to_num(expected, nan=0.0),
        }
        compare("grokking_phases", got, expected, mistakes, axes="boundary",
                nan_hint="only a boundary the run never reaches gets NaN")
    done("grokking_phases", len(cases))


def check_cos_fit(fn):
    """fn(logits [p, p, d_vocab], frequencies) -> (alpha [key], share of variance explained)."""
    __tracebackhide__ = True
    for p, keys, seed in _TABLES:
        logits, keys = _table(p, keys, seed), torch.tensor(keys)
        alpha, explained = ma.cos_fit(logits, keys)
        got = _pair("cos_fit", call("cos_fit", fn, {"logits": logits, "frequencies": keys}), "alpha, share explained")
        answers = logits[..., :p]
        x = torch.arange(p)
        phase = (x[:, None, None] + x[None, :, None] - x[None, None, :]).float()
        design = torch.stack([torch.cos(2 * math.pi * int(k) / p * phase) for k in keys.tolist()], -1).reshape(-1, len(keys))
        raw = answers.reshape(-1, 1)
        fit_raw = torch.linalg.lstsq(design, raw).solution
        explained_raw = 1 - (raw - design @ fit_raw).pow(2).sum() / raw.pow(2).sum()
        mistakes_alpha = {
            "you fitted the logits of every token, `=` included: fit the answers c = 0..p-1 only (logits[..., :p])":
                lambda: _fit(logits, keys, p + 1),
            "your phase is a + b + c: the logit of c is largest when c = a + b, so use cos(w (a + b - c))":
                lambda: _fit(logits, keys, p, sign=1),
        }
        compare("cos_fit", got[0], alpha, mistakes_alpha, atol=1e-4, axes="key")
        mistakes_share = {
            "you did not remove each pair's mean over c: softmax ignores it, so subtract logits[..., :p].mean(-1, keepdim=True) "
            "before fitting": explained_raw.item(),
            "you returned the share left unexplained (residual / total): the share explained is 1 minus it":
                1 - explained,
        }
        mistakes_share = {hint: torch.tensor(float(x), dtype=torch.float64) for hint, x in mistakes_share.items()}
        compare("cos_fit", got[1], explained, mistakes_share, atol=1e-4)
    done("cos_fit", len(_TABLES))


def _fit(logits, keys, n_answers, sign=-1):
    p = logits.shape[0]
    answers = logits[..., :n_answers]
    target = answers - answers.mean(-1, keepdim=True)
    x = torch.arange(p)
    c = torch.arange(n_answers)
    phase = (x[:, None, None] + x[None, :, None] + sign * c[None, None, :]).float()
    design = torch.stack([torch.cos(2 * math.pi * int(k) / p * phase) for k in keys.tolist()], -1).reshape(-1, len(keys))
    return torch.linalg.lstsq(design.double(), target.reshape(-1, 1).double()).solution[:, 0].float()
