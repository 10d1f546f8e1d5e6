"""Checks for notebook 06, "Activation patching": the normalised metric, and patching the residual
stream at one layer and position by hand."""

from __future__ import annotations

import torch

from .. import patching
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "normalized_metric": patching.normalized_metric,
    "patch_resid_pre": patching.patch_resid_pre,
}


def check_normalized_metric(fn):
    """fn(value, clean_value, corrupted_value) -> 0 at the corrupted value, 1 at the clean one."""
    __tracebackhide__ = True
    cases = [(torch.tensor(-2.0), torch.tensor(-0.5), torch.tensor(-3.0)),
             (torch.tensor([-1.0, 0.2, -4.0]), torch.tensor(0.5), torch.tensor(-4.0)),
             (torch.tensor([2.0, 7.5]), torch.tensor(1.0), torch.tensor(6.0))]  # here clean < corrupted
    for value, clean, corrupted in cases:
        expected = patching.normalized_metric(value, clean, corrupted)
        got = call("normalized_metric", fn, {"value": value, "clean_value": clean, "corrupted_value": corrupted})
        mistakes = {
            "your scale is upside down: the corrupted run should score 0 and the clean run 1, "
            "(value - corrupted) / (clean - corrupted)": (clean - value) / (clean - corrupted),
            "you divided by the clean value alone: divide by the gap between clean and corrupted":
                (value - corrupted) / clean,
            "you forgot to subtract the corrupted value first": value / (clean - corrupted),
            "you took the absolute value of the gap: when the clean value is the lower one, the sign "
            "matters; divide by (clean - corrupted) itself": (value - corrupted) / (clean - corrupted).abs(),
            "you subtracted the clean value: the numerator is value - corrupted_value":
                (value - clean) / (clean - corrupted),
        }
        axes = "batch" if value.ndim else None
        compare("normalized_metric", got, expected, mistakes, axes=axes)
    done("normalized_metric", len(cases))


def _patching_mistakes(model, corrupted, cache, metric, layer, pos):
    def patched(name, index):
        def hook(act, hook):
            act[index] = cache[name][index]
            return act
        with torch.no_grad():
            return metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)]))

    pre = f"blocks.{layer}.hook_resid_pre"
    return {
        "you patched every position: put back only position `pos`, resid[:, pos]":
            lambda: patched(pre, (slice(None), slice(None))),
        "you patched the residual stream further into the layer (hook_resid_mid or hook_resid_post; "
        "at one position the two carry the same, since the MLP works position by position): patch the "
        "one entering the layer, blocks.LAYER.hook_resid_pre":
            lambda: patched(f"blocks.{layer}.hook_resid_post", (slice(None), pos)),
        "you indexed the batch axis: the residual stream is [batch, pos, d_model], so index "
        "resid[:, pos]": lambda: patched(pre, (pos,)),
        "you patched the block before: layer L's input is blocks.L.hook_resid_pre":
            lambda: patched(f"blocks.{layer - 1}.hook_resid_pre", (slice(None), pos)) if layer else None,
        "you returned the corrupted run's metric: did your hook return the patched activation, "
        "and did you pass it to run_with_hooks as fwd_hooks=[(name, hook)]?": lambda: metric(model(corrupted)),
    }


def check_patch_resid_pre(fn):
    """fn(model, corrupted_tokens, clean_cache, metric, layer, pos) -> metric of the patched run, a 0-d tensor."""
    __tracebackhide__ = True
    model = fixtures.model(0, n_layers=3, n_ctx=12)
    # Two clean/corrupted pairs of different sizes: (batch, period, metric positions, (layer, pos) cases)
    runs = [(4, 5, slice(5, 9), [(1, 2), (0, 4), (2, 7), (1, 9)]), (3, 4, slice(4, 7), [(2, 0), (0, 6)])]
    cases = 0
    for batch, period, positions, patches in runs:
        clean, corrupted = patching.clean_and_corrupted(batch, period, model.cfg.d_vocab, seed=period)
        metric = patching.patching_metric(model, clean, corrupted, positions)
        with torch.no_grad():
            _, cache = model.run_with_cache(clean)
        for layer, pos in patches:
            expected = patching.patch_resid_pre(model, corrupted, cache, metric, layer, pos)
            inputs = {"model": model, "corrupted_tokens": corrupted, "clean_cache": cache, "metric": metric,
                      "layer": layer, "pos": pos}
            with torch.no_grad():
                got = call("patch_resid_pre", fn, inputs)
            compare("patch_resid_pre", got, expected, _patching_mistakes(model, corrupted, cache, metric, layer, pos),
                    atol=1e-4)
            cases += 1
    done("patch_resid_pre", cases)
