"""Every check accepts right answers and rejects plausible wrong ones, saying what is wrong.

`WRONG` lists, check by check, answers a learner might write (each written here as a learner would,
not taken from the check) and what the check must say about each. `test_every_check_rejects_three_wrong_answers`
keeps at least three per check. The tests after it try every check with the kinds of wrong answer
the framework catches for all of them: a float64 answer, a changed input, a Python number or a list
where a tensor is needed, None, an extra axis, a crash.
"""

from __future__ import annotations

import copy as copy_module
import itertools
import re
from pathlib import Path

import einops
import nbformat
import pytest
import torch
import torch.nn.functional as F
from transformer_lens import FactoredMatrix

from course_utils import checks
from course_utils import in_context_regression as icr
from course_utils import lens as lens_module
from course_utils import model as reference
from course_utils import refusal
from course_utils.checks import REFERENCES, ExerciseError, framework
from course_utils.model import Config, Transformer

NB01_MODEL = Transformer(Config(d_vocab=20, n_ctx=16, d_model=16, n_heads=2, n_layers=2))


def run_check(name: str, fn):
    """checks.check_<name>(fn), with notebook 01's model for check_forward."""
    check = getattr(checks, f"check_{name}")
    return check(fn, NB01_MODEL) if name == "forward" else check(fn)


def not_done(*args):
    raise NotImplementedError("Exercise 'x': hint")


# ---- answers written as a learner would write them ---------------------------------------------------


def _scores(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5


def _future(q, diagonal=1):
    n = q.shape[-2]
    return torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=diagonal)


def _mha(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O, reduce="sum", bias=True, mask=True, qkv_bias=True):
    q = einops.einsum(x, W_Q, "b p d, h d e -> b h p e") + (b_Q[:, None] if qkv_bias else 0)
    k = einops.einsum(x, W_K, "b p d, h d e -> b h p e") + (b_K[:, None] if qkv_bias else 0)
    v = einops.einsum(x, W_V, "b p d, h d e -> b h p e") + (b_V[:, None] if qkv_bias else 0)
    pattern = reference.attention_pattern(q, k) if mask else _scores(q, k).softmax(-1)
    out = einops.einsum(pattern @ v, W_O, "b h p e, h e d -> b h p d")
    out = out.sum(1) if reduce == "sum" else out.mean(1) if reduce == "mean" else out
    return out + b_O if bias and reduce else out


def _forward(tokens, model, pos=True, residual=True, blocks=None, b_U=True, unembed=True):
    resid = reference.embed(tokens, model.W_E)
    if pos:
        resid = resid + reference.pos_embed(tokens, model.W_pos)
    for block in blocks(model) if blocks else model.blocks:
        a = block.attn
        out = reference.multi_head_attention(resid, a.W_Q, a.b_Q, a.W_K, a.b_K, a.W_V, a.b_V, a.W_O, a.b_O)
        resid = resid + out if residual else out
    if not unembed:
        return resid
    return resid @ model.W_U + (model.b_U if b_U else 0)


def _forward_leaving_a_hook(tokens, model):
    model.add_hook("blocks.0.hook_resid_pre", lambda resid, hook: resid)
    return model(tokens)


def _forward_editing_weights(tokens, model):
    logits = model(tokens)
    with torch.no_grad():
        model.unembed.b_U.zero_()  # "to see what the bias does", and forgot to put it back
    return logits


def _loop(model, batches, lr, zero="before", shift="next", step=True, once=True, opt=torch.optim.AdamW, copy=False,
          extra_step=False, own_loss=False, after=False):
    """A training loop as a learner writes it, with the learner's mistakes as switches."""
    if copy:
        model = copy_module.deepcopy(model)  # "so as not to spoil the caller's model"
    optimizer = opt(model.parameters(), lr=lr)
    losses = []
    for step_ in range(len(batches)):
        tokens = batches[step_]
        if not once:
            optimizer = opt(model.parameters(), lr=lr)
        if own_loss:
            loss = model(tokens, return_type="loss")
        else:
            logits = model(tokens)
            if shift == "next":
                logprobs = logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])
            else:
                logprobs = logits.log_softmax(-1).gather(-1, tokens[..., None])
            loss = -logprobs.mean()
        if zero == "before":
            optimizer.zero_grad()
        loss.backward()
        if zero == "between":
            optimizer.zero_grad()
        if step:
            optimizer.step()
        if zero == "after":
            optimizer.zero_grad()
        losses.append(model(tokens, return_type="loss").item() if after else loss.item())
    if extra_step:
        optimizer.step()
    return torch.tensor(losses)


def _sampler(model, prompt, n_new, temperature, generator, last=-1, multiply=False, grow=True, axis=-1, use_generator=True,
             only_new=False, floats=False, greedy=True):
    """Sampling as a learner writes it, one row at a time, with the learner's mistakes as switches."""
    tokens = prompt.clone()
    new = torch.zeros(prompt.shape[0], 0, dtype=torch.float if floats else torch.long)
    for _ in range(n_new):
        logits = model(tokens if grow else prompt)[:, last, :]
        if temperature == 0 and greedy:
            next_ids = logits.argmax(dim=-1)
        else:
            probs = F.softmax(logits * temperature if multiply else logits / temperature, dim=axis)
            next_ids = torch.cat([torch.multinomial(row, 1, generator=generator if use_generator else None) for row in probs])
        new = torch.cat([new, next_ids[:, None].to(new.dtype)], dim=1)
        tokens = torch.cat([tokens, next_ids[:, None]], dim=1)
    return new if only_new else torch.cat([prompt.to(new.dtype), new], dim=1)


def _recorder(model, tokens, names=None, leave_hook=False, late_binding=False, stack_dim=0):
    """Reading patterns with hooks as a learner writes it."""
    store = {}
    hooks = []
    for layer in range(model.cfg.n_layers):
        def keep(pattern, hook):
            store[layer if late_binding else hook.layer()] = pattern.detach().clone()
        hooks.append(((names or "blocks.{}.attn.hook_pattern").format(layer), keep))
    if leave_hook:
        for name, fn in hooks:
            model.add_hook(name, fn)
        model(tokens)
    else:
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    return torch.stack([store[k] for k in sorted(store)], dim=stack_dim)


def _positions(model, tokens, positions, where="hook_pos_embed", add=False, ret=True, rows="positions", in_place=False):
    """Editing the positional embedding with a hook as a learner writes it."""
    def edit(act, hook):
        new = model.W_pos[positions if rows == "positions" else tokens]
        if in_place:
            act[:] = new
            return act
        new = act + new if add else new.expand_as(act)
        if ret:
            return new
    return model.run_with_hooks(tokens, fwd_hooks=[(where, edit)])


def _diag(pattern, offset, skip=0):
    return pattern.diagonal(offset=offset, dim1=-2, dim2=-1)[..., skip:].mean(-1).mean(0)


def _ablate(z, head, replacement, where="head", mode="set"):
    if where != "in place":
        z = z.clone()
    index = {"head": (slice(None), slice(None), head), "in place": (slice(None), slice(None), head),
             "pos": (slice(None), head), "every": (slice(None),)}[where]
    if mode == "add":
        z[index] += replacement
    elif mode == "zero":
        z[index] = 0
    elif where == "every":
        z[:] = torch.as_tensor(replacement).expand(z.shape[0], z.shape[1], z.shape[3])[:, :, None]
    else:
        z[index] = replacement
    return z


def _keys(k, removed, W_K, head, sign=-1, every=False, in_place=False, zero=False, only=False):
    if not in_place:
        k = k.clone()
    if every:
        return k + sign * torch.einsum("bpd,hde->bphe", removed, W_K)
    if zero:
        k[:, :, head] = 0
    else:
        k[:, :, head] += sign * (removed @ W_K[head])
    return k[:, :, head] if only else k


def _ablated(model, tokens, heads, method="zero", reference_tokens=None, source="reference", reduce=(0,),
             late_binding=False, leave_hook=False, hooked=True):
    """Heads ablated by hooks, written as a learner would: one hook per head on its layer's hook_z."""
    from_tokens = tokens if source == "tokens" else reference_tokens
    _, cache = model.run_with_cache(from_tokens)
    hooks = []
    for layer, head in heads:
        z_ref = cache[f"blocks.{layer}.attn.hook_z"][:, :, head]
        if method == "zero":
            replacement = torch.zeros_like(z_ref)
        elif method == "mean":
            replacement = z_ref.mean(reduce, keepdim=True).expand_as(z_ref)
        else:
            replacement = z_ref
        if late_binding:
            def hook(z, hook):
                z = z.clone()
                z[:, :, head] = replacement  # noqa: B023 (the learner's late-binding mistake)
                return z
        else:
            def hook(z, hook, head=head, replacement=replacement):
                z = z.clone()
                z[:, :, head] = replacement
                if not hooked:
                    return None
                return z
        hooks.append((f"blocks.{layer}.attn.hook_z", hook))
    if leave_hook:
        for name, hook in hooks:
            model.add_hook(name, hook)
        logits = model(tokens)
    else:
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")


def _effects(model, tokens, positions, method="zero", reference_tokens=None, subtract=True, every=False, reduce="mean"):
    clean = _ablated(model, tokens, [], reference_tokens=reference_tokens)
    where = slice(None) if every else positions
    pick = (lambda loss: loss[..., where].sum()) if reduce == "sum" else (lambda loss: loss[..., where].mean())
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            ablated = pick(_ablated(model, tokens, [(layer, head)], method, reference_tokens))
            out[layer, head] = ablated - pick(clean) if subtract else ablated
    return out


def _costs(model, tokens, heads, positions, method="zero", reference_tokens=None, order="bits", measure=True,
           hooks_by_name=False):
    def cost(subset):
        if hooks_by_name:  # {hook name: head}: one head per layer survives
            subset = list({layer: (layer, head) for layer, head in subset}.values())
        return (_ablated(model, tokens, subset, method, reference_tokens)[..., positions].mean()
                - _ablated(model, tokens, [], method, reference_tokens)[..., positions].mean())
    n = len(heads)
    if order == "combinations":
        subsets = [[]] + [list(c) for k in range(1, n + 1) for c in itertools.combinations(heads, k)]
    else:
        ordered = heads[::-1] if order == "reversed" else heads
        subsets = [[lh for i, lh in enumerate(ordered) if m >> i & 1] for m in range(2 ** n)]
    if not measure:
        singles = [cost([lh]) for lh in heads]
        return torch.stack([sum((singles[i] for i in range(n) if m >> i & 1), torch.zeros(())) for m in range(2 ** n)])
    return torch.stack([cost(s) if s else torch.zeros(()) for s in subsets])


def _preserving(model, tokens, heads, method="zero", reference_tokens=None, layers="later", patterns_from="tokens",
                ablate=True, freeze=True, leave_hook=False):
    """Pattern-preserving ablation written as a learner would: clean patterns cached, then held by hooks."""
    first = min(layer for layer, _ in heads)
    later = {"later": range(first + 1, model.cfg.n_layers), "next": [first + 1]}[layers]
    _, clean = model.run_with_cache(tokens if patterns_from == "tokens" else reference_tokens)
    _, ref = model.run_with_cache(reference_tokens)
    hooks = []
    if ablate:
        for layer, head in heads:
            z_ref = ref[f"blocks.{layer}.attn.hook_z"][:, :, head]
            replacement = {"zero": torch.zeros(()), "mean": z_ref.mean(0), "resample": z_ref}[method]
            hooks.append((f"blocks.{layer}.attn.hook_z",
                          lambda z, hook, head=head, r=replacement: _ablate(z, head, r)))
    if freeze:
        for layer in later:
            name = f"blocks.{layer}.attn.hook_pattern"
            hooks.append((name, lambda pattern, hook, name=name: clean[name]))
    if leave_hook:
        for name, hook in hooks:
            model.add_hook(name, hook)
        logits = model(tokens)
    else:
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")


def _clamp(pattern, head, target, where="head", mode="set", cut="start", transpose=False):
    pattern = pattern.clone()
    n = pattern.shape[-1]
    piece = target[:n, :n] if cut == "start" else target[-n:, -n:] if cut == "end" else target
    if transpose:
        piece = piece.T
    index = {"head": (slice(None), head), "every": (slice(None),), "batch": (head,)}[where]
    if mode == "add":
        pattern[index] += piece
    else:
        pattern[index] = piece
    return pattern


def _stack(cache, n_layers, kinds=("attn_out", "mlp_out"), pos=True, layers=None):
    parts = [cache["hook_embed"]] + ([cache["hook_pos_embed"]] if pos else [])
    for layer in range(n_layers if layers is None else layers):
        parts += [cache[f"blocks.{layer}.hook_{kind}"] for kind in kinds]
    return torch.stack(parts)


def _decompose_editing_the_cache(cache, n_layers):
    embed = cache["hook_embed"]
    embed += cache["hook_pos_embed"]  # "the embeddings together", written into the cache
    return _stack(cache, n_layers)


def _ln(r, w, b, eps, centre=True, std=False):
    x = r - r.mean(-1, keepdim=True) if centre else r
    scale = x.std(-1, keepdim=True) if std else (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return x / scale * w + b


def _kl(lens_logits, final_logits, reverse=False, reduce="mean", probs=False, cross_entropy=False):
    p, q = final_logits.log_softmax(-1), lens_logits.log_softmax(-1)
    if reverse:
        p, q = q, p
    if probs:
        terms = p.exp() * (p.exp() - q.exp())
    elif cross_entropy:
        terms = -p.exp() * q
    else:
        terms = p.exp() * (p - q)
    per_position = terms.sum(-1)
    if reduce == "none":
        return per_position
    return per_position.flatten(1).sum(-1) if reduce == "sum" else per_position.flatten(1).mean(-1)


def _dla(stack, W_U, tokens, shift=1, keep_last=False, first=False, every_logit=False):
    logits = stack @ W_U
    if every_logit:
        return logits[:, :, :-1]
    if keep_last:
        return logits.gather(-1, tokens.roll(-1, 1)[None, ..., None].expand(stack.shape[0], -1, -1, 1))[..., 0]
    chosen = logits[:, :, 1:] if first else logits[:, :, :-1]
    targets = tokens[:, 1:] if shift else tokens[:, :-1]
    return chosen.gather(-1, targets[None, ..., None].expand(stack.shape[0], -1, -1, 1))[..., 0]


def _top_tokens(model, cache, seq, positions, ln=True, rows=slice(None), seq_fixed=None):
    resid = cache.accumulated_resid()[rows, seq if seq_fixed is None else seq_fixed, positions]
    w, b, eps = lens_module.ln_final_params(model)
    logits = reference.unembed(_ln(resid, w, b, eps), model.W_U, model.b_U) if ln else resid @ model.W_U + model.b_U
    return logits.argmax(-1)


def _settle(lens_logits, first_match=False, count=False, offset=0):
    top = lens_logits.argmax(-1)
    agrees = top == top[-1]
    if first_match:
        return agrees.int().argmax(0).long()
    if count:
        return agrees.sum(0)
    settled = torch.full(top.shape[1:], lens_logits.shape[0] - 1, dtype=torch.long)
    for row in range(lens_logits.shape[0] - 1, -1, -1):
        still = agrees[row:].all(0)
        settled = torch.where(still, torch.full_like(settled, row), settled)
    return settled + offset


def _head_dla(model, cache, tokens, centre=True, scale=True, w=True, shift=1, own_scale=False, ln_bias=False):
    rows = []
    w_, b_, eps = lens_module.ln_final_params(model)
    for layer in range(model.cfg.n_layers):
        out = einops.einsum(cache[f"blocks.{layer}.attn.hook_z"], model.W_O[layer], "b p h e, h e d -> h b p d")
        if centre:
            out = out - out.mean(-1, keepdim=True)
        if own_scale:  # LayerNorm's formula applied to each head on its own
            out = out / (out.pow(2).mean(-1, keepdim=True) + eps).sqrt()
        elif scale:
            out = out / cache["ln_final.hook_scale"]
        out = out * (w_ if w else 1) + (b_ if ln_bias else 0)
        rows.append(out)
    out = torch.stack(rows)  # [layer, head, batch, pos, d_model]
    targets = tokens[:, 1:] if shift else tokens[:, :-1]
    return einops.einsum(out[..., :-1, :], model.W_U.T[targets], "l h b p d, b p d -> l h b p")


def _fit(tuned, model, batches, steps, lr, reverse=False, zero_grad=True, mean=False, step=True, params=None,
         fresh=False):
    if fresh:
        tuned = lens_module.TunedLens(model.cfg.n_layers, model.cfg.d_model)
    opt = torch.optim.Adam(tuned.parameters() if params is None else params(tuned, model), lr=lr)
    losses = []
    with torch.enable_grad():
        for s in range(steps):
            with torch.no_grad():
                final, cache = model.run_with_cache(batches(s))
            kl = _kl(tuned(cache.accumulated_resid(), model), final, reverse=reverse)
            loss = kl.mean() if mean else kl.sum()
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            if step:
                opt.step()
            losses.append(loss.item())
    return torch.tensor(losses)


def _fit_without_grad(tuned, model, batches, steps, lr):
    """The loop without torch.enable_grad(), run where gradients are off (as in the notebook)."""
    with torch.no_grad():
        opt = torch.optim.Adam(tuned.parameters(), lr=lr)
        final, cache = model.run_with_cache(batches(0))
        loss = _kl(tuned(cache.accumulated_resid(), model), final).sum()
        loss.backward()
        opt.step()
    return torch.tensor([loss.item()] * steps)


def _patch(model, corrupted, cache, metric, layer, pos, where="resid_pre", index=None, leave_hook=False,
           edit_cache=False, item=False):
    name = f"blocks.{layer}.hook_{where}"
    index = (slice(None), pos) if index is None else index

    def put_back(resid, hook):
        if edit_cache:
            cache[name][index] = resid[index]  # the wrong way round
        else:
            resid[index] = cache[name][index]
        return resid

    if leave_hook:
        model.add_hook(name, put_back)
        value = metric(model(corrupted))
    else:
        value = metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, put_back)]))
    return value.item() if item else value


def _logprob(logits, tokens, positions, shift=1, raw=False, probs=False, reduce="mean"):
    source = logits if raw else (logits.softmax(-1) if probs else logits.log_softmax(-1))
    picked = source[:, :-1].gather(-1, tokens[:, shift:tokens.shape[1] - 1 + shift, None])[..., 0]
    return getattr(picked[:, positions], reduce)()


def _resid_map(model, corrupted, cache, metric, transpose=False, where="resid_pre", loop=False):
    rows = []
    for layer in range(model.cfg.n_layers):
        row = []
        for pos in range(corrupted.shape[1]):
            name = f"blocks.{layer}.hook_{where}"

            def hook(resid, hook, pos=pos, name=name):
                resid[:, pos] = cache[name][:, pos]
                return resid
            row.append(metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)])))
        rows.append(torch.stack(row))
    out = torch.stack(rows)
    return out.T if transpose else out


