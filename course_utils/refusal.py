"""One direction (Arditi et al. 2024), the tools of notebook 12: refusal found, removed and induced.

The model of notebook 12 (`zoo.load("request_tasks")`) answers prompts `task args... ->` and refuses
(answers <refuse>) those that mention a forbidden item (`request_tasks.Requests`). At the last position,
the residual stream of refused and of harmless prompts differ, on average, by one vector:

- `mean_difference`: mean residual stream of refused prompts minus that of harmless ones, at the
  last position of a layer: the candidate "refusal direction";
- `ablation_hooks`: hooks that project a direction out of everything written into the residual
  stream (embeddings, every attention and MLP output), at every position: with them the stream
  never holds any component along the direction;
- `addition_hook`: a hook that adds a vector to the residual stream at the last position of a layer;
- `random_directions`: random vectors of the same norm as a given one: the control;
- `separation`: how well the projection on a direction tells the two kinds apart on held-out prompts;
- `behaviour`: refusal rate and task accuracy of the model on a batch of prompts, under any hooks;
- `random_control`: what random vectors of the same norm do when ablated or added (the control);
- `direction_layer_sweep`, `ablation_sweep`: for each layer, the separation and what adding (or
  ablating) the direction found there does;
- `one_pair_vector`, `refusal_function_vector`, `steering_effects`: three ways to steer toward
  refusal (Turner et al.'s activation addition from one pair, the mean difference over many pairs,
  Todd et al.'s function vector) and what each does and breaks;
- `study`: every number notebook 12 asserts (its seed study runs it on every seed).

"Layer" L names the residual stream before block L (`blocks.L.hook_resid_pre`); L = n_layers is
the stream after the last block (`blocks.{n_layers - 1}.hook_resid_post`), what the unembedding reads.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import function_vectors as fv
from . import validate
from .request_tasks import RequestBatch, Requests


def resid_name(model, layer: int) -> str:
    """The hook name of the residual stream at `layer` (0 .. n_layers): before block `layer`, or after the last."""
    validate.model(model)
    n = model.cfg.n_layers
    validate.int_in(layer, 0, n, "layer", f"0 .. n_layers = {n} (n_layers: after the last block)")
    return f"blocks.{layer}.hook_resid_pre" if layer < n else f"blocks.{n - 1}.hook_resid_post"


def last_resid(model, tokens: Int[Tensor, "batch pos"], layer: int) -> Float[Tensor, "batch d_model"]:
    """The residual stream at the last position of `layer` for each request: [batch, d_model]."""
    name = resid_name(model, layer)
    validate.tokens(tokens, model.cfg)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    return cache[name][:, -1]


def mean_difference(model, refused: Int[Tensor, "batch pos"], harmless: Int[Tensor, "batch pos"],
                    layer: int) -> Float[Tensor, " d_model"]:
    """Mean residual stream at the last position of `layer` over the refused prompts, minus the mean
    over the harmless ones: [d_model]. Not normalised: its norm is the distance between the two means."""
    return last_resid(model, refused, layer).mean(0) - last_resid(model, harmless, layer).mean(0)


def _unit(direction: Tensor, name: str = "direction") -> Tensor:
    validate.tensor(direction, name, "d_model", dtype="float")
    validate.finite(direction, name)
    validate.nonzero(direction, name, "a direction needs a non-zero vector")
    return direction / direction.norm()


def ablation_hook_names(model) -> list[str]:
    """Every hook point whose output is added into the residual stream: the two embeddings, and each
    block's attention output and (if it has MLPs) MLP output."""
    validate.model(model)
    names = ["hook_embed", "hook_pos_embed"]
    for layer in range(model.cfg.n_layers):
        names.append(f"blocks.{layer}.hook_attn_out")
        if not model.cfg.attn_only:
            names.append(f"blocks.{layer}.hook_mlp_out")
    return names


