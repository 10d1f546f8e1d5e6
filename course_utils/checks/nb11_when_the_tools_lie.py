"""Checks for notebook 11, "When the tools lie": value-weighted attention, one head's cost under the
three ablations, the removal effect of a component with the final LayerNorm recomputed, the share of a
head's output that is its value bias, an OV matrix that fools the eigenvalue copying score, and a
causal-scrubbing-style loss, a subspace patch and the check that tells a subspace-patching illusion from a
real mechanism."""

from __future__ import annotations

import torch

from .. import failure_modes as fm
from ..ablation import METHODS, ablated_loss, loss_with_hooks
from ..lens import head_attribution
from ..metrics import copying_score, eigenvalue_copying_score
from . import fixtures
from .framework import ExerciseError, _check_dtype, _check_kind, _shape_message, call, compare, done

REFERENCES = {
    "value_weighted_pattern": fm.value_weighted_pattern,
    "ablation_verdicts": fm.ablation_verdicts,
    "removal_effect": fm.removal_effect,
    "bias_share": fm.bias_share,
    "favourite_token_ov": fm.favourite_token_ov,
    "scrubbed_loss": fm.scrubbed_loss,
    "subspace_patch": fm.subspace_patch,
    "variation_split": fm.variation_split,
}


def check_value_weighted_pattern(fn):
    """fn(pattern [batch, head, query_pos, key_pos], v [batch, key_pos, head, d_head], W_O [head, d_head, d_model])."""
    __tracebackhide__ = True
    cases = [(0, 2, 3, 5, 4, 6), (1, 3, 2, 7, 3, 5)]  # seed, batch, heads, pos, d_head, d_model
    for seed, batch, heads, pos, d_head, d_model in cases:
        g = fixtures.generator(seed)
        pattern = fixtures.causal_patterns(seed, batch, heads, pos)
        v = torch.randn(batch, pos, heads, d_head, generator=g)
        W_O = torch.randn(heads, d_head, d_model, generator=g)
        expected = fm.value_weighted_pattern(pattern, v, W_O)
        got = call("value_weighted_pattern", fn, {"pattern": pattern, "v": v, "W_O": W_O})
        written = torch.einsum("bkhd,hdm->bhkm", v, W_O).norm(dim=-1)[:, :, None, :]
        raw = pattern * written
        v_norm = pattern * v.norm(dim=-1).transpose(1, 2)[:, :, None, :]
        mistakes = {
            "your rows do not sum to 1: divide each query's row by its sum": raw,
            "you weighted by ||v||, the value itself; weight by what the head writes, ||v W_O||: W_O can "
            "shrink or drop a value's directions": v_norm / v_norm.sum(-1, keepdim=True),
            "you normalised each key's column (over queries); normalise each query's row (over keys, the last axis)":
                raw / raw.sum(-2, keepdim=True).clamp_min(1e-12),
            "you weighted by the squared norm ||v W_O||^2; take the norm itself":
                (pattern * written**2) / (pattern * written**2).sum(-1, keepdim=True),
        }
        compare("value_weighted_pattern", got, expected, mistakes, axes="batch head query_pos key_pos")
    done("value_weighted_pattern", len(cases))


def _ablation_setup(seed: int, batch: int, pos: int):
    model = fixtures.model(seed, n_layers=3, n_heads=3, d_model=12, d_vocab=13, n_ctx=12)
    g = fixtures.generator(seed)
    return model, fixtures.tokens(g, batch, pos, 13), fixtures.tokens(g, batch, pos, 13)


def check_ablation_verdicts(fn):
    """fn(model, tokens, head (layer, head), positions (a slice), reference_tokens) -> [3]."""
    __tracebackhide__ = True
    cases = [((0, 4, 10), (1, 2), slice(4, 9)), ((1, 3, 8), (2, 0), slice(2, None))]
    for (seed, batch, pos), head, positions in cases:
        model, tokens, ref = _ablation_setup(seed, batch, pos)
        expected = fm.ablation_verdicts(model, tokens, head, positions, ref)
        got = call("ablation_verdicts", fn, {"model": model, "tokens": tokens, "head": head,
                                             "positions": positions, "reference_tokens": ref})
        clean = loss_with_hooks(model, tokens, [])
        ablated = [ablated_loss(model, tokens, head, m, ref) for m in METHODS]
        mistakes = {
            "these are the ablated losses themselves: subtract the clean loss, so that 0 means 'no effect'":
                lambda: torch.stack([a[..., positions].mean() for a in ablated]),
            "you averaged over every position; the verdict is about `positions` only (the repeated half)":
                lambda: torch.stack([(a - clean).mean() for a in ablated]),
            "your sign is reversed: a harmful ablation raises the loss, a positive cost":
                -expected,
            "the methods are in the wrong order: zero, mean, resample (ablation.METHODS)":
                expected.flip(0),
        }
        compare("ablation_verdicts", got, expected, mistakes, atol=1e-4, axes="method")
    done("ablation_verdicts", len(cases))


