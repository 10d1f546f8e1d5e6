"""Checks for notebook 06, "Activation patching": the log-probability metric and its normalised form,
patching the residual stream at one layer and position by hand and then at every one, patching a
group of heads' outputs, queries, keys, values or patterns, patching one path (a head's output
into later heads' keys only), and causal tracing (noise on the input embeddings, then one clean state
restored at a time)."""

from __future__ import annotations

import torch

from .. import ablation, patching
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "correct_logprob": patching.correct_logprob,
    "normalized_metric": patching.normalized_metric,
    "patch_resid_pre": patching.patch_resid_pre,
    "resid_patching": patching.resid_patching,
    "patch_heads": patching.patch_heads,
    "patch_k_path": patching.patch_k_path,
    "noised_logprob": patching.noised_logprob,
    "causal_trace": patching.causal_trace,
}


def check_correct_logprob(fn):
    """fn(logits [batch, pos, d_vocab], tokens [batch, pos], positions) -> the mean log-probability of the
    correct next token at `positions`, a 0-d tensor."""
    __tracebackhide__ = True
    cases = [(3, 8, 13, slice(3, 7)), (2, 10, 17, slice(0, 9)), (4, 6, 11, slice(2, 5, 2))]
    for seed, (batch, seq, vocab, positions) in enumerate(cases):
        g = fixtures.generator(seed)
        logits = 3 * torch.randn(batch, seq, vocab, generator=g) + torch.randn(vocab, generator=g)  # not log-softmaxed
        tokens = fixtures.tokens(g, batch, seq, vocab)
        expected = patching.correct_logprob(logits.clone(), tokens.clone(), positions)
        got = call("correct_logprob", fn, {"logits": logits, "tokens": tokens, "positions": positions})
        logprobs = logits.log_softmax(-1)

        def picked(source, shift=1):  # [batch, pos - 1]: source at position t, read at token t + shift
            if shift == 1:
                return source[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
            return source[:, :-1].gather(-1, tokens[:, :-1, None])[..., 0]

        mistakes = {
            "you scored each position's own token: position t predicts the NEXT token, tokens[:, t + 1] "
            "(take logits[:, :-1] and tokens[:, 1:])": picked(logprobs, shift=0)[:, positions].mean(),
            "you took the raw logits of the correct tokens: turn them into log-probabilities first "
            "(logits.log_softmax(-1))": picked(logits)[:, positions].mean(),
            "you averaged probabilities, not log-probabilities: keep the log (log_softmax, not softmax)":
                picked(logits.softmax(-1))[:, positions].mean(),
            "you summed over the batch and the positions: the metric is the mean, so that it does not grow "
            "with the batch or the number of positions": picked(logprobs)[:, positions].sum(),
            "you averaged over every position: only the positions in `positions` count":
                picked(logprobs).mean(),
            "you applied `positions` to the tokens' positions before shifting: the prediction made at "
            "position t (logits[:, t]) is scored against tokens[:, t + 1]":
                lambda: logprobs[:, 1:].gather(-1, tokens[:, 1:, None])[..., 0][:, positions].mean(),
        }
        compare("correct_logprob", got, expected, mistakes, atol=1e-5)
    done("correct_logprob", len(cases))


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


def _pair(batch, period, model, seed):
    clean, corrupted = patching.clean_and_corrupted(batch, period, model.cfg.d_vocab, seed=seed)
    metric = patching.patching_metric(model, clean, corrupted, slice(period, 2 * period - 1))
    with torch.no_grad():
        _, cache = model.run_with_cache(clean)
    return clean, corrupted, cache, metric


def check_resid_patching(fn):
    """fn(model, corrupted_tokens, clean_cache, metric) -> [layer, pos]: the metric after patching the
    residual stream entering each layer at each position."""
    __tracebackhide__ = True
    cases = [(3, 4, 3), (2, 3, 5)]  # (layers, batch, period)
    for seed, (n_layers, batch, period) in enumerate(cases):
        model = fixtures.model(seed, n_layers=n_layers, n_ctx=12)
        clean, corrupted, cache, metric = _pair(batch, period, model, seed + 1)
        expected = patching.resid_patching(model, corrupted.clone(), cache, metric).to(torch.float32)
        with torch.no_grad():
            got = call("resid_patching", fn, {"model": model, "corrupted_tokens": corrupted, "clean_cache": cache,
                                              "metric": metric})

        def sweep(where, index):
            def one(layer, pos):
                name = f"blocks.{layer}.hook_{where}"

                def hook(act, hook):
                    act[index(pos)] = cache[name][index(pos)]
                    return act
                with torch.no_grad():
                    return metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)]))
            return torch.stack([torch.stack([one(layer, pos) for pos in range(corrupted.shape[1])])
                                for layer in range(n_layers)])

        mistakes = {
            "your map is transposed: rows are layers, columns are positions ([layer, pos])":
                lambda: expected.T.contiguous(),
            "you patched the residual stream leaving each layer (hook_resid_post): patch the one entering it, "
            "blocks.LAYER.hook_resid_pre": lambda: sweep("resid_post", lambda pos: (slice(None), pos)),
            "you patched one batch entry per position (resid[pos]): the position axis is the second, resid[:, pos]":
                lambda: sweep("resid_pre", lambda pos: (pos,)),
            "every entry is the corrupted run's metric (0): the hook must return the patched activation":
                lambda: torch.zeros_like(expected) + metric(model(corrupted)),
        }
        compare("resid_patching", got, expected, mistakes, atol=1e-4, axes="layer pos")
    done("resid_patching", len(cases))