def ablation_hooks(model, direction: Float[Tensor, " d_model"]) -> list[tuple[str, object]]:
    """[(hook name, hook)]: each hook takes the component along `direction` out of one writer to the
    residual stream (x - (x . r) r, r the unit direction), at every position. Since the stream is the
    sum of what they write, with all of them in place it holds no component along the direction."""
    validate.model(model)
    unit = _unit(direction)

    def project_out(activation, hook):  # [batch, pos, d_model]
        r = unit.to(activation.device, activation.dtype)
        return activation - (activation @ r)[..., None] * r
    return [(name, project_out) for name in ablation_hook_names(model)]


def addition_hook(model, vector: Float[Tensor, " d_model"], layer: int) -> tuple[str, object]:
    """(hook name, hook) that adds `vector` to the residual stream at `layer` (0 .. n_layers), at the
    last position only: where the answer is read, and where the direction was measured."""
    name = resid_name(model, layer)
    validate.tensor(vector, "vector", "d_model", dtype="float")
    validate.finite(vector, "vector")
    validate.shape_is(vector, "vector", (model.cfg.d_model,), "[d_model]")

    def add(resid, hook):  # [batch, pos, d_model]
        resid = resid.clone()
        resid[:, -1] += vector.to(resid.device, resid.dtype)
        return resid
    return (name, add)


def random_directions(vector: Float[Tensor, " d_model"], n: int, seed: int = 0) -> Float[Tensor, "n d_model"]:
    """n random vectors (Gaussian directions, uniform on the sphere) with the same norm as `vector`: [n, d_model]."""
    validate.tensor(vector, "vector", "d_model", dtype="float")
    validate.finite(vector, "vector")
    validate.positive(n=n)
    validate.integer(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    random = torch.randn(n, vector.shape[0], generator=gen, dtype=vector.dtype).to(vector.device)
    return random / random.norm(dim=-1, keepdim=True) * vector.norm()


def separation(model, refused: Int[Tensor, "batch pos"], harmless: Int[Tensor, "batch pos"],
               direction: Float[Tensor, " d_model"], layer: int) -> float:
    """How well the projection on `direction` at `layer` tells refused from harmless prompts: the
    balanced accuracy of a threshold halfway between the two kinds' mean projections (0.5: chance,
    and what a zero direction gives)."""
    validate.tensor(direction, "direction", "d_model", dtype="float")
    validate.finite(direction, "direction")
    on_refused = last_resid(model, refused, layer) @ direction.to(refused.device)
    on_harmless = last_resid(model, harmless, layer) @ direction.to(harmless.device)
    threshold = (on_refused.mean() + on_harmless.mean()) / 2
    return ((on_refused > threshold).float().mean().item() + (on_harmless <= threshold).float().mean().item()) / 2


def predictions(model, tokens: Int[Tensor, "batch pos"], hooks=()) -> Int[Tensor, " batch"]:
    """The model's answer (top token at the last position) to each request, under `hooks`: [batch]."""
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks))
    return logits[:, -1].argmax(-1)


def behaviour(model, batch: RequestBatch, refuse: int, hooks=()) -> dict[str, float]:
    """{"refusal": share of answers that are `refuse`, "accuracy": share equal to the right answer,
    "task": share equal to the task's answer (what a refused request would get if the model did it)}."""
    validate.instance(batch, RequestBatch, "batch")
    validate.integer(refuse=refuse)
    got = predictions(model, batch.tokens, hooks)
    return {"refusal": (got == refuse).float().mean().item(),
            "accuracy": (got == batch.answers.to(got.device)).float().mean().item(),
            "task": (got == batch.task_answers.to(got.device)).float().mean().item()}


