"""Checks for notebook 05, "Logit lens": decomposing the residual stream, unembedding it through the
final LayerNorm, the KL to the final output, the lens's top tokens and where they settle, direct
logit attribution (by component and by head), and training a tuned lens."""

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
    "lens_top_tokens": lens.lens_top_tokens,
    "settle_layer": lens.settle_layer,
    "head_attribution": lens.head_attribution,
    "fit_tuned_lens": lens.fit_tuned_lens,
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


def check_lens_top_tokens(fn):
    """fn(model, cache, seq, positions) -> token ids [n_layers + 1, len(positions)]."""
    __tracebackhide__ = True
    cases = [(0, 2, (3, 7), 1, [0, 3, 5, 6]), (1, 3, (2, 9), 0, [8, 2]), (2, 4, (4, 5), 3, [1, 2, 4])]
    for seed, n_layers, (batch, seq_len), seq, positions in cases:  # (seed, n_layers, tokens' shape, seq, positions)
        model = fixtures.model(seed, n_layers=n_layers)
        tokens = fixtures.tokens(fixtures.generator(seed), batch, seq_len, model.cfg.d_vocab)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
            expected = lens.lens_top_tokens(model, cache, seq, positions)
            resid = cache.accumulated_resid()[:, seq, positions]
            raw = (resid @ model.W_U + model.b_U).argmax(-1)
            first_seq = lens.lens_top_tokens(model, cache, 0, positions)
        got = call("lens_top_tokens", fn, {"model": model, "cache": cache, "seq": seq, "positions": list(positions)})
        mistakes = {
            "you unembedded the residual stream without the final LayerNorm: every row goes through "
            "ln_final before W_U, as the model's own last row does": raw,
            "your table misses the first row, the embeddings alone (cache.accumulated_resid() starts with "
            "it, before layer 0)": expected[1:],
            "you read sequence 0 of the batch: use the argument seq": first_seq if seq else None,
            "you returned the positions' tokens' ids, not the lens's predictions: take the argmax over "
            "the vocabulary of each row's logits": tokens[seq, positions].expand_as(expected),
        }
        compare("lens_top_tokens", got, expected, mistakes, axes="layer position")
    done("lens_top_tokens", len(cases))


def check_settle_layer(fn):
    """fn(lens_logits [layer, ..., d_vocab]) -> [...] (torch.long): the row where the top token settles."""
    __tracebackhide__ = True
    shapes = [(5, 3, 6, 3), (4, 9, 4), (6, 2, 5, 3)]  # a small vocabulary, so rows often agree
    for seed, shape in enumerate(shapes):
        g = fixtures.generator(seed)
        lens_logits = torch.randn(shape, generator=g)
        lens_logits[-1] += torch.randn(shape[1:], generator=g)  # some rows agree with the last, some not
        expected = lens.settle_layer(lens_logits)
        got = call("settle_layer", fn, {"lens_logits": lens_logits})
        agrees = lens_logits.argmax(-1) == lens_logits[-1].argmax(-1)
        mistakes = {
            "you returned the first row that agrees with the last one, but a later row may disagree again: "
            "the prediction has settled only where this row and every later one agree":
                agrees.long().argmax(0),
            "you counted the rows that agree with the last one; we want the first row of the unbroken run "
            "of agreeing rows that ends at the last row": agrees.long().sum(0),
            "your rows are counted from 1: row 0 is the embeddings, so an answer there settles at 0":
                expected + 1,
            "you returned the last row that disagrees (add 1: the run of agreeing rows starts after it)":
                expected - 1,
        }
        compare("settle_layer", got, expected, mistakes, axes=" ".join(["batch", "pos"][-(len(shape) - 2):]))
    done("settle_layer", len(shapes))