def check_removal_effect(fn):
    """fn(model, cache, tokens, component [batch, pos, d_model]) -> [batch, pos - 1]."""
    __tracebackhide__ = True
    cases = [(0, 3, 9, (2, 1)), (1, 2, 7, (0, 2))]
    for seed, batch, pos, (layer, head) in cases:
        model, tokens, _ = _ablation_setup(seed, batch, pos)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        component = fm.head_outputs(model, cache, layer)[head]
        expected = fm.removal_effect(model, cache, tokens, component)
        got = call("removal_effect", fn, {"model": model, "cache": cache, "tokens": tokens, "component": component})
        resid = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]

        def logits_of(x):
            return model.unembed(model.ln_final(x)) if hasattr(model, "unembed") else None

        def by_logits(f, shift=1):
            full, without = f(resid), f(resid - component)
            nxt = tokens[:, shift:, None] if shift else tokens[:, :-1, None]
            return (full[:, :-1].gather(-1, nxt) - without[:, :-1].gather(-1, nxt))[..., 0]

        mistakes = {
            "this is direct logit attribution, with the LayerNorm's scale frozen at the clean run's: recompute the "
            "final LayerNorm on the residual stream without the component (lens.unembed_resid does it)":
                lambda: head_attribution(model, cache, tokens)[layer, head],
            "your sign is reversed: the effect is logit(with) - logit(without)": -expected,
            "you read the logit of the current token; the correct token at position t is tokens[:, t + 1]":
                lambda: by_logits(logits_of, shift=0),
            "you compared log-probabilities; the exercise compares logits (as direct logit attribution does)":
                lambda: by_logits(lambda x: logits_of(x).log_softmax(-1)),
        }
        compare("removal_effect", got, expected, mistakes, atol=1e-4, axes="batch predicted_pos")
    done("removal_effect", len(cases))


def check_bias_share(fn):
    """fn(model, cache, layer) -> [head]."""
    __tracebackhide__ = True
    cases = [(0, 3, 8, 1), (1, 2, 6, 0)]
    for seed, batch, pos, layer in cases:
        model = fixtures.model(seed, n_layers=2, n_heads=3, d_model=12, d_vocab=13, n_ctx=12, attn_only=True)
        tokens = fixtures.tokens(fixtures.generator(seed), batch, pos, 13)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        expected = fm.bias_share(model, cache, layer)
        got = call("bias_share", fn, {"model": model, "cache": cache, "layer": layer})
        out = fm.head_outputs(model, cache, layer)
        bias = torch.einsum("hd,hdm->hm", model.b_V[layer], model.W_O[layer])
        mistakes = {
            "you measured b_V itself; what reaches the residual stream is b_V W_O": lambda:
                model.b_V[layer].pow(2).sum(-1) / out.pow(2).sum(-1).mean((1, 2)),
            "you divided norms, not squared norms: the share of ||output||^2 is ||b_V W_O||^2 / mean ||z W_O||^2":
                lambda: bias.norm(dim=-1) / out.norm(dim=-1).mean((1, 2)),
            "you added b_O: it belongs to the layer, not to any one head": lambda:
                (bias + model.b_O[layer]).pow(2).sum(-1) / out.pow(2).sum(-1).mean((1, 2)),
            "you averaged the output before taking its norm; average the squared norm over batch and positions":
                lambda: bias.pow(2).sum(-1) / out.mean((1, 2)).pow(2).sum(-1),
        }
        compare("bias_share", got, expected, mistakes, atol=1e-5, axes="head")
    done("bias_share", len(cases))


