"""Checks for notebook 05, "Logit lens": decomposing the residual stream, unembedding it through the
final LayerNorm, the KL to the final output, and direct logit attribution."""

from __future__ import annotations

import torch

from .. import lens
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "decompose_resid": lens.decompose_resid,
    "unembed_resid": lens.unembed_resid,
    "kl_to_final": lens.kl_to_final,
    "logit_attribution": lens.logit_attribution,
}


def check_decompose_resid(fn):
    """fn(cache, n_layers) -> [component, batch, pos, d_model]."""
    __tracebackhide__ = True
    cases = [(0, 2, (2, 7)), (1, 3, (3, 4)), (2, 4, (1, 9))]  # (seed, n_layers, token batch shape)
    for seed, n_layers, (batch, seq) in cases:
        model = fixtures.model(seed, n_layers=n_layers)
        tokens = fixtures.tokens(fixtures.generator(seed), batch, seq, model.cfg.d_vocab)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        expected = lens.decompose_resid(cache, n_layers)
        got = call("decompose_resid", fn, {"cache": cache, "n_layers": n_layers})

        def stack(*kinds):
            return torch.stack([cache["hook_embed"], cache["hook_pos_embed"]] + [
                cache[f"blocks.{layer}.hook_{kind}"] for layer in range(n_layers) for kind in kinds])

        mistakes = {
            "you left out the positional embedding (hook_pos_embed): it is written into the residual "
            "stream next to the token embedding": torch.cat([expected[:1], expected[2:]]),
            "you left out the MLP outputs (blocks.L.hook_mlp_out)": stack("attn_out"),
            "you left out the attention outputs (blocks.L.hook_attn_out)": stack("mlp_out"),
            "you stacked the residual stream after each layer (hook_resid_post), which accumulates "
            "everything before it; stack what each part adds (hook_attn_out, hook_mlp_out)":
                stack("resid_mid", "resid_post"),
            "your stack stops one layer short: range(n_layers) runs over layers 0 .. n_layers - 1 (and use "
            "the argument n_layers, not a number of your own)": expected[:-2],
            "you put the MLP output before the attention output: in each block attention comes first":
                stack("mlp_out", "attn_out"),
        }
        compare("decompose_resid", got, expected, mistakes, axes="component batch pos d_model")
    done("decompose_resid", len(cases))


def _layer_norm(resid, w, b, eps, centre=True, unbiased=False):
    x = resid - resid.mean(-1, keepdim=True) if centre else resid
    if unbiased:
        return x / (x.var(-1, keepdim=True, unbiased=True) + eps).sqrt() * w + b
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w + b


def check_unembed_resid(fn):
    """fn(resid [..., d_model], w, b, W_U, b_U, eps) -> logits [..., d_vocab]."""
    __tracebackhide__ = True
    cases = [((3, 2, 5, 8), 1e-5, 3.0), ((2, 4, 8), 1e-5, 3.0), ((4, 6), 0.1, 0.3)]  # (resid's shape, eps, its scale)
    for seed, (shape, eps, scale) in enumerate(cases):
        g = fixtures.generator(seed)
        resid = torch.randn(shape, generator=g) * scale + scale / 3
        d_model, d_vocab = shape[-1], 11
        w, b = torch.rand(d_model, generator=g) + 0.5, torch.randn(d_model, generator=g)
        W_U, b_U = torch.randn(d_model, d_vocab, generator=g), torch.randn(d_vocab, generator=g)
        expected = lens.unembed_resid(resid, w, b, W_U, b_U, eps)
        got = call("unembed_resid", fn, {"resid": resid, "w": w, "b": b, "W_U": W_U, "b_U": b_U, "eps": eps})
        mistakes = {
            "you skipped the final LayerNorm: the unembedding was trained on normalised vectors, so "
            "normalise first": resid @ W_U + b_U,
            "you did not subtract the mean before dividing by the RMS (LayerNorm centres first)":
                _layer_norm(resid, w, b, eps, centre=False) @ W_U + b_U,
            "you forgot the LayerNorm's own weight w and bias b": _layer_norm(resid, 1, 0, eps) @ W_U + b_U,
            "you left out b_U": expected - b_U,
            "you divided by the unbiased standard deviation (torch.std's default divides by n - 1): "
            "LayerNorm divides by sqrt(mean of squares + eps), i.e. unbiased=False":
                _layer_norm(resid, w, b, eps, unbiased=True) @ W_U + b_U,
            "you ignored the eps you were given: use the argument `eps`, not a number of your own":
                _layer_norm(resid, w, b, 1e-5) @ W_U + b_U,
        }
        axes = " ".join(["layer", "batch", "pos"][-(len(shape) - 1):] + ["d_vocab"])
        compare("unembed_resid", got, expected, mistakes, atol=1e-4, axes=axes)
    done("unembed_resid", len(cases))


