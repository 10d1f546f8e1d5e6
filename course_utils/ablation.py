"""Ablations: remove one part of a model and measure what breaks (notebook 04).

Every function here builds TransformerLens hooks, `[(hook_name, fn), ...]`, for
`model.run_with_hooks(tokens, fwd_hooks=hooks)` or for `train(..., fwd_hooks=hooks)`, so they work
on the course's `Transformer` and on a `TransformerBridge` alike.

- **zero / mean / resample ablation** of a head replace its output `z` (`blocks.L.attn.hook_z`,
  [batch, pos, head, d_head]) by zeros, by its mean over a reference batch, or by its value on
  other inputs (Wang et al. 2022 argue for the last two: zero is far from anything the model
  ever sees).
- **K-path ablation** removes one head's output only from the input of another head's *keys*:
  the later head's queries and values, and every other head, still see it. It needs a model
  without LayerNorm, where a key is linear in the residual stream.
- **pattern-preserving ablation** zeroes a head but freezes the attention patterns of other heads
  at their clean values, so the ablation acts only through what the head writes directly.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import validate
from .metrics import per_token_loss

METHODS = ("zero", "mean", "resample")


def _validate_z(z: torch.Tensor, head: int, name: str = "z") -> None:
    """z is a hook_z (or hook_k) activation [batch, pos, head_index, d_head] and `head` one of its heads."""
    validate.tensor(z, name, "batch pos head_index d_head")
    validate.int_in(head, 0, z.shape[2] - 1, "head", f"{name} has {z.shape[2]} heads")


# ---- zero, mean and resample ablation of a head's output ---------------------------------------


def ablate_head(z: Float[Tensor, "batch pos head_index d_head"], head: int,
                replacement) -> Float[Tensor, "batch pos head_index d_head"]:
    """z [batch, pos, head, d_head] with head `head`'s output replaced by `replacement`.

    replacement: a tensor that broadcasts to [batch, pos, d_head]: zeros (zero ablation), the
    head's mean output [pos, d_head] (mean ablation) or its output on other inputs
    [batch, pos, d_head] (resample ablation). Returns a new tensor; `z` is left unchanged.
    """
    _validate_z(z, head)
    batch, pos, _, d_head = z.shape
    replacement = torch.as_tensor(replacement, dtype=z.dtype, device=z.device)
    validate.finite(replacement, "replacement")
    try:
        replacement = replacement.expand(batch, pos, d_head)
    except RuntimeError:
        raise ValueError(
            f"replacement of shape {tuple(replacement.shape)} does not broadcast to the head's "
            f"output [batch, pos, d_head] = {[batch, pos, d_head]}"
        ) from None
    z = z.clone()
    z[:, :, head] = replacement
    return z


def ablation_hooks(model, heads, method: str = "zero", reference_tokens: Int[Tensor, "batch pos"] | None = None,
                   _reference_z: dict | None = None) -> list:
    """Hooks that ablate `heads` ((layer, head) or a list of them) on `blocks.L.attn.hook_z`.

    method: "zero"; "mean" (the head's output averaged over the batch of `reference_tokens`, one
    vector per position); "resample" (the head's output on `reference_tokens`, which must have
    the same shape as the tokens the hooks will run on).
    """
    validate.one_of(method, METHODS, "method")
    heads = validate.heads(model, heads)
    if method != "zero" and not isinstance(reference_tokens, torch.Tensor) and _reference_z is None:
        raise ValueError(f"method={method!r} needs reference_tokens [batch, pos] to take the head's outputs from")
    if method != "zero" and _reference_z is None:
        _reference_z = _all_z(model, reference_tokens, {layer for layer, _ in heads})
    hooks = []
    for layer, head in heads:
        if method == "zero":
            replacement = torch.zeros(())
        else:
            z_ref = _reference_z[layer][:, :, head]
            replacement = z_ref.mean(0) if method == "mean" else z_ref
        hooks.append((f"blocks.{layer}.attn.hook_z", _replace_hook(head, replacement, method)))
    return hooks


def _all_z(model, tokens: torch.Tensor, layers) -> dict[int, torch.Tensor]:
    """{layer: hook_z [batch, pos, head, d_head]} on `tokens`, in one forward pass."""
    names = {f"blocks.{layer}.attn.hook_z": layer for layer in layers}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return {layer: cache[name] for name, layer in names.items()}


def _replace_hook(head: int, replacement: torch.Tensor, method: str):
    def hook(z, hook):
        if method == "resample" and replacement.shape[:2] != z.shape[:2]:
            raise ValueError(
                f"resample ablation: reference_tokens gave outputs for [batch, pos] = "
                f"{list(replacement.shape[:2])}, but the model runs on {list(z.shape[:2])}; use "
                f"reference tokens of the same shape"
            )
        rep = replacement if method != "mean" else replacement[: z.shape[1]]
        return ablate_head(z, head, rep)

    return hook


def loss_with_hooks(model, tokens: Int[Tensor, "batch pos"], hooks: list) -> Float[Tensor, "batch predicted_pos"]:
    """Per-token next-token loss [batch, pos - 1] with `hooks` attached (none: the clean loss)."""
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return per_token_loss(logits, tokens)


def ablated_loss(model, tokens: Int[Tensor, "batch pos"], heads, method: str = "zero",
                 reference_tokens: Int[Tensor, "batch pos"] | None = None) -> Float[Tensor, "batch predicted_pos"]:
    """Per-token next-token loss [batch, pos - 1] on `tokens` with `heads` ((layer, head) or a list
    of them) ablated together by `method` (notebook 04's exercise `ablated_loss`).

    For "mean" and "resample" the heads' outputs come from a run on `reference_tokens`; "zero"
    ignores them.
    """
    return loss_with_hooks(model, tokens, ablation_hooks(model, heads, method, reference_tokens))


def ablation_effects(model, tokens: Int[Tensor, "batch pos"], positions, method: str = "zero",
                     reference_tokens: Int[Tensor, "batch pos"] | None = None) -> Float[Tensor, "layer head_index"]:
    """[n_layers, n_heads]: how much ablating each head alone raises the mean loss at `positions`
    (a slice or boolean mask [batch, pos - 1] of the per-token loss). Notebook 04's all-head sweep."""
    clean = loss_with_hooks(model, tokens, [])[..., positions]
    validate.selects(clean, positions, tokens.shape[1] - 1)
    clean = clean.mean()
    effects = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    reference_z = None
    if method != "zero" and isinstance(reference_tokens, torch.Tensor):  # one reference run for all heads
        reference_z = _all_z(model, reference_tokens, range(model.cfg.n_layers))
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            hooks = ablation_hooks(model, (layer, head), method, reference_tokens, reference_z)
            effects[layer, head] = loss_with_hooks(model, tokens, hooks)[..., positions].mean() - clean
    return effects


def combination_costs(model, tokens: Int[Tensor, "batch pos"], heads, positions, method: str = "zero",
                      reference_tokens: Int[Tensor, "batch pos"] | None = None) -> Float[Tensor, "layer head_index"]:
    """[2 ** len(heads)]: entry m is how much ablating together the heads whose bit is set in m
    (bit i: heads[i]) raises the mean loss at `positions`; entry 0 (no head ablated) is 0.
    Notebook 04 uses it for redundancy: does a set of heads cost the sum of its members' costs?"""
    heads = validate.heads(model, heads)
    if not heads:
        raise ValueError(f"heads must name at least one (layer, head), got {heads!r}")
    if len(heads) > 10:
        raise ValueError(f"heads: {len(heads)} heads make 2 ** {len(heads)} runs; take at most 10")
    clean = loss_with_hooks(model, tokens, [])[..., positions].mean()
    reference_z = None
    if method != "zero" and isinstance(reference_tokens, torch.Tensor):  # one reference run for every subset
        reference_z = _all_z(model, reference_tokens, {layer for layer, _ in heads})
    costs = torch.zeros(2 ** len(heads))
    for mask in range(1, 2 ** len(heads)):
        subset = [lh for i, lh in enumerate(heads) if mask >> i & 1]
        hooks = ablation_hooks(model, subset, method, reference_tokens, reference_z)
        costs[mask] = loss_with_hooks(model, tokens, hooks)[..., positions].mean() - clean
    return costs


# ---- K-path ablation: remove a head's output from another head's keys only ----------------------


def head_output(z: Float[Tensor, "batch pos head_index d_head"], W_O: Float[Tensor, "head_index d_head d_model"],
                head: int) -> Float[Tensor, "batch pos d_model"]:
    """What one head writes into the residual stream: z[:, :, head] @ W_O[head], [batch, pos, d_model].

    z [batch, pos, head, d_head]; W_O [head, d_head, d_model] (one layer's). The shared bias b_O is
    not part of any one head's output.
    """
    _validate_z(z, head)
    if W_O.ndim != 3 or W_O.shape[0] != z.shape[2] or W_O.shape[1] != z.shape[3]:
        raise ValueError(f"W_O must be [head, d_head, d_model] = [{z.shape[2]}, {z.shape[3]}, d_model], "
                         f"got {tuple(W_O.shape)}")
    validate.finite(W_O, "W_O")
    return z[:, :, head] @ W_O[head]


def keys_without(k: Float[Tensor, "batch pos head_index d_head"], removed: Float[Tensor, "batch pos d_model"],
                 W_K: Float[Tensor, "head_index d_model d_head"], head: int) -> Float[Tensor, "batch pos head_index d_head"]:
    """The keys k [batch, pos, head, d_head] that head `head` would compute if `removed`
    [batch, pos, d_model] were not in its input: k[:, :, head] - removed @ W_K[head].

    Keys are linear in the residual stream (no LayerNorm), so removing a term from the input
    removes its image from the keys. W_K [head, d_model, d_head] (one layer's). Other heads' keys,
    and every query and value, are untouched. Returns a new tensor.
    """
    _validate_z(k, head, "k")
    if removed.ndim != 3 or removed.shape[:2] != k.shape[:2]:
        raise ValueError(f"removed must be [batch, pos, d_model] with [batch, pos] = {list(k.shape[:2])}, "
                         f"got {tuple(removed.shape)}")
    if W_K.ndim != 3 or W_K.shape[0] != k.shape[2] or W_K.shape[1] != removed.shape[2]:
        raise ValueError(f"W_K must be [head, d_model, d_head] = [{k.shape[2]}, {removed.shape[2]}, "
                         f"{k.shape[3]}], got {tuple(W_K.shape)}")
    validate.finite(removed, "removed")
    validate.finite(W_K, "W_K")
    k = k.clone()
    k[:, :, head] = k[:, :, head] - removed @ W_K[head]
    return k


def k_path_ablation_hooks(model, writer: tuple[int, int], readers) -> list:
    """Hooks that remove head `writer`'s output from the keys of the `readers` heads, and nowhere else.

    In the same forward pass, a hook on the writer's `hook_z` keeps what the writer writes, and a
    hook on each reader layer's `hook_k` subtracts its image under the reader's W_K. Needs a model
    without LayerNorm (keys linear in the residual stream) and readers in later layers.
    """
    (w_layer, w_head), readers = validate.k_path(model, writer, readers, "k_path_ablation_hooks")
    written = {}

    def keep(z, hook):
        written["out"] = head_output(z, model.W_O[w_layer], w_head)

    hooks = [(f"blocks.{w_layer}.attn.hook_z", keep)]
    for r_layer in sorted({r for r, _ in readers}):
        heads_here = [h for r, h in readers if r == r_layer]

        def remove(k, hook, r_layer=r_layer, heads_here=heads_here):
            W_K = model.W_K[r_layer]
            for h in heads_here:
                k = keys_without(k, written["out"], W_K, h)
            return k

        hooks.append((f"blocks.{r_layer}.attn.hook_k", remove))
    return hooks


# ---- pattern-preserving ablation ----------------------------------------------------------------


def clean_patterns(model, tokens: Int[Tensor, "batch pos"]) -> dict[int, Float[Tensor, "batch head_index query_pos key_pos"]]:
    """{layer: hook_pattern [batch, head, query_pos, key_pos]} from a clean run on `tokens`."""
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return {layer: cache[name] for layer, name in enumerate(names)}


def freeze_pattern_hooks(model, patterns: dict[int, Float[Tensor, "batch head_index query_pos key_pos"]], heads) -> list:
    """Hooks that hold the attention pattern of `heads` at `patterns` ({layer: [batch, head, q, k]}),
    whatever the rest of the model does."""
    if not isinstance(patterns, dict):
        raise TypeError(f"patterns must be a dict {{layer: [batch, head, query_pos, key_pos]}} (from clean_patterns), "
                        f"got {type(patterns).__name__}")
    heads = validate.heads(model, heads)
    hooks = []
    for layer in sorted({lay for lay, _ in heads}):
        if layer not in patterns:
            raise ValueError(f"patterns has no entry for layer {layer} (it has layers {sorted(patterns)})")
        frozen = patterns[layer]
        here = [h for lay, h in heads if lay == layer]

        def hook(pattern, hook, frozen=frozen, here=here):
            if frozen.shape != pattern.shape:
                raise ValueError(f"frozen pattern has shape {tuple(frozen.shape)} but the model's is "
                                 f"{tuple(pattern.shape)}: freeze patterns from a run on the same tokens")
            pattern = pattern.clone()
            pattern[:, here] = frozen[:, here].to(pattern.dtype)
            return pattern

        hooks.append((f"blocks.{layer}.attn.hook_pattern", hook))
    return hooks


def clamp_head_pattern(pattern: Float[Tensor, "batch head_index query_pos key_pos"], head: int,
                       target: Float[Tensor, "n_ctx n_ctx"]) -> Float[Tensor, "batch head_index query_pos key_pos"]:
    """pattern [batch, head, query_pos, key_pos] with head `head`'s pattern replaced by `target`
    [n_ctx, n_ctx] cut to the run's length (its first query_pos rows and key_pos columns): what a
    clamping hook on `blocks.L.attn.hook_pattern` returns (notebook 04's exercise `clamp_head_pattern`).
    Returns a new tensor; `pattern` is left unchanged."""
    if not isinstance(pattern, torch.Tensor) or pattern.ndim != 4:
        shape = tuple(pattern.shape) if isinstance(pattern, torch.Tensor) else type(pattern).__name__
        raise ValueError(f"pattern must be a tensor [batch, head, query_pos, key_pos] (hook_pattern), got {shape}")
    if not (isinstance(head, int) and not isinstance(head, bool) and 0 <= head < pattern.shape[1]):
        raise ValueError(f"head {head!r} does not exist: pattern has {pattern.shape[1]} heads")
    queries, keys = pattern.shape[-2:]
    if not isinstance(target, torch.Tensor) or target.ndim != 2 or target.shape[0] < queries or target.shape[1] < keys:
        shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target must be a [n_ctx, n_ctx] pattern at least as long as the run's "
                         f"[query_pos, key_pos] = {[queries, keys]}, got {shape}")
    pattern = pattern.clone()
    pattern[:, head] = target[:queries, :keys].to(pattern.device, pattern.dtype)
    return pattern