def _patched_with(model, corrupted, cache, metric, heads, activation, index):
    """metric of the corrupted run with each head's activation put back at `index(head)`: how a check
    builds a wrong answer the library does not produce."""
    hooks = []
    for layer, head in heads:
        def hook(act, hook, head=head):
            act[index(head)] = cache[hook.name][index(head)]
            return act
        hooks.append((f"blocks.{layer}.attn.hook_{activation}", hook))
    with torch.no_grad():
        return metric(model.run_with_hooks(corrupted, fwd_hooks=hooks))


def check_patch_heads(fn):
    """fn(model, corrupted_tokens, clean_cache, metric, heads, activation) -> the metric with each head's
    activation (z, q, k, v or pattern) taken from the clean run, all heads in one run: a 0-d tensor."""
    __tracebackhide__ = True
    cases = [("z", [(1, 2)], False), ("pattern", [(2, 1), (1, 0)], False), ("k", [(0, 1), (0, 2)], False),
             ("v", [(2, 0), (2, 2)], True), ("q", [(1, 1), (2, 0)], False), ("pattern", [(0, 2), (0, 0)], True)]
    for seed, (activation, heads, on_bridge) in enumerate(cases):
        model = (fixtures.bridge if on_bridge else fixtures.model)(seed, n_layers=3, n_heads=3, n_ctx=12)
        _, corrupted, cache, metric = _pair(3 + seed % 2, 5, model, seed)
        expected = patching.patch_heads(model, corrupted.clone(), cache, metric, list(heads), activation)
        with torch.no_grad():
            got = call("patch_heads", fn, {"model": model, "corrupted_tokens": corrupted, "clean_cache": cache,
                                           "metric": metric, "heads": list(heads), "activation": activation})
        z_like = lambda head: (slice(None), slice(None), head)  # noqa: E731  [batch, pos, head, d_head]
        pattern_like = lambda head: (slice(None), head)  # noqa: E731  [batch, head, query_pos, key_pos]
        right_index = pattern_like if activation == "pattern" else z_like
        mistakes = {
            "only the last head of each layer was patched: two hooks on the same hook point must both stay in "
            "the list (a dict keyed by hook name keeps only the last), and a hook defined in a loop must bind "
            "its head (`def hook(act, hook, head=head)`)":
                lambda: _patched_with(model, corrupted, cache, metric,
                                      list({layer: (layer, head) for layer, head in heads}.values()), activation, right_index),
            "you patched every head of the layer: only the heads in `heads` are put back, act[:, :, head] "
            "(for the pattern, act[:, head])":
                lambda: _patched_with(model, corrupted, cache, metric, heads, activation, lambda head: (slice(None),)),
            "the pattern is [batch, head, query_pos, key_pos]: its head axis is the second, act[:, head], not "
            "the third as for z, q, k and v":
                (lambda: _patched_with(model, corrupted, cache, metric, heads, activation, z_like))
                if activation == "pattern" else None,
            "you indexed the pattern's head axis in z, q, k or v: those are [batch, pos, head, d_head], the "
            "head axis is the third, act[:, :, head]":
                (lambda: _patched_with(model, corrupted, cache, metric, heads, activation, pattern_like))
                if activation != "pattern" else None,
            f"you patched the heads' outputs z whatever the activation: patch blocks.L.attn.hook_{activation}":
                (lambda: patching.patch_heads(model, corrupted, cache, metric, heads, "z")) if activation != "z" else None,
            "you returned the corrupted run's metric: did your hooks return the patched activation, and did you "
            "pass them all to run_with_hooks(corrupted_tokens, fwd_hooks=[...])?": lambda: metric(model(corrupted)),
        }
        compare("patch_heads", got, expected, {k: v for k, v in mistakes.items() if v is not None}, atol=1e-4)
    done("patch_heads", len(cases))


