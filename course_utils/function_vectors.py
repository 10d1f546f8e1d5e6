"""Function vectors (Todd et al. 2023), the tools of notebook 07.

A model that does a task in context ("x -> f(x)") must, at the last position, carry some
representation of *which* task the demonstrations show. Todd et al. find that a few attention heads
carry it, and that the sum of their mean outputs, the function vector, added to the residual stream
of a prompt with no demonstrations makes the model do the task.

- `mean_head_outputs`: each head's mean contribution to the residual stream at the last position
  (its `hook_z` times its slice of `W_O`) over many prompts of a task;
- `indirect_effects`: patch each head's mean output (a task's) into prompts whose demonstrations
  show no task (random answers), and measure how much P(right answer) rises;
- `function_vector`, `top_heads_vector`: the sum of the mean outputs of the top-k heads by average
  indirect effect;
- `layer_sweep`: the accuracy with the vector, for every layer it can be added to and every k;
- `attention_to`: how much each head attends from the last position to chosen positions (the
  demonstrations' answers, the query, ...): what a head can carry;
- `answer_shares`: whose answer the model gives with each vector added: task-specificity, and the
  vector against the demonstrations of another task;
- `accuracy_with_vector`: the model's accuracy when a vector is added at the last position to the
  attention output of a chosen layer (`blocks.L.hook_attn_out`), as if that layer's heads had
  written it: the residual stream after the attention (resid_mid) gets the vector.

Every function takes the course's Transformer or a TransformerBridge, and gives the same numbers.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import validate
from .icl_tasks import ICLTasks


def _validate_prompts(model, tokens, answers=None) -> None:
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    if answers is not None:
        validate.answers(answers, tokens, d_vocab=model.cfg.d_vocab)


def _validate_per_task(language, per_task=None, name=None) -> None:
    """language must be ICLTasks; per_task (if given) a dict {task: ...} with every task of it."""
    validate.instance(language, ICLTasks, "language")
    if per_task is not None and not isinstance(per_task, dict):
        raise TypeError(f"{name} must be a dict with an entry for every task {list(language.tasks)}, got {type(per_task).__name__}")
    if per_task is not None and not set(language.tasks) <= set(per_task):
        raise ValueError(f"{name} must be a dict with an entry for every task {list(language.tasks)}, got {sorted(per_task)}")


def _validate_mean_z(model, mean_z) -> None:
    cfg = model.cfg
    validate.shape_is(mean_z, "mean_z", (cfg.n_layers, cfg.n_heads, cfg.d_head), "[layer, head_index, d_head]")
    validate.finite(mean_z, "mean_z")


def _validate_vector(model, vector, name="vector") -> None:
    validate.shape_is(vector, name, (model.cfg.d_model,), "[d_model]")
    validate.finite(vector, name)


def mean_head_z(model, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer head_index d_head"]:
    """Each head's `hook_z` at the last position, averaged over the prompts: [layer, head, d_head]."""
    _validate_prompts(model, tokens)
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return torch.stack([cache[name][:, -1].mean(0) for name in names])  # hook_z is [batch, pos, head, d_head]


def mean_head_outputs(model, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer head_index d_model"]:
    """Each head's mean contribution to the residual stream at the last position: [layer, head, d_model].

    A head writes z @ W_O[layer, head] (its share of the attention output, without the bias b_O);
    averaged over many prompts of one task, what is left is what the head says about the task.
    """
    z = mean_head_z(model, tokens)
    return torch.einsum("lhe,lhed->lhd", z, model.W_O.detach())


def _answer_probs(model, tokens, answers, fwd_hooks=()) -> torch.Tensor:
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks))
    return logits[:, -1].softmax(-1).gather(1, answers[:, None].to(logits.device))[:, 0]


def _patch_z_hook(head: int, z: torch.Tensor):
    def hook(activation, hook):  # [batch, pos, head, d_head]
        activation = activation.clone()
        activation[:, -1, head] = z.to(activation.device)
        return activation
    return hook


def indirect_effect(model, tokens: Int[Tensor, "batch pos"], answers: Int[Tensor, " batch"], mean_z: Float[Tensor, "layer head_index d_head"],
                    layer: int, head: int) -> Float[Tensor, " batch"]:
    """Gain in P(answer) on each prompt when head (layer, head) outputs its mean z at the last position: [batch].

    mean_z: [layer, head, d_head], from `mean_head_z` on prompts that show the task.
    """
    _validate_prompts(model, tokens, answers)
    validate.head(model, layer, head)
    _validate_mean_z(model, mean_z)
    clean = _answer_probs(model, tokens, answers)
    hook = (f"blocks.{layer}.attn.hook_z", _patch_z_hook(head, mean_z[layer, head]))
    return _answer_probs(model, tokens, answers, [hook]) - clean