def pattern_preserving_loss(model, tokens: Int[Tensor, "batch pos"], heads, method: str = "zero",
                            reference_tokens: Int[Tensor, "batch pos"] | None = None) -> Float[Tensor, "layer head_index"]:
    """Per-token loss [batch, pos - 1] with `heads` ablated and every head of every later layer held at
    its clean attention pattern on `tokens` (notebook 04's exercise `pattern_preserving_loss`)."""
    return loss_with_hooks(model, tokens, pattern_preserving_ablation_hooks(model, tokens, heads, method, reference_tokens))


def pattern_preserving_ablation_hooks(model, tokens: Int[Tensor, "batch pos"], heads, method: str = "zero",
                                      reference_tokens: Int[Tensor, "batch pos"] | None = None) -> list:
    """Ablate `heads`, but hold every head of every later layer at its clean attention pattern on
    `tokens`: what is left of the effect is what the ablated heads write directly, not what they
    do to later heads' attention."""
    heads = validate.heads(model, heads)
    if not heads:
        raise ValueError(f"heads must name at least one (layer, head), got {heads!r}")
    first = min(layer for layer, _ in heads)
    later = [(lay, h) for lay in range(first + 1, model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    hooks = ablation_hooks(model, heads, method, reference_tokens)
    if later:
        hooks += freeze_pattern_hooks(model, clean_patterns(model, tokens), later)
    return hooks
