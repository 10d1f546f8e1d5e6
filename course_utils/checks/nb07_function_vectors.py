"""Checks for notebook 07, "Function vectors": mean head outputs, the indirect effect of one head,
and the logits with a vector added to a layer's attention output."""

from __future__ import annotations

import einops
import torch

from .. import function_vectors as fv
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "mean_head_outputs": fv.mean_head_outputs,
    "indirect_effect": fv.indirect_effect,
    "logits_with_vector": fv.logits_with_vector,
}

# (seed, batch, prompt length): prompts of different numbers and lengths, on models of 3 layers and 3 heads
_PROMPTS = [(0, 5, 9), (1, 3, 6), (2, 6, 11)]


def _setup(seed: int, batch: int, seq: int):
    """A small random model (MLPs, LayerNorm, non-zero biases), prompts for it, answers, and a generator."""
    model = fixtures.model(seed, n_layers=3, n_heads=3, d_model=12)
    g = fixtures.generator(seed)
    tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
    answers = torch.randint(0, model.cfg.d_vocab, (batch,), generator=g)
    return model, tokens, answers, g


def check_mean_head_outputs(fn):
    """fn(model, tokens [batch, pos]) -> [layer, head, d_model]."""
    __tracebackhide__ = True
    for seed, batch, seq in _PROMPTS:
        model, tokens, _, _ = _setup(seed, batch, seq)
        expected = fv.mean_head_outputs(model, tokens)
        got = call("mean_head_outputs", fn, {"model": model, "tokens": tokens})
        names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        z = torch.stack([cache[n] for n in names], dim=2)  # [batch, pos, layer, head, d_head]
        out = einops.einsum(z, model.W_O.detach(), "batch pos layer head d_head, layer head d_head d_model "
                                                   "-> batch pos layer head d_model")
        mistakes = {
            "you returned the mean z (each head's value mix, [layer, head, d_head]): multiply it by "
            "the head's slice of W_O to get what the head writes into the residual stream": z[:, -1].mean(0),
            "you averaged over every position: a function vector is read at the last position only "
            "(tokens[:, -1], where the model answers)": out.mean((0, 1)),
            "you took the first position, not the last: use [:, -1]": out[:, 0].mean(0),
            "you summed over the prompts instead of averaging": out[:, -1].sum(0),
            "you added the bias b_O to every head: b_O belongs to no head (and would count once per head)":
                out[:, -1].mean(0) + model.b_O.detach()[:, None],
            "you kept the prompt axis: average over the prompts, to [layer, head, d_model]": out[:, -1],
            "you summed the heads of each layer: keep one output per head, [layer, head, d_model]":
                out[:, -1].mean(0).sum(1),
        }
        compare("mean_head_outputs", got, expected, mistakes, axes="layer head d_model")
    done("mean_head_outputs", len(_PROMPTS))