def check_kl_to_final(fn):
    """fn(lens_logits [layer, ..., d_vocab], final_logits [..., d_vocab]) -> [layer]."""
    __tracebackhide__ = True
    shapes = [(4, 2, 3, 7), (3, 5, 9), (5, 2, 4, 6)]
    for seed, shape in enumerate(shapes):
        g = fixtures.generator(seed)
        lens_logits = torch.randn(shape, generator=g) * 2
        final = torch.randn(shape[1:], generator=g) * 2
        expected = lens.kl_to_final(lens_logits, final)
        got = call("kl_to_final", fn, {"lens_logits": lens_logits, "final_logits": final})
        p, q = final.log_softmax(-1), lens_logits.log_softmax(-1)
        mistakes = {
            "you computed KL(lens || final): we ask how far the lens is from the model's real output, "
            "KL(final || lens) = sum p_final (log p_final - log p_lens)":
                (q.exp() * (q - p)).sum(-1).flatten(1).mean(-1),
            "you summed over positions (and batch) instead of averaging":
                (p.exp() * (p - q)).sum(-1).flatten(1).sum(-1),
            "you used probabilities where the formula has log-probabilities":
                (p.exp() * (p.exp() - q.exp())).sum(-1).flatten(1).mean(-1),
            "you computed the cross-entropy -sum p_final log p_lens: the KL also adds the entropy term "
            "sum p_final log p_final": -(p.exp() * q).sum(-1).flatten(1).mean(-1),
            "you kept the batch and position axes: average them, one number per layer":
                (p.exp() * (p - q)).sum(-1),
            "you used the raw logits as log-probabilities: apply log_softmax first":
                (final.softmax(-1) * (final - lens_logits)).sum(-1).flatten(1).mean(-1),
        }
        compare("kl_to_final", got, expected, mistakes, atol=1e-4, axes="layer")
    done("kl_to_final", len(shapes))


def check_logit_attribution(fn):
    """fn(stack [component, batch, pos, d_model], W_U [d_model, d_vocab], tokens [batch, pos]) -> [component, batch, pos - 1]."""
    __tracebackhide__ = True
    shapes = [(3, 2, 6, 5, 9), (4, 3, 8, 6, 11), (2, 1, 3, 4, 4)]  # (component, batch, pos, d_model, d_vocab)
    for seed, (comp, batch, seq, d_model, d_vocab) in enumerate(shapes):
        g = fixtures.generator(seed)
        stack = torch.randn(comp, batch, seq, d_model, generator=g)
        W_U = torch.randn(d_model, d_vocab, generator=g)
        tokens = fixtures.tokens(g, batch, seq, d_vocab)
        expected = lens.logit_attribution(stack, W_U, tokens)
        got = call("logit_attribution", fn, {"stack": stack, "W_U": W_U, "tokens": tokens})
        logits = stack @ W_U  # [comp, batch, pos, d_vocab]
        next_tokens = tokens[:, 1:][None, ..., None].expand(comp, -1, -1, 1)
        mistakes = {
            "you read the logit of the token at the same position: position t predicts tokens[:, t + 1]":
                logits[:, :, :-1].gather(-1, tokens[None, :, :-1, None].expand(comp, -1, -1, 1))[..., 0],
            "you kept the last position: it has no next token to predict, so the output has pos - 1 entries":
                logits.gather(-1, torch.cat([tokens[:, 1:], tokens[:, :1]], 1)[None, ..., None].expand(comp, -1, -1, 1))[..., 0],
            "you returned every logit: keep only the correct next token's, with gather or indexing":
                logits[:, :, :-1],
            "you dropped the first position instead of the last: position t (0 .. pos-2) predicts tokens[:, t + 1]":
                logits[:, :, 1:].gather(-1, next_tokens)[..., 0],
            "you summed over the components: keep one attribution per component": expected.sum(0),
            "you used W_U's rows (W_U[tokens]): W_U is [d_model, d_vocab], so a token's unembedding is a "
            "column, W_U[:, token] (or W_U.T[token])":
                lambda: (stack[:, :, :-1] * W_U[tokens[:, 1:]]).sum(-1),
        }
        compare("logit_attribution", got, expected, mistakes, atol=1e-4, axes="component batch pos")
    done("logit_attribution", len(shapes))
