"""Checks for notebook 07, "Function vectors": mean head outputs, the indirect effect of one head and
of every head, where each head attends from the last position, the logits with a vector added to a layer's
attention output, the function vector of the top-k heads, the sweep over layers and k, and whose answer
the model gives with each vector."""

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
    "indirect_effects": fv.indirect_effects,
    "top_heads_vector": fv.top_heads_vector,
    "layer_sweep": fv.layer_sweep,
    "attention_to": fv.attention_to,
    "answer_shares": fv.answer_shares,
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


def _effects(model, tokens, answers, mean_z, positions=-1, log=False, gain=True, whole_layer=False, reduce="mean"):
    """Each head's indirect effect, [layer, head], computed the way a variant of a mistake would."""
    def score(logits):
        logits = logits[:, -1]
        scores = logits.log_softmax(-1) if log else logits.softmax(-1)
        return scores.gather(1, answers[:, None])[:, 0]

    with torch.no_grad():
        clean = score(model(tokens))
    rows = []
    for layer in range(model.cfg.n_layers):
        row = []
        for head in range(model.cfg.n_heads):
            def hook(z, hook, layer=layer, head=head):
                z = z.clone()
                if whole_layer:
                    z[:, positions] = mean_z[layer]
                else:
                    z[:, positions, head] = mean_z[layer, head]
                return z
            with torch.no_grad():
                patched = score(model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)]))
            effect = patched - clean if gain else patched
            row.append(effect.sum() if reduce == "sum" else effect.mean())
        rows.append(torch.stack(row))
    return torch.stack(rows)


def check_indirect_effects(fn):
    """fn(model, tokens, answers, mean_z [layer, head, d_head]) -> [layer, head]: each head's indirect
    effect, averaged over the prompts."""
    __tracebackhide__ = True
    shapes = [(0, 3, 3, 5, 9), (1, 2, 4, 4, 7), (2, 4, 2, 6, 10)]  # (seed, layers, heads, batch, pos)
    for seed, n_layers, n_heads, batch, seq in shapes:
        model = fixtures.model(seed, n_layers=n_layers, n_heads=n_heads, d_model=12)
        g = fixtures.generator(seed)
        tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        answers = torch.randint(0, model.cfg.d_vocab, (batch,), generator=g)
        mean_z = torch.randn(n_layers, n_heads, model.cfg.d_head, generator=g) * 2
        expected = fv.indirect_effects(model, tokens, answers, mean_z)
        got = call("indirect_effects", fn, {"model": model, "tokens": tokens, "answers": answers, "mean_z": mean_z})
        args = (model, tokens, answers, mean_z)
        mistakes = {
            "your table is [head, layer]: rows are layers, columns heads (aie[layer, head])": expected.T,
            "your sign is flipped: the effect is P(patched) - P(clean)": -expected,
            "you summed over the prompts: average them (.mean()), so the AIE does not grow with the batch":
                lambda: _effects(*args, reduce="sum"),
            "you returned P(answer) with the patch, not the gain: subtract P(answer) without it":
                lambda: _effects(*args, gain=False),
            "you measured the gain in log-probability: the indirect effect is a gain in probability":
                lambda: _effects(*args, log=True),
            "you patched the head at every position: patch the last position only, where the model answers":
                lambda: _effects(*args, positions=slice(None)),
            "you patched every head of the layer at once (z[:, -1] = mean_z[layer]): patch one head at a "
            "time, z[:, -1, head] = mean_z[layer, head]": lambda: _effects(*args, whole_layer=True),
        }
        compare("indirect_effects", got, expected, mistakes, atol=1e-6, axes="layer head")
    done("indirect_effects", len(shapes))


def _vector_of(mean_outputs, order, k, reduce="sum", weights=None):
    """The sum (or mean, or AIE-weighted sum) of the mean outputs of the heads at flat indices order[:k]."""
    flat = mean_outputs.reshape(-1, mean_outputs.shape[-1])
    chosen = flat[order[:k]]
    if weights is not None:
        chosen = chosen * weights.flatten()[order[:k], None]
    return chosen.mean(0) if reduce == "mean" else chosen.sum(0)


