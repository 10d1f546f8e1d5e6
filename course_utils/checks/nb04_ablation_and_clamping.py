"""Checks for notebook 04, "Ablation and clamping": replacing one head's output, the loss with heads
ablated by hooks (zero, mean, resample), the all-head sweep, the costs of every combination of heads
(redundancy), removing a writer from a reader's keys (K-path ablation), and the perfect
previous-token pattern used for clamping."""

from __future__ import annotations

import itertools

import einops
import torch

from .. import ablation, clamping
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "ablate_head": ablation.ablate_head,
    "ablated_loss": ablation.ablated_loss,
    "ablation_effects": ablation.ablation_effects,
    "combination_costs": ablation.combination_costs,
    "keys_without": ablation.keys_without,
    "pattern_preserving_loss": ablation.pattern_preserving_loss,
    "perfect_prev_token_pattern": clamping.perfect_prev_token_pattern,
    "clamp_head_pattern": ablation.clamp_head_pattern,
}


def check_ablate_head(fn):
    """fn(z [batch, pos, head, d_head], head, replacement) -> z with that head's output replaced."""
    __tracebackhide__ = True
    cases = [("zero", (3, 5, 4, 6)), ("mean", (2, 6, 3, 4)), ("resample", (3, 4, 5, 2)), ("zero, as a float", (2, 3, 2, 3))]
    for seed, (kind, (batch, pos, heads, d_head)) in enumerate(cases):
        g = fixtures.generator(seed)
        z = torch.randn(batch, pos, heads, d_head, generator=g)
        other = torch.randn(batch, pos, d_head, generator=g)
        replacement = {"zero": torch.zeros(()), "mean": other.mean(0), "resample": other, "zero, as a float": 0.0}[kind]
        head = (1 + seed) % heads
        expected = ablation.ablate_head(z, head, replacement)
        got = call("ablate_head", fn, {"z": z, "head": head, "replacement": replacement})
        rep = torch.as_tensor(replacement, dtype=z.dtype).expand(batch, pos, d_head)

        def edited(edit):
            copy = z.clone()
            edit(copy)
            return copy

        mistakes = {
            "you replaced every head's output: only z[:, :, head] changes (the head axis is the third)":
                edited(lambda c: c.copy_(rep[:, :, None].expand_as(c))),
            "you added the replacement to the head's output: ablation REPLACES it":
                edited(lambda c: c[:, :, head].add_(rep)),
            "you zeroed the head whatever the replacement: set z[:, :, head] = replacement (zeros, the "
            "mean, or another input's output)": edited(lambda c: c[:, :, head].zero_()),
            "you indexed the position axis: z[:, head] is position `head`; the head axis is the third, "
            "z[:, :, head]": lambda: edited(lambda c: c[:, head].copy_(rep[:, head, None].expand_as(c[:, head]))),
            "you indexed the first axis, the batch: the head axis is the third, z[:, :, head]":
                lambda: edited(lambda c: c[head].copy_(rep[head, :, None].expand_as(c[head]))),
        }
        compare("ablate_head", got, expected, mistakes, axes="batch pos head d_head")
    done("ablate_head", len(cases))


def _unless_right(got, expected: torch.Tensor, mistakes: dict, atol: float) -> dict:
    """`mistakes`, or none when `got` is already right: building a mistake here means running the model,
    and a right answer needs none of them (compare names a mistake only for a wrong answer)."""
    if (isinstance(got, torch.Tensor) and got.dtype == expected.dtype and got.shape == expected.shape
            and got.device == expected.device and torch.allclose(got.detach(), expected, atol=atol)):
        return {}
    return mistakes


def _loss_with_replacement(model, tokens, replacements: dict):
    """Per-token loss with the z of each head (layer, head) in `replacements` replaced by its value there:
    how a check builds a wrong answer that the library's hooks do not produce."""
    by_layer = {}
    for (layer, head), value in replacements.items():
        by_layer.setdefault(layer, []).append((head, value))
    hooks = []
    for layer, here in by_layer.items():
        def hook(z, hook, here=here):
            for head, value in here:
                z = ablation.ablate_head(z, head, value)
            return z
        hooks.append((f"blocks.{layer}.attn.hook_z", hook))
    return ablation.loss_with_hooks(model, tokens, hooks)