def check_indirect_effect(fn):
    """fn(model, tokens, answers, mean_z, layer, head) -> [batch]: gain in P(answer)."""
    __tracebackhide__ = True
    cases = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]  # (which prompts, layer, head)
    for (seed, batch, seq), (_, layer, head) in zip(_PROMPTS, cases):
        model, tokens, answers, g = _setup(seed, batch, seq)
        mean_z = torch.randn(model.cfg.n_layers, model.cfg.n_heads, model.cfg.d_head, generator=g) * 2
        expected = fv.indirect_effect(model, tokens, answers, mean_z, layer, head)
        inputs = {"model": model, "tokens": tokens, "answers": answers, "mean_z": mean_z, "layer": layer, "head": head}
        got = call("indirect_effect", fn, inputs)

        def patched(positions, probs=True, where=(layer, head)):
            def hook(z, hook):
                z = z.clone()
                z[:, positions, where[1]] = mean_z[where]
                return z
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{where[0]}.attn.hook_z", hook)])[:, -1]
            scores = logits.softmax(-1) if probs else logits.log_softmax(-1)
            return scores.gather(1, answers[:, None])[:, 0]

        with torch.no_grad():
            clean_logits = model(tokens)[:, -1]
        clean = clean_logits.softmax(-1).gather(1, answers[:, None])[:, 0]
        clean_lp = clean_logits.log_softmax(-1).gather(1, answers[:, None])[:, 0]
        mistakes = {
            "you returned P(answer) with the patch, not the gain: subtract P(answer) without it": patched(-1),
            "your sign is flipped: the effect is P(patched) - P(clean)": -expected,
            "you patched the head at every position: patch the last position only, where the "
            "model answers": patched(slice(None)) - clean,
            "you measured the gain in log-probability: the indirect effect is a gain in probability "
            "(softmax, not log_softmax)": patched(-1, probs=False) - clean_lp,
            "you averaged over the prompts: return one number per prompt, [batch]": expected.mean(),
            "you patched the first position, not the last: the model answers at [:, -1]": patched(0) - clean,
            "you swapped layer and head: mean_z is [layer, head, d_head] and hook_z is blocks.{layer}.attn.hook_z":
                lambda: patched(-1, where=(head, layer)) - clean,
        }
        compare("indirect_effect", got, expected, mistakes, atol=1e-6, axes="batch")
    done("indirect_effect", len(cases))


def check_logits_with_vector(fn):
    """fn(model, tokens, vector [d_model], layer) -> [batch, d_vocab]: last-position logits with the
    vector added to block `layer`'s attention output at the last position.

    Tried on course models and, last, on a TransformerBridge: the function must work on both."""
    __tracebackhide__ = True
    cases = [(_PROMPTS[0], 1, False), (_PROMPTS[1], 0, False), (_PROMPTS[2], 2, False), (_PROMPTS[0], 1, True)]
    for (seed, batch, seq), layer, on_bridge in cases:
        model, tokens, _, g = _setup(seed, batch, seq)
        if on_bridge:
            model = fixtures.bridge(seed, n_layers=3, n_heads=3, d_model=12)
        vector = torch.randn(model.cfg.d_model, generator=g) * 3
        expected = fv.logits_with_vector(model, tokens, vector, layer)
        got = call("logits_with_vector", fn, {"model": model, "tokens": tokens, "vector": vector, "layer": layer})

        def added(hook_name, positions, last=True):
            def hook(resid, hook):
                resid = resid.clone()
                resid[:, positions] += vector
                return resid
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook)])
            return logits[:, -1] if last else logits

        out = f"blocks.{layer}.hook_attn_out"
        with torch.no_grad():
            plain = model(tokens)[:, -1]
        mistakes = {
            "your logits are the model's own: the vector was not added (does your hook return the "
            "changed activation?)": plain,
            "you added the vector at every position: add it at the last position only": added(out, slice(None)),
            f"you added the vector before block {layer} (hook_resid_pre): add it to the block's "
            f"attention output, as if its heads had written it (blocks.{layer}.hook_attn_out)":
                added(f"blocks.{layer}.hook_resid_pre", -1),
            f"you added the vector after the whole block {layer} (hook_resid_post): add it to the "
            f"block's attention output, before its MLP (blocks.{layer}.hook_attn_out)":
                added(f"blocks.{layer}.hook_resid_post", -1),
            f"you added the vector at blocks.{layer}.hook_resid_mid: on the course's model that is the same, "
            f"but on a TransformerBridge hook_resid_mid is the input of the MLP's LayerNorm only, and what "
            f"you add there never reaches the residual stream; add it to blocks.{layer}.hook_attn_out":
                added(f"blocks.{layer}.hook_resid_mid", -1),
            "you returned the logits at every position: return the last position's, [batch, d_vocab]":
                added(out, -1, last=False),
            "you subtracted the vector: add it": lambda: fv.logits_with_vector(model, tokens, -vector, layer),
        }
        compare("logits_with_vector", got, expected, mistakes, axes="batch d_vocab")
    done("logits_with_vector", len(cases))