def indirect_effects(model, tokens: Int[Tensor, "batch pos"], answers: Int[Tensor, " batch"],
                     mean_z: Float[Tensor, "layer head_index d_head"]) -> Float[Tensor, "layer head_index"]:
    """`indirect_effect` of every head, averaged over the prompts: [layer, head]."""
    _validate_prompts(model, tokens, answers)
    _validate_mean_z(model, mean_z)
    return torch.tensor([[indirect_effect(model, tokens, answers, mean_z, layer, head).mean().item()
                          for head in range(model.cfg.n_heads)] for layer in range(model.cfg.n_layers)])


def top_heads(aie: Float[Tensor, "layer head_index"], k: int) -> list[tuple[int, int]]:
    """The k heads with the largest average indirect effect, as (layer, head), largest first."""
    validate.tensor(aie, "aie", "layer head_index", dtype="float")
    validate.int_in(k, 0, aie.numel(), "k", "how many heads to take")
    validate.finite(aie, "aie")  # argsort ranks NaN first
    order = aie.flatten().argsort(descending=True)[:k]
    return [(int(i) // aie.shape[1], int(i) % aie.shape[1]) for i in order]


def function_vector(mean_outputs: Float[Tensor, "layer head_index d_model"],
                    heads: list[tuple[int, int]]) -> Float[Tensor, " d_model"]:
    """The sum of the mean outputs [layer, head, d_model] of the given heads: [d_model]."""
    validate.tensor(mean_outputs, "mean_outputs", "layer head_index d_model", dtype="float")
    validate.finite(mean_outputs, "mean_outputs")
    n_layers, n_heads, _ = mean_outputs.shape
    if not all(isinstance(h, (tuple, list)) and len(h) == 2 for h in heads):
        raise ValueError(f"heads must be a list of (layer, head) pairs, got {heads!r}")
    for layer, head in heads:
        validate.int_in(layer, 0, n_layers - 1, "heads: layer", f"the model has {n_layers} layers")
        validate.int_in(head, 0, n_heads - 1, "heads: head", f"a layer has {n_heads} heads")
    vector = torch.zeros(mean_outputs.shape[-1], dtype=mean_outputs.dtype)
    for layer, head in heads:
        vector = vector + mean_outputs[layer, head].cpu()
    return vector


def top_heads_vector(mean_outputs: Float[Tensor, "layer head_index d_model"], aie: Float[Tensor, "layer head_index"],
                     k: int) -> Float[Tensor, " d_model"]:
    """The function vector of the k heads with the largest AIE: the sum of their mean outputs, [d_model].
    mean_outputs [layer, head, d_model] and aie [layer, head] of the same heads (notebook 07 builds it)."""
    validate.tensor(mean_outputs, "mean_outputs", "layer head_index d_model", dtype="float")
    validate.tensor(aie, "aie", "layer head_index", dtype="float")
    if tuple(aie.shape) != tuple(mean_outputs.shape[:2]):
        raise ValueError(f"aie must be [layer, head] of the same heads as mean_outputs {tuple(mean_outputs.shape[:2])}, "
                         f"got shape {tuple(aie.shape)}")
    return function_vector(mean_outputs, top_heads(aie, k))


def add_vector_hook(vector: Float[Tensor, " d_model"], layer: int):
    """(hook name, hook) that adds `vector` at the last position to the attention output of block
    `layer` (`blocks.{layer}.hook_attn_out`), as if that layer's heads had written it.

    Not `hook_resid_mid`: on a TransformerBridge that hook is the input of the MLP's LayerNorm, and
    what it changes does not reach the residual stream, while the attention output does on both."""
    validate.tensor(vector, "vector", "d_model", dtype="float")
    validate.finite(vector, "vector")
    validate.at_least(layer, 0, "layer", "the vector goes into blocks.layer.hook_attn_out")

    def hook(attn_out, hook):  # [batch, pos, d_model]
        attn_out = attn_out.clone()
        attn_out[:, -1] += vector.to(attn_out.device)
        return attn_out
    return (f"blocks.{layer}.hook_attn_out", hook)


def logits_with_vector(model, tokens: Int[Tensor, "batch pos"], vector: Float[Tensor, " d_model"] | None = None,
                       layer: int = 0) -> Float[Tensor, "batch d_vocab"]:
    """The logits at the last position, with `vector` added to the residual stream there just after
    the attention of block `layer`: [batch, d_vocab]. With vector=None, the model's own logits."""
    _validate_prompts(model, tokens)
    hooks = []
    if vector is not None:
        validate.layer(model, layer)
        _validate_vector(model, vector)
        hooks = [add_vector_hook(vector, layer)]
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return logits[:, -1]


def predictions_with_vector(model, tokens: Int[Tensor, "batch pos"], vector: Float[Tensor, " d_model"] | None = None,
                            layer: int = 0) -> Int[Tensor, " batch"]:
    """The model's top token at the last position, with `vector` added after block `layer`'s attention: [batch]."""
    return logits_with_vector(model, tokens, vector, layer).argmax(-1).cpu()


def accuracy_with_vector(model, tokens: Int[Tensor, "batch pos"], answers: Int[Tensor, " batch"], vector: Float[Tensor, " d_model"] | None = None,
                         layer: int = 0) -> float:
    """Fraction of prompts whose top token is the answer, with `vector` (if any) added after block `layer`'s attention."""
    _validate_prompts(model, tokens, answers)
    return (predictions_with_vector(model, tokens, vector, layer) == answers.cpu()).float().mean().item()


def layer_sweep(model, tokens: Int[Tensor, "batch pos"], answers: Int[Tensor, " batch"], mean_outputs: Float[Tensor, "layer head_index d_model"],
                aie: Float[Tensor, "layer head_index"], ks: list[int]) -> Float[Tensor, "layer k"]:
    """Accuracy with the function vector of the top-k heads added to each layer's attention output:
    [layer, len(ks)], entry [layer, i] for k = ks[i] (k = 0: no vector). Notebook 07's layer sweep."""
    _validate_prompts(model, tokens, answers)
    validate.shape_is(mean_outputs, "mean_outputs", (model.cfg.n_layers, model.cfg.n_heads, model.cfg.d_model),
                      "[layer, head_index, d_model]")
    if not isinstance(ks, (list, tuple)) or not ks:
        raise TypeError(f"ks must be a non-empty list of head counts, got {ks!r}")
    vectors = [top_heads_vector(mean_outputs, aie, k) for k in ks]
    return torch.tensor([[accuracy_with_vector(model, tokens, answers, vector, layer) for vector in vectors]
                         for layer in range(model.cfg.n_layers)])


def attention_to(model, tokens: Int[Tensor, "batch pos"], key_positions) -> Float[Tensor, "layer head_index"]:
    """How much each head attends from the last position to `key_positions` (a list of positions, e.g. where
    the demonstrations' answers sit): [layer, head], the attention weights of the last query on those keys,
    summed over the keys and averaged over the prompts. Notebook 07 builds it."""
    _validate_prompts(model, tokens)
    n = tokens.shape[1]
    if isinstance(key_positions, torch.Tensor):
        key_positions = key_positions.tolist()
    if not isinstance(key_positions, (list, tuple, range)) or not key_positions:
        raise TypeError(f"key_positions must be a non-empty list of positions, got {key_positions!r}")
    for position in key_positions:
        validate.int_in(position, 0, n - 1, "key_positions", f"the prompts have {n} positions")
    if len(set(key_positions)) != len(key_positions):
        raise ValueError(f"key_positions must be distinct positions (a repeated one would count twice), got {list(key_positions)}")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    keys = torch.tensor(list(key_positions), device=tokens.device)
    return torch.stack([cache[name][:, :, -1, keys].sum(-1).mean(0) for name in names])  # pattern [batch, head, q, k]


def answer_shares(model, tokens: Int[Tensor, "batch pos"], answers: Int[Tensor, "task batch"], vectors: Float[Tensor, "vector d_model"],
                  layer: int) -> Float[Tensor, "vector task"]:
    """Whose answer the model gives with each vector: [vector, task], entry [a, b] the fraction of prompts
    whose top token at the last position, with vectors[a] added to block `layer`'s attention output there,
    is answers[b] (task b's answer to each prompt's query).

    tokens [batch, pos]; answers [task, batch] (token ids); vectors [vector, d_model]. On prompts without
    demonstrations a task-specific vector gives a large diagonal; on prompts with demonstrations of task b,
    column b is how often the demonstrations win over the vector. Notebook 07 builds it.
    """
    _validate_prompts(model, tokens)
    validate.tensor(answers, "answers", "task batch", dtype="int")
    if answers.shape[1] != tokens.shape[0]:
        raise ValueError(f"answers must be [task, batch] with one answer per prompt ({tokens.shape[0]}) for every task, "
                         f"got shape {tuple(answers.shape)}")
    validate.ids(answers, model.cfg.d_vocab, "answers")
    validate.tensor(vectors, "vectors", "vector d_model", dtype="float")
    if vectors.shape[1] != model.cfg.d_model:
        raise ValueError(f"vectors must be [vector, d_model] with d_model = {model.cfg.d_model}, got shape {tuple(vectors.shape)}")
    validate.finite(vectors, "vectors")
    validate.layer(model, layer)
    rows = []
    for vector in vectors:
        predictions = logits_with_vector(model, tokens, vector, layer).argmax(-1)
        rows.append((predictions[None] == answers.to(predictions.device)).float().mean(-1))
    return torch.stack(rows)


# ---- the whole recipe on a model of in-context tasks (notebook 07, and the zoo's seed study) -------


def task_mean_z(model, language, shots: int = 5, size: int = 128, seed: int = 1) -> dict[str, torch.Tensor]:
    """{task: mean_head_z over `size` prompts of `shots` demonstrations of it} ([layer, head, d_head])."""
    _validate_per_task(language)
    return {task: mean_head_z(model, language.prompts(task, shots, size, seed=seed).tokens) for task in language.tasks}


def task_mean_outputs(model, language, shots: int = 5, size: int = 128, seed: int = 1) -> dict[str, torch.Tensor]:
    """{task: mean_head_outputs over prompts of the task} ([layer, head, d_model])."""
    _validate_per_task(language)
    return {task: mean_head_outputs(model, language.prompts(task, shots, size, seed=seed).tokens) for task in language.tasks}


def average_indirect_effects(model, language, mean_z: dict, shots: int = 5, size: int = 128,
                             seed: int = 2) -> Float[Tensor, "layer head_index"]:
    """Each head's indirect effect on prompts whose demonstrations have random answers (they show no
    task), averaged over the prompts and the tasks (Todd et al.'s AIE): [layer, head].

    Todd et al. shuffle the answers instead; here shuffled answers still show the task by their kind
    (notebook 07), so there would be almost nothing to restore."""
    _validate_per_task(language, mean_z, "mean_z")
    effects = []
    for task in language.tasks:
        p = language.prompts(task, shots, size, seed=seed, random_labels=True)
        effects.append(indirect_effects(model, p.tokens, p.answers, mean_z[task]))
    return torch.stack(effects).mean(0)


def cross_task_matrix(model, language, vectors: dict, layer: int, size: int = 128,
                      seed: int = 3) -> Float[Tensor, "vector task"]:
    """[vector's task, task b]: on zero-shot prompts `<bos> xq ->`, with the first task's vector
    added after block `layer`'s attention, the fraction of answers that are f_b(xq). A task-specific vector
    gives a large diagonal and small entries off it."""
    _validate_per_task(language, vectors, "vectors")
    validate.layer(model, layer)
    p = language.prompts(language.tasks[0], 0, size, seed=seed)  # a zero-shot prompt shows no task
    rows = []
    for a in language.tasks:
        pred = predictions_with_vector(model, p.tokens, vectors[a], layer)
        rows.append([(pred == language.apply(b, p.queries)).float().mean().item() for b in language.tasks])
    return torch.tensor(rows)


def study(model, language, k: int, layer: int, shots: int = 5, size: int = 128) -> dict:
    """Everything notebook 07 asserts, for one model: per task the zero-shot, few-shot (`shots`),
    shuffled-label, random-label and zero-shot-plus-function-vector accuracies; the AIE and the
    share of it in the top-k heads; the cross-task matrix."""
    validate.model(model)
    _validate_per_task(language)
    validate.int_in(k, 0, model.cfg.n_layers * model.cfg.n_heads, "k", "how many heads to take")
    validate.layer(model, layer)
    mean_z = task_mean_z(model, language, shots, size)
    outputs = task_mean_outputs(model, language, shots, size)
    aie = average_indirect_effects(model, language, mean_z, shots, size)
    heads = top_heads(aie, k)
    vectors = {t: function_vector(outputs[t], heads) for t in language.tasks}
    result = {"k": k, "layer": layer, "shots": shots, "top_heads": heads,
              "aie": aie.round(decimals=4).tolist(),
              "top_k_share_of_positive_aie": round(float(aie.flatten().sort(descending=True).values[:k].sum()
                                                         / aie.clamp_min(0).sum()), 4)}
    for task in language.tasks:
        zero = language.prompts(task, 0, size, seed=3)
        few = language.prompts(task, shots, size, seed=3)
        shuffled = language.prompts(task, shots, size, seed=3, shuffle_labels=True)
        random = language.prompts(task, shots, size, seed=3, random_labels=True)
        result[task] = {
            "zero_shot": round(accuracy_with_vector(model, zero.tokens, zero.answers), 4),
            "few_shot": round(accuracy_with_vector(model, few.tokens, few.answers), 4),
            "shuffled_labels": round(accuracy_with_vector(model, shuffled.tokens, shuffled.answers), 4),
            "random_labels": round(accuracy_with_vector(model, random.tokens, random.answers), 4),
            "zero_shot_with_fv": round(accuracy_with_vector(model, zero.tokens, zero.answers, vectors[task], layer), 4),
        }
    result["cross_task"] = cross_task_matrix(model, language, vectors, layer).round(decimals=4).tolist()
    return result