def check_ablated_loss(fn):
    """fn(model, tokens, heads, method, reference_tokens) -> per-token loss [batch, pos - 1] with the
    heads ablated together."""
    __tracebackhide__ = True
    cases = [("zero", [(1, 2)], False), ("resample", [(1, 0), (1, 2)], False), ("mean", [(0, 1), (2, 0)], False),
             ("mean", [(2, 1), (2, 0)], True), ("resample", [(0, 2), (2, 1)], True)]
    for seed, (method, heads, on_bridge) in enumerate(cases):
        model = (fixtures.bridge if on_bridge else fixtures.model)(seed, n_layers=3, n_heads=3)
        g = fixtures.generator(seed)
        batch, seq = 3 + seed % 2, 7 + seed
        tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        reference_tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        expected = ablation.ablated_loss(model, tokens.clone(), list(heads), method, reference_tokens.clone())
        got = call("ablated_loss", fn, {"model": model, "tokens": tokens, "heads": list(heads), "method": method,
                                        "reference_tokens": reference_tokens})

        def z_on(which, layer, head):  # one head's z [batch, pos, d_head] on `which`
            name = f"blocks.{layer}.attn.hook_z"
            with torch.no_grad():
                _, cache = model.run_with_cache(which, names_filter=lambda n: n == name)
            return cache[name][:, :, head]

        def replacement(layer, head):  # what the right hook writes into the head
            z_ref = z_on(reference_tokens, layer, head)
            return {"zero": torch.zeros(()), "mean": z_ref.mean(0), "resample": z_ref}[method]

        mistakes = {
            "you took the replacement from `tokens` itself: mean and resample ablation take the heads' outputs "
            "from a run on `reference_tokens` (other inputs), or the head keeps its information":
                lambda: ablation.ablated_loss(model, tokens, heads, method, tokens),
            f"you zero-ablated although method={method!r}: 'mean' replaces a head's output by its mean over "
            f"reference_tokens, 'resample' by its output on reference_tokens":
                lambda: ablation.ablated_loss(model, tokens, heads, "zero"),
            "your loss is the clean loss: the heads were not ablated. Does your hook `return` the edited z, and "
            "did you run the model with model.run_with_hooks(tokens, fwd_hooks=...)?":
                lambda: ablation.loss_with_hooks(model, tokens, []),
            "you averaged the head's reference output over the positions too: mean ablation keeps one vector "
            "per position, the mean over the batch axis only (z_ref.mean(0), [pos, d_head])":
                lambda: _loss_with_replacement(model, tokens, {
                    (layer, head): z_on(reference_tokens, layer, head).mean((0, 1)) for layer, head in heads}),
            "you averaged over the positions, not the batch: mean ablation's replacement is the mean over "
            "the batch axis, one vector per position (z_ref.mean(0))":
                lambda: _loss_with_replacement(model, tokens, {
                    (layer, head): z_on(reference_tokens, layer, head).mean(1, keepdim=True) for layer, head in heads}),
            "only one head per layer was ablated: two hooks on the same hook point must both stay in the list "
            "(a dict keyed by hook name keeps only the last), and a hook defined in a loop must bind the loop's "
            "variables (`def hook(z, hook, head=head, replacement=replacement)`)":
                lambda: ablation.ablated_loss(model, tokens, list({layer: (layer, head) for layer, head in heads}.values()),
                                              method, reference_tokens),
            "only the last head in `heads` was ablated: a hook defined in a loop reads the loop variables when "
            "the model runs, not when the hook was defined, so every hook ablates the last head with the last "
            "replacement (bind them: `def hook(z, hook, head=head, replacement=replacement)`)":
                (lambda: _loss_with_replacement(model, tokens, {
                    (layer, heads[-1][1]): replacement(*heads[-1]) for layer, _ in heads}))
                if len(heads) > 1 else None,
        }
        compare("ablated_loss", got, expected, _unless_right(got, expected, mistakes, 1e-4), atol=1e-4, axes="batch pos")
    done("ablated_loss", len(cases))