def check_top_heads_vector(fn):
    """fn(mean_outputs [layer, head, d_model], aie [layer, head], k) -> [d_model]: the sum of the mean
    outputs of the k heads with the largest AIE."""
    __tracebackhide__ = True
    cases = [(0, 3, 4, 12, 3), (1, 2, 3, 10, 1), (2, 4, 2, 8, 5)]  # (seed, layers, heads, d_model, k)
    for seed, n_layers, n_heads, d_model, k in cases:
        g = fixtures.generator(seed)
        mean_outputs = torch.randn(n_layers, n_heads, d_model, generator=g)
        aie = torch.randn(n_layers, n_heads, generator=g) * 0.1
        aie.view(-1)[int(aie.argmin())] = -1.0  # a head that does harm, larger in size than any that helps
        expected = fv.top_heads_vector(mean_outputs, aie, k)
        got = call("top_heads_vector", fn, {"mean_outputs": mean_outputs, "aie": aie, "k": k})
        order = aie.flatten().argsort(descending=True)
        mistakes = {
            "you ranked the heads by |AIE|: a head with a large negative AIE does harm; rank by the AIE "
            "itself, largest first": _vector_of(mean_outputs, aie.flatten().abs().argsort(descending=True), k),
            "you took the k heads with the smallest AIE: sort in descending order (argsort(descending=True))":
                _vector_of(mean_outputs, aie.flatten().argsort(), k),
            "you averaged the heads' mean outputs: the function vector is their sum":
                _vector_of(mean_outputs, order, k, reduce="mean"),
            "you weighted each head's output by its AIE: sum the outputs as they are":
                _vector_of(mean_outputs, order, k, weights=aie),
            "you summed the mean outputs of every head: take only the top k": mean_outputs.sum((0, 1)),
            "you took k + 1 heads: order[:k] holds k": _vector_of(mean_outputs, order, k + 1),
            "you took k - 1 heads: order[:k] holds k": _vector_of(mean_outputs, order, k - 1),
            "you left out the top head (order[1:k + 1]): the top head is order[0]": _vector_of(mean_outputs, order[1:], k),
        }
        compare("top_heads_vector", got, expected, mistakes, axes="d_model")
    done("top_heads_vector", len(cases))


def _sweep(model, tokens, answers, mean_outputs, aie, ks, hook_name="hook_attn_out", positions=-1, rank=None,
           count=False):
    """The accuracy grid [layer, len(ks)], computed the way a variant of a mistake would."""
    order = (rank if rank is not None else aie.flatten()).argsort(descending=True)
    grid = torch.zeros(model.cfg.n_layers, len(ks))
    for layer in range(model.cfg.n_layers):
        for i, k in enumerate(ks):
            vector = _vector_of(mean_outputs, order, k)

            def add(x, hook, vector=vector):
                x = x.clone()
                x[:, positions] += vector
                return x
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.{hook_name}", add)])[:, -1]
            right = (logits.argmax(-1) == answers).float()
            grid[layer, i] = right.sum() if count else right.mean()
    return grid


def check_layer_sweep(fn):
    """fn(model, tokens, answers, mean_outputs [layer, head, d_model], aie [layer, head], ks) -> [layer, len(ks)]:
    the accuracy with the top-k heads' vector added to each layer's attention output at the last position."""
    __tracebackhide__ = True
    cases = [(_PROMPTS[0], [0, 2, 5]), (_PROMPTS[1], [1, 3, 9]), (_PROMPTS[2], [0, 1, 4, 6])]
    for (seed, batch, seq), ks in cases:
        model, tokens, _, g = _setup(seed, batch, seq)
        mean_outputs = fv.mean_head_outputs(model, tokens) * 4
        aie = torch.randn(model.cfg.n_layers, model.cfg.n_heads, generator=g)
        # answers: for some prompts what the model says with a vector, so that the accuracies vary
        steered = fv.predictions_with_vector(model, tokens, fv.top_heads_vector(mean_outputs, aie, 2), 1)
        plain = fv.predictions_with_vector(model, tokens)
        answers = torch.where(torch.arange(batch) % 3 == 0, plain, steered)
        expected = fv.layer_sweep(model, tokens, answers, mean_outputs, aie, ks)
        inputs = {"model": model, "tokens": tokens, "answers": answers, "mean_outputs": mean_outputs, "aie": aie,
                  "ks": list(ks)}
        got = call("layer_sweep", fn, inputs)
        args = (model, tokens, answers, mean_outputs, aie)
        mistakes = {
            "your grid is [k, layer]: rows are layers, one column per entry of ks": expected.T,
            "you counted the right answers: return the fraction of prompts (the accuracy), not the count":
                lambda: _sweep(*args, ks, count=True),
            "you used the position i in ks as the number of heads: column i is for k = ks[i]":
                lambda: _sweep(*args, list(range(len(ks)))),
            "you added the vector before the block (hook_resid_pre): add it to blocks.{layer}.hook_attn_out":
                lambda: _sweep(*args, ks, hook_name="hook_resid_pre"),
            "you added the vector after the whole block (hook_resid_post): add it to blocks.{layer}.hook_attn_out":
                lambda: _sweep(*args, ks, hook_name="hook_resid_post"),
            "you added the vector at every position: add it at the last position only":
                lambda: _sweep(*args, ks, positions=slice(None)),
            "you ranked the heads by |AIE|: rank by the AIE itself, largest first":
                lambda: _sweep(*args, ks, rank=aie.flatten().abs()),
        }
        compare("layer_sweep", got, expected, mistakes, axes="layer k")
    done("layer_sweep", len(cases))