def _heads(model, corrupted, cache, metric, heads, activation, by_name=False, pattern_as_z=False, every_head=False,
           always_z=False):
    activation = "z" if always_z else activation
    hooks = {} if by_name else []
    for layer, head in heads:
        name = f"blocks.{layer}.attn.hook_{activation}"

        def hook(act, hook, head=head):
            if every_head:
                act[:] = cache[hook.name]
            elif activation == "pattern" and not pattern_as_z:
                act[:, head] = cache[hook.name][:, head]
            else:
                act[:, :, head] = cache[hook.name][:, :, head]
            return act
        if by_name:
            hooks[name] = hook
        else:
            hooks.append((name, hook))
    return metric(model.run_with_hooks(corrupted, fwd_hooks=list(hooks.items()) if by_name else hooks))


def _k_path(model, corrupted, cache, metric, writer, readers, sign=1.0, whole_output=False, whole_keys=False):
    w_layer, w_head = writer
    z_name = f"blocks.{w_layer}.attn.hook_z"
    if whole_output:
        return _heads(model, corrupted, cache, metric, [writer], "z")
    if whole_keys:
        return _heads(model, corrupted, cache, metric, readers, "k")
    _, run = model.run_with_cache(corrupted)
    diff = (run[z_name][:, :, w_head] - cache[z_name][:, :, w_head]) @ model.W_O[w_layer, w_head]
    hooks = []
    for layer, head in readers:
        def hook(k, hook, layer=layer, head=head):
            k = k.clone()
            k[:, :, head] = k[:, :, head] - sign * diff @ model.W_K[layer, head]
            return k
        hooks.append((f"blocks.{layer}.attn.hook_k", hook))
    return metric(model.run_with_hooks(corrupted, fwd_hooks=hooks))


def _noised(model, tokens, noise, positions, metric_positions, every=False, replace=False, first_rows=False,
            where="hook_embed", leave_hook=False):
    at = list(range(tokens.shape[1])) if every else positions
    rows = list(range(len(positions))) if first_rows else at

    def add_noise(embed, hook):
        embed = embed.clone()  # hook_pos_embed's tensor is a view of W_pos: edit a copy
        embed[:, at] = noise[:, rows] if replace else embed[:, at] + noise[:, rows]
        return embed
    if leave_hook:
        model.add_hook(where, add_noise)
        logits = model(tokens)
    else:
        logits = model.run_with_hooks(tokens, fwd_hooks=[(where, add_noise)])
    return _logprob(logits, tokens, metric_positions)


def _trace(model, tokens, noise, positions, metric_positions, every=False, from_noised=False, noise_in_restore=True,
           raw=False, leave_hook=False, transpose=False, noise_where="hook_embed", restore_first=False):
    at = list(range(tokens.shape[1])) if every else positions

    def add_noise(x, hook):
        x[:, at] += noise[:, at]
        return x
    clean_logits, clean_cache = model.run_with_cache(tokens)
    with model.hooks(fwd_hooks=[(noise_where, add_noise)]):
        noised_logits, noised_cache = model.run_with_cache(tokens)
    cache = noised_cache if from_noised else clean_cache
    clean, noised = _logprob(clean_logits, tokens, metric_positions), _logprob(noised_logits, tokens, metric_positions)
    out = torch.zeros(model.cfg.n_layers, tokens.shape[1])
    for layer in range(model.cfg.n_layers):
        for pos in range(tokens.shape[1]):
            name = f"blocks.{layer}.hook_resid_pre"

            def restore(resid, hook, pos=pos, name=name):
                resid[:, pos] = cache[name][:, pos]
                return resid
            hooks = [(name, restore)] + ([(noise_where, add_noise)] if noise_in_restore else [])
            if not restore_first:
                hooks = hooks[::-1]
            if leave_hook:
                for hook_name, hook in hooks:
                    model.add_hook(hook_name, hook)
                logits = model(tokens)
            else:
                logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
            value = _logprob(logits, tokens, metric_positions)
            out[layer, pos] = value if raw else (value - noised) / (clean - noised)
    return out.T if transpose else out


def _trace_by_noised(model, tokens, noise, positions, metric_positions):
    """A right answer another way: restoring layer L at pos = the noised run with one state swapped, via
    the learner's noised_logprob-like helper with an extra hook."""
    _, cache = model.run_with_cache(tokens)
    clean = _logprob(model(tokens), tokens, metric_positions)
    noised = _noised(model, tokens, noise, positions, metric_positions)
    rows = []
    for layer in range(model.cfg.n_layers):
        row = []
        for pos in range(tokens.shape[1]):
            name = f"blocks.{layer}.hook_resid_pre"
            with model.hooks(fwd_hooks=[(name, lambda r, hook, pos=pos, name=name: torch.cat(
                    [r[:, :pos], cache[name][:, pos:pos + 1], r[:, pos + 1:]], 1))]):
                row.append(_noised(model, tokens, noise, positions, metric_positions))
        rows.append(torch.stack(row))
    return (torch.stack(rows) - noised) / (clean - noised)


def _mean_outputs(model, tokens, position=-1, with_W_O=True, reduce="mean", b_O=False, sum_heads=False):
    _, cache = model.run_with_cache(tokens)
    z = torch.stack([cache[f"blocks.{l}.attn.hook_z"][:, position] for l in range(model.cfg.n_layers)], 1)
    out = torch.einsum("blhe,lhed->blhd", z, model.W_O.detach()) if with_W_O else z
    out = out.sum(0) if reduce == "sum" else out if reduce == "none" else out.mean(0)
    if b_O:
        out = out + model.b_O.detach()[:, None]
    return out.sum(1) if sum_heads else out


def _effect(model, tokens, answers, mean_z, layer, head, positions=-1, gain=True, log=False):
    def hook(z, hook):
        z = z.clone()
        z[:, positions, head] = mean_z[layer, head]
        return z

    def score(logits):
        scores = logits[:, -1].log_softmax(-1) if log else logits[:, -1].softmax(-1)
        return scores.gather(1, answers[:, None])[:, 0]

    patched = score(model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)]))
    return patched - score(model(tokens)) if gain else patched


def _with_vector(model, tokens, vector, layer, where="attn_out", positions=-1, last=True, sign=1, leave_hook=False):
    def hook(resid, hook):
        resid = resid.clone()
        resid[:, positions] += sign * vector
        return resid
    if leave_hook:
        model.add_hook(f"blocks.{layer}.hook_{where}", hook)
        logits = model(tokens)
    else:
        logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_{where}", hook)])
    return logits[:, -1] if last else logits


def _effects_table(model, tokens, answers, mean_z, reduce="mean", transpose=False, item=False, **kw):
    """indirect_effects as a learner would write it, with the learner's `_effect` (and a mistake, if asked)."""
    table = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            effect = _effect(model, tokens, answers, mean_z, layer, head, **kw)
            table[layer, head] = effect.sum() if reduce == "sum" else effect.mean()
    if item:
        return table.tolist()
    return table.T if transpose else table