def check_favourite_token_ov(fn):
    """fn(d_vocab) -> [d_vocab, d_vocab] with copying score >= 0.9 and top-1 copying accuracy 1 / d_vocab at most."""
    __tracebackhide__ = True
    sizes = (5, 13, 64)
    for d_vocab in sizes:
        expected = fm.favourite_token_ov(d_vocab)
        got = call("favourite_token_ov", fn, {"d_vocab": d_vocab})
        _check_kind("favourite_token_ov", got, expected)
        _check_dtype("favourite_token_ov", got, expected)
        if got.shape != expected.shape:
            raise ExerciseError(_shape_message("favourite_token_ov", got, expected, ["attended_token", "logit"]))
        if not torch.isfinite(got).all():
            raise ExerciseError("[favourite_token_ov] your matrix has NaN or infinite entries")
        with torch.no_grad():
            top1 = copying_score(got.detach())
            if torch.allclose(got.detach(), torch.zeros_like(got)):
                raise ExerciseError("[favourite_token_ov] an all-zero matrix has no eigenvalues to score: every "
                                    "eigenvalue must be positive")
            score = eigenvalue_copying_score(got.detach())
        if top1 > 1 / d_vocab + 1e-6:
            raise ExerciseError(f"[favourite_token_ov] d_vocab={d_vocab}: your matrix copies {top1:.0%} of the tokens "
                                f"in top-1 terms (each row's largest entry on its own column); make one column win "
                                f"every row, so that only that one token is copied")
        if score < 0.9:
            raise ExerciseError(f"[favourite_token_ov] d_vocab={d_vocab}: its eigenvalue copying score is {score:.2f}; "
                                f"it must be at least 0.9 (nearly every eigenvalue positive): keep a positive diagonal, "
                                f"and add something whose eigenvalues are positive too")
    done("favourite_token_ov", len(sizes))


def _scrub_setup(seed: int, batch: int, pos: int):
    model = fixtures.model(seed, n_layers=2, n_heads=3, d_model=12, d_vocab=13, n_ctx=12, attn_only=True)
    g = fixtures.generator(seed)
    return model, fixtures.tokens(g, batch, pos, 13), fixtures.tokens(g, batch, pos, 13)


def check_scrubbed_loss(fn):
    """fn(model, tokens, other_tokens, keep {"q", "k", "v": part}) -> [batch, pos - 1]."""
    __tracebackhide__ = True
    cases = [((0, 3, 9), {"q": "embed", "k": "0.1", "v": "embed"}),
             ((1, 2, 8), {"q": "0.2", "k": "embed", "v": "all"}),
             ((2, 3, 7), {"q": "none", "k": "0.0", "v": "0.1"})]
    for (seed, batch, pos), keep in cases:
        model, tokens, other = _scrub_setup(seed, batch, pos)
        expected = fm.scrubbed_loss(model, tokens, other, keep)
        got = call("scrubbed_loss", fn, {"model": model, "tokens": tokens, "other_tokens": other, "keep": dict(keep)})
        mistakes = {
            "you kept the named part from the other run and the rest from this one: the hypothesis keeps the part it "
            "names (from `tokens`) and resamples everything else (from `other_tokens`)":
                lambda: _swapped(model, tokens, other, keep),
            "the values were not scrubbed: swap the input of q, k and v, all three":
                lambda: fm.scrubbed_loss(model, tokens, other, {**keep, "v": "all"}),
            "you scored the predictions against `other_tokens`: the loss is of the run on `tokens`, against "
            "`tokens`' next tokens; `other_tokens` only supply the resampled parts":
                lambda: _swapped(model, tokens, other, keep, loss_against=other, roles="right"),
            "nothing was resampled: this is the clean loss": lambda: loss_with_hooks(model, tokens, []),
        }
        compare("scrubbed_loss", got, expected, mistakes, atol=1e-4, axes="batch predicted_pos")
    done("scrubbed_loss", len(cases))