def check_attention_to(fn):
    """fn(model, tokens [batch, pos], key_positions: list) -> [layer, head]: attention from the last position
    to those keys, summed over them, averaged over the prompts.

    Tried on course models and, last, on a TransformerBridge."""
    __tracebackhide__ = True
    cases = [(_PROMPTS[0], [0, 3, 7], False), (_PROMPTS[1], [1, 2, 4], False), (_PROMPTS[2], [9], False),
             (_PROMPTS[0], [0, 2, 5, 6], True)]
    for (seed, batch, seq), keys, on_bridge in cases:
        model, tokens, _, _ = _setup(seed, batch, seq)
        if on_bridge:
            model = fixtures.bridge(seed, n_layers=3, n_heads=3, d_model=12)
        expected = fv.attention_to(model, tokens, keys)
        got = call("attention_to", fn, {"model": model, "tokens": tokens, "key_positions": list(keys)})
        names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        pattern = torch.stack([cache[n] for n in names])  # [layer, batch, head, query, key]
        mistakes = {
            "you read the attention FROM the keys TO the last position (pattern[..., keys, -1]): the query is the "
            "last position, so read pattern[:, :, -1, keys]": lambda: pattern[..., keys, -1].sum(-1).mean(1),
            "you read the first position's attention: the query is the last position, pattern[:, :, -1]":
                lambda: pattern[..., 0, keys].sum(-1).mean(1),
            "you averaged over the keys: sum the attention over them (the share of the last position's attention "
            "that goes to any of them)": lambda: pattern[..., -1, keys].mean(-1).mean(1),
            "you summed over the prompts: average over them": lambda: pattern[..., -1, keys].sum(-1).sum(1),
            "you averaged over every query position: only the last position's attention counts":
                lambda: pattern[..., keys].sum(-1).mean((1, 3)),
            "your table is [head, layer]: rows are layers, columns heads": expected.T,
            "you read only the first layer's pattern: stack every layer's, blocks.{layer}.attn.hook_pattern":
                lambda: pattern[:1, :, :, -1, keys].sum(-1).mean(1).expand_as(expected),
        }
        compare("attention_to", got, expected, mistakes, axes="layer head")
    done("attention_to", len(cases))


def check_answer_shares(fn):
    """fn(model, tokens [batch, pos], answers [task, batch], vectors [vector, d_model], layer) -> [vector, task]."""
    __tracebackhide__ = True
    # (prompts, vectors, layer, their scale: large enough to change the model's answer); 3 tasks' answers each
    cases = [(_PROMPTS[0], 3, 1, 4), (_PROMPTS[1], 4, 0, 4), (_PROMPTS[2], 2, 2, 15)]
    for (seed, batch, seq), n_vectors, layer, scale in cases:
        model, tokens, _, g = _setup(seed, batch, seq)
        vectors = torch.randn(n_vectors, model.cfg.d_model, generator=g) * scale
        plain = fv.predictions_with_vector(model, tokens)
        steered = [fv.predictions_with_vector(model, tokens, v, layer) for v in vectors]
        # each task's answers: what one vector makes the model say on some prompts, the plain answer on others
        picks = torch.arange(batch)
        answers = torch.stack([torch.where(picks % 3 == i, plain, steered[i % n_vectors]) for i in range(3)])
        expected = fv.answer_shares(model, tokens, answers, vectors, layer)
        inputs = {"model": model, "tokens": tokens, "answers": answers, "vectors": vectors, "layer": layer}
        got = call("answer_shares", fn, inputs)

        def shares(hook_name=f"blocks.{layer}.hook_attn_out", positions=-1, sign=1.0, count=False, rows=vectors):
            out = []
            for vector in rows:
                def add(x, hook, vector=vector):
                    x = x.clone()
                    x[:, positions] += sign * vector
                    return x
                with torch.no_grad():
                    predictions = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, add)])[:, -1].argmax(-1)
                right = (predictions[None] == answers).float()
                out.append(right.sum(-1) if count else right.mean(-1))
            return torch.stack(out)

        mistakes = {
            "your table is [task, vector]: rows are the vectors, columns the tasks whose answer the model gave":
                lambda: expected.T,
            "you counted the prompts: return the fraction of them, not the count": lambda: shares(count=True),
            "every row is the model without a vector: add vectors[a] for row a (does your hook return the changed "
            "activation?)": lambda: shares(rows=torch.zeros_like(vectors)),
            "you added the vector at every position: add it at the last position only":
                lambda: shares(positions=slice(None)),
            f"you added the vector before block {layer} (hook_resid_pre): add it to blocks.{layer}.hook_attn_out":
                lambda: shares(hook_name=f"blocks.{layer}.hook_resid_pre"),
            f"you added the vector after the whole block {layer} (hook_resid_post): add it to "
            f"blocks.{layer}.hook_attn_out": lambda: shares(hook_name=f"blocks.{layer}.hook_resid_post"),
            "you added every vector at once: each row adds its own vector, vectors[a], alone":
                lambda: shares(rows=vectors.sum(0, keepdim=True).expand_as(vectors)),
            "you subtracted the vector: add it": lambda: shares(sign=-1.0),
        }
        compare("answer_shares", got, expected, mistakes, axes="vector task")
    done("answer_shares", len(cases))
