"""Activation patching and causal tracing (notebook 06).

Run the model on a corrupted input, put back ("patch in") one activation from the clean run, and
measure how much of the clean behaviour returns: 0 is the corrupted run, 1 the clean run.

`patch_resid_pre` and `patch_head` are the one-patch versions, written with hooks, that notebook 06
has you write; `patch_k_path` patches one head's output into later heads' keys only. The sweeps (`resid_patching`, `head_patching`) call TransformerLens's own helpers in
`transformer_lens.patching`, which do the same for every index, with a progress bar. Causal tracing
(`noised_logprob`, `causal_trace`) corrupts with noise added to the input embeddings instead of a
second input; the caller draws the noise, so the same noise gives the same trace. Everything works
on a course `Transformer` and on a `TransformerBridge` alike.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens import patching as tl_patching

from . import validate
from .ablation import head_output, keys_without
from .data import generator, repeated_tokens
from .model import Transformer

HEAD_ACTIVATIONS = ("z", "q", "k", "v", "pattern")


def _validate_run(model, corrupted_tokens, clean_cache) -> None:
    validate.model(model)
    validate.tokens(corrupted_tokens, model.cfg, "corrupted_tokens")
    validate.cache(clean_cache, model, "clean_cache", "clean_tokens")
    shape = tuple(clean_cache["hook_embed"].shape[:2])
    if tuple(corrupted_tokens.shape) != shape:
        raise ValueError(f"corrupted_tokens has shape {tuple(corrupted_tokens.shape)}, the clean cache {shape}: "
                         "clean and corrupted inputs must have the same shape")


# ---- inputs and the metric --------------------------------------------------------------------------


def clean_and_corrupted(batch: int, period: int, d_vocab: int,
                        seed: int = 0) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """(clean, corrupted), each [batch, 2 * period]. Clean: random tokens, then the same again.
    Corrupted: different random tokens first, then the same second half as the clean input. The
    second half is predictable only in the clean input, and only by looking back."""
    clean = repeated_tokens(batch, period, d_vocab, seed=seed)
    if d_vocab < 2:
        raise ValueError(f"d_vocab must be at least 2 (a corrupted token must differ from the clean one), got {d_vocab}")
    other = torch.randint(0, d_vocab, (batch, period), generator=generator(seed, period, 7))
    # A changed first half must differ from the clean one at every position.
    other = torch.where(other == clean[:, :period], (other + 1) % d_vocab, other)
    return clean, torch.cat([other, clean[:, period:]], dim=1)


def correct_logprob(logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"],
                    positions: slice) -> Float[Tensor, ""]:
    """Mean log-probability of the correct next token (tokens[:, t + 1]) at the positions t in
    `positions`: a scalar. On a repeated sequence, positions in the second half measure induction."""
    validate.tensor(logits, "logits", "batch pos d_vocab", dtype="float")
    validate.tensor(tokens, "tokens", "batch pos", dtype="int")
    if logits.shape[:2] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and tokens {tuple(tokens.shape)} must agree on [batch, pos]")
    validate.ids(tokens, logits.shape[-1], "tokens")
    validate.finite(logits, "logits")
    logprobs = logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]  # [batch, pos - 1]
    chosen = logprobs[:, positions]
    validate.selects(chosen, positions, logprobs.shape[1])
    return chosen.mean()


def normalized_metric(value: torch.Tensor, clean_value: torch.Tensor, corrupted_value: torch.Tensor) -> torch.Tensor:
    """0 when `value` equals the corrupted run's, 1 when it equals the clean run's."""
    for name, v in (("value", value), ("clean_value", clean_value), ("corrupted_value", corrupted_value)):
        validate.finite(torch.as_tensor(v), name)
    gap = clean_value - corrupted_value
    if torch.as_tensor(gap).abs() < 1e-6:
        raise ValueError(f"clean_value ({float(clean_value):.4g}) and corrupted_value ({float(corrupted_value):.4g}) "
                         "are equal: the corruption changes nothing this metric can see")
    return (value - corrupted_value) / gap


def patching_metric(model, clean_tokens: Int[Tensor, "batch pos"], corrupted_tokens: Int[Tensor, "batch pos"], positions: slice):
    """A function logits -> score, with score 1 on the clean run's logits and 0 on the corrupted
    run's: the normalised log-probability of the clean input's next tokens at `positions`."""
    validate.model(model)
    with torch.no_grad():
        clean = correct_logprob(model(clean_tokens), clean_tokens, positions)
        corrupted = correct_logprob(model(corrupted_tokens), clean_tokens, positions)
    normalized_metric(clean, clean, corrupted)  # raises now, not at the first patch, if the two runs agree
    return lambda logits: normalized_metric(correct_logprob(logits, clean_tokens, positions), clean, corrupted)


# ---- one patch, by hand ---------------------------------------------------------------------------------


def patch_resid_pre(model, corrupted_tokens: Int[Tensor, "batch pos"], clean_cache, metric, layer: int, pos: int) -> torch.Tensor:
    """Run on corrupted_tokens with the residual stream entering `layer`, at position `pos` only,
    taken from the clean run; return metric(logits)."""
    _validate_run(model, corrupted_tokens, clean_cache)
    validate.layer(model, layer)
    seq_len = corrupted_tokens.shape[1]
    validate.int_in(pos, 0, seq_len - 1, "pos", f"the tokens have {seq_len} positions")
    name = f"blocks.{layer}.hook_resid_pre"

    def put_back(resid, hook):  # resid [batch, pos, d_model]
        resid[:, pos] = clean_cache[name][:, pos]
        return resid

    with torch.no_grad():
        return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(name, put_back)]))


def patch_head(model, corrupted_tokens: Int[Tensor, "batch pos"], clean_cache, metric, layer: int, head: int,
               activation: str = "z"):
    """Run on corrupted_tokens with one head's `activation` (z: its output; q, k, v; or pattern) at
    every position taken from the clean run; return metric(logits)."""
    return patch_heads(model, corrupted_tokens, clean_cache, metric, [(layer, head)], activation)


def patch_heads(model, corrupted_tokens: Int[Tensor, "batch pos"], clean_cache, metric, heads, activation: str = "z"):
    """As `patch_head`, for several heads [(layer, head), ...] patched together in one run."""
    _validate_run(model, corrupted_tokens, clean_cache)
    heads = list(heads)
    if not heads:
        raise ValueError("heads must list at least one (layer, head)")
    for layer, head in heads:
        validate.head(model, layer, head)
    validate.one_of(activation, HEAD_ACTIVATIONS, "activation")

    def put_back(act, hook, head):  # [batch, pos, head, d_head], or [batch, head, q, k] for the pattern
        if activation == "pattern":
            act[:, head] = clean_cache[hook.name][:, head]
        else:
            act[:, :, head] = clean_cache[hook.name][:, :, head]
        return act

    hooks = [(f"blocks.{layer}.attn.hook_{activation}", partial(put_back, head=head)) for layer, head in heads]
    with torch.no_grad():
        return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=hooks))


# ---- every patch at once, with TransformerLens's helpers -------------------------------------------------


class _TLView:
    """transformer_lens.patching reads `model.cfg.device` and `model.cfg.n_key_value_heads`, which
    the course's Config does not have (a bridge's does); this view adds them and passes the rest on."""

    def __init__(self, model):
        self._model = model
        self.cfg = SimpleNamespace(n_layers=model.cfg.n_layers, n_heads=model.cfg.n_heads,
                                   n_key_value_heads=None, device=model.W_E.device)

    def __getattr__(self, name):
        return getattr(self._model, name)


def _tl(model):
    return _TLView(model) if isinstance(model, Transformer) else model


def resid_patching(model, corrupted_tokens: Int[Tensor, "batch pos"], clean_cache, metric) -> Float[Tensor, "layer pos"]:
    """metric after patching the residual stream entering each layer at each position, [layer, pos]
    (`transformer_lens.patching.get_act_patch_resid_pre`)."""
    _validate_run(model, corrupted_tokens, clean_cache)
    with torch.no_grad():
        return tl_patching.get_act_patch_resid_pre(_tl(model), corrupted_tokens, clean_cache, metric)


_TL_HEAD_SWEEPS = {
    "z": tl_patching.get_act_patch_attn_head_out_all_pos,
    "q": tl_patching.get_act_patch_attn_head_q_all_pos,
    "k": tl_patching.get_act_patch_attn_head_k_all_pos,
    "v": tl_patching.get_act_patch_attn_head_v_all_pos,
    "pattern": tl_patching.get_act_patch_attn_head_pattern_all_pos,
}


def head_patching(model, corrupted_tokens: Int[Tensor, "batch pos"], clean_cache, metric,
                  activation: str = "z") -> Float[Tensor, "layer head_index"]:
    """metric after patching one head's `activation` (z, q, k, v or pattern) at every position,
    for every head: [layer, head] (`transformer_lens.patching.get_act_patch_attn_head_*_all_pos`)."""
    _validate_run(model, corrupted_tokens, clean_cache)
    validate.one_of(activation, HEAD_ACTIVATIONS, "activation")
    with torch.no_grad():
        return _TL_HEAD_SWEEPS[activation](_tl(model), corrupted_tokens, clean_cache, metric)


# ---- causal tracing (Meng et al. 2022) ----------------------------------------------------------------


def _noise_inputs(model, tokens, noise, noise_positions, metric_positions) -> list[int]:
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    validate.tensor(noise, "noise", "batch pos d_model", dtype="float")
    validate.shape_is(noise, "noise", (*tokens.shape, model.cfg.d_model), "[batch, pos, d_model]")
    validate.finite(noise, "noise")
    seq_len = tokens.shape[1]
    if not isinstance(noise_positions, (list, tuple, range)):
        raise TypeError(f"noise_positions must be a list of positions, got {type(noise_positions).__name__}")
    noise_positions = list(noise_positions)
    if not noise_positions or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < seq_len for p in noise_positions):
        raise ValueError(f"noise_positions must be a non-empty list of positions in [0, {seq_len - 1}], got {noise_positions!r}")
    if not isinstance(metric_positions, slice):
        raise TypeError(f"metric_positions must be a slice of predicted positions, got {type(metric_positions).__name__}")
    return noise_positions


def _add_noise_hook(noise, noise_positions):
    def add_noise(embed, hook):  # [batch, pos, d_model]: the token embeddings
        embed[:, noise_positions] = embed[:, noise_positions] + noise[:, noise_positions].to(embed.device)
        return embed
    return ("hook_embed", add_noise)


def noised_logprob(model, tokens: Int[Tensor, "batch pos"], noise: Float[Tensor, "batch pos d_model"], noise_positions,
                   metric_positions: slice) -> Float[Tensor, ""]:
    """Run `tokens` with noise[:, p] added to the token embeddings (`hook_embed`) at each position p in
    `noise_positions`, and return the mean log-probability of the right next tokens at
    `metric_positions` (`correct_logprob`): a scalar. noise: [batch, pos, d_model]; its rows at other
    positions are not used. The first half of causal tracing (notebook 06)."""
    noise_positions = _noise_inputs(model, tokens, noise, noise_positions, metric_positions)
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[_add_noise_hook(noise, noise_positions)])
    return correct_logprob(logits, tokens, metric_positions)


def causal_trace(model, tokens: Int[Tensor, "batch pos"], noise: Float[Tensor, "batch pos d_model"], noise_positions,
                 metric_positions: slice, progress: bool = False) -> Float[Tensor, "layer pos"]:
    """Causal tracing (notebook 06): add noise[:, p] to the token embeddings at each p in `noise_positions`,
    then restore the clean residual stream entering one layer at one position at a time, still with
    the noise. Returns [layer, pos]: the normalised log-probability of the right next tokens at
    `metric_positions`, 0 for the noised run and 1 for the clean one (`normalized_metric`).
    noise: [batch, pos, d_model], drawn by the caller (so the same noise gives the same trace)."""
    noise_positions = _noise_inputs(model, tokens, noise, noise_positions, metric_positions)
    validate.boolean(progress=progress)
    noise_hook = _add_noise_hook(noise, noise_positions)
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        clean = correct_logprob(clean_logits, tokens, metric_positions)
        noised = correct_logprob(model.run_with_hooks(tokens, fwd_hooks=[noise_hook]), tokens, metric_positions)
        result = torch.zeros(model.cfg.n_layers, tokens.shape[1], device=clean.device)
        for layer in tqdm(range(model.cfg.n_layers), desc="causal trace", disable=not progress):
            for pos in range(tokens.shape[1]):
                def restore(resid, hook, pos=pos, name=names[layer]):  # [batch, pos, d_model]
                    resid[:, pos] = cache[name][:, pos]
                    return resid

                logits = model.run_with_hooks(tokens, fwd_hooks=[noise_hook, (names[layer], restore)])
                result[layer, pos] = normalized_metric(correct_logprob(logits, tokens, metric_positions), clean, noised)
    return result


# ---- one path: a head's output into later heads' keys ---------------------------------------------------


def patch_k_path(model, corrupted_tokens: Int[Tensor, "batch pos"], clean_cache, metric, writer: tuple[int, int],
                 readers) -> torch.Tensor:
    """Run on corrupted_tokens, but in the keys of the `readers` heads [(layer, head), ...] replace
    what head `writer` (layer, head) writes by what it wrote in the clean run; everywhere else
    (the residual stream, the readers' queries and values, other heads) the run stays corrupted.
    Return metric(logits). Keys are linear in the residual stream only without LayerNorm, so the
    model must have none (as `ablation.k_path_ablation_hooks`, which removes the same term)."""
    _validate_run(model, corrupted_tokens, clean_cache)
    (w_layer, w_head), readers = validate.k_path(model, writer, readers, "patch_k_path")
    z_name = f"blocks.{w_layer}.attn.hook_z"
    clean_out = head_output(clean_cache[z_name], model.W_O[w_layer], w_head)
    written = {}

    def keep(z, hook):
        written["difference"] = head_output(z, model.W_O[w_layer], w_head) - clean_out

    hooks = [(z_name, keep)]
    for r_layer in sorted({r for r, _ in readers}):
        def swap(k, hook, r_layer=r_layer, heads_here=[h for r, h in readers if r == r_layer]):
            for h in heads_here:  # k - (corrupted - clean) @ W_K: the clean writer's term in place of the corrupted one
                k = keys_without(k, written["difference"], model.W_K[r_layer], h)
            return k

        hooks.append((f"blocks.{r_layer}.attn.hook_k", swap))
    with torch.no_grad():
        return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=hooks))