def _top_vector(mean_outputs, aie, k, key=lambda a: a, descending=True, reduce="sum", skip=0, dtype=None):
    """top_heads_vector as a learner would write it: rank the heads, turn flat indices into (layer, head), sum."""
    n_layers, n_heads, _ = mean_outputs.shape
    order = key(aie.flatten()).argsort(descending=descending)[skip:skip + k]
    chosen = [mean_outputs[int(i) // n_heads, int(i) % n_heads] for i in order]
    vector = torch.stack(chosen).sum(0) if chosen else torch.zeros(mean_outputs.shape[-1])
    if reduce == "mean" and chosen:
        vector = vector / len(chosen)
    return vector.to(dtype) if dtype else vector


def _sweep(model, tokens, answers, mean_outputs, aie, ks, where="attn_out", count=False, k_is_index=False,
           rank=lambda a: a, leave_hook=False):
    """layer_sweep as a learner would write it, from `_top_vector` and `_with_vector`."""
    grid = torch.zeros(model.cfg.n_layers, len(ks))
    for layer in range(model.cfg.n_layers):
        for i, k in enumerate(ks):
            vector = _top_vector(mean_outputs, aie, i if k_is_index else k, key=rank)
            logits = _with_vector(model, tokens, vector, layer, where=where, leave_hook=leave_hook and i == 0)
            right = (logits.argmax(-1) == answers).float()
            grid[layer, i] = right.sum() if count else right.mean()
    return grid


def _attention_to(model, tokens, key_positions, query=-1, to_last=False, reduce="mean", over_keys="sum", scores=False):
    """attention_to as a learner would write it: cache every layer's pattern, pick the last query's row."""
    hook = "attn_scores" if scores else "pattern"
    _, cache = model.run_with_cache(tokens)
    rows = []
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_{hook}"]  # [batch, head, query, key]
        picked = pattern[:, :, key_positions, query] if to_last else pattern[:, :, query, key_positions]
        picked = picked.sum(-1) if over_keys == "sum" else picked.mean(-1)
        rows.append(picked.sum(0) if reduce == "sum" else picked.mean(0))
    return torch.stack(rows)


def _answer_shares(model, tokens, answers, vectors, layer, where="attn_out", transpose=False, count=False, positions=-1,
                   all_at_once=False, leave_hook=False):
    """answer_shares as a learner would write it, with the learner's `_with_vector`."""
    table = torch.zeros(len(vectors), len(answers))
    for a, vector in enumerate(vectors):
        vector = vectors.sum(0) if all_at_once else vector
        predictions = _with_vector(model, tokens, vector, layer, where=where, positions=positions,
                                   leave_hook=leave_hook and a == 0).argmax(-1)
        for b in range(len(answers)):
            right = (predictions == answers[b]).float()
            table[a, b] = right.sum() if count else right.mean()
    return table.T if transpose else table


def _qk(Xq, Xk, W_Q, W_K, scale="sqrt d_head", keys_first=False):
    scores = (Xk @ W_K) @ (Xq @ W_Q).T if keys_first else (Xq @ W_Q) @ (Xk @ W_K).T
    return scores / {"sqrt d_head": W_Q.shape[1] ** 0.5, "d_head": W_Q.shape[1], "none": 1,
                     "sqrt d_model": W_Q.shape[0] ** 0.5}[scale]


def _eig_score(A, B, how="eig"):
    if how == "svd":
        s = FactoredMatrix(A, B).S
        return s.sum(-1) / s.abs().sum(-1)
    eig = FactoredMatrix(A, B).eigenvalues
    if how == "abs on top":
        return (eig.abs().sum(-1) / eig.abs().sum(-1)).real
    if how == "count positive":
        return (eig.real > 0).float().mean(-1)
    if how == "complex":
        return eig.sum(-1) / eig.abs().sum(-1)
    if how == "real parts":
        return eig.real.sum(-1) / eig.real.abs().sum(-1)
    return (eig.sum(-1) / eig.abs().sum(-1)).real


def _top1(W_E, W_V, W_O, W_U, axis=-1, absolute=False, count=False):
    full = FactoredMatrix(W_E @ W_V, W_O @ W_U).AB
    if absolute:
        full = full.abs()
    hits = (full.argmax(axis) == torch.arange(W_E.shape[0])).float()
    return hits.sum(-1) if count else hits.mean(-1)


def _excess(writers, readers, random_writers, random_readers, baseline="mean", order="writer first", rows="writer"):
    def score(A, B):
        return (A @ B if order == "writer first" else B @ A).norm() / (A.norm() * B.norm())

    real = torch.stack([torch.stack([score(w, r) for r in readers]) for w in writers])
    random = torch.stack([torch.stack([score(w, r) for r in random_readers]) for w in random_writers])
    if baseline == "none":
        out = real
    elif baseline == "matched":
        out = real - torch.stack([score(w, r) for w, r in zip(random_writers, random_readers)]).mean()
    elif baseline == "ratio":
        out = real / random.mean()
    else:
        out = real - random.mean()
    return out.T if rows == "reader" else out


def _by_source(q, components, W_K, scale=True, keys_first=False, summed=False):
    keys = einops.einsum(components, W_K, "c b k d, d e -> c b k e")
    scores = einops.einsum(q, keys, "b q e, c b k e -> c b q k") / (W_K.shape[1] ** 0.5 if scale else 1)
    if keys_first:
        scores = scores.transpose(-1, -2)
    return scores.sum(0) if summed else scores


def _repetition(tokens, n, start, loop=False, later_too=False, self_too=False, starting=False, prompt_only=False,
                whole=False, counts=False, non_overlapping=False, batch_mean=False):
    rates = []
    for row in tokens.tolist():
        grams = [tuple(row[j - n + 1:j + 1]) for j in range(n - 1, len(row))]  # grams[i] ends at position i + n - 1
        first = 0 if whole else (start if starting else start - n + 1)
        hits = 0
        for i in range(first, len(grams)):
            if later_too:
                sources = grams[:i] + grams[i + 1:]
            elif self_too:
                sources = grams[:i + 1]
            elif prompt_only:
                sources = grams[:max(0, start - n + 1)]
            elif non_overlapping:
                sources = grams[:max(0, i - n + 1)]
            else:
                sources = grams[:i]
            hits += grams[i] in sources
        rates.append(hits if counts else hits / (len(grams) - first))
    out = torch.tensor(rates, dtype=torch.float32)
    return out.mean() if batch_mean else out


def _repetition_by_unfold(tokens, n, start):
    grams = tokens.unfold(1, n, 1)
    seen = torch.zeros(grams.shape[:2], dtype=torch.bool)
    for i in range(1, grams.shape[1]):
        seen[:, i] = (grams[:, :i] == grams[:, i:i + 1]).all(-1).any(-1)
    return seen[:, start - n + 1:].float().mean(1)


def _prev_and_induction(model, tokens, period, layers=None, order=(0, 1), dup=False, leave_hook=False):
    if leave_hook:
        model.add_hook("blocks.0.attn.hook_pattern", lambda pattern, hook: pattern)
    _, cache = model.run_with_cache(tokens)
    scores = [[], []]
    for layer in range(model.cfg.n_layers) if layers is None else layers:
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        scores[0].append(pattern.diagonal(-1, -2, -1).mean((0, -1)))
        back = period if dup else period - 1
        scores[1].append(pattern.diagonal(-back, -2, -1)[..., 0 if dup else 1:].mean((0, -1)))
    return torch.stack([torch.stack(scores[i]) for i in order])


def _by_offset(pattern, mean=True, above=False, keep_batch=False):
    rows = []
    for d in range(pattern.shape[-1]):
        diagonal = pattern.diagonal(d if above else -d, -2, -1)
        rows.append(diagonal.mean(-1) if mean else diagonal.sum(-1) / pattern.shape[-1])
    out = torch.stack(rows, -1)
    return out if keep_batch else out.mean(0)


def _window_shares(steps, values, width, loop=False, norm="total", strict=False, checkpoints=False, both_ways=False):
    n = len(steps)
    total = {"total": values[-1] - values[0], "range": values.max() - values.min(), "none": 1.0}[norm]
    out = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            length = (j - i) if checkpoints else int(steps[j] - steps[i])
            ok = (length != 0 if both_ways else length > 0) and (abs(length) < width if strict else abs(length) <= width)
            if ok:
                out[i, j] = (values[j] - values[i]) / total
    if loop:
        return out
    change = values[None, :] - values[:, None]
    length = steps[None, :] - steps[:, None]
    return torch.where((length > 0) & (length <= width), change / total, torch.zeros_like(change))


def _copy_curves(history, tokens, copied, order="sorted", swap=False, same_model=False):
    """copy_loss_curves as a learner would write it: per-token loss and the two means, at every checkpoint."""
    steps = {"sorted": sorted(history), "dict": list(history), "reversed": sorted(history, reverse=True)}[order]
    rows = []
    for step in steps:
        logits = history[max(history) if same_model else step](tokens)
        loss = -logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]
        mask = copied[:, 1:]
        pair = torch.stack([loss[mask].mean(), loss[~mask].mean()])
        rows.append(pair.flip(0) if swap else pair)
    return torch.stack(rows)


def _formation(steps, scores, threshold, stay=True, index=False, never="nan", strict=False):
    """formation_steps as a learner would write it, with a loop over the checkpoints from the end."""
    out = torch.full(scores.shape[1:], float("nan"))
    flat, result = scores.flatten(1), out.view(-1)
    for j in range(flat.shape[1]):
        above = [(v > threshold) if strict else (v >= threshold) for v in flat[:, j].tolist()]
        if stay:
            first = None
            for i in reversed(range(len(above))):
                if not above[i]:
                    break
                first = i
        else:
            first = next((i for i, a in enumerate(above) if a), None)
        if first is not None:
            result[j] = first if index else float(steps[first])
        elif never != "nan":
            result[j] = {"zero": float(steps[0]), "last": float(steps[-1]), "-1": -1.0}[never]
    return out


# ---- right answers: each check passes them (besides the reference) ---------------------------------------

# -- notebook 08 --


def _cls(pattern, correct, key_offset=3, query=-1, reduce="mean", transpose=False):
    """correct_letter_score as a learner would write it: the last row, at 3 + 2 * correct."""
    keys = key_offset + 2 * correct
    rows = torch.arange(len(correct))
    picked = pattern[rows, :, keys, query] if transpose else pattern[rows, :, query, keys]
    return picked.mean(0) if reduce == "mean" else picked.sum(0) if reduce == "sum" else picked


def _labels(kind, size, n, gen, replace=False, pool=26, use_gen=True, sort=False):
    """mutated_labels as a learner would write it."""
    if kind == "fixed":
        return torch.arange(n).repeat(size, 1)
    if kind == "shuffled":
        pool = n
    if replace:
        return torch.randint(0, pool, (size, n), generator=gen)
    rand = torch.rand(size, pool, generator=gen) if use_gen else torch.rand(size, pool)
    out = rand.argsort(-1)[:, :n]
    return out.sort(-1).values if sort else out


def _label_logits(model, tokens, labels, layer, head, scale=True, centre=True):
    _, cache = model.run_with_cache(tokens)
    out = cache[f"blocks.{layer}.attn.hook_z"][:, -1, head] @ model.W_O[layer, head]
    if centre:
        out = out - out.mean(-1, keepdim=True)
    if scale:
        out = out / cache["ln_final.hook_scale"][:, -1]
    return (out * model.ln_final.w @ model.W_U).gather(1, labels)


def _compress(vectors, k, centre=False, last=False):
    x = vectors - vectors.mean(0) if centre else vectors
    _, _, Vh = torch.linalg.svd(x, full_matrices=False)
    V = Vh[-k:] if last else Vh[:k]
    return x @ V.T @ V


def _swap(correct, other, n, parts=(0, 1)):
    b = len(correct)
    pos = torch.arange(2 * n + 3).repeat(b, 1)
    for i in range(b):
        for off in parts:
            a, c = 2 + 2 * int(correct[i]) + off, 2 + 2 * int(other[i]) + off
            pos[i, a], pos[i, c] = c, a
    return pos


def _at_positions(model, tokens, positions, add=False, first_row=False, last=True):
    def hook(pos_embed, hook):
        moved = model.W_pos[positions[0]].expand_as(pos_embed) if first_row else model.W_pos[positions]
        return pos_embed + moved if add else moved

    logits = model.run_with_hooks(tokens, fwd_hooks=[("hook_pos_embed", hook)])
    return logits[:, -1] if last else logits
# ---- notebook 10: grokking, as a learner would write it ---------------------------------------------------


def _split(p, train_fraction, seed, swap=False, cut=round, sort=False, seeded=True, of_p=False):
    gen = torch.Generator().manual_seed(seed) if seeded else None
    order = torch.randperm(p * p, generator=gen)
    n = cut(train_fraction * (p if of_p else p * p))
    train, test = order[:n], order[n:]
    if sort:
        train, test = train.sort().values, test.sort().values
    return (test, train) if swap else (train, test)


def _basis(p, norm="each", swap=False, two_pi=True, transpose=False):
    x = torch.arange(p).float()
    rows = [torch.ones(p)]
    for k in range(1, (p - 1) // 2 + 1):
        w = (2 * torch.pi if two_pi else 1.0) * k / p
        pair = [torch.cos(w * x), torch.sin(w * x)]
        rows += pair[::-1] if swap else pair
    basis = torch.stack(rows)
    if norm == "each":
        basis = basis / basis.norm(dim=1, keepdim=True)
    elif norm == "sqrt p":
        basis = basis / p ** 0.5
    return basis.T if transpose else basis


def _key_freqs(W, share, zero_based=False, constant=False, plain=False, ascending=False, early=False):
    p = W.shape[0]
    coeffs = _basis(p) @ W
    if plain:
        per_row = coeffs.norm(dim=-1)
    else:
        per_row = (coeffs ** 2).sum(-1)
    norms = per_row[1:].reshape(-1, 2).sum(-1)
    if constant:
        norms = torch.cat([per_row[:1], norms])
    order = torch.argsort(norms, descending=True)
    total, chosen = 0.0, []
    for i in order.tolist():
        if early and total + norms[i] >= share * norms.sum():
            break
        chosen.append(i)
        total += norms[i]
        if total >= share * norms.sum():
            break
    keys = torch.tensor(chosen) + (0 if zero_based or constant else 1)
    return keys.sort().values if ascending else keys


def _waves_ab(p, keys, cos_only=False, minus=False, unit=True):
    a, b = torch.arange(p)[:, None], torch.arange(p)[None, :]
    s = (a - b) if minus else (a + b)
    waves = []
    for k in keys.tolist():
        for f in ((torch.cos,) if cos_only else (torch.cos, torch.sin)):
            wave = f(2 * torch.pi * k / p * s.float())
            waves.append(wave / wave.norm() if unit else wave)
    return waves


def _restricted(logits, keys, mean=True, cos_only=False, minus=False, unit=True, mean_over_c=False):
    out = logits.mean(dim=-1, keepdim=True) if mean_over_c else (logits.mean(dim=(0, 1), keepdim=True) if mean else 0)
    for wave in _waves_ab(logits.shape[0], keys, cos_only, minus, unit):
        out = out + (wave[..., None] * logits).sum(dim=(0, 1)) * wave[..., None]
    return out


def _excluded(logits, keys, cos_only=False, removed_part=False, minus_mean=False):
    part = _restricted(logits, keys, mean=False, cos_only=cos_only)
    if removed_part:
        return part
    out = logits - part
    return out - logits.mean(dim=(0, 1), keepdim=True) if minus_mean else out


def _phases(steps, train_acc, test_loss, test_acc, chance, ignore_memorised=False, indices=False, strict=False, never=None):
    def first(mask):
        where = torch.nonzero(mask)
        if len(where) == 0:
            return float("nan") if never is None else never
        return float(where[0, 0]) if indices else float(steps[where[0, 0]])

    memorised = first(train_acc > 0.99 if strict else train_acc >= 0.99)
    formed_mask = test_loss < chance
    if not ignore_memorised and memorised == memorised:
        formed_mask = formed_mask & ((torch.arange(len(steps)) if indices else steps) >= memorised)
    generalised = first(test_acc > 0.95 if strict else test_acc >= 0.95)
    return torch.tensor([memorised, first(formed_mask), generalised])


def _cos_fit(logits, keys, with_equals=False, plus_c=False, centre=True, unexplained=False):
    p = logits.shape[0]
    answers = logits if with_equals else logits[..., :p]
    target = answers - answers.mean(-1, keepdim=True) if centre else answers
    a = torch.arange(p)[:, None, None]
    b = torch.arange(p)[None, :, None]
    c = torch.arange(answers.shape[-1])[None, None, :]
    phase = (a + b + c) if plus_c else (a + b - c)
    X = torch.stack([torch.cos(2 * torch.pi * k / p * phase.float()).flatten() for k in keys.tolist()], dim=1)
    y = target.flatten()
    alpha = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    share = 1 - ((y - X @ alpha) ** 2).sum() / (y ** 2).sum()
    return alpha, (share.item() if not unexplained else 1 - share.item())


# ---- notebook 09: superposition and SAEs, as a learner would write it ------------------------------------------


def _toy_fwd(W, b, x, out_relu=True, bias=True, hidden_relu=False, bias_outside=False):
    h = torch.einsum("ihf,bif->bih", W, x)
    h = torch.relu(h) if hidden_relu else h
    out = torch.einsum("ihf,bih->bif", W, h) + (b if bias and not bias_outside else 0)
    out = torch.relu(out) if out_relu else out
    return out + b if bias_outside else out


def _toy_loss(x, x_hat, importance, weigh=True, over_features="sum", batch="mean"):
    err = (importance if weigh else 1) * (x - x_hat) ** 2
    err = err.sum(-1) if over_features == "sum" else err.mean(-1)
    return err.sum(0) if batch == "sum" else err.mean(0)


def _superposition(W, keep_self=False, normalise_i=True, normalise_j=False, square=True):
    Wi = W / W.norm(dim=1, keepdim=True) if normalise_i else W
    Wj = W / W.norm(dim=1, keepdim=True) if normalise_j else W
    dots = torch.einsum("ihf,ihg->ifg", Wi, Wj)
    dots = dots ** 2 if square else dots
    return dots.sum(-1) - (0 if keep_self else dots.diagonal(dim1=-2, dim2=-1))


def _sae_fwd(x, W_enc, b_enc, W_dec, b_dec, centre=True, relu=True, dec_bias=True):
    pre = (x - b_dec if centre else x) @ W_enc + b_enc
    latents = torch.relu(pre) if relu else pre
    return latents, latents @ W_dec + (b_dec if dec_bias else 0)


def _sae_loss(x, f, x_hat, W_dec, l1, mse_mean=False, norms=True, l2=False, batch_sum=False):
    err = (x_hat - x) ** 2
    err = err.mean(-1) if mse_mean else err.sum(-1)
    pen = (f ** 2 if l2 else f) * (W_dec.norm(dim=-1) if norms else 1)
    total = err + l1 * pen.sum(-1)
    return total.sum() if batch_sum else total.mean()


def _sae_step(sae, opt, x, l1, zero=True, normalise=True, dim=-1):
    f, x_hat = _sae_fwd(x, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)
    loss = _sae_loss(x, f, x_hat, sae.W_dec, l1)
    if zero:
        opt.zero_grad()
    loss.backward()
    opt.step()
    if normalise:
        with torch.no_grad():
            sae.W_dec.data = sae.W_dec.data / sae.W_dec.data.norm(dim=dim, keepdim=True)
    return loss.detach()


def _recovery(true, W_dec, norm_true=True, norm_dec=True, use_abs=False, reduce="max"):
    t = F.normalize(true, dim=-1) if norm_true else true
    d = F.normalize(W_dec, dim=-1) if norm_dec else W_dec
    cos = t @ d.T
    cos = cos.abs() if use_abs else cos
    return cos.max(-1).values if reduce == "max" else cos.mean(-1)


def _clamp_latent(x, W_enc, b_enc, W_dec, b_dec, latent, value, subtract=True, direction="dec", keep_error=True):
    flat = x.reshape(-1, x.shape[-1])
    f, recon = _sae_fwd(flat, W_enc, b_enc, W_dec, b_dec)
    now = f[:, latent].reshape(x.shape[:-1])[..., None]
    if not keep_error:
        f = f.clone()
        f[:, latent] = value
        return (f @ W_dec + b_dec).reshape(x.shape)
    along = W_dec[latent] if direction == "dec" else W_enc[:, latent]
    return x + ((value - now) if subtract else value) * along


# ---- notebook 11 -------------------------------------------------------------------------------------------


def _vw(pattern, v, W_O, by="written", rows=True, power=1):
    per_head = torch.einsum("bkhd,hdm->bhkm", v, W_O) if by == "written" else v.transpose(1, 2)
    weights = per_head.norm(dim=-1) ** power  # [batch, head, key_pos]
    out = pattern * weights[:, :, None, :]
    if rows is None:
        return out
    return out / out.sum(-1 if rows else -2, keepdim=True)


def _verdicts(model, tokens, head, positions, reference_tokens, subtract=True, where="positions", order=("zero", "mean", "resample"), sign=1):
    from course_utils.ablation import ablated_loss, loss_with_hooks
    pick = (lambda x: x[..., positions]) if where == "positions" else (lambda x: x)
    clean = pick(loss_with_hooks(model, tokens, [])).mean() if subtract else 0.0
    return sign * torch.stack([pick(ablated_loss(model, tokens, head, m, reference_tokens)).mean() - clean for m in order])


def _removal(model, cache, tokens, component, frozen=False, shift=1, log=False, sign=1):
    resid = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
    ln = model.ln_final
    target = tokens[:, shift:, None] if shift else tokens[:, :-1, None]
    if frozen:  # the learner keeps the clean run's LayerNorm scale
        centred = component - component.mean(-1, keepdim=True)
        direct = (centred / cache["ln_final.hook_scale"]) * ln.w @ model.W_U
        return sign * direct[:, :-1].gather(-1, target)[..., 0]

    def logits(x):
        out = model.unembed(model.ln_final(x))
        return out.log_softmax(-1) if log else out

    return sign * (logits(resid)[:, :-1].gather(-1, target) - logits(resid - component)[:, :-1].gather(-1, target))[..., 0]


def _bias_share(model, cache, layer, through_W_O=True, squared=True, with_b_O=False, mean_first=False):
    z = cache[f"blocks.{layer}.attn.hook_z"]
    out = torch.einsum("bphd,hdm->hbpm", z, model.W_O[layer])
    bias = torch.einsum("hd,hdm->hm", model.b_V[layer], model.W_O[layer]) if through_W_O else model.b_V[layer]
    if with_b_O:
        bias = bias + model.b_O[layer]
    if mean_first:
        return bias.pow(2).sum(-1) / out.mean((1, 2)).pow(2).sum(-1)
    if squared:
        return bias.pow(2).sum(-1) / out.pow(2).sum(-1).mean((1, 2))
    return bias.norm(dim=-1) / out.norm(dim=-1).mean((1, 2))


def _favourite(d_vocab, kind="column"):
    if kind == "identity":
        return torch.eye(d_vocab)
    if kind == "negative":
        ov = -torch.eye(d_vocab)
        ov[:, 0] += 2.0
        return ov
    if kind == "zeros":
        return torch.zeros(d_vocab, d_vocab)
    if kind == "random":
        return torch.randn(d_vocab, d_vocab, generator=torch.Generator().manual_seed(0))
    ov = torch.eye(d_vocab)
    ov[:, 0] = ov[:, 0] + 3.0
    return ov


def _scrub(model, tokens, other_tokens, keep, roles="right", scrub=("q", "k", "v"), score_on="tokens", hooks_on=True):
    from course_utils.ablation import head_output
    from course_utils.metrics import per_token_loss
    names = ["hook_embed", "blocks.0.attn.hook_z", "blocks.1.hook_resid_pre"]
    _, a = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    _, b = model.run_with_cache(other_tokens, names_filter=lambda n: n in names)
    clean, other = (a, b) if roles == "right" else (b, a)

    def part(cache, name):
        return cache["hook_embed"] if name == "embed" else head_output(cache["blocks.0.attn.hook_z"], model.W_O[0], int(name[2:]))

    hooks = []
    for letter in scrub:
        name = keep[letter]
        if name == "all":
            shift = torch.zeros_like(a["blocks.1.hook_resid_pre"])
        elif name == "none":
            shift = b["blocks.1.hook_resid_pre"] - a["blocks.1.hook_resid_pre"]
        else:  # the named part from `clean`, the rest from `other`, minus the real input
            shift = other["blocks.1.hook_resid_pre"] - part(other, name) + part(clean, name) - a["blocks.1.hook_resid_pre"]
        W = {"q": model.W_Q, "k": model.W_K, "v": model.W_V}[letter][1]
        hooks.append((f"blocks.1.attn.hook_{letter}", lambda act, hook, s=shift, W=W: act + torch.einsum("bpm,hmd->bphd", s, W)))
    logits = model.run_with_hooks(tokens, fwd_hooks=hooks if hooks_on else [])
    return per_token_loss(logits, tokens if score_on == "tokens" else other_tokens)


def _unit_parts(v, W_out):
    U = torch.linalg.svd(W_out, full_matrices=False).U
    read = U @ (U.T @ v)
    return [read / read.norm(), (v - read) / (v - read).norm()]


def _subspace(h_clean, h_corrupted, v, normalise=True, way="clean"):
    unit = v / v.norm() if normalise else v
    base, other = (h_clean, h_corrupted) if way == "clean" else (h_corrupted, h_clean)
    return base + ((other - base) @ unit)[:, None] * unit


def _var_split(h, v, W_out, basis="qr", order=(0, 1), unit=True, stat="std"):
    if basis == "qr":
        Q = torch.linalg.qr(W_out).Q  # an orthonormal basis of W_out's columns
        read = Q @ (Q.T @ v)
    else:
        read = W_out @ (W_out.T @ v)
    parts = [read, v - read]
    out = torch.stack([getattr(h @ (p / p.norm() if unit else p), stat)() for p in parts])
    return out[list(order)]
# notebook 12 (one direction), written as a learner would
def _resid(model, layer):
    return f"blocks.{layer}.hook_resid_pre" if layer < model.cfg.n_layers else f"blocks.{layer - 1}.hook_resid_post"


def _mean_diff(model, refused, harmless, layer, pos=-1, norm=False, sign=1, late=False):
    name = f"blocks.{layer}.hook_resid_post" if late and layer < model.cfg.n_layers else _resid(model, layer)
    means = []
    for tokens in (refused, harmless):
        _, cache = model.run_with_cache(tokens)
        means.append(cache[name].mean((0, 1)) if pos is None else cache[name][:, pos].mean(0))
    d = sign * (means[0] - means[1])
    return d / d.norm() if norm else d


def _ablation(model, direction, unit=True, embeddings=True, mlps=True, last_only=False):
    r = direction / direction.norm() if unit else direction

    def hook(x, hook):
        if last_only:
            x = x.clone()
            x[:, -1] = x[:, -1] - (x[:, -1] @ r)[:, None] * r
            return x
        return x - einops.einsum(x, r, "b p d, d -> b p")[..., None] * r
    names = ["hook_embed", "hook_pos_embed"] if embeddings else []
    for layer in range(model.cfg.n_layers):
        names += [f"blocks.{layer}.hook_attn_out"] + ([f"blocks.{layer}.hook_mlp_out"] if mlps else [])
    return [(n, hook) for n in names]


def _addition(model, vector, layer, where="last", name=None, sign=1.0, unit=False):
    v = vector / vector.norm() if unit else vector

    def hook(resid, hook):
        out = resid.clone()
        if where == "last":
            out[:, -1] = out[:, -1] + sign * v
        else:
            out = out + sign * v
        return out
    return (name or _resid(model, layer), hook)


def _random_control(model, refused, harmless, direction, layer, refuse, n, seed, swap=False, unit=False,
                    itself=False, same=False):
    rows = []
    vectors = refusal.random_directions(direction, n, seed)
    if unit:
        vectors = vectors / vectors.norm(dim=-1, keepdim=True)
    for r in vectors:
        r = direction if itself else r
        a = refusal.behaviour(model, harmless if same else refused, refuse, _ablation(model, r))["refusal"]
        b = refusal.behaviour(model, harmless, refuse, [_addition(model, r, layer)])["refusal"]
        rows.append([b, a] if swap else [a, b])
    return torch.tensor(rows)


def _direction_sweep(model, train, test, refuse, layers=None, on_train=False, shift=0):
    rows = []
    n = model.cfg.n_layers
    for layer in (range(n + 1) if layers is None else layers(n)):
        d = _mean_diff(model, train[0].tokens, train[1].tokens, layer)
        measured = train if on_train else test
        rows.append([refusal.separation(model, measured[0].tokens, measured[1].tokens, d, layer),
                     refusal.behaviour(model, measured[1], refuse, [_addition(model, d, min(layer + shift, n))])["refusal"]])
    return torch.tensor(rows)


def _steering(model, harmless, vector, layer, refuse, mask=True, steer_beneath=True, steer_refusal=True, only_kept=False):
    steered = model.run_with_hooks(harmless.tokens, fwd_hooks=[_addition(model, vector, layer)])[:, -1]
    plain = model(harmless.tokens)[:, -1]
    refused = ((steered if steer_refusal else plain).argmax(-1) == refuse).float().mean().item()
    logits = (steered if steer_beneath else plain).clone()
    kept = logits.argmax(-1) != refuse
    if mask:
        logits[:, refuse] = -torch.inf
    hits = logits.argmax(-1) == harmless.answers
    return {"refusal": refused, "accuracy_beneath": (hits[kept] if only_kept else hits).float().mean().item()}
# -- notebook 13: in-context regression, written as a learner would --
def _interleave(xs, ys, y_first_coord=False, blocks=False, y_before=False):
    b, n, d = xs.shape
    x_rows = torch.cat([xs, torch.zeros(b, n, 1)], -1)
    y_rows = torch.zeros(b, n, d + 1)
    y_rows[..., 0 if y_first_coord else d] = ys
    if blocks:
        return torch.cat([x_rows, y_rows], 1)
    pair = [y_rows, x_rows] if y_before else [x_rows, y_rows]
    return torch.stack(pair, 2).reshape(b, 2 * n, d + 1)


def _per_k(xs, ys, estimate, include_query=False):
    preds = torch.zeros(ys.shape)
    for k in range(0 if include_query else 1, xs.shape[1]):
        end = k + 1 if include_query else k
        preds[:, k] = (xs[:, k] * estimate(xs[:, :end], ys[:, :end])).sum(-1)
    return preds


def _min_norm(X, y):  # X [b, k, d]: min-norm via X^T (X X^T)^-1 y below d examples, normal equations from d
    if X.shape[1] < X.shape[2]:
        return (X.mT @ torch.linalg.solve(X @ X.mT, y[..., None]))[..., 0]
    return torch.linalg.solve(X.mT @ X, X.mT @ y[..., None])[..., 0]


def _ridge(lam, lam_times_k=False):
    def estimate(X, y):
        A = X.mT @ X + lam * (X.shape[1] if lam_times_k else 1) * torch.eye(X.shape[-1])
        return (torch.linalg.inv(A) @ X.mT @ y[..., None])[..., 0]
    return estimate


def _knn(xs, ys, n_neighbours, far=False, include_query=False):
    preds = torch.zeros(ys.shape)
    for k in range(1, xs.shape[1]):
        end = k + 1 if include_query else k
        dist = torch.cdist(xs[:, k : k + 1], xs[:, :end])[:, 0]
        order = dist.argsort(dim=-1, descending=far)[:, :n_neighbours]
        preds[:, k] = torch.gather(ys[:, :end], 1, order).mean(-1)
    return preds


def _gd(xs, ys, lr, steps, summed=False):
    def estimate(X, y):
        w = torch.zeros(X.shape[0], X.shape[2])
        for _ in range(steps):
            grad = ((torch.einsum("bkd,bd->bk", X, w) - y)[..., None] * X)
            w = w - lr * (grad.sum(1) if summed else grad.mean(1))
        return w
    return _per_k(xs, ys, estimate)


def _sweep13(model, tasks, prop, values, size, scale=True, lam=lambda noise: noise**2, change=True):
    out = []
    for value in values:
        t = tasks.with_(**{prop: value}) if change else tasks
        p = t.eval_prompts(size)
        ls = icr.least_squares_predictions(p.xs, p.ys)
        ridge = icr.ridge_predictions(p.xs, p.ys, lam(t.noise)) if t.noise > 0 else ls
        errors = [((q - p.ys) ** 2).mean(0) / t.d for q in (icr.model_predictions(model, p.xs, p.ys), ls, ridge)]
        out.append(torch.stack(errors) * (t.d / t.signal_power if scale else 1))
    return torch.stack(out)


def _probe(acts, targets, n_train, bias=True, score_on_train=False):
    A = torch.cat([acts, torch.ones(len(acts), 1)], 1) if bias else acts
    coef = torch.linalg.pinv(A[:n_train]) @ targets[:n_train]
    rows = slice(0, n_train) if score_on_train else slice(n_train, None)
    err = (A[rows] @ coef - targets[rows]).pow(2).sum()
    return 1 - err / (targets[rows] - targets[rows].mean(0)).pow(2).sum()


RIGHT = {
    "embed": [lambda t, W_E: W_E[t], lambda t, W_E: F.one_hot(t, W_E.shape[0]).float() @ W_E],
    "pos_embed": [lambda t, W_pos: W_pos[: t.shape[1]].expand(t.shape[0], -1, -1),
                  lambda t, W_pos: W_pos[torch.arange(t.shape[1])][None].repeat(t.shape[0], 1, 1)],
    "attention_pattern": [lambda q, k: _scores(q, k).masked_fill(_future(q), float("-inf")).softmax(-1),
                          lambda q, k: _scores(q, k).masked_fill(_future(q), -1e9).softmax(-1)],
    "multi_head_attention": [_mha],
    "unembed": [lambda r, W_U, b_U: r @ W_U + b_U, lambda r, W_U, b_U: einops.einsum(r, W_U, "b p d, d v -> b p v") + b_U],
    "forward": [_forward, lambda t, m: m(t)],
    "train_loop": [_loop, lambda m, b, lr: _loop(m, b, lr, zero="after", own_loss=True)],
    "sample": [_sampler, lambda m, p, n, t, g: reference.sample(m, p, n, t, g)],
    "record_patterns": [_recorder, lambda m, t: torch.stack([c for n, c in m.run_with_cache(t)[1].items() if n.endswith("pattern")]),
                        lambda m, t: _recorder(m, t, names="blocks.{}.attn.hook_pattern")],
    "logits_with_positions": [_positions, lambda m, t, p: m.run_with_hooks(t, fwd_hooks=[("hook_pos_embed", lambda a, hook: m.W_pos[p])])],
    "per_token_loss": [lambda l, t: -l[:, :-1].log_softmax(-1).gather(-1, t[:, 1:, None])[..., 0],
                       lambda l, t: F.cross_entropy(l[:, :-1].transpose(1, 2), t[:, 1:], reduction="none")],
    "icl_score": [lambda loss, early, late: loss[..., late].mean() - loss[..., early].mean()],
    "loss_on_copies": [lambda loss, c: torch.stack([loss[c[:, 1:]].mean(), loss[~c[:, 1:]].mean()]),
                       lambda loss, c: torch.stack([(loss * m).sum() / m.sum() for m in (c[:, 1:], ~c[:, 1:])])],
    "prev_and_induction_scores": [_prev_and_induction],
    "attention_by_offset": [_by_offset, lambda p: torch.stack([p.diagonal(-d, -2, -1).mean((0, -1))
                                                               for d in range(p.shape[-1])]).T],
    "window_shares": [_window_shares, lambda s, v, w: _window_shares(s, v, w, loop=True)],
    "copy_loss_curves": [_copy_curves, lambda h, t, c: torch.stack([
        checks.REFERENCES["loss_on_copies"](checks.REFERENCES["per_token_loss"](h[s](t), t), c) for s in sorted(h)])],
    "formation_steps": [_formation, lambda s, x, t: torch.where(
        (x >= t).flip(0).cumprod(0).flip(0)[-1].bool(),
        s[(x >= t).flip(0).cumprod(0).flip(0).argmax(0)].float(), torch.tensor(float("nan")))],
    "prev_token_score": [lambda p: p.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, -1))],
    "induction_score": [lambda p, period: p.diagonal(offset=1 - period, dim1=-2, dim2=-1)[..., 1:].mean((0, -1))],
    "duplicate_token_score": [lambda p, period: p.diagonal(offset=-period, dim1=-2, dim2=-1).mean((0, -1))],
    "composition_score": [lambda A, B: (A @ B).norm() / (A.norm() * B.norm()),
                          lambda A, B: torch.linalg.matrix_norm(A @ B) / (torch.linalg.matrix_norm(A) * torch.linalg.matrix_norm(B))],
    "qk_circuit": [_qk, lambda Xq, Xk, W_Q, W_K: einops.einsum(Xq @ W_Q, Xk @ W_K, "q h, k h -> q k") / W_Q.shape[-1] ** 0.5],
    "ov_eigenvalue_score": [_eig_score, lambda A, B: (lambda e: (e.sum(-1) / e.abs().sum(-1)).real)(torch.linalg.eigvals(A @ B))],
    "full_ov_top1_accuracy": [_top1, lambda E, V, O, U: ((E @ V @ O @ U).argmax(-1) == torch.arange(len(E))).float().mean(-1)],
    "composition_excess": [_excess],
    "repetition_rate": [_repetition, _repetition_by_unfold],
    "key_scores_by_source": [_by_source, lambda q, c, W_K: torch.stack([q @ (x @ W_K).transpose(-1, -2) for x in c])
                             / W_K.shape[1] ** 0.5],
    "ablate_head": [_ablate],
    "ablated_loss": [_ablated],
    "ablation_effects": [_effects],
    "combination_costs": [_costs],
    "keys_without": [_keys],
    "pattern_preserving_loss": [_preserving],
    "clamp_head_pattern": [_clamp, lambda p, h, t: torch.cat([p[:, :h], t[None, None, :p.shape[-2], :p.shape[-1]].expand(
        p.shape[0], 1, -1, -1), p[:, h + 1:]], 1)],
    "perfect_prev_token_pattern": [lambda n: torch.eye(n).roll(-1, dims=1).tril() + torch.eye(n) * (torch.arange(n) == 0)],
    "decompose_resid": [_stack, lambda cache, n: cache.decompose_resid()],
    "unembed_resid": [lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, eps) @ W_U + b_U,
                      lambda r, w, b, W_U, b_U, eps: F.layer_norm(r, r.shape[-1:], w, b, eps) @ W_U + b_U],
    "kl_to_final": [_kl, lambda l, f: torch.stack([F.kl_div(row.log_softmax(-1), f.log_softmax(-1), log_target=True,
                                                            reduction="none").sum(-1).mean() for row in l])],
    "logit_attribution": [_dla, lambda s, W_U, t: (s[:, :, :-1] * W_U.T[t[:, 1:]]).sum(-1)],
    "lens_top_tokens": [_top_tokens, lambda m, c, s, p: (c.accumulated_resid(apply_ln=True)[:, s, p] @ m.W_U + m.b_U).argmax(-1)],
    "settle_layer": [_settle, lambda l: torch.stack([(l.argmax(-1)[r:] == l.argmax(-1)[-1]).all(0) for r in range(len(l))])
                     .long().argmax(0)],
    "head_attribution": [_head_dla],
    "fit_tuned_lens": [_fit, lambda t, m, b, s, lr: _fit(t, m, b, s, lr, mean=True) * (m.cfg.n_layers + 1)],
    "correct_logprob": [_logprob, lambda l, t, p: l.log_softmax(-1)[:, :-1].gather(-1, t[:, 1:, None])[:, p].mean()],
    "normalized_metric": [lambda v, c, x: (v - x) / (c - x)],
    "patch_resid_pre": [_patch],
    "resid_patching": [_resid_map],
    "patch_heads": [_heads],
    "patch_k_path": [_k_path],
    "noised_logprob": [_noised, lambda m, t, n, p, mp: _noised(m, t, n, p, mp, where="hook_pos_embed")],
    "causal_trace": [_trace, _trace_by_noised],
    "mean_head_outputs": [_mean_outputs],
    "indirect_effect": [_effect],
    "logits_with_vector": [_with_vector],
    "indirect_effects": [_effects_table],
    "top_heads_vector": [_top_vector, lambda m, a, k: m.flatten(0, 1)[a.flatten().topk(k).indices].sum(0)],
    "layer_sweep": [_sweep],
    "attention_to": [_attention_to, lambda m, t, k: torch.stack([m.run_with_cache(t)[1][f"blocks.{l}.attn.hook_pattern"][
        :, :, -1][..., k].sum(-1).mean(0) for l in range(m.cfg.n_layers)])],
    "answer_shares": [_answer_shares, lambda m, t, a, v, layer: torch.stack([
        (_with_vector(m, t, x, layer).argmax(-1)[None] == a).float().mean(1) for x in v])],
    "correct_letter_score": [_cls],
    "mutated_labels": [_labels],
    "head_label_logits": [_label_logits],
    "compress": [_compress, lambda v, k: v @ torch.linalg.svd(v).Vh[:k].T @ torch.linalg.svd(v).Vh[:k]],
    "swapped_positions": [_swap],
    "logits_at_positions": [_at_positions],
    "letter_peak": [lambda p: p.max(-1).values - p.mean(-1), lambda p: p.amax(dim=2) - p.sum(2) / p.shape[2]],
    "train_test_split": [_split],
    "fourier_basis": [_basis],
    "key_frequencies": [_key_freqs],
    "restricted_logits": [_restricted],
    "excluded_logits": [_excluded],
    "grokking_phases": [_phases],
    "cos_fit": [_cos_fit],
    "toy_forward": [_toy_fwd],
    "toy_loss": [_toy_loss],
    "superposition_measure": [_superposition],
    "neuron_alignment": [lambda W: (W / W.norm(dim=1, keepdim=True)).abs().max(dim=1).values],
    "sae_forward": [_sae_fwd],
    "sae_loss": [_sae_loss],
    "sae_training_step": [_sae_step],
    "feature_recovery": [_recovery],
    "clamp_latent": [_clamp_latent],
    "value_weighted_pattern": [_vw],
    "ablation_verdicts": [_verdicts],
    "removal_effect": [_removal],
    "bias_share": [_bias_share],
    "favourite_token_ov": [_favourite, lambda d: _favourite(d, "identity") + 5 * torch.ones(d, d) * (torch.arange(d) == 1)],
    "scrubbed_loss": [_scrub],
    "subspace_patch": [_subspace, lambda hc, hx, v: hc - ((hc - hx) @ (v / v.norm()))[:, None] * (v / v.norm())],
    "variation_split": [_var_split, lambda h, v, W: torch.stack([(h @ p).std() for p in _unit_parts(v, W)])],
    "mean_difference": [_mean_diff],
    "ablation_hooks": [_ablation],
    "addition_hook": [_addition],
    "random_control": [_random_control],
    "direction_layer_sweep": [_direction_sweep],
    "steering_effects": [_steering],
    "interleave": [_interleave],
    "least_squares_predictions": [lambda xs, ys: _per_k(xs, ys, _min_norm)],
    "ridge_predictions": [lambda xs, ys, lam: _per_k(xs, ys, _ridge(lam))],
    "nearest_neighbour_predictions": [_knn],
    "error_curve": [lambda p, y, d: ((p - y) ** 2).sum(0) / (len(y) * d)],
    "gd_predictions": [_gd],
    "probe_r2": [_probe],
    "sweep_curves": [_sweep13],
}


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_right_answers_pass(name, capsys):
    for fn in RIGHT[name] + [REFERENCES.get(name, lambda t, m: m(t))]:
        run_check(name, fn)
    assert f"✓ {name}: correct on" in capsys.readouterr().out