def check_ablation_effects(fn):
    """fn(model, tokens, positions, method, reference_tokens) -> [n_layers, n_heads]: the rise in the
    mean loss at `positions` when each head alone is ablated."""
    __tracebackhide__ = True
    cases = [("zero", "slice"), ("mean", "mask"), ("resample", "slice")]
    for seed, (method, kind) in enumerate(cases):
        model = fixtures.model(seed, n_layers=3, n_heads=4 - seed % 2)
        g = fixtures.generator(seed)
        batch, seq = 3, 8 + seed
        tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        reference_tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        positions = slice(seq // 2, None) if kind == "slice" else torch.rand(batch, seq - 1, generator=g) < 0.5
        expected = ablation.ablation_effects(model, tokens.clone(), positions, method, reference_tokens.clone())
        got = call("ablation_effects", fn, {"model": model, "tokens": tokens, "positions": positions,
                                            "method": method, "reference_tokens": reference_tokens})
        if not _unless_right(got, expected, {"right": None}, 1e-4):
            continue  # right: nothing to diagnose, and the mistakes below cost a run per head
        n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
        clean = ablation.loss_with_hooks(model, tokens, [])
        ablated = torch.stack([torch.stack([ablation.ablated_loss(model, tokens, [(layer, head)], method, reference_tokens)
                                            for head in range(n_heads)]) for layer in range(n_layers)])

        def at(loss, reduce=torch.mean):  # [..., batch, pos - 1] -> [...]: the loss at `positions`
            if loss.ndim == 2:
                return reduce(loss[..., positions])
            return torch.stack([reduce(x[..., positions]) for x in loss.flatten(0, -3)]).reshape(loss.shape[:-2])

        mistakes = {
            "you returned the ablated loss itself: the effect is the ablated loss MINUS the clean loss "
            "(the same mean, at the same positions, without hooks)": at(ablated),
            "your sign is flipped: ablating a head the model needs RAISES the loss, so its effect is "
            "ablated minus clean, positive": at(clean) - at(ablated),
            "you averaged the loss over every position: average only the losses at `positions` "
            "(loss[..., positions])": ablated.mean((-2, -1)) - clean.mean(),
            "you divided the ablated loss by the clean one: the effect is their difference, in nats": at(ablated) / at(clean),
            "you summed the losses at `positions`: average them (.mean()), so that the effect does not grow "
            "with the number of positions": at(ablated, torch.sum) - at(clean, torch.sum),
            f"you zero-ablated every head although method={method!r}: pass `method` (and `reference_tokens`) "
            f"on to each ablation": (lambda: ablation.ablation_effects(model, tokens, positions, "zero"))
            if method != "zero" else None,
        }
        compare("ablation_effects", got, expected, mistakes, atol=1e-4, axes="layer head")
    done("ablation_effects", len(cases))


def check_combination_costs(fn):
    """fn(model, tokens, heads, positions, method, reference_tokens) -> [2 ** len(heads)]: entry m is the
    rise in mean loss at `positions` when the heads whose bit is set in m are ablated together."""
    __tracebackhide__ = True
    cases = [("zero", [(1, 0), (1, 2), (2, 1)], "slice"), ("resample", [(0, 2), (2, 0), (2, 2)], "mask"),
             ("mean", [(2, 1), (1, 1)], "slice")]
    for seed, (method, heads, kind) in enumerate(cases):
        model = fixtures.model(seed, n_layers=3, n_heads=3)
        g = fixtures.generator(seed)
        batch, seq = 3 + seed, 9
        tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        reference_tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        positions = slice(3, None) if kind == "slice" else torch.rand(batch, seq - 1, generator=g) < 0.5
        expected = ablation.combination_costs(model, tokens.clone(), list(heads), positions, method,
                                              reference_tokens.clone())
        got = call("combination_costs", fn, {"model": model, "tokens": tokens, "heads": list(heads),
                                             "positions": positions, "method": method,
                                             "reference_tokens": reference_tokens})
        n = len(heads)
        clean = ablation.loss_with_hooks(model, tokens, [])[..., positions].mean()

        def subset(mask, order=heads):
            return [lh for i, lh in enumerate(order) if mask >> i & 1]

        def cost(subset_heads):
            if not subset_heads:
                return torch.zeros(())
            return ablation.ablated_loss(model, tokens, subset_heads, method, reference_tokens)[..., positions].mean() - clean

        def one_per_layer(subset_heads):  # the last of each layer's heads
            return list({layer: (layer, head) for layer, head in subset_heads}.values())

        by_size = [[]] + [list(c) for k in range(1, n + 1) for c in itertools.combinations(heads, k)]
        mistakes = {
            "your bits run the other way: bit i of the entry's index (mask >> i & 1) stands for heads[i], "
            "so entry 1 is heads[0] alone and entry 2 ** (n - 1) is heads[-1] alone":
                lambda: torch.stack([cost(subset(m, heads[::-1])) for m in range(2 ** n)]),
            "you added up the single heads' costs: measure each combination by ablating its heads together "
            "in one run (whether the costs add up is what the exercise asks)":
                lambda: torch.stack([sum((expected[1 << i] for i in range(n) if m >> i & 1), torch.zeros(()))
                                     for m in range(2 ** n)]),
            "only one head per layer was ablated in each combination: two hooks on the same hook point must "
            "both stay in the list (a dict keyed by hook name keeps only the last)":
                lambda: torch.stack([cost(one_per_layer(subset(m))) for m in range(2 ** n)]),
            "your entries are in the order of itertools.combinations (by size): entry m is the combination of "
            "the heads whose bits are set in m, e.g. entry 3 = heads[0] and heads[1]":
                lambda: torch.stack([cost(c) for c in by_size]),
            "you returned the ablated losses: each cost is the ablated loss MINUS the clean loss, and entry 0 "
            "(nothing ablated) is 0": lambda: torch.stack([cost(subset(m)) + clean for m in range(2 ** n)]),
            f"you zero-ablated although method={method!r}: pass `method` (and `reference_tokens`) on to each "
            f"ablation": (lambda: ablation.combination_costs(model, tokens, heads, positions, "zero"))
            if method != "zero" else None,
        }
        compare("combination_costs", got, expected, _unless_right(got, expected, mistakes, 1e-4), atol=1e-4,
                axes="subset")
    done("combination_costs", len(cases))


def check_keys_without(fn):
    """fn(k [batch, pos, head, d_head], removed [batch, pos, d_model], W_K [head, d_model, d_head], head) -> new k."""
    __tracebackhide__ = True
    shapes = [(2, 5, 3, 4, 8), (3, 6, 4, 2, 8), (1, 4, 2, 5, 5)]  # (batch, pos, heads, d_head, d_model)
    for seed, (batch, pos, heads, d_head, d_model) in enumerate(shapes):
        g = fixtures.generator(seed)
        k = torch.randn(batch, pos, heads, d_head, generator=g)
        removed = torch.randn(batch, pos, d_model, generator=g)
        W_K = torch.randn(heads, d_model, d_head, generator=g)
        head = (seed + 1) % heads
        expected = ablation.keys_without(k, removed, W_K, head)
        got = call("keys_without", fn, {"k": k, "removed": removed, "W_K": W_K, "head": head})
        image = removed @ W_K[head]
        added, dropped = k.clone(), k.clone()
        added[:, :, head] += image
        dropped[:, :, head] = 0
        mistakes = {
            "you added the writer's contribution: to remove it from the keys, subtract removed @ W_K[head]": added,
            "you removed it from every head's keys: only the reader head's keys change":
                k - einops.einsum(removed, W_K, "batch pos d_model, head d_model d_head -> batch pos head d_head"),
            "you zeroed the head's keys: that removes everything it reads, not only the writer's part": dropped,
            "you returned only the head's keys [batch, pos, d_head]: return all the keys, with that head's changed":
                expected[:, :, head],
            "you multiplied by W_K[head].T: W_K[head] is [d_model, d_head], so removed @ W_K[head]":
                lambda: torch.cat([k[:, :, :head], (k[:, :, head] - removed @ W_K[head].T)[:, :, None],
                                   k[:, :, head + 1:]], 2),
        }
        compare("keys_without", got, expected, mistakes, atol=1e-4, axes="batch pos head d_head")
    done("keys_without", len(shapes))


def check_perfect_prev_token_pattern(fn):
    """fn(n_ctx) -> [n_ctx, n_ctx] float: query i attends only to key i - 1; query 0 to itself."""
    __tracebackhide__ = True
    sizes = (4, 7, 2)
    for n in sizes:
        expected = clamping.perfect_prev_token_pattern(n)
        got = call("perfect_prev_token_pattern", fn, {"n_ctx": n})
        no_first = expected.clone()
        no_first[0, 0] = 0
        mistakes = {
            "you put the ones above the diagonal (offset +1): that is attention to the NEXT token, which "
            "the causal mask forbids; the previous token is diagonal offset -1":
                torch.diag(torch.ones(n - 1), diagonal=1),
            "the pattern is the identity: each token attends to itself, not to the one before it": torch.eye(n),
            "row 0 is all zeros, so it does not sum to 1: query 0 has no previous token, let it attend to "
            "itself": no_first,
            "your pattern is transposed: rows are queries, columns are keys": expected.T,
            "that is uniform attention over the past (every earlier key equally): a previous-token head puts "
            "all its attention on the one key just before the query":
                torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None],
        }
        compare("perfect_prev_token_pattern", got, expected, mistakes, axes="query_pos key_pos")
    done("perfect_prev_token_pattern", len(sizes))