def _head_dla(model, cache, tokens, centre=True, scale=True, w=True, shift=1, ln_bias=False, own_scale=False):
    """Direct logit attribution of each head, written with the mistakes a learner may make."""
    heads = torch.stack([torch.einsum("bphe,hed->hbpd", cache[f"blocks.{layer}.attn.hook_z"], model.W_O[layer])
                         for layer in range(model.cfg.n_layers)])  # [layer, head, batch, pos, d_model]
    w_, b_, eps = lens.ln_final_params(model)
    if centre:
        heads = heads - heads.mean(-1, keepdim=True)
    if own_scale:
        heads = heads / (heads.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    elif scale:
        heads = heads / cache["ln_final.hook_scale"]
    heads = heads * (w_ if w else 1) + (b_ if ln_bias else 0)
    n = tokens.shape[1]
    directions = model.W_U.T[tokens[:, shift:n - 1 + shift]]  # [batch, pos - 1, d_model]
    return (heads[..., :-1, :] * directions).sum(-1)


def check_head_attribution(fn):
    """fn(model, cache, tokens) -> [n_layers, n_heads, batch, pos - 1]."""
    __tracebackhide__ = True
    cases = [(0, 2, 3, (2, 7)), (1, 3, 2, (3, 5)), (2, 4, 3, (1, 9))]  # (seed, n_layers, n_heads, tokens' shape)
    for seed, n_layers, n_heads, (batch, seq) in cases:
        model = fixtures.model(seed, n_layers=n_layers, n_heads=n_heads)
        tokens = fixtures.tokens(fixtures.generator(seed), batch, seq, model.cfg.d_vocab)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
            expected = lens.head_attribution(model, cache, tokens)
        got = call("head_attribution", fn, {"model": model, "cache": cache, "tokens": tokens})
        with torch.no_grad():
            mistakes = {
                "you did not centre the heads' outputs: the final LayerNorm subtracts the mean over d_model "
                "before it divides by the scale, and that is linear, so do it to each head's output":
                    _head_dla(model, cache, tokens, centre=False),
                "you did not divide by the final LayerNorm's scale: take it from the cache, "
                "cache['ln_final.hook_scale'] ([batch, pos, 1])": _head_dla(model, cache, tokens, scale=False),
                "you normalised each head's output by its own size: the final LayerNorm divides the whole "
                "residual stream by ONE number per position, its cached scale (ln_final.hook_scale)":
                    _head_dla(model, cache, tokens, own_scale=True),
                "you forgot the final LayerNorm's weight w (lens.ln_final_params(model))":
                    _head_dla(model, cache, tokens, w=False),
                "you added the final LayerNorm's bias b to every head: it is a constant that belongs to no "
                "head (like b_U)": _head_dla(model, cache, tokens, ln_bias=True),
                "you read the logit of the token at the same position: position t predicts tokens[:, t + 1]":
                    _head_dla(model, cache, tokens, shift=0),
            }
        compare("head_attribution", got, expected, mistakes, atol=1e-4, axes="layer head batch pos")
    done("head_attribution", len(cases))


def _fit(tuned, model, batches, steps, lr, reverse=False, zero_grad=True, step_=True):
    """The tuned lens's training loop, with the mistakes a learner may make; returns the losses."""
    opt = torch.optim.Adam(tuned.parameters(), lr=lr)
    losses = []
    with torch.enable_grad():
        for step in range(steps):
            with torch.no_grad():
                final, cache = model.run_with_cache(batches(step))
            lens_logits = tuned(cache.accumulated_resid(), model)
            loss = _kl(lens_logits, final, reverse).sum()
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            if step_:
                opt.step()
            losses.append(loss.detach())
    return torch.stack(losses)


def _kl(lens_logits, final_logits, reverse):
    p, q = final_logits.log_softmax(-1), lens_logits.log_softmax(-1)
    if reverse:
        return (q.exp() * (q - p)).sum(-1).flatten(1).mean(-1)
    return (p.exp() * (p - q)).sum(-1).flatten(1).mean(-1)


def _held_out_kl(tuned, model, tokens):
    with torch.no_grad():
        final, cache = model.run_with_cache(tokens)
        return lens.kl_to_final(tuned(cache.accumulated_resid(), model), final)


def check_fit_tuned_lens(fn):
    """fn(tuned, model, batches, steps, lr) -> losses [steps]; trains `tuned` in place."""
    __tracebackhide__ = True
    cases = [(0, 2, 12, 0.05), (1, 3, 10, 0.02)]  # (seed, n_layers, steps, lr)
    for seed, n_layers, steps, lr in cases:
        model = fixtures.model(seed, n_layers=n_layers)
        d_vocab, n_rows = model.cfg.d_vocab, n_layers + 1

        def batches(step, seed=seed):
            return fixtures.tokens(fixtures.generator(1000 * seed + step), 3, 8, d_vocab)

        held_out = fixtures.tokens(fixtures.generator(999 + seed), 4, 8, d_vocab)
        reference = lens.TunedLens(n_layers, model.cfg.d_model)
        expected = lens.fit_tuned_lens(reference, model, batches, steps, lr, progress=False)
        expected_kl = _held_out_kl(reference, model, held_out)
        untrained_kl = _held_out_kl(lens.TunedLens(n_layers, model.cfg.d_model), model, held_out)

        tuned = lens.TunedLens(n_layers, model.cfg.d_model)
        got = call("fit_tuned_lens", fn, {"tuned": tuned, "model": model, "batches": batches, "steps": steps, "lr": lr},
                   changes=("tuned",))
        mistakes = {
            "you minimised KL(lens || final): the lens should predict what the model predicts, "
            "KL(final || lens) = sum p_final (log p_final - log p_lens), as in kl_to_final":
                lambda: _fit(lens.TunedLens(n_layers, model.cfg.d_model), model, batches, steps, lr, reverse=True),
            "you never called opt.zero_grad(): each step's gradients were added to all the earlier ones":
                lambda: _fit(lens.TunedLens(n_layers, model.cfg.d_model), model, batches, steps, lr, zero_grad=False),
            "you averaged the KL over the rows: the loss is the sum of every row's KL (kl_to_final(...).sum())":
                expected / n_rows,
            "your losses are those of the untrained lens: did the optimizer step (opt.step()) on the lens's "
            "own parameters (tuned.parameters())?":
                lambda: _fit(lens.TunedLens(n_layers, model.cfg.d_model), model, batches, steps, lr, step_=False),
        }
        compare("fit_tuned_lens", got, expected, mistakes, atol=2e-3, axes="step")
        got_kl = _held_out_kl(tuned, model, held_out)
        compare("fit_tuned_lens", got_kl, expected_kl, {
            "your losses are right but the lens you were given is untrained: train `tuned` itself (its "
            "parameters, in place), not a new lens or a copy": untrained_kl}, atol=2e-3, axes="layer")
    done("fit_tuned_lens", len(cases))