# ---- wrong answers: (what the learner did, their function, what the check must say) -----------------------

WRONG = {
    "embed": [
        ("transposed output", lambda t, W: W[t].transpose(0, 1), r"\[pos, batch, d_model\]"),
        ("reshaped to [pos, batch, d_model]", lambda t, W: W[t].reshape(t.shape[1], t.shape[0], -1),
         r"got \(5, 2, 7\): the same sizes in another order"),
        ("one-hot vectors", lambda t, W: F.one_hot(t, W.shape[0]).float(), "one-hot"),
        ("looked up W_E.T", lambda t, W: W.T[t], r"IndexError|W_E\.T"),
        ("columns of W_E", lambda t, W: W[:, t], "IndexError"),
        ("first sequence only", lambda t, W: W[t[0]], "only the first sequence"),
        ("scaled by sqrt(d_model)", lambda t, W: W[t] * W.shape[1] ** 0.5, r"right shape, wrong values: \d+ of"),
    ],
    "pos_embed": [
        ("token ids", lambda t, W: W[t], "indexed W_pos with the token ids"),
        ("no batch axis", lambda t, W: W[: t.shape[1]], "forgot the batch axis"),
        ("all rows", lambda t, W: W.expand(t.shape[0], -1, -1), "all n_ctx rows"),
        ("rows by batch size", lambda t, W: W[: t.shape[0]].expand(t.shape[0], -1, -1), "first `batch` rows"),
        ("off by one", lambda t, W: W[1: t.shape[1] + 1].expand(t.shape[0], -1, -1), "wrong values|axis 1 .pos."),
    ],
    "attention_pattern": [
        ("no mask", lambda q, k: _scores(q, k).softmax(-1), "future positions"),
        ("no scale", lambda q, k: (q @ k.transpose(-2, -1)).masked_fill(_future(q), float("-inf")).softmax(-1),
         "not divided by sqrt"),
        ("scaled by d_head", lambda q, k: (_scores(q, k) / q.shape[-1] ** 0.5).masked_fill(_future(q), float("-inf")).softmax(-1),
         "divided the scores by d_head"),
        ("softmax over queries", lambda q, k: _scores(q, k).masked_fill(_future(q), float("-inf")).softmax(-2),
         "softmax over the last axis"),
        ("masked after softmax", lambda q, k: _scores(q, k).softmax(-1).masked_fill(_future(q), 0.0), "masked after the softmax"),
        ("masked with 0", lambda q, k: _scores(q, k).masked_fill(_future(q), 0.0).softmax(-1), "set the masked scores to 0"),
        ("transposed", lambda q, k: _scores(q, k).masked_fill(_future(q), float("-inf")).softmax(-1).transpose(-1, -2),
         "transposed"),
        ("masked the diagonal", lambda q, k: _scores(q, k).masked_fill(_future(q, 0), float("-inf")).softmax(-1),
         "masked the diagonal too"),
        ("mask of a fixed size", lambda q, k: _scores(q, k).masked_fill(torch.triu(torch.ones(6, 6, dtype=torch.bool), 1),
                                                                          float("-inf")).softmax(-1), "raised RuntimeError"),
    ],
    "multi_head_attention": [
        ("no b_O", lambda *a: _mha(*a, bias=False), "left out b_O"),
        ("averaged heads", lambda *a: _mha(*a, reduce="mean"), "averaged the heads"),
        ("head axis kept", lambda *a: _mha(*a, reduce=None), "still has a head axis"),
        ("no mask", lambda *a: _mha(*a, mask=False), "see the future"),
        ("no b_Q, b_K, b_V", lambda *a: _mha(*a, qkv_bias=False), "left out the biases b_Q, b_K and b_V"),
        ("diagonal masked: NaN", lambda x, *w: _mha(x, *w) * reference.attention_pattern(x[:, None], x[:, None]).diagonal(
            offset=1, dim1=-2, dim2=-1).sum() / 0, r"NaN|infinite"),
    ],
    "unembed": [
        ("no bias", lambda r, W_U, b_U: r @ W_U, "left out the bias"),
        ("softmax", lambda r, W_U, b_U: (r @ W_U + b_U).softmax(-1), "softmax"),
        ("log_softmax", lambda r, W_U, b_U: (r @ W_U + b_U).log_softmax(-1), "log_softmax"),
        ("twice the bias", lambda r, W_U, b_U: r @ W_U + 2 * b_U, "wrong values"),
        ("W_U.T", lambda r, W_U, b_U: r @ W_U.T + b_U, r"W_U\.T|raised RuntimeError"),
    ],
    "forward": [
        ("no positional embedding", lambda t, m: _forward(t, m, pos=False), "positional embedding"),
        ("replaced the residual stream", lambda t, m: _forward(t, m, residual=False), "adding to it"),
        ("return inside the loop", lambda t, m: _forward(t, m, blocks=lambda m: m.blocks[:1]), "only the first block"),
        ("two blocks hard-coded", lambda t, m: _forward(t, m, blocks=lambda m: m.blocks[:2]), "wrong values"),
        ("no b_U", lambda t, m: _forward(t, m, b_U=False), "left out the unembedding's bias"),
        ("residual stream returned", lambda t, m: _forward(t, m, unembed=False), "returned the residual stream"),
        ("left a hook", _forward_leaving_a_hook, "left a hook on the model"),
        ("changed the weights", _forward_editing_weights, r"changed the model's weights \(unembed.b_U\)"),
    ],
    "train_loop": [
        ("no zero_grad", lambda m, b, lr: _loop(m, b, lr, zero="never"), "never zeroed the gradients"),
        ("zero_grad between backward and step", lambda m, b, lr: _loop(m, b, lr, zero="between"), "weights never changed"),
        ("no optimizer.step", lambda m, b, lr: _loop(m, b, lr, step=False), "weights never changed"),
        ("targets not shifted", lambda m, b, lr: _loop(m, b, lr, shift="none"), "that same position"),
        ("a new optimizer every step", lambda m, b, lr: _loop(m, b, lr, once=False), "new optimizer at every step"),
        ("SGD", lambda m, b, lr: _loop(m, b, lr, opt=torch.optim.SGD), "plain gradient descent"),
        ("trained a copy", lambda m, b, lr: _loop(m, b, lr, copy=True), "not trained as they say"),
        ("an extra step after the loop", lambda m, b, lr: _loop(m, b, lr, extra_step=True), "no extra step"),
        ("the loss after the step", lambda m, b, lr: _loop(m, b, lr, after=True), "measured after each step"),
    ],
    "sample": [
        ("from the first position", lambda *a: _sampler(*a, last=0), "logits at position 0"),
        ("not appended", lambda *a: _sampler(*a, grow=False), "from the prompt alone"),
        ("temperature multiplied", lambda *a: _sampler(*a, multiply=True), "multiplied the logits by the temperature"),
        ("generator ignored", lambda *a: _sampler(*a, use_generator=False), "ignored `generator`"),
        ("softmax over the batch", lambda *a: _sampler(*a, axis=0), "over the batch"),
        ("only the new tokens", lambda *a: _sampler(*a, only_new=True), r"expected shape \(3, 10\) \[batch, pos\], got \(3, 6\)"),
        ("float tokens", lambda *a: _sampler(*a, floats=True), "the answer is integers"),
        ("no greedy branch", lambda *a: _sampler(*a, greedy=False), "temperature 0 means greedy"),
    ],
    "record_patterns": [
        ("the scores", lambda m, t: _recorder(m, t, names="blocks.{}.attn.hook_attn_scores"), "attention scores"),
        ("layer 0 every time", lambda m, t: _recorder(m, t, names="blocks.0.attn.hook_pattern"), r"axis 0 \(layer\) has 1 entry"),
        ("late-bound layer", lambda m, t: _recorder(m, t, late_binding=True), r"axis 0 \(layer\) has 1 entry"),
        ("left the hooks", lambda m, t: _recorder(m, t, leave_hook=True), "left a hook on the model"),
        ("stacked on the batch axis", lambda m, t: _recorder(m, t, stack_dim=1), "the same sizes in another order"),
    ],
    "logits_with_positions": [
        ("no return", lambda m, t, p: _positions(m, t, p, ret=False), "the model's own"),
        ("added to the old", lambda m, t, p: _positions(m, t, p, add=True), "added the new positional embedding"),
        ("token embedding", lambda m, t, p: _positions(m, t, p, where="hook_embed"), r"token embedding \(hook_embed\)"),
        ("rows by token id", lambda m, t, p: _positions(m, t, p, rows="tokens"), "indexed W_pos with the token ids"),
        ("written in place", lambda m, t, p: _positions(m, t, p, in_place=True), "raised RuntimeError"),
    ],
    "per_token_loss": [
        ("same position", lambda l, t: -l.log_softmax(-1).gather(-1, t[..., None])[..., 0][:, 1:], "same position"),
        ("positive log-prob", lambda l, t: l.log_softmax(-1)[:, :-1].gather(-1, t[:, 1:, None])[..., 0], "MINUS"),
        ("probability", lambda l, t: -l.softmax(-1)[:, :-1].gather(-1, t[:, 1:, None])[..., 0], "probability, not its log"),
        ("wrong axis", lambda l, t: -l.log_softmax(1)[:, :-1].gather(-1, t[:, 1:, None])[..., 0], "wrong axis"),
        ("shifted the wrong way", lambda l, t: -l[:, 1:].log_softmax(-1).gather(-1, t[:, :-1, None])[..., 0],
         "shifted the wrong way"),
        ("mean loss", lambda l, t: F.cross_entropy(l[:, :-1].transpose(1, 2), t[:, 1:]), "averaged the losses"),
        ("flattened", lambda l, t: F.cross_entropy(l[:, :-1].reshape(-1, l.shape[-1]), t[:, 1:].reshape(-1), reduction="none"),
         r"expected shape \(2, 5\) \[batch, pos\], got \(10,\): the same number of entries, arranged differently"),
        ("kept gather's last axis", lambda l, t: -l[:, :-1].log_softmax(-1).gather(-1, t[:, 1:, None]),
         r"got \(2, 5, 1\): an extra axis of size 1"),
        ("log of the logits: NaN", lambda l, t: -l[:, :-1].log().gather(-1, t[:, 1:, None])[..., 0], r"NaN"),
    ],
    "icl_score": [
        ("sign flipped", lambda loss, e, l: loss[..., e].mean() - loss[..., l].mean(), "sign is flipped"),
        ("summed", lambda loss, e, l: loss[..., l].sum() - loss[..., e].sum(), "summed"),
        ("ratio", lambda loss, e, l: loss[..., l].mean() / loss[..., e].mean(), "you divided"),
        ("one per sequence", lambda loss, e, l: loss[..., l].mean(-1) - loss[..., e].mean(-1), "one score per sequence"),
        ("a Python float", lambda loss, e, l: (loss[..., l].mean() - loss[..., e].mean()).item(), "got a Python float"),
        ("sliced the second axis", lambda loss, e, l: loss[:, l].mean() - loss[:, e].mean(), r"positions are the LAST axis"),
    ],
    "loss_on_copies": [
        ("mask not shifted", lambda loss, c: torch.stack([loss[c[:, :-1]].mean(), loss[~c[:, :-1]].mean()]),
         "lined the mask up with the wrong tokens"),
        ("other first", lambda loss, c: torch.stack([loss[~c[:, 1:]].mean(), loss[c[:, 1:]].mean()]), "wrong way round"),
        ("mean of sequence means", lambda loss, c: torch.stack([((loss * m).sum(1) / m.sum(1)).mean()
                                                                for m in (c[:, 1:], ~c[:, 1:])]), "averaged each sequence first"),
        ("mean of loss * mask", lambda loss, c: torch.stack([(loss * c[:, 1:]).mean(), (loss * ~c[:, 1:]).mean()]),
         "divided by the number of ALL predictions"),
        ("against all tokens", lambda loss, c: torch.stack([loss[c[:, 1:]].mean(), loss.mean()]), "NOT copied"),
        ("a tuple of floats", lambda loss, c: (loss[c[:, 1:]].mean().item(), loss[~c[:, 1:]].mean().item()),
         "got a tuple"),
        ("the mask's last column dropped", lambda loss, c: torch.stack([loss[:, :-1][c[:, 1:-1]].mean(),
                                                                         loss[~c[:, 1:]].mean()]),
         r"right shape, wrong values: 1 of 2 entries differ.*copied_or_other 0"),
    ],
    "prev_and_induction_scores": [
        ("swapped", lambda m, t, p: _prev_and_induction(m, t, p, order=(1, 0)), "wrong way round"),
        ("duplicate-token offset", lambda m, t, p: _prev_and_induction(m, t, p, dup=True), "duplicate-token score"),
        ("[layer, score, head]", lambda m, t, p: _prev_and_induction(m, t, p).transpose(0, 1),
         "stacked along the wrong axis"),
        ("two layers hard-coded", lambda m, t, p: _prev_and_induction(m, t, p, layers=[0, 1]),
         r"expected shape \(2, 3, 3\) \[score, layer, head\], got \(2, 2, 3\): axis 1 \(layer\) has 2"),
        ("left a hook", lambda m, t, p: _prev_and_induction(m, t, p, leave_hook=True), "left a hook on the model"),
        ("induction from the first layer only", lambda m, t, p: torch.stack([_prev_and_induction(m, t, p)[0],
                                                                              _prev_and_induction(m, t, p)[1, :1].expand(
                                                                                  m.cfg.n_layers, -1)]),
         r"Wrong only at score 1; layer 1, 2"),
    ],
    "attention_by_offset": [
        ("above the diagonal", lambda p: _by_offset(p, above=True), "ABOVE the main one"),
        ("divided by pos", lambda p: _by_offset(p, mean=False), "number of positions"),
        ("kept the batch", lambda p: _by_offset(p, keep_batch=True), "kept the batch axis"),
        ("attention per key", lambda p: p.mean(-2).mean(0), "each KEY POSITION"),
        ("offsets reversed", lambda p: _by_offset(p).flip(-1), "run backwards"),
        ("offset 0 left out", lambda p: _by_offset(p)[:, 1:], r"started at offset 1"),
        ("last offset left out", lambda p: torch.stack([p.diagonal(-d, -2, -1).mean((0, -1)) for d in range(p.shape[-1] - 1)], -1),
         r"left out the last offset"),
        ("offsets past the end", lambda p: torch.stack([p.diagonal(-d, -2, -1).mean((0, -1)) if d < p.shape[-1]
                                                        else p.new_zeros(p.shape[1]) for d in range(p.shape[-1] + 1)], -1),
         r"axis 1 \(offset\) has \d+ entries, expected"),
    ],
    "window_shares": [
        ("transposed", lambda s, v, w: _window_shares(s, v, w).T, "windows run backwards"),
        ("not divided", lambda s, v, w: _window_shares(s, v, w, loop=True, norm="none"), "did not divide by the total"),
        ("divided by the range", lambda s, v, w: _window_shares(s, v, w, loop=True, norm="range"), "divided by the range"),
        ("width in checkpoints", lambda s, v, w: _window_shares(s, v, w, loop=True, checkpoints=True), "in checkpoints"),
        ("strict width", lambda s, v, w: _window_shares(s, v, w, loop=True, strict=True), r"<="),
        ("both directions", lambda s, v, w: _window_shares(s, v, w, loop=True, both_ways=True), "end before they start"),
        ("absolute change", lambda s, v, w: _window_shares(s, v, w).abs(), "keep its sign"),
        ("start minus end", lambda s, v, w: -_window_shares(s, v, w), "wrong sign"),
        ("float64 steps", lambda s, v, w: _window_shares(s.double(), v.double(), w), "expected dtype torch.float32"),
        ("no width", lambda s, v, w: _window_shares(s, v, float("inf")), "however long"),
        ("percentages", lambda s, v, w: 100 * _window_shares(s, v, w), "percentages"),
        ("NaN for windows not allowed", lambda s, v, w: _window_shares(s, v, w).masked_fill(
            ~(((s[None] - s[:, None]) > 0) & ((s[None] - s[:, None]) <= w)), float("nan")), r"NaN in \d+ of .* gets a share of 0"),
    ],
    "copy_loss_curves": [
        ("the dict's order", lambda h, t, c: _copy_curves(h, t, c, order="dict"), "order of the dict"),
        ("last step first", lambda h, t, c: _copy_curves(h, t, c, order="reversed"), "from the last step to the first"),
        ("transposed", lambda h, t, c: _copy_curves(h, t, c).T, r"\[2, n_checkpoints\]"),
        ("columns swapped", lambda h, t, c: _copy_curves(h, t, c, swap=True), "wrong way round"),
        ("the final model every time", lambda h, t, c: _copy_curves(h, t, c, same_model=True), "each checkpoint's own model"),
        ("one number per checkpoint", lambda h, t, c: _copy_curves(h, t, c).mean(1), "averaged the two losses"),
        ("float64", lambda h, t, c: _copy_curves(h, t, c).double(), "expected dtype torch.float32"),
    ],
    "formation_steps": [
        ("first crossing", lambda s, x, t: _formation(s, x, t, stay=False), "STAYS at or above"),
        ("index, not step", lambda s, x, t: _formation(s, x, t, index=True), "index, not its training step"),
        ("never formed: step 0", lambda s, x, t: _formation(s, x, t, never="zero"), "never stays above the threshold got a step"),
        ("never formed: last step", lambda s, x, t: _formation(s, x, t, never="last"), "got the last step"),
        ("never formed: -1", lambda s, x, t: _formation(s, x, t, never="-1"), "got -1"),
        ("strictly above", lambda s, x, t: _formation(s, x, t, strict=True), "at or above"),
        ("int steps", lambda s, x, t: _formation(s, x, t).long(), "expected dtype torch.float32"),
    ],
    "prev_token_score": [
        ("next token", lambda p: _diag(p, 1), "NEXT"),
        ("the token itself", lambda p: _diag(p, 0), "token itself"),
        ("averaged heads", lambda p: _diag(p, -1).mean(), "one score per head"),
        ("two back", lambda p: _diag(p, -2), "offset -2"),
        ("kept the batch", lambda p: p.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1), "kept the batch axis"),
        ("summed positions", lambda p: p.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1).mean(0), "summed over the positions"),
    ],
    "induction_score": [
        ("duplicate-token offset", lambda p, period: _diag(p, -period), "duplicate-token score"),
        ("kept the first entry", lambda p, period: _diag(p, -(period - 1)), "drop the first entry"),
        ("averaged heads", lambda p, period: _diag(p, -(period - 1), skip=1).mean(), "one score per head"),
        ("hard-coded period", lambda p, period: _diag(p, -(p.shape[-1] // 2 - 1), skip=1), "half the sequence length"),
        ("offset -(period + 1)", lambda p, period: _diag(p, -(period + 1)), r"offset -\(period \+ 1\)"),
    ],
    "duplicate_token_score": [
        ("induction offset", lambda p, period: _diag(p, -(period - 1), skip=1), "that is induction"),
        ("averaged heads", lambda p, period: _diag(p, -period).mean(), "one score per head"),
        ("previous token", lambda p, period: _diag(p, -1), "previous-token score"),
        ("hard-coded period", lambda p, period: _diag(p, -(p.shape[-1] // 2)), "half the sequence length"),
        ("above the diagonal", lambda p, period: _diag(p, period), r"offset \+period"),
    ],
    "composition_score": [
        ("not normalised", lambda A, B: (A @ B).norm(), "did not normalise"),
        ("wrong order", lambda A, B: (B @ A).norm() / (A.norm() * B.norm()), r"wrong order|raised RuntimeError"),
        ("squared norms", lambda A, B: (A @ B).norm() / (A.norm() ** 2 * B.norm() ** 2), "squared norms"),
        ("added norms", lambda A, B: (A @ B).norm() / (A.norm() + B.norm()), "added the norms"),
        ("a Python float", lambda A, B: float((A @ B).norm() / (A.norm() * B.norm())), "got a Python float"),
    ],
    "qk_circuit": [
        ("no scale", lambda *a: _qk(*a, scale="none"), r"did not divide by sqrt\(d_head\)"),
        ("divided by d_head", lambda *a: _qk(*a, scale="d_head"), r"divided by d_head"),
        ("divided by sqrt(d_model)", lambda *a: _qk(*a, scale="sqrt d_model"), r"divided by sqrt\(d_model\)"),
        ("keys as rows", lambda *a: _qk(*a, keys_first=True), r"transposed|expected shape \(5, 9\)"),
        ("W_Q and W_K swapped", lambda Xq, Xk, W_Q, W_K: _qk(Xq, Xk, W_K, W_Q), "swapped W_Q and W_K"),
        ("softmax", lambda *a: _qk(*a).softmax(-1), "applied a softmax"),
        ("queries on both sides", lambda Xq, Xk, W_Q, W_K: _qk(Xq, Xq, W_Q, W_K), r"X_query on the key side|expected shape \(5, 9\)"),
        ("causal mask", lambda *a: _qk(*a).masked_fill(torch.ones_like(_qk(*a), dtype=torch.bool).triu(1), float("-inf")),
         "masked the future"),
    ],
    "ov_eigenvalue_score": [
        ("singular values", lambda A, B: _eig_score(A, B, how="svd"), "either you used singular values"),
        ("abs on top", lambda A, B: _eig_score(A, B, how="abs on top"), "or you took absolute values in the numerator"),
        ("counted positive", lambda A, B: _eig_score(A, B, how="count positive"), "counted the positive eigenvalues"),
        ("|real parts|", lambda A, B: _eig_score(A, B, how="real parts"), r"sum of \|real parts\|"),
        ("complex answer", lambda A, B: _eig_score(A, B, how="complex"), r"got torch.complex64: complex numbers"),
        ("diagonal", lambda A, B: (A @ B).diagonal(dim1=-2, dim2=-1).sum(-1) / (A @ B).diagonal(dim1=-2, dim2=-1).abs().sum(-1),
         "diagonal entries"),
    ],
    "full_ov_top1_accuracy": [
        ("argmax down the columns", lambda *w: _top1(*w, axis=-2), "down each column"),
        ("absolute value", lambda *w: _top1(*w, absolute=True), "absolute value"),
        ("a count", lambda *w: _top1(*w, count=True), "counted the tokens"),
        ("a percentage", lambda *w: 100 * _top1(*w), "percentage"),
        ("diagonal above the row mean", lambda E, V, O, U: ((E @ V @ O @ U).diagonal(dim1=-2, dim2=-1)
                                                            > (E @ V @ O @ U).mean(-1)).float().mean(-1), "row's mean"),
        ("one head only", lambda E, V, O, U: _top1(E, V[0], O[0], U), r"expected shape"),
        ("bool answer", lambda E, V, O, U: _top1(E, V, O, U) > 0.5, r"expected dtype torch.float32, got torch.bool"),
    ],
    "composition_excess": [
        ("no baseline", lambda *a: _excess(*a, baseline="none"), "did not subtract the baseline"),
        ("ratio", lambda *a: _excess(*a, baseline="ratio"), "divided by the baseline"),
        ("matched random pairs", lambda *a: _excess(*a, baseline="matched"), "only with random_readers"),
        ("reader first", lambda *a: _excess(*a, order="reader first"), r"wrong order|raised RuntimeError"),
        ("readers as rows", lambda *a: _excess(*a, rows="reader"), r"transposed|the same sizes in another order"),
        ("centred the table", lambda w, r, rw, rr: _excess(w, r, rw, rr, baseline="none")
         - _excess(w, r, rw, rr, baseline="none").mean(), "mean of the real scores"),
    ],
    "key_scores_by_source": [
        ("no scale", lambda *a: _by_source(*a, scale=False), r"did not divide by sqrt\(d_head\)"),
        ("keys as rows", lambda *a: _by_source(*a, keys_first=True), r"\[key_pos, query_pos\]"),
        ("summed components", lambda *a: _by_source(*a, summed=True), "summed over the components"),
        ("softmax per component", lambda *a: _by_source(*a).softmax(-1), "softmax is not linear"),
        ("masked", lambda *a: _by_source(*a).masked_fill(torch.ones(a[0].shape[1], a[0].shape[1]).triu(1).bool(),
                                                         float("-inf")), "masked the future"),
        ("divided by sqrt(d_model)", lambda q, c, W_K: _by_source(q, c, W_K, scale=False) / W_K.shape[0] ** 0.5,
         r"divided by sqrt\(d_model\)"),
    ],
    "repetition_rate": [
        ("later occurrences too", lambda t, n, s: _repetition(t, n, s, later_too=True), "later too"),
        ("compared with itself", lambda t, n, s: _repetition(t, n, s, self_too=True), "compare each n-gram with itself"),
        ("n-grams starting at start", lambda t, n, s: _repetition(t, n, s, starting=True), "START at `start`"),
        ("prompt only", lambda t, n, s: _repetition(t, n, s, prompt_only=True), "in the prompt only"),
        ("whole sequence", lambda t, n, s: _repetition(t, n, s, whole=True), "whole sequence, prompt included"),
        ("counts", lambda t, n, s: _repetition(t, n, s, counts=True), "returned counts"),
        ("no overlaps", lambda t, n, s: _repetition(t, n, s, non_overlapping=True), "overlapping earlier occurrence"),
        ("single tokens", lambda t, n, s: _repetition(t, 1, s), "compared single tokens"),
        ("batch mean", lambda t, n, s: _repetition(t, n, s, batch_mean=True), "averaged over the batch"),
    ],
    "ablate_head": [
        ("in place", lambda *a: _ablate(*a, where="in place"), "in place"),
        ("every head", lambda *a: _ablate(*a, where="every"), "every head"),
        ("added", lambda *a: _ablate(*a, mode="add"), "REPLACES"),
        ("zeroed", lambda *a: _ablate(*a, mode="zero"), "whatever the replacement"),
        ("position axis", lambda *a: _ablate(*a, where="pos"), r"position axis|raised RuntimeError"),
    ],
    "keys_without": [
        ("in place", lambda *a: _keys(*a, in_place=True), "in place"),
        ("added", lambda *a: _keys(*a, sign=1), "subtract"),
        ("every head", lambda *a: _keys(*a, every=True), "every head"),
        ("zeroed", lambda *a: _keys(*a, zero=True), "zeroed the head's keys"),
        ("only that head", lambda *a: _keys(*a, only=True), "returned only the head's keys"),
    ],
    "ablated_loss": [
        ("zero whatever the method", lambda m, t, heads, method, r: _ablated(m, t, heads, "zero", r), "you zero-ablated although"),
        ("replacement from the tokens", lambda *a: _ablated(*a, source="tokens"), "from `tokens` itself"),
        ("mean over batch and positions", lambda *a: _ablated(*a, reduce=(0, 1)), "over the positions too"),
        ("mean over positions", lambda *a: _ablated(*a, reduce=(1,)), "over the positions, not the batch"),
        ("late binding in a loop", lambda *a: _ablated(*a, late_binding=True),
         r"only one head per layer was ablated.*def hook\(z, hook, head=head"),
        ("hooks in a dict by name", lambda m, t, heads, method, r: _ablated(m, t, list(dict(heads).items()), method, r),
         "only one head per layer was ablated"),
        ("hook returns nothing", lambda *a: _ablated(*a, hooked=False), "your loss is the clean loss"),
        ("left the hooks on", lambda *a: _ablated(*a, leave_hook=True), r"left a hook on the model \(at blocks\.1\.attn\.hook_z"),
        ("mean loss", lambda *a: _ablated(*a).mean(), r"expected shape \(3, 6\) \[batch, pos\], got \(\): 2 axes missing"),
        ("hooks only on the course model's names", lambda m, *a: _ablated(m, *a) if isinstance(m, Transformer)
         else F.cross_entropy(m(a[0])[:, :-1].transpose(1, 2), a[0][:, 1:], reduction="none"), "clean loss"),
    ],
    "ablation_effects": [
        ("no clean loss subtracted", lambda *a: _effects(*a, subtract=False), "MINUS the clean loss"),
        ("every position", lambda *a: _effects(*a, every=True), "over every position"),
        ("summed", lambda *a: _effects(*a, reduce="sum"), "you summed the losses"),
        ("sign flipped", lambda *a: -_effects(*a), "sign is flipped"),
        ("zero whatever the method", lambda m, t, p, method, r: _effects(m, t, p, "zero", r), "you zero-ablated every head"),
        ("transposed", lambda *a: _effects(*a).T, r"expected shape \(3, 4\) \[layer, head\], got \(4, 3\): the same sizes"),
    ],
    "combination_costs": [
        ("bits reversed", lambda *a: _costs(*a, order="reversed"), "bits run the other way"),
        ("sum of singles", lambda *a: _costs(*a, measure=False), "added up the single heads' costs"),
        ("hooks in a dict by name", lambda *a: _costs(*a, hooks_by_name=True), "only one head per layer"),
        ("itertools order", lambda *a: _costs(*a, order="combinations"), "order of itertools.combinations"),
        ("zero whatever the method", lambda m, t, h, p, method, r: _costs(m, t, h, p, "zero", r), "you zero-ablated although"),
        ("no empty subset", lambda *a: _costs(*a)[1:], r"expected shape \(8,\) \[subset\], got \(7,\)"),
    ],
    "pattern_preserving_loss": [
        ("patterns of the ablated run", lambda *a: _preserving(*a, freeze=False), "plain ablation's"),
        ("froze but did not ablate", lambda *a: _preserving(*a, ablate=False), "did not ablate the heads"),
        ("only the next layer", lambda *a: _preserving(*a, layers="next"), "only the next layer's patterns"),
        ("patterns from the reference tokens", lambda *a: _preserving(*a, patterns_from="reference"),
         "patterns of the run on `reference_tokens`"),
        ("left the hooks on", lambda *a: _preserving(*a, leave_hook=True), r"left a hook on the model \(at blocks\.0\.attn\.hook_z"),
    ],
    "clamp_head_pattern": [
        ("every head", lambda *a: _clamp(*a, where="every"), "clamped every head"),
        ("added", lambda *a: _clamp(*a, mode="add"), "REPLACES"),
        ("cut from the end", lambda *a: _clamp(*a, cut="end"), r"target\[-n:, -n:\]"),
        ("batch axis", lambda *a: _clamp(*a, where="batch"), "the head axis is the second"),
        ("transposed", lambda *a: _clamp(*a, transpose=True), "transposed"),
        ("not cut", lambda *a: _clamp(*a, cut="none"), r"your function raised RuntimeError"),
    ],
    "perfect_prev_token_pattern": [
        ("next token", lambda n: torch.diag(torch.ones(n - 1), diagonal=1), "NEXT token"),
        ("identity", lambda n: torch.eye(n), "identity"),
        ("row 0 empty", lambda n: torch.diag(torch.ones(n - 1), diagonal=-1), "row 0 is all zeros"),
        ("transposed", lambda n: (torch.diag(torch.ones(n - 1), diagonal=-1) + torch.eye(n) * (torch.arange(n) == 0)).T,
         "transposed"),
        ("uniform over the past", lambda n: torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None], "uniform attention"),
        ("an integer tensor", lambda n: torch.diag(torch.ones(n - 1, dtype=torch.long), -1) + torch.eye(n, dtype=torch.long)
         * (torch.arange(n) == 0), r"expected dtype torch.float32, got torch.int64"),
        ("hard-coded size", lambda n: torch.diag(torch.ones(6), diagonal=-1), r"expected shape \(4, 4\)"),
    ],
    "decompose_resid": [
        ("no positional embedding", lambda c, n: _stack(c, n, pos=False), "positional embedding"),
        ("no MLP outputs", lambda c, n: _stack(c, n, kinds=("attn_out",)), "MLP outputs"),
        ("residual stream after each layer", lambda c, n: _stack(c, n, kinds=("resid_mid", "resid_post")), "hook_resid_post"),
        ("one layer short", lambda c, n: _stack(c, n, layers=n - 1), "stops one layer short"),
        ("two layers hard-coded", lambda c, n: _stack(c, n, layers=2), "stops one layer short"),
        ("edited the cache", _decompose_editing_the_cache, "changed the cache `cache` \\(its entry 'hook_embed'\\)"),
    ],
    "unembed_resid": [
        ("no LayerNorm", lambda r, w, b, W_U, b_U, eps: r @ W_U + b_U, "skipped the final LayerNorm"),
        ("not centred", lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, eps, centre=False) @ W_U + b_U, "subtract the mean"),
        ("no w and b", lambda r, w, b, W_U, b_U, eps: _ln(r, 1, 0, eps) @ W_U + b_U, "weight w and bias b"),
        ("no b_U", lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, eps) @ W_U, "left out b_U"),
        ("unbiased std", lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, eps, std=True) @ W_U + b_U, "unbiased standard deviation"),
        ("eps ignored", lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, 1e-5) @ W_U + b_U, "ignored the eps"),
    ],
    "kl_to_final": [
        ("reversed", lambda l, f: _kl(l, f, reverse=True), r"KL\(lens \|\| final\)"),
        ("summed", lambda l, f: _kl(l, f, reduce="sum"), "summed over positions"),
        ("probabilities", lambda l, f: _kl(l, f, probs=True), "probabilities where"),
        ("cross-entropy", lambda l, f: _kl(l, f, cross_entropy=True), "cross-entropy"),
        ("kept the axes", lambda l, f: _kl(l, f, reduce="none"), "kept the batch and position axes"),
    ],
    "logit_attribution": [
        ("same position", lambda s, W_U, t: _dla(s, W_U, t, shift=0), "same position"),
        ("every logit", lambda s, W_U, t: _dla(s, W_U, t, every_logit=True), "every logit"),
        ("kept the last position", lambda s, W_U, t: _dla(s, W_U, t, keep_last=True), "kept the last position"),
        ("dropped the first position", lambda s, W_U, t: _dla(s, W_U, t, first=True), "dropped the first position"),
        ("summed components", lambda s, W_U, t: _dla(s, W_U, t).sum(0), "summed over the components"),
    ],
    "lens_top_tokens": [
        ("no LayerNorm", lambda m, c, s, p: _top_tokens(m, c, s, p, ln=False), "without the final LayerNorm"),
        ("no embeddings row", lambda m, c, s, p: _top_tokens(m, c, s, p, rows=slice(1, None)), "misses the first row"),
        ("sequence 0", lambda m, c, s, p: _top_tokens(m, c, s, p, seq_fixed=0), "read sequence 0"),
        ("values, not ids", lambda m, c, s, p: _top_tokens(m, c, s, p).float(), r"expected dtype torch.int64"),
        ("transposed", lambda m, c, s, p: _top_tokens(m, c, s, p).T, r"expected shape"),
    ],
    "settle_layer": [
        ("first agreeing row", lambda l: _settle(l, first_match=True), "a later row may disagree again"),
        ("counted agreeing rows", lambda l: _settle(l, count=True), "counted the rows that agree"),
        ("rows from 1", lambda l: _settle(l, offset=1), "counted from 1"),
        ("last disagreeing row", lambda l: _settle(l, offset=-1), "last row that disagrees"),
        ("a float answer", lambda l: _settle(l).float(), r"expected dtype torch.int64"),
    ],
    "head_attribution": [
        ("not centred", lambda m, c, t: _head_dla(m, c, t, centre=False), "did not centre"),
        ("no scale", lambda m, c, t: _head_dla(m, c, t, scale=False), "did not divide by the final LayerNorm's scale"),
        ("own scale", lambda m, c, t: _head_dla(m, c, t, own_scale=True), r"normalised each head's output by its own size"),
        ("no w", lambda m, c, t: _head_dla(m, c, t, w=False), "forgot the final LayerNorm's weight w"),
        ("added b", lambda m, c, t: _head_dla(m, c, t, ln_bias=True), "added the final LayerNorm's bias b"),
        ("same position", lambda m, c, t: _head_dla(m, c, t, shift=0), "same position"),
        ("layer and head swapped", lambda m, c, t: _head_dla(m, c, t).transpose(0, 1), r"expected shape|another order"),
    ],
    "fit_tuned_lens": [
        ("reversed KL", lambda t, m, b, s, lr: _fit(t, m, b, s, lr, reverse=True), r"KL\(lens \|\| final\)"),
        ("no zero_grad", lambda t, m, b, s, lr: _fit(t, m, b, s, lr, zero_grad=False), "never called opt.zero_grad"),
        ("mean over rows", lambda t, m, b, s, lr: _fit(t, m, b, s, lr, mean=True), "averaged the KL over the rows"),
        ("no step", lambda t, m, b, s, lr: _fit(t, m, b, s, lr, step=False), "those of the untrained lens"),
        ("trained a new lens", lambda t, m, b, s, lr: _fit(t, m, b, s, lr, fresh=True), "the lens you were given is untrained"),
        ("trained the model too", lambda t, m, b, s, lr: _fit(t, m, b, s, lr, params=lambda t_, m_: [*t_.parameters(), *m_.parameters()]),
         r"changed the model's weights"),
        ("grad switched off", lambda t, m, b, s, lr: _fit_without_grad(t, m, b, s, lr), r"raised RuntimeError"),
    ],
    "normalized_metric": [
        ("upside down", lambda v, c, x: (c - v) / (c - x), "upside down"),
        ("clean alone", lambda v, c, x: (v - x) / c, "clean value alone"),
        ("no subtraction", lambda v, c, x: v / (c - x), "subtract the corrupted value"),
        ("absolute gap", lambda v, c, x: (v - x) / (c - x).abs(), "absolute value of the gap"),
        ("a Python float", lambda v, c, x: ((v - x) / (c - x)).tolist(), r"got a Python float|got a list"),
        ("0 / 0: NaN", lambda v, c, x: (v - v) / (c - c), r"NaN in \d+ of \d+ entries, the first at index"),
        ("divided by 0: inf", lambda v, c, x: (v - x) / (c - c), r"infinite values"),
    ],
    "correct_logprob": [
        ("own token", lambda l, t, p: _logprob(l, t, p, shift=0), "scored each position's own token"),
        ("raw logits", lambda l, t, p: _logprob(l, t, p, raw=True), "raw logits"),
        ("probabilities", lambda l, t, p: _logprob(l, t, p, probs=True), "averaged probabilities"),
        ("summed", lambda l, t, p: _logprob(l, t, p, reduce="sum"), "summed over the batch"),
        ("every position", lambda l, t, p: _logprob(l, t, slice(None)), "averaged over every position"),
        ("a Python float", lambda l, t, p: _logprob(l, t, p).item(), "got a Python float"),
    ],
    "resid_patching": [
        ("transposed", lambda *a: _resid_map(*a, transpose=True), "transposed"),
        ("resid_post", lambda *a: _resid_map(*a, where="resid_post"), "hook_resid_post"),
        ("a list of lists", lambda *a: _resid_map(*a).tolist(), "got a list"),
        ("one patch only", lambda m, c, cache, metric: _resid_map(m, c, cache, metric)[:, :1],
         r"axis 1 \(pos\) has 1 entry"),
    ],
    "patch_heads": [
        ("dict of hooks", lambda *a: _heads(*a, by_name=True), "only the last head of each layer"),
        ("pattern like z", lambda *a: _heads(*a, pattern_as_z=True), r"head axis is the second, act\[:, head\]"),
        ("every head", lambda *a: _heads(*a, every_head=True), "patched every head of the layer"),
        ("always z", lambda *a: _heads(*a, always_z=True), "outputs z whatever the activation"),
        ("left a hook", lambda m, c, cache, metric, h, a: (m.add_hook(f"blocks.{h[0][0]}.attn.hook_z", lambda x, hook: x),
                                                          _heads(m, c, cache, metric, h, a))[1], "left a hook on the model"),
    ],
    "patch_k_path": [
        ("whole output", lambda *a: _k_path(*a, whole_output=True), "patched the writer's whole output"),
        ("whole keys", lambda *a: _k_path(*a, whole_keys=True), "patched the readers' whole keys"),
        ("sign flipped", lambda *a: _k_path(*a, sign=-1.0), "wrong sign"),
        ("no path", lambda m, c, cache, metric, w, r: metric(m(c)), "returned the corrupted run's metric"),
    ],
    "noised_logprob": [
        ("every position", lambda *a: _noised(*a, every=True), "added noise at every position"),
        ("replaced", lambda *a: _noised(*a, replace=True), "replaced the embeddings by the noise"),
        ("first rows", lambda *a: _noised(*a, first_rows=True), r"noise's first rows"),
        ("after layer 0", lambda *a: _noised(*a, where="blocks.1.hook_resid_pre"), "after layer 0"),
        ("no noise", lambda m, t, n, p, mp: _logprob(m(t), t, mp), "the clean run's"),
        ("left a hook", lambda *a: _noised(*a, leave_hook=True), "left a hook on the model"),
        ("a Python float", lambda *a: _noised(*a).item(), "got a Python float"),
    ],
    "causal_trace": [
        ("every position", lambda *a: _trace(*a, every=True), "added noise at every position"),
        ("restored the noised state", lambda *a: _trace(*a, from_noised=True), "restored the noised run's own state"),
        ("no noise when restoring", lambda *a: _trace(*a, noise_in_restore=False), "forgot the noise in the restoring runs"),
        ("raw log-probabilities", lambda *a: _trace(*a, raw=True), "returned raw log-probabilities"),
        ("transposed", lambda *a: _trace(*a, transpose=True), "transposed"),
        ("noise after the restoration", lambda *a: _trace(*a, noise_where="blocks.0.hook_resid_pre", restore_first=True),
         "noise ran after the restoration"),
        ("left hooks", lambda *a: _trace(*a, leave_hook=True), "left a hook on the model"),
        ("a list", lambda *a: _trace(*a).tolist(), "got a list"),
    ],
    "patch_resid_pre": [
        ("every position", lambda m, c, cache, metric, l, p: _patch(m, c, cache, metric, l, p, index=(slice(None), slice(None))),
         "patched every position"),
        ("resid_post", lambda *a: _patch(*a, where="resid_post"), "hook_resid_mid or hook_resid_post"),
        ("batch axis", lambda m, c, cache, metric, l, p: _patch(m, c, cache, metric, l, p, index=(p,)),
         r"indexed the batch axis|raised IndexError"),
        ("resid_mid", lambda *a: _patch(*a, where="resid_mid"), "hook_resid_mid or hook_resid_post"),
        ("left a hook", lambda *a: _patch(*a, leave_hook=True), "left a hook on the model"),
        ("wrote into the cache", lambda *a: _patch(*a, edit_cache=True), "changed the cache `clean_cache`"),
        ("a Python float", lambda *a: _patch(*a, item=True), "got a Python float"),
    ],
    "mean_head_outputs": [
        ("no W_O", lambda m, t: _mean_outputs(m, t, with_W_O=False), "multiply it by the head's slice of W_O"),
        ("first position", lambda m, t: _mean_outputs(m, t, position=0), "first position"),
        ("summed prompts", lambda m, t: _mean_outputs(m, t, reduce="sum"), "summed over the prompts"),
        ("with b_O", lambda m, t: _mean_outputs(m, t, b_O=True), "b_O"),
        ("kept prompts", lambda m, t: _mean_outputs(m, t, reduce="none"), "kept the prompt axis"),
        ("summed heads", lambda m, t: _mean_outputs(m, t, sum_heads=True), "summed the heads"),
    ],
    "indirect_effect": [
        ("not the gain", lambda *a: _effect(*a, gain=False), "not the gain"),
        ("every position", lambda *a: _effect(*a, positions=slice(None)), "at every position"),
        ("sign flipped", lambda *a: -_effect(*a), "sign is flipped"),
        ("averaged", lambda *a: _effect(*a).mean(), "one number per prompt"),
        ("log-probability", lambda *a: _effect(*a, log=True), "log-probability"),
        ("first position", lambda *a: _effect(*a, positions=0), "first position"),
    ],
    "logits_with_vector": [
        ("after the block", lambda *a: _with_vector(*a, where="resid_post"), "after the whole block"),
        ("before the block", lambda *a: _with_vector(*a, where="resid_pre"), "before block"),
        ("every position", lambda *a: _with_vector(*a, positions=slice(None)), "at every position"),
        ("not added", lambda m, t, v, layer: m(t)[:, -1], "not added"),
        ("every position's logits", lambda *a: _with_vector(*a, last=False), "logits at every position"),
        ("subtracted", lambda *a: _with_vector(*a, sign=-1), "subtracted the vector"),
        ("left a hook", lambda *a: _with_vector(*a, leave_hook=True), "left a hook on the model"),
        ("at hook_resid_mid", lambda *a: _with_vector(*a, where="resid_mid"), "on a TransformerBridge hook_resid_mid"),
        ("left a hook on a bridge only", lambda m, *a: _with_vector(m, *a, leave_hook=not isinstance(m, Transformer)),
         r"left a hook on the model \(at blocks.1.attn.hook_out, blocks.1.hook_attn_out\)"),
    ],
    "indirect_effects": [
        ("transposed", lambda *a: _effects_table(*a, transpose=True), r"\[head, layer\]"),
        ("summed prompts", lambda *a: _effects_table(*a, reduce="sum"), "summed over the prompts"),
        ("log-probability", lambda *a: _effects_table(*a, log=True), "log-probability"),
        ("not the gain", lambda *a: _effects_table(*a, gain=False), "not the gain"),
        ("every position", lambda *a: _effects_table(*a, positions=slice(None)), "at every position"),
        ("a list", lambda *a: _effects_table(*a, item=True), "expected a torch.Tensor"),
        ("float64", lambda *a: _effects_table(*a).double(), "expected dtype torch.float32"),
        ("left a hook", lambda m, *a: (m.add_hook("blocks.0.attn.hook_z", lambda z, hook: z), _effects_table(m, *a))[1],
         r"left a hook on the model \(at blocks.0.attn.hook_z\)"),
    ],
    "top_heads_vector": [
        ("ranked by |AIE|", lambda m, a, k: _top_vector(m, a, k, key=torch.abs), r"\|AIE\|"),
        ("smallest first", lambda m, a, k: _top_vector(m, a, k, descending=False), "smallest AIE"),
        ("averaged", lambda m, a, k: _top_vector(m, a, k, reduce="mean"), "averaged the heads"),
        ("one head too few", lambda m, a, k: _top_vector(m, a, k - 1), "k - 1 heads"),
        ("left out the top head", lambda m, a, k: _top_vector(m, a, k, skip=1), "left out the top head"),
        ("one head too many", lambda m, a, k: _top_vector(m, a, k + 1), "k \\+ 1 heads"),
        ("every head", lambda m, a, k: m.sum((0, 1)), "every head"),
        ("float64", lambda m, a, k: _top_vector(m, a, k, dtype=torch.float64), "expected dtype torch.float32"),
        ("changed mean_outputs", lambda m, a, k: m.mul_(1).add_(0.5)[0, 0] * 0, "changed its input `mean_outputs`"),
    ],
    "layer_sweep": [
        ("transposed", lambda *a: _sweep(*a).T, r"\[k, layer\]"),
        ("counted", lambda *a: _sweep(*a, count=True), "counted the right answers"),
        ("index as k", lambda *a: _sweep(*a, k_is_index=True), "position i in ks"),
        ("resid_pre", lambda *a: _sweep(*a, where="resid_pre"), "hook_resid_pre"),
        ("resid_post", lambda *a: _sweep(*a, where="resid_post"), "hook_resid_post"),
        ("ranked by |AIE|", lambda *a: _sweep(*a, rank=torch.abs), r"\|AIE\|"),
        ("left a hook", lambda *a: _sweep(*a, leave_hook=True), "left a hook on the model"),
        ("a list", lambda *a: _sweep(*a).tolist(), "expected a torch.Tensor"),
    ],
    "attention_to": [
        ("from the keys to the last", lambda m, t, k: _attention_to(m, t, k, to_last=True), "FROM the keys TO the last"),
        ("first query", lambda m, t, k: _attention_to(m, t, k, query=0), "first position's attention"),
        ("mean over keys", lambda m, t, k: _attention_to(m, t, k, over_keys="mean"), "averaged over the keys"),
        ("summed prompts", lambda m, t, k: _attention_to(m, t, k, reduce="sum"), "summed over the prompts"),
        ("transposed", lambda m, t, k: _attention_to(m, t, k).T, r"\[head, layer\]"),
        ("attention scores", lambda m, t, k: _attention_to(m, t, k, scores=True), r"right shape, wrong values"),
    ],
    "answer_shares": [
        ("transposed", lambda *a: _answer_shares(*a, transpose=True), r"\[task, vector\]"),
        ("counted", lambda *a: _answer_shares(*a, count=True), "counted the prompts"),
        ("every position", lambda *a: _answer_shares(*a, positions=slice(None)), "at every position"),
        ("resid_pre", lambda *a: _answer_shares(*a, where="resid_pre"), "hook_resid_pre"),
        ("all vectors at once", lambda *a: _answer_shares(*a, all_at_once=True), "every vector at once"),
        ("left a hook", lambda *a: _answer_shares(*a, leave_hook=True), "left a hook on the model"),
    ],
    "correct_letter_score": [
        ("the option", lambda p, c: _cls(p, c, key_offset=2), "the correct option's position, not its label"),
        ("first query", lambda p, c: _cls(p, c, query=0), "your scores are all 0: you read the first query row"),
        ("summed", lambda p, c: _cls(p, c, reduce="sum"), "summed over the questions"),
        ("per question", lambda p, c: _cls(p, c, reduce=None), "kept one score per question"),
        ("from the label", lambda p, c: _cls(p, c, transpose=True), "FROM the label TO the last position"),
    ],
    "mutated_labels": [
        ("with replacement", lambda k, s, n, g: _labels(k, s, n, g, replace=True), "the same letter twice"),
        ("random from the first letters", lambda k, s, n, g: _labels(k, s, n, g, pool=n), "that is 'shuffled'"),
        ("global generator", lambda k, s, n, g: _labels(k, s, n, g, use_gen=False), "generator=gen"),
        ("alphabetical", lambda k, s, n, g: _labels(k, s, n, g, sort=True), "alphabetical order|every question got the same labels"),
        ("one order for all", lambda k, s, n, g: _labels(k, 1, n, g).expand(s, -1).clone(), "every question got the same labels"),
        ("floats", lambda k, s, n, g: _labels(k, s, n, g).float(), "expected dtype torch.int64"),
    ],
    "head_label_logits": [
        ("no scale", lambda *a: _label_logits(*a, scale=False), "divide by the final LayerNorm's scale"),
        ("not centred", lambda *a: _label_logits(*a, centre=False), "did not centre"),
        ("all labels", lambda m, t, lab, l, h: _label_logits(m, t, lab[:1].expand_as(lab), l, h), "labels of the first question in every question"),
        ("every token", lambda m, t, lab, l, h: _label_logits(m, t, torch.arange(m.cfg.d_vocab).expand(len(t), -1), l, h),
         r"expected shape \(\d+, \d\) \[batch, option\]"),
    ],
    "compress": [
        ("centred", lambda v, k: _compress(v, k, centre=True), "centred the vectors"),
        ("smallest", lambda v, k: _compress(v, k, last=True), "SMALLEST singular values"),
        ("coordinates", lambda v, k: v @ torch.linalg.svd(v, full_matrices=False).Vh[:k].T, r"coordinates in the k directions"),
        ("k + 1", lambda v, k: _compress(v, k + 1), "k \\+ 1 directions"),
    ],
    "swapped_positions": [
        ("options only", lambda c, o, n: _swap(c, o, n, parts=(0,)), "swapped the options' positions but not their labels"),
        ("labels only", lambda c, o, n: _swap(c, o, n, parts=(1,)), "swapped the labels' positions but not their options"),
        ("label, next option", lambda c, o, n: _swap(c, o, n, parts=(1, 2)), r"your pairs are \(label, next option\)"),
        ("unswapped", lambda c, o, n: torch.arange(2 * n + 3).repeat(len(c), 1), "positions of the unswapped question"),
    ],
    "logits_at_positions": [
        ("added", lambda m, t, p: _at_positions(m, t, p, add=True), "added the moved embedding"),
        ("first row", lambda m, t, p: _at_positions(m, t, p, first_row=True), "first question's positions"),
        ("every position", lambda m, t, p: _at_positions(m, t, p, last=False), "logits at every position"),
        ("moved tokens", lambda m, t, p: m(t.gather(1, p))[:, -1], r"moved the tokens"),
    ],
    "letter_peak": [
        ("max only", lambda p: p.max(-1).values, "largest attention alone"),
        ("max - min", lambda p: p.max(-1).values - p.min(-1).values, "subtracted the smallest"),
        ("argmax", lambda p: p.argmax(-1), "which letter is the peak|expected dtype torch.float32"),
        ("mean of everything", lambda p: p.max(-1).values - p.mean(), "mean over every head and letter"),
    ],
    "train_test_split": [
        ("swapped", lambda p, f, s: _split(p, f, s, swap=True), "you swapped the two"),
        ("truncated", lambda p, f, s: _split(p, f, s, cut=int), r"truncated .* with int\(\)"),
        ("fraction of p", lambda p, f, s: _split(p, f, s, of_p=True), "a fraction of p, not of the p \\* p pairs"),
        ("sorted", lambda p, f, s: _split(p, f, s, sort=True), "you sorted the indices"),
        ("unseeded", lambda p, f, s: _split(p, f, s, seeded=False), "two calls with the same seed gave different splits"),
    ],
    "fourier_basis": [
        ("not normalised", lambda p: _basis(p, norm=None), "do not have unit norm"),
        ("all by sqrt p", lambda p: _basis(p, norm="sqrt p"), r"divided every row by sqrt\(p\)"),
        ("sin first", lambda p: _basis(p, swap=True), "sin and cos are in the other order"),
        ("no 2 pi", lambda p: _basis(p, two_pi=False), "w = 2 pi k / p"),
        ("transposed", lambda p: _basis(p, transpose=True), "transposed"),
    ],
    "key_frequencies": [
        ("zero-based", lambda W, share: _key_freqs(W, share, zero_based=True), "start at 0"),
        ("constant counted", lambda W, share: _key_freqs(W, share, constant=True), "counted the constant row"),
        ("plain norms", lambda W, share: _key_freqs(W, share, plain=True), "not squared norms"),
        ("ascending", lambda W, share: _key_freqs(W, share, ascending=True), "sorted the frequencies by number"),
        ("one short", lambda W, share: _key_freqs(W, share, early=True), "stopped one early"),
    ],
    "restricted_logits": [
        ("no mean", lambda L, k: _restricted(L, k, mean=False), "left out the mean"),
        ("cos only", lambda L, k: _restricted(L, k, cos_only=True), r"kept cos\(w \(a \+ b\)\) only"),
        ("a - b", lambda L, k: _restricted(L, k, minus=True), "a - b, not a \\+ b"),
        ("unnormalised", lambda L, k: _restricted(L, k, unit=False), "waves are not normalised"),
        ("mean over c", lambda L, k: _restricted(L, k, mean_over_c=True), "mean over the answers c"),
    ],
    "excluded_logits": [
        ("the removed part", lambda L, k: _excluded(L, k, removed_part=True), "returned the part you should remove"),
        ("mean removed", lambda L, k: _excluded(L, k, minus_mean=True), "removed the mean over the pairs too"),
        ("cos only", lambda L, k: _excluded(L, k, cos_only=True), r"removed cos\(w \(a \+ b\)\) only"),
    ],
    "grokking_phases": [
        ("from step 0", lambda *a: _phases(*a, ignore_memorised=True), "ignores memorisation"),
        ("indices", lambda *a: _phases(*a, indices=True), "checkpoint indices, not training steps"),
        ("strict", lambda *a: _phases(*a, strict=True), "strict inequalities"),
        ("never = last step", lambda st, *a: _phases(st, *a, never=float(st[-1])), "got the last step"),
        ("never = 0", lambda *a: _phases(*a, never=0.0), "got 0: give it NaN"),
    ],
    "cos_fit": [
        ("with =", lambda L, k: _cos_fit(L, k, with_equals=True), "`=` included"),
        ("a + b + c", lambda L, k: _cos_fit(L, k, plus_c=True), "phase is a \\+ b \\+ c"),
        ("not centred", lambda L, k: _cos_fit(L, k, centre=False), "did not remove each pair's mean over c"),
        ("unexplained", lambda L, k: _cos_fit(L, k, unexplained=True), "share left unexplained"),
    ],
    "toy_forward": [
        ("no output ReLU", lambda W, b, x: _toy_fwd(W, b, x, out_relu=False), "left out the ReLU at the output"),
        ("no bias", lambda W, b, x: _toy_fwd(W, b, x, bias=False), "left out the bias"),
        ("hidden ReLU", lambda W, b, x: _toy_fwd(W, b, x, hidden_relu=True), "ReLU on the hidden layer too"),
        ("bias after ReLU", lambda W, b, x: _toy_fwd(W, b, x, bias_outside=True), "added the bias after the ReLU"),
    ],
    "toy_loss": [
        ("no importance", lambda x, y, i: _toy_loss(x, y, i, weigh=False), "left out the importances"),
        ("mean over features", lambda x, y, i: _toy_loss(x, y, i, over_features="mean"), "averaged over the features"),
        ("sum over batch", lambda x, y, i: _toy_loss(x, y, i, batch="sum"), "summed over the batch"),
        ("one number", lambda x, y, i: _toy_loss(x, y, i).sum(), "one number for all the instances"),
    ],
    "superposition_measure": [
        ("self included", lambda W: _superposition(W, keep_self=True), "kept the term j = i"),
        ("unnormalised", lambda W: _superposition(W, normalise_i=False), r"did not divide by \|\|W_i\|\|"),
        ("cosines", lambda W: _superposition(W, normalise_j=True), "divided by both norms"),
        ("not squared", lambda W: _superposition(W, square=False), "without squaring them"),
        ("W_j normalised", lambda W: _superposition(W, normalise_i=False, normalise_j=True), "normalised W_j instead"),
    ],
    "neuron_alignment": [
        ("signed", lambda W: W.max(dim=1).values / W.norm(dim=1), "largest entry with its sign"),
        ("unnormalised", lambda W: W.abs().max(dim=1).values, r"did not divide by \|\|W_i\|\|"),
        ("L1", lambda W: W.abs().max(dim=1).values / W.abs().sum(dim=1), "sum of absolute values"),
        ("squared", lambda W: (W ** 2).max(dim=1).values / (W ** 2).sum(dim=1), "largest squared entry"),
        ("wrong axis", lambda W: W.abs().max(dim=2).values / W.norm(dim=2), "maximum over the features"),
    ],
    "sae_forward": [
        ("no b_dec in", lambda x, *w: _sae_fwd(x, *w, centre=False), "did not subtract b_dec"),
        ("no ReLU", lambda x, *w: _sae_fwd(x, *w, relu=False), "left out the ReLU"),
        ("no b_dec out", lambda x, *w: _sae_fwd(x, *w, dec_bias=False), "left out b_dec in the reconstruction"),
        ("latents only", lambda x, *w: _sae_fwd(x, *w)[0], "expected a pair"),
    ],
    "sae_loss": [
        ("MSE per entry", lambda *a: _sae_loss(*a, mse_mean=True), "averaged the squared error over d_in"),
        ("no decoder norms", lambda *a: _sae_loss(*a, norms=False), "left out the decoder norms"),
        ("L2", lambda *a: _sae_loss(*a, l2=True), "squared latents"),
        ("batch sum", lambda *a: _sae_loss(*a, batch_sum=True), "summed over the batch"),
    ],
    "sae_training_step": [
        ("no zero_grad", lambda *a: _sae_step(*a, zero=False), "did not zero the gradients"),
        ("no normalising", lambda *a: _sae_step(*a, normalise=False), "did not put the decoder rows back"),
        ("columns", lambda *a: _sae_step(*a, dim=0), "normalised W_dec's columns"),
    ],
    "feature_recovery": [
        ("abs", lambda t, d: _recovery(t, d, use_abs=True), "took the absolute cosine"),
        ("dot products", lambda t, d: _recovery(t, d, norm_true=False, norm_dec=False), "did not normalise"),
        ("true only", lambda t, d: _recovery(t, d, norm_dec=False), "normalised the true directions only"),
        ("mean", lambda t, d: _recovery(t, d, reduce="mean"), "averaged over the decoder rows"),
        ("wrong axis", lambda t, d: (F.normalize(t, dim=-1) @ F.normalize(d, dim=-1).T).max(0).values,
         "maximum over the true features"),
    ],
    "clamp_latent": [
        ("no subtraction", lambda *a: _clamp_latent(*a, subtract=False), "without taking away what the latent already contributes"),
        ("reconstruction", lambda *a: _clamp_latent(*a, keep_error=False), "returned the SAE's reconstruction"),
        ("encoder column", lambda *a: _clamp_latent(*a, direction="enc"), "encoder's column"),
        ("reversed", lambda x, *rest: 2 * x - _clamp_latent(x, *rest), "subtracted the other way round"),
    ],
    "value_weighted_pattern": [
        ("rows not rescaled", lambda p, v, W: _vw(p, v, W, rows=None), "rows do not sum to 1"),
        ("||v||", lambda p, v, W: _vw(p, v, W, by="v"), r"weighted by \|\|v\|\|"),
        ("columns", lambda p, v, W: _vw(p, v, W, rows=False), "normalised each key's column"),
        ("squared", lambda p, v, W: _vw(p, v, W, power=2), "squared norm"),
    ],
    "ablation_verdicts": [
        ("no clean loss", lambda *a: _verdicts(*a, subtract=False), "subtract the clean loss"),
        ("every position", lambda *a: _verdicts(*a, where="all"), "averaged over every position"),
        ("clean - ablated", lambda *a: _verdicts(*a, sign=-1), "sign is reversed"),
        ("resample first", lambda *a: _verdicts(*a, order=("resample", "mean", "zero")), "wrong order"),
    ],
    "removal_effect": [
        ("frozen scale", lambda *a: _removal(*a, frozen=True), "direct logit attribution"),
        ("without - with", lambda *a: _removal(*a, sign=-1), "sign is reversed"),
        ("current token", lambda *a: _removal(*a, shift=0), "logit of the current token"),
        ("log-probs", lambda *a: _removal(*a, log=True), "compared log-probabilities"),
    ],
    "bias_share": [
        ("b_V alone", lambda *a: _bias_share(*a, through_W_O=False), "measured b_V itself"),
        ("norms", lambda *a: _bias_share(*a, squared=False), "divided norms, not squared norms"),
        ("with b_O", lambda *a: _bias_share(*a, with_b_O=True), "you added b_O"),
        ("mean first", lambda *a: _bias_share(*a, mean_first=True), "averaged the output before"),
    ],
    "favourite_token_ov": [
        ("the identity", lambda d: _favourite(d, "identity"), "copies 100% of the tokens"),
        ("-I plus a column", lambda d: _favourite(d, "negative"), "copying score is -"),
        ("random", lambda d: _favourite(d, "random"), "copying score is"),
        ("zeros", lambda d: _favourite(d, "zeros"), "all-zero matrix"),
    ],
    "scrubbed_loss": [
        ("roles swapped", lambda *a: _scrub(*a, roles="swapped"), "kept the named part from the other run"),
        ("values left alone", lambda *a: _scrub(*a, scrub=("q", "k")), "values were not scrubbed"),
        ("scored against the other tokens", lambda *a: _scrub(*a, score_on="other"), "scored the predictions against `other_tokens`"),
        ("no hooks", lambda *a: _scrub(*a, hooks_on=False), "nothing was resampled"),
    ],
    "subspace_patch": [
        ("v not normalised", lambda *a: _subspace(*a, normalise=False), "did not normalise v"),
        ("whole activation", lambda hc, hx, v: hx.clone(), "returned the whole corrupted activation"),
        ("clean part kept", lambda hc, hx, v: hc + (hx @ (v / v.norm()))[:, None] * (v / v.norm()), "without taking away the clean"),
        ("the other way", lambda *a: _subspace(*a, way="corrupted"), "patched the clean component into the corrupted run"),
    ],
    "variation_split": [
        ("swapped", lambda *a: _var_split(*a, order=(1, 0)), "other way round"),
        ("parts not unit", lambda *a: _var_split(*a, unit=False), "did not normalise the parts"),
        ("W W^T v", lambda *a: _var_split(*a, basis="WWT"), "not a projection"),
        ("mean", lambda *a: _var_split(*a, stat="mean"), "measured the mean"),
    ],
    "mean_difference": [
        ("harmless minus refused", lambda *a: _mean_diff(*a, sign=-1), "subtracted the other way round"),
        ("normalised", lambda *a: _mean_diff(*a, norm=True), "normalised the direction"),
        ("every position", lambda *a: _mean_diff(*a, pos=None), "averaged over every position"),
        ("resid_post", lambda *a: _mean_diff(*a, late=True), "one block too late"),
    ],
    "ablation_hooks": [
        ("not unit", lambda m, d: _ablation(m, d, unit=False), "not the unit direction"),
        ("no embeddings", lambda m, d: _ablation(m, d, embeddings=False), "left out the embeddings"),
        ("no MLPs", lambda m, d: _ablation(m, d, mlps=False), "left out the MLPs"),
        ("last position only", lambda m, d: _ablation(m, d, last_only=True), "at the last position only"),
        ("hooks attached, nothing returned", lambda m, d: m.add_hook("hook_embed", _ablation(m, d)[0][1]), "left a hook"),
        ("the direction removed, not projected", lambda m, d: [(n, lambda x, hook: x - d) for n, _ in _ablation(m, d)],
         "right shape, wrong values"),
    ],
    "addition_hook": [
        ("every position", lambda m, v, layer: _addition(m, v, layer, where="all"), "at every position"),
        ("subtracted", lambda m, v, layer: _addition(m, v, layer, sign=-1.0), "subtracted the vector"),
        ("unit vector", lambda m, v, layer: _addition(m, v, layer, unit=True), "added the unit vector"),
        ("resid_post", lambda m, v, layer: _addition(m, v, layer, name=f"blocks.{min(layer, m.cfg.n_layers - 1)}.hook_resid_post"),
         "after block|hook_resid_pre"),
        ("hook left on the model", lambda m, v, layer: m.add_hook(*_addition(m, v, layer)), "left a hook"),
    ],
    "random_control": [
        ("swapped columns", lambda *a: _random_control(*a, swap=True), "columns are swapped"),
        ("unit norm", lambda *a: _random_control(*a, unit=True), "unit norm"),
        ("the direction itself", lambda *a: _random_control(*a, itself=True), "used the direction itself"),
        ("both on harmless", lambda *a: _random_control(*a, same=True), "measured both on the same requests"),
    ],
    "direction_layer_sweep": [
        ("measured on train", lambda *a: _direction_sweep(*a, on_train=True), "measured on the prompts the direction was found on"),
        ("no layer 0", lambda *a: _direction_sweep(*a, layers=lambda n: range(1, n + 1)), "left out layer 0"),
        ("no last layer", lambda *a: _direction_sweep(*a, layers=range), "left out the last layer"),
        ("added one layer later", lambda *a: _direction_sweep(*a, shift=1), "one layer later"),
    ],
    "steering_effects": [
        ("plain accuracy", lambda *a: _steering(*a, mask=False), "measured the plain accuracy"),
        ("refusal without the vector", lambda *a: _steering(*a, steer_refusal=False), "refusal rate is the model's own"),
        ("beneath without the vector", lambda *a: _steering(*a, steer_beneath=False), "without the vector"),
        ("only the requests kept", lambda *a: _steering(*a, only_kept=True), "not refused only"),
        ("a tensor", lambda *a: torch.tensor(list(_steering(*a).values())), "expected a dict"),
    ],
    "interleave": [
        ("y first", lambda xs, ys: _interleave(xs, ys, y_first_coord=True), "first coordinate of its vector"),
        ("all x then all y", lambda xs, ys: _interleave(xs, ys, blocks=True), "every y after all the x's"),
        ("y before x", lambda xs, ys: _interleave(xs, ys, y_before=True), "your y comes before its x"),
    ],
    "least_squares_predictions": [
        ("sees its own y", lambda xs, ys: _per_k(xs, ys, lambda X, y: (torch.linalg.pinv(X) @ y[..., None])[..., 0],
                                                 include_query=True), "uses y_k itself"),
        ("one fit for the prompt", lambda xs, ys: (xs * (torch.linalg.pinv(xs) @ ys[..., None]).mT).sum(-1), "fitted w once"),
        ("mean of y", lambda xs, ys: torch.stack([torch.zeros(len(ys))] + [ys[:, :k].mean(1) for k in range(1, ys.shape[1])], 1),
         "mean of the y's so far"),
        ("ridge for the singular case", lambda xs, ys: _per_k(xs, ys, _ridge(0.1)), "pseudo-inverse"),
    ],
    "ridge_predictions": [
        ("lam times k", lambda xs, ys, lam: _per_k(xs, ys, _ridge(lam, lam_times_k=True)), "multiplied the penalty by k"),
        ("lam squared", lambda xs, ys, lam: _per_k(xs, ys, _ridge(lam**2)), "lam squared"),
        ("sees its own y", lambda xs, ys, lam: _per_k(xs, ys, _ridge(lam), include_query=True), "uses y_k itself"),
    ],
    "nearest_neighbour_predictions": [
        ("farthest", lambda xs, ys, n: _knn(xs, ys, n, far=True), "farthest examples"),
        ("one neighbour", lambda xs, ys, n: _knn(xs, ys, 1), "single nearest example"),
        ("the query is its own neighbour", lambda xs, ys, n: _knn(xs, ys, n, include_query=True), "include the query itself"),
    ],
    "error_curve": [
        ("no / d", lambda p, y, d: ((p - y) ** 2).mean(0), "did not divide by d"),
        ("mean over points", lambda p, y, d: ((p - y) ** 2).mean(1) / d, "averaged over the points"),
        ("absolute error", lambda p, y, d: (p - y).abs().mean(0) / d, "absolute error"),
        ("RMSE", lambda p, y, d: ((p - y) ** 2).mean(0).sqrt() / d, "square root"),
    ],
    "gd_predictions": [
        ("summed gradient", lambda xs, ys, lr, steps: _gd(xs, ys, lr, steps, summed=True), "summed the gradient"),
        ("one step", lambda xs, ys, lr, steps: _gd(xs, ys, lr, 1), "one step whatever"),
        ("ascent", lambda xs, ys, lr, steps: _gd(xs, ys, -lr, steps), "up the gradient"),
    ],
    "probe_r2": [
        ("scored on the training rows", lambda a, t, n: _probe(a, t, n, score_on_train=True), "samples it was fitted on"),
        ("no bias", lambda a, t, n: _probe(a, t, n, bias=False), "no bias"),
        ("1 - R^2", lambda a, t, n: 1 - _probe(a, t, n), "wrong way round"),
    ],
    "sweep_curves": [
        ("never changed the property", lambda *a: _sweep13(*a, change=False), "every value gives the same curves"),
        ("not rescaled", lambda *a: _sweep13(*a, scale=False), r"did not rescale the curves by d / swept\.signal_power"),
        ("ridge with lam = noise", lambda *a: _sweep13(*a, lam=lambda noise: noise), "not its square"),
        ("methods swapped", lambda *a: _sweep13(*a)[:, [1, 0, 2]], "another order"),
    ],
}