def check_pattern_preserving_loss(fn):
    """fn(model, tokens, heads, method, reference_tokens) -> per-token loss [batch, pos - 1] with the heads
    ablated and every head of every later layer held at its clean attention pattern."""
    __tracebackhide__ = True
    cases = [("zero", [(0, 1)], False), ("resample", [(0, 2), (1, 0)], False), ("mean", [(1, 2)], True),
             ("zero", [(0, 0)], True)]
    for seed, (method, heads, on_bridge) in enumerate(cases):
        model = (fixtures.bridge if on_bridge else fixtures.model)(seed, n_layers=3, n_heads=3)
        g = fixtures.generator(seed)
        batch, seq = 2 + seed % 2, 6 + seed
        tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        reference_tokens = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
        expected = ablation.pattern_preserving_loss(model, tokens.clone(), list(heads), method, reference_tokens.clone())
        got = call("pattern_preserving_loss", fn, {"model": model, "tokens": tokens, "heads": list(heads),
                                                   "method": method, "reference_tokens": reference_tokens})
        first = min(layer for layer, _ in heads)

        def frozen(layers, patterns_from=tokens):
            later = [(layer, h) for layer in layers for h in range(model.cfg.n_heads)]
            hooks = ablation.ablation_hooks(model, heads, method, reference_tokens)
            if later:
                hooks += ablation.freeze_pattern_hooks(model, ablation.clean_patterns(model, patterns_from), later)
            return ablation.loss_with_hooks(model, tokens, hooks)

        mistakes = {
            "your loss is the plain ablation's: the later layers' patterns moved. Hold them at their CLEAN values, "
            "cached from a run on `tokens` without any ablation, not at the patterns of the ablated run":
                lambda: ablation.ablated_loss(model, tokens, heads, method, reference_tokens),
            "your loss is the clean loss: you held the patterns but did not ablate the heads":
                lambda: ablation.loss_with_hooks(model, tokens, []),
            "you froze only the next layer's patterns: hold EVERY later layer's, since a change in layer L+1 "
            "moves layer L+2's attention too": (lambda: frozen([first + 1])) if first + 2 < model.cfg.n_layers else None,
            "you froze the patterns of the run on `reference_tokens`: the clean patterns come from `tokens`, the "
            "input whose loss you measure": lambda: frozen(range(first + 1, model.cfg.n_layers), reference_tokens),
        }
        compare("pattern_preserving_loss", got, expected, _unless_right(got, expected, mistakes, 1e-4), atol=1e-4,
                axes="batch pos")
    done("pattern_preserving_loss", len(cases))


