"""Checks for notebook 12, "One direction": the mean-difference direction, the directional-ablation
hooks, the addition hook, the random-direction control, the layer sweep and the effects of a
steering vector."""

from __future__ import annotations

import torch

from .. import refusal
from ..request_tasks import RequestBatch
from . import fixtures
from .framework import ExerciseError, _kind, call, compare, done

REFERENCES = {
    "mean_difference": refusal.mean_difference,
    "ablation_hooks": refusal.ablation_hooks,
    "addition_hook": refusal.addition_hook,
    "random_control": refusal.random_control,
    "direction_layer_sweep": refusal.direction_layer_sweep,
    "steering_effects": refusal.steering_effects,
}

# (seed, batch, request length, n_layers): models of 2 to 4 layers with MLPs, LayerNorm, non-zero biases
_CASES = [(0, 5, 7, 3), (1, 3, 5, 2), (2, 6, 9, 4)]


def _setup(seed: int, batch: int, seq: int, n_layers: int):
    model = fixtures.model(seed, n_layers=n_layers, n_heads=3, d_model=12)
    g = fixtures.generator(seed)
    refused = fixtures.tokens(g, batch, seq, model.cfg.d_vocab)
    harmless = fixtures.tokens(g, batch + 1, seq, model.cfg.d_vocab)  # another size: a mean over both shows
    return model, refused, harmless, g


def _batch(tokens: torch.Tensor, g: torch.Generator, d_vocab: int, refused: bool) -> RequestBatch:
    n = tokens.shape[0]
    return RequestBatch(tokens=tokens, answers=torch.randint(0, d_vocab, (n,), generator=g),
                        task_answers=torch.randint(0, d_vocab, (n,), generator=g),
                        refused=torch.full((n,), refused))


def _last(model, tokens, name):
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    return cache[name][:, -1]


def check_mean_difference(fn):
    """fn(model, refused [batch, pos], harmless [batch, pos], layer) -> [d_model]."""
    __tracebackhide__ = True
    cases = [(c, layer) for c, layer in zip(_CASES, (1, 2, 4))]  # layer 4 of 4: after the last block
    for (seed, batch, seq, n_layers), layer in cases:
        model, refused, harmless, _ = _setup(seed, batch, seq, n_layers)
        expected = refusal.mean_difference(model, refused, harmless, layer)
        got = call("mean_difference", fn, {"model": model, "refused": refused, "harmless": harmless, "layer": layer})
        name = refusal.resid_name(model, layer)

        def diff(hook_name, pos=-1):
            def mean(tokens):
                with torch.no_grad():
                    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook_name)
                return cache[hook_name][:, pos].mean(0) if pos is not None else cache[hook_name].mean((0, 1))
            return mean(refused) - mean(harmless)

        mistakes = {
            "you subtracted the other way round: refused minus harmless, so that adding the direction "
            "pushes toward refusal": -expected,
            "you normalised the direction: keep its length (the distance between the two means); "
            "adding it later must move a harmless request as far as a refused one": expected / expected.norm(),
            "you averaged over every position: take the last position only (where the answer is read)":
                lambda: diff(name, None),
            "you read the residual stream at the first position: take the last one, [:, -1]": lambda: diff(name, 0),
            f"you read blocks.{layer}.hook_resid_post, one block too late: layer {layer} is the stream "
            f"before block {layer}, blocks.{layer}.hook_resid_pre": lambda: diff(f"blocks.{layer}.hook_resid_post"),
            f"you read blocks.{layer - 1}.hook_resid_pre, one block too early": lambda: diff(f"blocks.{layer - 1}.hook_resid_pre"),
        }
        compare("mean_difference", got, expected, mistakes, atol=1e-4, axes="d_model")
    done("mean_difference", len(cases))


def _hooks_answer(name: str, got) -> list:
    """The learner's hooks as a list of (name, function) pairs, or a clear error."""
    __tracebackhide__ = True
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], str):
        got = [got]  # one (name, hook) pair
    if not isinstance(got, (list, tuple)) or not all(
            isinstance(h, (tuple, list)) and len(h) == 2 and isinstance(h[0], str) and callable(h[1]) for h in got):
        raise ExerciseError(f"[{name}] expected a list of (hook name, hook function) pairs, as run_with_hooks takes "
                            f"them, got {_kind(got)}")
    return list(got)


def _logits_with(name: str, model, tokens, hooks) -> torch.Tensor:
    __tracebackhide__ = True
    try:
        with torch.no_grad():
            return model.run_with_hooks(tokens, fwd_hooks=hooks)
    except Exception as err:
        raise ExerciseError(f"[{name}] running the model with your hooks raised {type(err).__name__}: {err}") from None