WRONG_CASES = [(name, what, fn, match) for name, cases in WRONG.items() for what, fn, match in cases]


@pytest.mark.parametrize("name, what, fn, match", WRONG_CASES, ids=[f"{n}: {w}" for n, w, _, _ in WRONG_CASES])
def test_wrong_answer_is_rejected_with_its_hint(name, what, fn, match):
    with pytest.raises(ExerciseError, match=match):
        run_check(name, fn)


def test_every_check_rejects_three_wrong_answers():
    counts = {name: len(WRONG.get(name, [])) for name in REFERENCES | {"forward": None}}
    print("wrong answers per check:", counts, "total", sum(counts.values()))
    assert all(count >= 3 for count in counts.values()), {n: c for n, c in counts.items() if c < 3}


def test_messages_blame_masking_only_in_attention():
    """NaN in a loss or a metric gets a message about where it is, not about attention masks."""
    for name, what in [("per_token_loss", "log of the logits: NaN"), ("normalized_metric", "0 / 0: NaN")]:
        fn = next(fn for w, fn, _ in WRONG[name] if w == what)
        with pytest.raises(ExerciseError) as err:
            run_check(name, fn)
        assert "NaN" in str(err.value) and "mask" not in str(err.value), str(err.value)
    with pytest.raises(ExerciseError, match=r"every score in it is -inf"):  # inside attention, it does
        run_check("multi_head_attention", lambda x, *w: reference.multi_head_attention(x, *w) * float("nan"))