def check_clamp_head_pattern(fn):
    """fn(pattern [batch, head, query_pos, key_pos], head, target [n_ctx, n_ctx]) -> pattern with that head's
    attention replaced by the target, cut to the run's length."""
    __tracebackhide__ = True
    cases = [(2, 3, 5, 8, 1), (1, 4, 6, 6, 3), (3, 2, 4, 9, 0)]  # (batch, heads, seq, n_ctx, head)
    for seed, (batch, heads, seq, n_ctx, head) in enumerate(cases):
        pattern = fixtures.causal_patterns(seed, batch, heads, seq)
        target = fixtures.causal_patterns(seed + 10, 1, 1, n_ctx)[0, 0]
        expected = ablation.clamp_head_pattern(pattern.clone(), head, target.clone())
        got = call("clamp_head_pattern", fn, {"pattern": pattern, "head": head, "target": target})

        def edited(edit):
            copy = pattern.clone()
            edit(copy)
            return copy

        mistakes = {
            "you clamped every head: only pattern[:, head] changes (the head axis is the second)":
                edited(lambda c: c.copy_(target[:seq, :seq].expand_as(c))),
            "you added the target to the head's pattern: clamping REPLACES it (and rows must still sum to 1)":
                edited(lambda c: c[:, head].add_(target[:seq, :seq])),
            "you cut the target from its end (target[-n:, -n:]): the run's positions are the FIRST n of n_ctx":
                edited(lambda c: c[:, head].copy_(target[-seq:, -seq:].expand_as(c[:, head]))),
            "you indexed the first axis, the batch: the head axis is the second, pattern[:, head]":
                lambda: edited(lambda c: c[head].copy_(target[:seq, :seq].expand_as(c[head]))),
            "your clamped head's pattern is transposed: rows are queries, columns are keys":
                edited(lambda c: c[:, head].copy_(target[:seq, :seq].T.expand_as(c[:, head]))),
        }
        compare("clamp_head_pattern", got, expected, mistakes, axes="batch head query_pos key_pos")
    done("clamp_head_pattern", len(cases))