def random_control(model, refused: RequestBatch, harmless: RequestBatch, direction: Float[Tensor, " d_model"],
                   layer: int, refuse: int, n: int, seed: int = 0) -> Float[Tensor, "n 2"]:
    """The control: for each of n random vectors of the direction's norm (`random_directions(direction,
    n, seed)`), [refusal rate of the refused prompts with it ablated, refusal rate of the harmless
    prompts with it added at `layer`]: [n, 2]. The direction itself gives about [0, 1]."""
    validate.instance(refused, RequestBatch, "refused")
    validate.instance(harmless, RequestBatch, "harmless")
    rows = []
    for r in random_directions(direction, n, seed):
        rows.append([behaviour(model, refused, refuse, ablation_hooks(model, r))["refusal"],
                     behaviour(model, harmless, refuse, [addition_hook(model, r, layer)])["refusal"]])
    return torch.tensor(rows)


def direction_layer_sweep(model, train: tuple[RequestBatch, RequestBatch], test: tuple[RequestBatch, RequestBatch],
                          refuse: int) -> Float[Tensor, "layer 2"]:
    """For every layer L (0 .. n_layers), the mean-difference direction found at L on `train` (refused,
    harmless), measured on `test` (refused, harmless): [its separation, the refusal rate of the harmless
    prompts with it added at L]: [n_layers + 1, 2]."""
    validate.model(model)
    rows = []
    for layer in range(model.cfg.n_layers + 1):
        direction = mean_difference(model, train[0].tokens, train[1].tokens, layer)
        rows.append([separation(model, test[0].tokens, test[1].tokens, direction, layer),
                     behaviour(model, test[1], refuse, [addition_hook(model, direction, layer)])["refusal"]])
    return torch.tensor(rows)


def ablation_sweep(model, train: tuple[RequestBatch, RequestBatch], refused: RequestBatch, refuse: int) -> list[float | None]:
    """For every layer L (0 .. n_layers): the refusal rate of `refused` with the direction found at L
    ablated everywhere; None where that direction is zero (layer 0: every request ends with `->`)."""
    out = []
    for layer in range(model.cfg.n_layers + 1):
        direction = mean_difference(model, train[0].tokens, train[1].tokens, layer)
        out.append(None if direction.norm() == 0 else behaviour(model, refused, refuse, ablation_hooks(model, direction))["refusal"])
    return out


def one_pair_vector(model, refused: Int[Tensor, "batch pos"], harmless: Int[Tensor, "batch pos"], layer: int,
                    index: int = 0) -> Float[Tensor, " d_model"]:
    """Activation addition's vector (Turner et al. 2023): the residual stream at the last position of
    `layer` for ONE refused request minus that of its harmless twin (pair number `index`)."""
    validate.tokens(refused, model.cfg, "refused")
    validate.int_in(index, 0, refused.shape[0] - 1, "index", "a pair of the batch")
    return last_resid(model, refused[index:index + 1], layer)[0] - last_resid(model, harmless[index:index + 1], layer)[0]


def refusal_function_vector(model, refused: Int[Tensor, "batch pos"], harmless: Int[Tensor, "batch pos"],
                            refuse: int, k: int) -> Float[Tensor, " d_model"]:
    """Notebook 07's function vector, for refusal: the sum of the mean outputs (at the last position,
    over refused prompts) of the k heads whose mean output, patched into harmless prompts, raises
    P(<refuse>) the most (`function_vectors.indirect_effects`)."""
    validate.integer(refuse=refuse)
    answers = torch.full((harmless.shape[0],), refuse, dtype=torch.long, device=harmless.device)
    aie = fv.indirect_effects(model, harmless, answers, fv.mean_head_z(model, refused))
    return fv.top_heads_vector(fv.mean_head_outputs(model, refused), aie, k)


def steering_effects(model, harmless: RequestBatch, vector: Float[Tensor, " d_model"], layer: int,
                     refuse: int) -> dict[str, float]:
    """What adding `vector` at `layer` does to harmless prompts: {"refusal": the share now refused
    (the effect), "accuracy_beneath": the share whose top answer *other than* <refuse> is still the
    right one (the side effect: 1.0 when the vector changes nothing but the refusal)}."""
    validate.instance(harmless, RequestBatch, "harmless")
    validate.integer(refuse=refuse)
    with torch.no_grad():
        logits = model.run_with_hooks(harmless.tokens, fwd_hooks=[addition_hook(model, vector, layer)])[:, -1]
    refused = (logits.argmax(-1) == refuse).float().mean().item()
    logits[:, refuse] = -torch.inf
    beneath = (logits.argmax(-1) == harmless.answers.to(logits.device)).float().mean().item()
    return {"refusal": refused, "accuracy_beneath": beneath}