def test_a_changed_model_is_put_back():
    before = NB01_MODEL.b_U.detach().clone()
    with pytest.raises(ExerciseError, match="put them back"):
        run_check("forward", _forward_editing_weights)
    assert torch.equal(NB01_MODEL.b_U, before)
    with pytest.raises(ExerciseError, match="left a hook"):
        run_check("forward", _forward_leaving_a_hook)
    assert not any(hp.fwd_hooks for hp in NB01_MODEL.hook_dict.values()), "the check removes the hook it found"


def test_the_message_says_where_the_answer_differs():
    def last_position_wrong(t, W_pos):
        out = W_pos[: t.shape[1]].expand(t.shape[0], -1, -1).clone()
        out[:, -1] = 0
        return out

    with pytest.raises(ExerciseError, match=r"at index \(batch \d, pos 4, d_model \d\).*Wrong only at pos 4; everywhere"):
        run_check("pos_embed", last_position_wrong)


# ---- every check, with the wrong kinds of answer the framework catches ------------------------------------------

ALL = sorted(REFERENCES) + ["forward"]


def _reference(name):
    return REFERENCES.get(name, lambda t, m: m(t))


def _changing_first_tensor(name):
    def fn(*args):
        answer = _reference(name)(*args)
        arg = next(a for a in args if isinstance(a, torch.Tensor))
        with torch.no_grad():
            arg.copy_(arg + 1 if arg.is_floating_point() else (arg + 1) % (arg.max() + 1))
        return answer
    return fn