def check_patch_k_path(fn):
    """fn(model, corrupted_tokens, clean_cache, metric, writer, readers) -> the metric with the writer's
    clean output, in place of its corrupted one, in the readers' keys only: a 0-d tensor."""
    __tracebackhide__ = True
    cases = [((0, 1), [(1, 0), (1, 2)]), ((0, 0), [(2, 1), (1, 1)]), ((1, 2), [(2, 0), (2, 2)])]
    for seed, (writer, readers) in enumerate(cases):
        model = fixtures.model(seed, n_layers=3, n_heads=3, n_ctx=12, attn_only=True)
        _, corrupted, cache, metric = _pair(3 + seed % 2, 5, model, seed)
        expected = patching.patch_k_path(model, corrupted.clone(), cache, metric, writer, list(readers))
        with torch.no_grad():
            got = call("patch_k_path", fn, {"model": model, "corrupted_tokens": corrupted, "clean_cache": cache,
                                            "metric": metric, "writer": writer, "readers": list(readers)})
        w_layer, w_head = writer
        z_name = f"blocks.{w_layer}.attn.hook_z"

        def shifted(sign, W_K_layer=None):  # keys moved by sign * (corrupted - clean writer output) @ W_K
            with torch.no_grad():
                _, run = model.run_with_cache(corrupted, names_filter=lambda n: n == z_name)
            diff = ablation.head_output(run[z_name], model.W_O[w_layer], w_head) - \
                ablation.head_output(cache[z_name], model.W_O[w_layer], w_head)
            hooks = []
            for layer, head in readers:
                def hook(k, hook, layer=layer, head=head):
                    W_K = model.W_K[layer if W_K_layer is None else W_K_layer]
                    return ablation.keys_without(k, sign * diff, W_K, head)
                hooks.append((f"blocks.{layer}.attn.hook_k", hook))
            with torch.no_grad():
                return metric(model.run_with_hooks(corrupted, fwd_hooks=hooks))

        mistakes = {
            "you patched the writer's whole output: every later component then sees the clean output. Put it "
            "back only in the readers' keys, k - (corrupted output - clean output) @ W_K":
                lambda: patching.patch_heads(model, corrupted, cache, metric, [writer], "z"),
            "you patched the readers' whole keys from the clean run: only the writer's term in them changes, "
            "k - (corrupted output - clean output) @ W_K[reader head]":
                lambda: patching.patch_heads(model, corrupted, cache, metric, readers, "k"),
            "your difference has the wrong sign: the keys lose the corrupted output and gain the clean one, "
            "k - (corrupted - clean) @ W_K": lambda: shifted(-1.0),
            "you projected with the writer's layer's W_K: the readers' keys are made by the readers' layer, "
            "model.W_K[reader_layer][reader_head]": lambda: shifted(1.0, W_K_layer=w_layer),
            "you returned the corrupted run's metric: did your hook on the readers' hook_k return the changed keys?":
                lambda: metric(model(corrupted)),
        }
        compare("patch_k_path", got, expected, mistakes, atol=1e-4)
    done("patch_k_path", len(cases))