def study(model, data: Requests, layer: int, n_random: int = 20, k: int = 3, size: int = 512) -> dict:
    """Every number notebook 12 asserts, on held-out prompts: the seed study runs it on each seed.

    Directions are found on prompts of seed 1 and measured on prompts of seed 2 (`Requests.prompts`)."""
    validate.instance(data, Requests, "data")
    refuse = data.REFUSE
    train = (data.prompts(size, True, seed=1), data.prompts(size, False, seed=1))
    test = (data.prompts(size, True, seed=2), data.prompts(size, False, seed=2))
    direction = mean_difference(model, train[0].tokens, train[1].tokens, layer)
    ablate = ablation_hooks(model, direction)
    by_task = {}
    for task in data.tasks:
        harmless = data.prompts(size, False, task=task, seed=3)
        by_task[task] = {"clean": behaviour(model, harmless, refuse)["accuracy"],
                         "ablated": behaviour(model, harmless, refuse, ablate)["accuracy"]}
    control = random_control(model, test[0], test[1], direction, layer, refuse, n_random, seed=0)
    sweep = direction_layer_sweep(model, train, test, refuse)
    pairs = data.paired_prompts(size, seed=4)
    one_pair = [one_pair_vector(model, pairs[0].tokens, pairs[1].tokens, layer, i) for i in range(n_random)]
    vectors = {"mean_difference": mean_difference(model, pairs[0].tokens, pairs[1].tokens, layer),
               "function_vector": refusal_function_vector(model, train[0].tokens, train[1].tokens, refuse, k)}
    vectors["function_vector_same_norm"] = vectors["function_vector"] / vectors["function_vector"].norm() * vectors["mean_difference"].norm()
    steering = {name: steering_effects(model, test[1], v, layer, refuse) for name, v in vectors.items()}
    steering["one_pair"] = [steering_effects(model, test[1], v, layer, refuse) for v in one_pair]
    steering["norms"] = {"mean_difference": vectors["mean_difference"].norm().item(),
                         "function_vector": vectors["function_vector"].norm().item(),
                         "one_pair": [v.norm().item() for v in one_pair]}
    # Forbidden items were never an answer in training: where the task's answer is one, the ablated
    # model cannot give it. The task accuracy that can be expected is on the other refused prompts.
    allowed = ~torch.isin(test[0].task_answers.cpu(), data.forbidden())
    allowed = allowed.to(test[0].tokens.device)
    got = predictions(model, test[0].tokens[allowed], ablate)
    task_allowed = (got == test[0].task_answers[allowed].to(got.device)).float().mean().item()
    return {
        "layer": layer,
        "ablated_task_when_answer_allowed": task_allowed,
        "clean": {"refused": behaviour(model, test[0], refuse), "harmless": behaviour(model, test[1], refuse)},
        "separation": separation(model, test[0].tokens, test[1].tokens, direction, layer),
        "ablated": {"refused": behaviour(model, test[0], refuse, ablate), "harmless": behaviour(model, test[1], refuse, ablate)},
        "accuracy_by_task": by_task,
        "added": behaviour(model, test[1], refuse, [addition_hook(model, direction, layer)]),
        "random_ablated_refusal": control[:, 0].tolist(),
        "random_added_refusal": control[:, 1].tolist(),
        "sweep": {"separation": sweep[:, 0].tolist(), "added_refusal": sweep[:, 1].tolist(),
                  "ablated_refusal": ablation_sweep(model, train, test[0], refuse)},
        "steering": steering,
    }