def _project_hooks(names, direction, positions=slice(None), unit=True):
    r = direction / direction.norm() if unit else direction

    def hook(x, hook):
        x = x.clone()
        x[:, positions] = x[:, positions] - (x[:, positions] @ r)[..., None] * r
        return x
    return [(n, hook) for n in names]


def check_ablation_hooks(fn):
    """fn(model, direction [d_model]) -> [(hook name, hook)]: the direction projected out of every
    writer to the residual stream. Judged by the logits of the model run with the hooks."""
    __tracebackhide__ = True
    for seed, batch, seq, n_layers in _CASES:
        model, tokens, _, g = _setup(seed, batch, seq, n_layers)
        direction = torch.randn(model.cfg.d_model, generator=g) * 3
        expected = _logits_with("ablation_hooks", model, tokens, refusal.ablation_hooks(model, direction))
        got = _hooks_answer("ablation_hooks", call("ablation_hooks", fn, {"model": model, "direction": direction}))
        got = _logits_with("ablation_hooks", model, tokens, got)
        names = refusal.ablation_hook_names(model)
        layers = range(n_layers)

        def run(hooks):
            return lambda: _logits_with("ablation_hooks", model, tokens, hooks)

        mistakes = {
            "your logits are the model's own: the hooks changed nothing (does each hook return the projected "
            "activation?)": run([]),
            "you projected with the direction as it is, not the unit direction: x - (x . r) r needs |r| = 1":
                run(_project_hooks(names, direction, unit=False)),
            "you left out the embeddings: hook_embed and hook_pos_embed write into the residual stream too":
                run(_project_hooks(names[2:], direction)),
            "you left out the MLPs: every blocks.L.hook_mlp_out writes into the residual stream too":
                run(_project_hooks([n for n in names if "mlp" not in n], direction)),
            "you left out the attention outputs: every blocks.L.hook_attn_out writes into the residual stream too":
                run(_project_hooks([n for n in names if "attn" not in n], direction)),
            "you projected at the last position only: ablate at every position (later positions read earlier "
            "ones through attention)": run(_project_hooks(names, direction, positions=-1)),
            "you projected the residual stream before each block (hook_resid_pre): what the last block writes "
            "is then never projected; project each writer's output instead":
                run(_project_hooks([f"blocks.{layer}.hook_resid_pre" for layer in layers], direction)),
        }
        compare("ablation_hooks", got, expected, mistakes, atol=1e-4, axes="batch pos d_vocab")
    done("ablation_hooks", len(_CASES))


def check_addition_hook(fn):
    """fn(model, vector [d_model], layer) -> (hook name, hook): the vector added to the residual
    stream at `layer`, at the last position. Judged by the logits with the hook."""
    __tracebackhide__ = True
    cases = [(c, layer) for c, layer in zip(_CASES, (1, 2, 2))]
    cases.append(((3, 4, 6, 2), 2))  # layer n_layers: after the last block
    for (seed, batch, seq, n_layers), layer in cases:
        model, tokens, _, g = _setup(seed, batch, seq, n_layers)
        vector = torch.randn(model.cfg.d_model, generator=g) * 3
        expected = _logits_with("addition_hook", model, tokens, [refusal.addition_hook(model, vector, layer)])
        got = _hooks_answer("addition_hook", call("addition_hook", fn, {"model": model, "vector": vector, "layer": layer}))
        got = _logits_with("addition_hook", model, tokens, got)

        def added(hook_name, positions=-1, sign=1.0):
            def hook(x, hook):
                x = x.clone()
                x[:, positions] += sign * vector
                return x
            return lambda: _logits_with("addition_hook", model, tokens, [(hook_name, hook)])

        name = refusal.resid_name(model, layer)
        mistakes = {
            "your logits are the model's own: the vector was not added (does your hook return the changed "
            "activation?)": added(name, sign=0.0),
            "you added the vector at every position: add it at the last position only": added(name, slice(None)),
            "you subtracted the vector: add it": added(name, sign=-1.0),
            "you added the unit vector: add the vector itself, with its length": lambda: _logits_with(
                "addition_hook", model, tokens, [refusal.addition_hook(model, vector / vector.norm(), layer)]),
        }
        if layer < n_layers:
            mistakes[f"you added it after block {layer} (hook_resid_post): layer {layer} is the stream before "
                     f"block {layer}, blocks.{layer}.hook_resid_pre"] = added(f"blocks.{layer}.hook_resid_post")
        else:
            mistakes[f"layer {layer} = n_layers is the stream after the last block: "
                     f"blocks.{n_layers - 1}.hook_resid_post"] = added(f"blocks.{n_layers - 1}.hook_resid_pre")
        compare("addition_hook", got, expected, mistakes, atol=1e-4, axes="batch pos d_vocab")
    done("addition_hook", len(cases))