# ---- causal tracing ------------------------------------------------------------------------------------


def _trace_case(seed, on_bridge=False, n_layers=3, batch=3, period=5, noise_positions=(1, 2), scale=3.0):
    """A model, repeated tokens, noise [batch, pos, d_model] at every position (only `noise_positions`'
    rows may be used), and the predictions that read the noised positions' copies."""
    model = (fixtures.bridge if on_bridge else fixtures.model)(seed, n_layers=n_layers, n_heads=3, n_ctx=12)
    g = fixtures.generator(seed + 50)
    tokens = torch.randint(0, model.cfg.d_vocab, (batch, period), generator=g).repeat(1, 2)
    noise = scale * model.W_E.detach().std() * torch.randn(batch, 2 * period, model.cfg.d_model, generator=g)
    first = period + min(noise_positions) - 1
    return model, tokens, noise, list(noise_positions), slice(first, first + len(noise_positions) + 1)


def _with_noise(model, tokens, noise, positions, where="hook_embed", mode="add", rows=None, extra=()):
    """Logits with noise put in at `positions` (a wrong answer's way, when the arguments say so)."""
    rows = positions if rows is None else rows

    def put(act, hook):
        act = act.clone()
        act[:, positions] = act[:, positions] + noise[:, rows] if mode == "add" else noise[:, rows]
        return act
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(where, put), *extra])


def check_noised_logprob(fn):
    """fn(model, tokens, noise, noise_positions, metric_positions) -> the mean log-probability of the right
    next tokens at metric_positions, with noise[:, p] added to the token embeddings at each noised p."""
    __tracebackhide__ = True
    cases = [dict(seed=0), dict(seed=1, on_bridge=True, noise_positions=(0, 3), batch=4),
             dict(seed=2, n_layers=2, noise_positions=(2,), period=4)]
    for kw in cases:
        model, tokens, noise, positions, metric_positions = _trace_case(**kw)
        expected = patching.noised_logprob(model, tokens.clone(), noise.clone(), list(positions), metric_positions)
        with torch.no_grad():
            got = call("noised_logprob", fn, {"model": model, "tokens": tokens, "noise": noise,
                                              "noise_positions": list(positions), "metric_positions": metric_positions})
        every = list(range(tokens.shape[1]))

        def score(logits):
            return patching.correct_logprob(logits, tokens, metric_positions)
        mistakes = {
            "you added noise at every position: add it only at the positions in noise_positions, "
            "embed[:, noise_positions] += noise[:, noise_positions]":
                lambda: score(_with_noise(model, tokens, noise, every)),
            "your answer is the clean run's: the noise never reached the model (did your hook return the "
            "noised embeddings, and did you pass it to run_with_hooks?)": lambda: score(model(tokens)),
            "you replaced the embeddings by the noise: add the noise to them (embed + noise)":
                lambda: score(_with_noise(model, tokens, noise, positions, mode="replace")),
            "you took the noise's first rows (noise[:, :len(noise_positions)]): the noise for position p is "
            "noise[:, p]": lambda: score(_with_noise(model, tokens, noise, positions, rows=list(range(len(positions))))),
            "you added the noise after layer 0: it belongs on the input embeddings, hook_embed (or "
            "blocks.0.hook_resid_pre)": lambda: score(_with_noise(model, tokens, noise, positions, where="blocks.1.hook_resid_pre")),
        }
        compare("noised_logprob", got, expected, mistakes, atol=1e-4)
    done("noised_logprob", len(cases))