def _swapped(model, tokens, other, keep, loss_against=None, roles="swapped"):
    """The loss with the roles reversed (the named part from `other`, everything else from `tokens`),
    or with roles="right" the right run; scored against `loss_against` (default `tokens`)."""
    clean, resampled, part_of = fm._scrub_runs(model, tokens, other)

    shifts = {}
    for which, part in keep.items():
        if part in ("all", "none"):
            shifts[which] = torch.zeros_like(clean["blocks.1.hook_resid_pre"]) if part == "all" else \
                resampled["blocks.1.hook_resid_pre"] - clean["blocks.1.hook_resid_pre"]
        elif roles == "swapped":
            shifts[which] = part_of(resampled, part) - part_of(clean, part)
        else:
            shifts[which] = resampled["blocks.1.hook_resid_pre"] - part_of(resampled, part) + part_of(clean, part) \
                - clean["blocks.1.hook_resid_pre"]
    weights = {"q": model.W_Q[1], "k": model.W_K[1], "v": model.W_V[1]}
    hooks = [(f"blocks.1.attn.hook_{w}", lambda a, hook, w=w: a + torch.einsum("bpm,hmd->bphd", shifts[w], weights[w]))
             for w in keep]
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return fm.per_token_loss(logits, tokens if loss_against is None else loss_against)


def check_subspace_patch(fn):
    """fn(h_clean [batch, d_hidden], h_corrupted [batch, d_hidden], v [d_hidden]) -> [batch, d_hidden]."""
    __tracebackhide__ = True
    cases = [(0, 5, 3), (1, 4, 7)]  # seed, batch, d_hidden
    for seed, batch, d_hidden in cases:
        g = fixtures.generator(seed)
        h_clean, h_corrupted = torch.randn(batch, d_hidden, generator=g), torch.randn(batch, d_hidden, generator=g)
        v = 3 * torch.randn(d_hidden, generator=g)  # not a unit vector
        expected = fm.subspace_patch(h_clean, h_corrupted, v)
        got = call("subspace_patch", fn, {"h_clean": h_clean, "h_corrupted": h_corrupted, "v": v})
        unit = v / v.norm()
        mistakes = {
            "you did not normalise v: the patch must not depend on v's length, only on its direction":
                h_clean + ((h_corrupted - h_clean) @ v)[:, None] * v,
            "you returned the whole corrupted activation: only its component along v is patched in":
                h_corrupted,
            "you added the corrupted run's component along v without taking away the clean run's":
                h_clean + (h_corrupted @ unit)[:, None] * unit,
            "you patched the clean component into the corrupted run; patch the corrupted run's component into the clean one":
                h_corrupted + ((h_clean - h_corrupted) @ unit)[:, None] * unit,
        }
        compare("subspace_patch", got, expected, mistakes, atol=1e-5, axes="batch d_hidden")
    done("subspace_patch", len(cases))


def check_variation_split(fn):
    """fn(h [batch, d_hidden], v [d_hidden], W_out [d_hidden, d_out]) -> [2]: the data's spread along v's read and ignored parts."""
    __tracebackhide__ = True
    cases = [(0, 40, 6, 2), (1, 30, 5, 3)]  # seed, batch, d_hidden, d_out
    for seed, batch, d_hidden, d_out in cases:
        g = fixtures.generator(seed)
        h = torch.randn(batch, d_hidden, generator=g) * torch.linspace(0.5, 2.0, d_hidden)
        v = torch.randn(d_hidden, generator=g)
        W_out = torch.randn(d_hidden, d_out, generator=g)
        expected = fm.variation_split(h, v, W_out)
        got = call("variation_split", fn, {"h": h, "v": v, "W_out": W_out})
        read = fm._read_part(v, W_out)
        ignored = v - read
        unprojected = W_out @ (W_out.T @ v)  # not a projection: W_out's columns are not orthonormal
        mistakes = {
            "your parts are the other way round: first the spread along the part W_out reads, then along the part it ignores":
                expected.flip(0),
            "you did not normalise the parts: measure the spread along each part as a unit vector, so that the numbers "
            "compare the data's spread, not the parts' lengths":
                torch.stack([(h @ read).std(), (h @ ignored).std()]),
            "your read part is W_out W_out^T v, which is not a projection unless W_out's columns are orthonormal: "
            "project v onto an orthonormal basis of W_out's columns (torch.linalg.qr or torch.linalg.svd of W_out)":
                torch.stack([(h @ (p / p.norm())).std() for p in (unprojected, v - unprojected)]),
            "you measured the mean along each part, not the spread (the standard deviation over the batch)":
                torch.stack([(h @ (p / p.norm())).mean() for p in (read, ignored)]),
        }
        compare("variation_split", got, expected, mistakes, atol=1e-4, axes="part")
    done("variation_split", len(cases))