INTEGER_ANSWERS = {"sample", "lens_top_tokens", "settle_layer", "mutated_labels", "swapped_positions",
                   "train_test_split", "key_frequencies"}  # token ids and row numbers: torch.long, never a gradient
NOT_TENSOR_ANSWERS = {"ablation_hooks", "addition_hook", "steering_effects"}  # hooks and a dict: tested below
PAIR_ANSWERS = {"train_test_split", "cos_fit", "sae_forward"}  # (tensor, tensor) and (tensor, float): the framework's cases apply to the first


def _edited(name, f):
    """fn(*args) -> the reference's answer with f applied to it (to its first part, for a pair)."""
    def fn(*args):
        answer = _reference(name)(*args)
        return (f(answer[0]), answer[1]) if name in PAIR_ANSWERS else f(answer)
    return fn


@pytest.mark.parametrize("name", [n for n in ALL if n not in NOT_TENSOR_ANSWERS])
def test_a_float64_answer_gets_a_dtype_message(name):
    match = (r"expected dtype torch.int64, got torch.float64: the answer is integers" if name in INTEGER_ANSWERS
             else r"expected dtype torch.float32, got torch.float64: float64 usually")
    with pytest.raises(ExerciseError, match=match):
        run_check(name, _edited(name, lambda t: t.double()))