def _trace_by(model, tokens, noise, positions, metric_positions, noise_at=None, where="resid_pre",
              noise_where="hook_embed", noise_first=True, layers=None):
    """A causal trace made the way a mistake makes it (the arguments say which), for `layers` (all)."""
    noise_at = positions if noise_at is None else noise_at
    layers = range(model.cfg.n_layers) if layers is None else layers

    def noise_hook(act, hook):
        act = act.clone()
        act[:, noise_at] = act[:, noise_at] + noise[:, noise_at]
        return act
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(tokens)
        noised_logits = model.run_with_hooks(tokens, fwd_hooks=[(noise_where, noise_hook)])
    clean = patching.correct_logprob(clean_logits, tokens, metric_positions)
    noised = patching.correct_logprob(noised_logits, tokens, metric_positions)
    rows = []
    for layer in layers:
        name, row = f"blocks.{layer}.hook_{where}", []
        for pos in range(tokens.shape[1]):
            def restore(resid, hook, pos=pos, name=name):
                resid = resid.clone()
                resid[:, pos] = cache[name][:, pos]
                return resid
            hooks = [(noise_where, noise_hook), (name, restore)]
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=hooks if noise_first else hooks[::-1])
            row.append((patching.correct_logprob(logits, tokens, metric_positions) - noised) / (clean - noised))
        rows.append(torch.stack(row))
    return torch.stack(rows)


def check_causal_trace(fn):
    """fn(model, tokens, noise, noise_positions, metric_positions) -> [layer, pos]: the normalised metric
    (0 noised run, 1 clean run) with the clean residual stream entering `layer` restored at `pos`, the
    noise still added to the embeddings at noise_positions."""
    __tracebackhide__ = True
    cases = [dict(seed=0, period=4), dict(seed=1, on_bridge=True, n_layers=2, noise_positions=(0, 3), batch=4)]
    for kw in cases:
        model, tokens, noise, positions, metric_positions = _trace_case(**kw)
        expected = patching.causal_trace(model, tokens.clone(), noise.clone(), list(positions), metric_positions)
        with torch.no_grad():
            got = call("causal_trace", fn, {"model": model, "tokens": tokens, "noise": noise,
                                            "noise_positions": list(positions), "metric_positions": metric_positions})
        args = (model, tokens, noise, positions, metric_positions)
        with torch.no_grad():
            clean = patching.correct_logprob(model(tokens), tokens, metric_positions)
            noised = patching.noised_logprob(model, tokens, noise, positions, metric_positions)
        mistakes = {
            "you added noise at every position: noise only the positions in noise_positions, "
            "embed[:, noise_positions] += noise[:, noise_positions]":
                lambda: _trace_by(*args, noise_at=list(range(tokens.shape[1]))),
            # Restoring the noised run's own state changes nothing; leaving the noise out makes every run clean.
            "you restored the noised run's own state, which changes nothing (every entry 0): restore the "
            "CLEAN run's residual stream, from model.run_with_cache(tokens) without noise": torch.zeros_like(expected),
            "you forgot the noise in the restoring runs, so every run is the clean one (every entry 1): each "
            "run needs both hooks, the noise on hook_embed and the restoration": torch.ones_like(expected),
            "you returned raw log-probabilities: normalise them, 0 for the noised run and 1 for the clean run "
            "(normalized_metric)": expected * (clean - noised) + noised,
            "your map is transposed: rows are layers, columns are positions ([layer, pos])":
                lambda: expected.T.contiguous(),
            "you restored the residual stream leaving each layer (hook_resid_post): restore the one entering "
            "it, blocks.LAYER.hook_resid_pre": lambda: _trace_by(*args, where="resid_post"),
            "at layer 0 your noise ran after the restoration, on the same hook point, and undid it: add the "
            "noise on hook_embed, or pass the noise hook first":
                lambda: torch.cat([_trace_by(*args, noise_where="blocks.0.hook_resid_pre", noise_first=False, layers=[0]),
                                   expected[1:]]),
        }
        compare("causal_trace", got, expected, mistakes, atol=1e-4, axes="layer pos")
    done("causal_trace", len(cases))