def _batches(value) -> list[RequestBatch]:
    if isinstance(value, RequestBatch):
        return [value]
    if isinstance(value, (tuple, list)):
        return [b for v in value for b in _batches(v)]
    return []


def _call(name: str, fn, inputs: dict):
    """`framework.call`, and the request batches among the inputs (alone or in pairs) unchanged too."""
    __tracebackhide__ = True
    before = {arg: [[t.clone() for t in (b.tokens, b.answers, b.task_answers, b.refused)] for b in _batches(v)]
              for arg, v in inputs.items()}
    answer = call(name, fn, inputs)
    for arg, copies in before.items():
        for b, saved in zip(_batches(inputs[arg]), copies):
            if any(not torch.equal(t, c) for t, c in zip((b.tokens, b.answers, b.task_answers, b.refused), saved)):
                b.tokens, b.answers, b.task_answers, b.refused = saved
                raise ExerciseError(f"[{name}] your function changed its input `{arg}` in place (a request batch's "
                                    f"tensors): clone a tensor before writing into it. (The check has put it back.)")
    return answer


def _float(x) -> torch.Tensor:
    """A wrong answer that is a number, as `compare` takes it."""
    return torch.tensor(float(x), dtype=torch.float64)


def _top_answer(model, tokens, hooks=()) -> int:
    """The token the model most often puts on top: used as <refuse>, so that refusal rates are not all 0."""
    with torch.no_grad():
        return int(model.run_with_hooks(tokens, fwd_hooks=list(hooks))[:, -1].argmax(-1).mode().values)


def _refusal_setup(seed, batch, seq, n_layers):
    model, refused, harmless, g = _setup(seed, batch, seq, n_layers)
    refuse = _top_answer(model, refused)
    d_vocab = model.cfg.d_vocab
    return model, _batch(refused, g, d_vocab, True), _batch(harmless, g, d_vocab, False), refuse, g


def check_random_control(fn):
    """fn(model, refused, harmless, direction, layer, refuse, n, seed) -> [n, 2]."""
    __tracebackhide__ = True
    cases = [(c, layer, n) for c, layer, n in zip(_CASES, (1, 2, 3), (4, 3, 5))]
    for (seed, batch, seq, n_layers), layer, n in cases:
        model, refused, harmless, refuse, g = _refusal_setup(seed, 24, seq, n_layers)
        direction = torch.randn(model.cfg.d_model, generator=g) * 8
        inputs = {"model": model, "refused": refused, "harmless": harmless, "direction": direction, "layer": layer,
                  "refuse": refuse, "n": n, "seed": seed}
        expected = refusal.random_control(*inputs.values())
        got = _call("random_control", fn, inputs)
        randoms = refusal.random_directions(direction, n, seed)

        def rows(ablate_on, add_on, vectors=randoms, ablate_col=True):
            out = []
            for r in vectors:
                a = refusal.behaviour(model, ablate_on, refuse, refusal.ablation_hooks(model, r))["refusal"]
                b = refusal.behaviour(model, add_on, refuse, [refusal.addition_hook(model, r, layer)])["refusal"]
                out.append([a, b] if ablate_col else [b, a])
            return torch.tensor(out)

        unit = randoms / randoms.norm(dim=-1, keepdim=True)
        mistakes = {
            "your columns are swapped: [refusal of refused requests with the vector ablated, refusal of "
            "harmless ones with it added]": lambda: rows(refused, harmless, ablate_col=False),
            "you measured both on the same requests: ablate on the refused requests (does refusal survive?), "
            "add on the harmless ones (does refusal appear?)": lambda: rows(harmless, harmless),
            "your random vectors have unit norm: the control must have the direction's norm "
            "(refusal.random_directions(direction, n, seed) draws them)": lambda: rows(refused, harmless, unit),
            "you used the direction itself in every row: the control uses random vectors "
            "(refusal.random_directions(direction, n, seed))": lambda: rows(refused, harmless, direction[None].expand(n, -1)),
        }
        compare("random_control", got, expected, mistakes, atol=1e-6, axes="random 2")
    done("random_control", len(cases))