# (no tensor among the inputs of these: a cache, a model, a lens to train, a list of positions)
@pytest.mark.parametrize("name", [n for n in ALL if n not in ("perfect_prev_token_pattern", "decompose_resid",
                                                               "lens_top_tokens", "fit_tuned_lens", "mutated_labels",
                                                               "train_test_split", "fourier_basis",
                                                               "favourite_token_ov", "bias_share",
                                                               "direction_layer_sweep", "sweep_curves")])
def test_changing_an_input_in_place_is_caught(name):
    with pytest.raises(ExerciseError, match=r"changed its input `\w+` in place"):
        run_check(name, _changing_first_tensor(name))


@pytest.mark.parametrize("name", [n for n in ALL if n not in NOT_TENSOR_ANSWERS])
def test_answers_of_the_wrong_kind_get_a_message_not_a_crash(name):
    weird = {
        "None": (lambda *a: None, "got None .did your function forget to `return`"),
        "a list": (_edited(name, lambda t: t.tolist()), r"got a (list|Python float)"),
        "a numpy array": (_edited(name, lambda t: t.detach().numpy()), "numpy"),
        "a tuple": (lambda *a: (_reference(name)(*a), 0), "got a tuple"),
        "an extra axis": (_edited(name, lambda t: t[None]), r"expected shape .*, got \(1,"),
        "a bool": (lambda *a: True, "got a bool"),
        "a crash": (lambda *a: [][1], r"your function raised IndexError: list index out of range"),
    }
    for what, (fn, match) in weird.items():
        with pytest.raises(ExerciseError, match=match):
            run_check(name, fn)


@pytest.mark.parametrize("name", [n for n in ALL if n not in INTEGER_ANSWERS | NOT_TENSOR_ANSWERS])  # integers cannot need grad
def test_an_answer_that_needs_grad_passes(name):
    run_check(name, _edited(name, lambda t: t.detach().clone().requires_grad_()))


def test_unfinished_exercise_and_carry_on(capsys):
    checks._passed.clear()
    with pytest.raises(NotImplementedError, match="Exercise 'embed' is not done yet"):
        checks.check_embed(not_done)
    assert checks.carry_on("embed", not_done) is reference.embed
    assert "using the reference `embed` from course_utils.model" in capsys.readouterr().out
    checks.check_embed(reference.embed)
    mine = lambda tokens, W_E: W_E[tokens]  # noqa: E731
    assert checks.carry_on("embed", mine) is mine
    with pytest.raises(ExerciseError, match="expected a function"):
        checks.check_embed(42)


def test_every_exercise_has_a_check_and_a_reference():
    """Each exercise in the solution notebooks has a check_<name> and an entry in REFERENCES, and
    each carry_on("<name>", ...) in them names an exercise."""
    checks._passed.clear()
    root = Path(__file__).resolve().parent.parent
    exercises, carried = set(), set()
    for path in sorted((root / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            exercises |= set(re.findall(r"# BEGIN SOLUTION (\w+):", cell.source))
            carried |= set(re.findall(r"carry_on\(\"(\w+)\"", cell.source))
    assert exercises and carried
    for name in exercises:
        assert callable(getattr(checks, f"check_{name}", None)), f"no check_{name} for exercise {name}"
    assert carried <= exercises, f"carry_on names no exercise: {sorted(carried - exercises)}"
    assert set(REFERENCES) == carried, "REFERENCES lists exactly the exercises the notebooks carry on with"
    for name in carried:
        assert checks.carry_on(name, not_done) is REFERENCES[name]
    with pytest.raises(ValueError, match="no reference implementation named 'nope'"):
        checks.carry_on("nope", not_done)


def test_the_checks_import_nothing_inside_functions():
    source = "\n".join(p.read_text() for p in (Path(checks.__file__).parent).glob("*.py"))
    assert not re.findall(r"\n[ \t]+(from \S+ import|import \S+)", source)


def test_a_tensor_where_a_number_is_needed_is_caught():
    """No check of notebooks 01-07 expects a Python number yet; the framework is ready for one."""
    framework.compare("x", 0.5, 0.5)
    with pytest.raises(ExerciseError, match=r"\[x\] expected a Python float, got a torch.Tensor of shape \(\): .*\.item\(\)"):
        framework.compare("x", torch.tensor(0.5), 0.5)
    with pytest.raises(ExerciseError, match=r"\[x\] wrong value: yours 0.25, expected 0.5"):
        framework.compare("x", 0.25, 0.5)
    with pytest.raises(ExerciseError, match=r"\[x\] expected a Python float, got a str"):
        framework.compare("x", "0.5", 0.5)


def test_a_crash_leaves_the_model_as_it_was():
    def crash_after_a_hook(tokens, model):
        model.add_hook("blocks.1.hook_resid_pre", lambda resid, hook: resid * 0)
        with torch.no_grad():
            model.blocks[0].attn.b_O.add_(1.0)
        raise RuntimeError("shapes do not match")

    before = NB01_MODEL.blocks[0].attn.b_O.detach().clone()
    with pytest.raises(ExerciseError, match="your function raised RuntimeError: shapes do not match"):
        run_check("forward", crash_after_a_hook)
    assert torch.equal(NB01_MODEL.blocks[0].attn.b_O, before)
    assert not any(hp.fwd_hooks for hp in NB01_MODEL.hook_dict.values())


def test_hooks_and_dict_answers_of_the_wrong_kind_get_a_message():
    """Notebook 12's answers that are not tensors: hooks (a list of pairs, or one pair) and a dict."""
    for name in ("ablation_hooks", "addition_hook"):
        for fn in (lambda *a: None, lambda *a: "blocks.0.hook_resid_pre", lambda *a: [("hook_embed", 3)]):
            with pytest.raises(ExerciseError, match=r"expected a list of \(hook name, hook function\) pairs"):
                run_check(name, fn)
    for fn in (lambda *a: None, lambda *a: {"refusal": 1.0}, lambda *a: [1.0, 1.0]):
        with pytest.raises(ExerciseError, match=r"expected a dict with the keys 'refusal' and 'accuracy_beneath'"):
            run_check("steering_effects", fn)
    with pytest.raises(ExerciseError, match=r"expected a Python float, got a torch.Tensor"):
        run_check("steering_effects", lambda *a: {k: torch.tensor(v) for k, v in _steering(*a).items()})


def test_a_changed_request_batch_is_caught_and_put_back():
    def editing(model, train, test, refuse):
        answer = refusal.direction_layer_sweep(model, train, test, refuse)
        train[0].tokens[:, 1] = 0
        return answer
    with pytest.raises(ExerciseError, match=r"changed its input `train` in place \(a request batch's tensors\)"):
        run_check("direction_layer_sweep", editing)