def check_direction_layer_sweep(fn):
    """fn(model, train (refused, harmless), test (refused, harmless), refuse) -> [n_layers + 1, 2]."""
    __tracebackhide__ = True
    for seed, batch, seq, n_layers in _CASES:
        model, refused, harmless, refuse, g = _refusal_setup(seed, 24, seq, n_layers)
        _, refused2, harmless2, _, _ = _refusal_setup(seed + 10, 20, seq, n_layers)
        train, test = (refused, harmless), (refused2, harmless2)
        inputs = {"model": model, "train": train, "test": test, "refuse": refuse}
        expected = refusal.direction_layer_sweep(*inputs.values())
        got = _call("direction_layer_sweep", fn, inputs)

        def sweep(found_on, measured_on, layers_shift=0, add_layer_shift=0):
            out = []
            for layer in range(n_layers + 1):
                d = refusal.mean_difference(model, found_on[0].tokens, found_on[1].tokens, min(layer + layers_shift, n_layers))
                add_at = min(layer + add_layer_shift, n_layers)
                out.append([refusal.separation(model, measured_on[0].tokens, measured_on[1].tokens, d, layer),
                            refusal.behaviour(model, measured_on[1], refuse, [refusal.addition_hook(model, d, add_at)])["refusal"]])
            return torch.tensor(out)

        mistakes = {
            "you measured on the prompts the direction was found on: find it on `train`, measure on `test` "
            "(held-out requests)": lambda: sweep(train, train),
            "you added each layer's direction one layer later than it was found: add it where you found it":
                lambda: sweep(train, test, add_layer_shift=1),
            "you left out the last layer: layers run from 0 (the embeddings) to n_layers (after the last block)":
                lambda: expected[:-1],
            "you left out layer 0: layers run from 0 (the embeddings) to n_layers (after the last block)":
                lambda: expected[1:],
        }
        compare("direction_layer_sweep", got, expected, mistakes, atol=1e-6, axes="layer measure")
    done("direction_layer_sweep", len(_CASES))


def check_steering_effects(fn):
    """fn(model, harmless, vector, layer, refuse) -> {"refusal": float, "accuracy_beneath": float}."""
    __tracebackhide__ = True
    cases = [(c, layer) for c, layer in zip(_CASES, (1, 2, 3))]
    for (seed, batch, seq, n_layers), layer in cases:
        model, _, harmless, _, g = _refusal_setup(seed, 30, seq, n_layers)
        # <refuse> is the vector's most frequent top answer, and the right answers are, for two requests
        # in three, the top answer other than it: so that neither rate is 0 or 1
        vector = torch.randn(model.cfg.d_model, generator=g) * 6
        refuse = _top_answer(model, harmless.tokens, [refusal.addition_hook(model, vector, layer)])
        with torch.no_grad():
            logits = model.run_with_hooks(harmless.tokens, fwd_hooks=[refusal.addition_hook(model, vector, layer)])[:, -1]
        logits[:, refuse] = -torch.inf
        answers = torch.where(torch.arange(len(logits)) % 3 == 0, harmless.answers, logits.argmax(-1))
        harmless = RequestBatch(harmless.tokens, answers, harmless.task_answers, harmless.refused)
        # and a refuse token that the vector makes the top answer of some requests
        inputs = {"model": model, "harmless": harmless, "vector": vector, "layer": layer, "refuse": refuse}
        expected = refusal.steering_effects(*inputs.values())
        got = _call("steering_effects", fn, inputs)
        if not isinstance(got, dict) or set(got) != {"refusal", "accuracy_beneath"}:
            raise ExerciseError(f"[steering_effects] expected a dict with the keys 'refusal' and 'accuracy_beneath', "
                                f"got {_kind(got)}" + (f" with keys {sorted(got)}" if isinstance(got, dict) else ""))
        with torch.no_grad():
            plain = model(harmless.tokens)[:, -1]
        steered = model.run_with_hooks(harmless.tokens, fwd_hooks=[refusal.addition_hook(model, vector, layer)])[:, -1].detach()
        compare("steering_effects (refusal)", got["refusal"], expected["refusal"], {
            "your refusal rate is the model's own: add the vector (refusal.addition_hook) before you measure":
                _float((plain.argmax(-1) == refuse).float().mean().item())}, atol=1e-6)
        masked_plain = plain.clone()
        masked_plain[:, refuse] = -torch.inf
        compare("steering_effects (accuracy_beneath)", got["accuracy_beneath"], expected["accuracy_beneath"], {
            "you measured the plain accuracy: take the top answer other than <refuse> (set its logit to -inf first)":
                _float((steered.argmax(-1) == harmless.answers).float().mean().item()),
            "you measured accuracy_beneath without the vector: measure it on the steered logits":
                _float((masked_plain.argmax(-1) == harmless.answers).float().mean().item()),
            "you measured accuracy_beneath on the requests not refused only: count every request":
                lambda: _float((steered.argmax(-1) == harmless.answers)[steered.argmax(-1) != refuse].float().mean().item()),
        }, atol=1e-6)
    done("steering_effects", len(cases))
