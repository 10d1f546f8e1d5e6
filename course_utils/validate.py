"""Clear errors for bad arguments: one function per rule, one wording per rule, for all of course_utils.

Every function here raises `TypeError` when an argument is the wrong kind of thing (a list where a
tensor belongs, a float where an int belongs) and `ValueError` when it is the right kind with the
wrong shape or value. Each message names the argument, shows what came and says what was expected,
so that a learner can fix the call without reading a stack trace. Modules call them at their
entrance, as `validate.tokens(tokens, model.cfg)`, the way nanoGPT asserts `t <= block_size`.

Shapes are written as in the signatures (jaxtyping's axis names): `"batch pos d_model"`, with a
leading `"..."` for any number of leading axes; messages show them as `[batch, pos, d_model]`.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn as nn


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(shape: str) -> str:
    return "[" + ", ".join(shape.split()) + "]"


# ---- numbers --------------------------------------------------------------------------------------


def integer(**named) -> None:
    """Each argument must be an int (a seed, a step): TypeError otherwise. `integer(seed=seed)`."""
    for name, value in named.items():
        if not _is_int(value):
            raise TypeError(f"{name} must be an int, got {value!r}")


def positive(**named) -> None:
    """Each argument must be an int >= 1 (a size, a count). `positive(batch=batch, d_vocab=d_vocab)`."""
    for name, value in named.items():
        if not _is_int(value) or value < 1:
            raise (ValueError if _is_int(value) else TypeError)(f"{name} must be a positive int, got {value!r}")


def boolean(**named) -> None:
    """Each argument must be True or False (a flag): TypeError otherwise, so "False" is not read as true."""
    for name, value in named.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")


def positive_number(**named) -> None:
    """Each argument must be a finite number > 0 (a learning rate, a scale, an epsilon)."""
    for name, value in named.items():
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not 0 < value < math.inf:
            raise (ValueError if is_number else TypeError)(f"{name} must be a finite number > 0, got {value!r}")


def non_negative(**named) -> None:
    """Each argument must be a finite number >= 0 (a temperature, where 0 means greedy)."""
    for name, value in named.items():
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not 0 <= value < math.inf:
            raise (ValueError if is_number else TypeError)(f"{name} must be a finite number >= 0, got {value!r}")


def fraction(value, name: str) -> None:
    """`value` must be a number in [0, 1] (a probability)."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not 0 <= value <= 1:
        raise (ValueError if is_number else TypeError)(f"{name} must be in [0, 1], got {value!r}")


def int_in(value, low: int, high: int, name: str, meaning: str = "") -> None:
    """`value` must be an int in [low, high]; `meaning` says what the range is, in a few words."""
    if not _is_int(value) or not low <= value <= high:
        why = f" ({meaning})" if meaning else ""
        raise (ValueError if _is_int(value) else TypeError)(f"{name} must be an int in [{low}, {high}]{why}, got {value!r}")


def at_least(value, low: int, name: str, meaning: str = "") -> None:
    """`value` must be an int >= low; `meaning` says what it counts, in a few words."""
    if not _is_int(value) or value < low:
        why = f" ({meaning})" if meaning else ""
        raise (ValueError if _is_int(value) else TypeError)(f"{name} must be an int >= {low}{why}, got {value!r}")


def one_of(value, choices, name: str, what: str = "") -> None:
    """`value` must be one of `choices` (a method, a condition, a model's name); `what` names them."""
    choices = tuple(choices)
    shown = f"{what} {choices}" if what else f"{choices}"
    if choices and type(value) not in {type(c) for c in choices}:
        raise TypeError(f"{name} must be one of {shown}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {shown}, got {value!r}")


# ---- objects --------------------------------------------------------------------------------------


def instance(value, cls: type, name: str) -> None:
    """`value` must be a `cls` (a Config, an ICLTasks, ...): TypeError otherwise."""
    if not isinstance(value, cls):
        module = "torch" if cls.__module__ == "torch._C" else cls.__module__  # torch.Generator, as it is spelt
        raise TypeError(f"{name} must be a {module}.{cls.__qualname__}, got {type(value).__name__}")


def model(value, name: str = "model") -> None:
    """`value` must be a course Transformer or a TransformerBridge: a module with a `cfg` and hooks."""
    if not (isinstance(value, nn.Module) and getattr(value, "cfg", None) is not None
            and hasattr(value, "run_with_cache") and hasattr(value, "run_with_hooks")):
        raise TypeError(f"{name} must be a course_utils Transformer or a TransformerBridge, got {type(value).__name__}")


def weights(value: dict[str, torch.Tensor], model_, source) -> None:
    """Refuse, before touching the model, weights that do not cover it exactly (names and shapes),
    so a damaged file can never leave a model half-loaded."""
    expected = {k: tuple(v.shape) for k, v in model_.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in value.items()}
    missing, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
    if missing or extra or wrong:
        details = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "",
                   ", ".join(f"{k} has shape {found[k]}, expected {expected[k]}" for k in wrong)]
        raise ValueError(f"{source} does not hold this model's weights: " + "; ".join(d for d in details if d))


# ---- tensors ------------------------------------------------------------------------------------


def tensor(value, name: str, shape: str, dtype: str | None = None) -> None:
    """`value` must be a tensor with `shape`'s number of axes ("batch pos"; a leading "..." allows
    more), of dtype "float" or "int" if given, holding data (not on the "meta" device)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {_shown(shape)}, got {type(value).__name__}")
    axes = shape.split()
    if value.ndim < len(axes) - 1 if axes[0] == "..." else value.ndim != len(axes):
        raise ValueError(f"{name} must have shape {_shown(shape)}, got shape {tuple(value.shape)}")
    if dtype == "float" and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if dtype == "int" and value.dtype != torch.long:  # one integer dtype everywhere: int32 breaks the loss, uint8 indexes as a mask
        hint = f" (convert with {name}.long())" if not (value.is_floating_point() or value.dtype == torch.bool) else ""
        raise TypeError(f"{name} must be an integer tensor (torch.long), got dtype {value.dtype}{hint}")
    if value.is_meta:
        raise ValueError(f"{name} must hold data (a CPU or GPU tensor), got a tensor on device 'meta'")


def finite(value: torch.Tensor, name: str) -> None:
    """`value` must hold no NaN or inf: a weight, a vector or a score that a result is computed from."""
    if torch.isfinite(value.detach().sum()):  # fast path: any NaN or inf makes the sum NaN or inf
        return
    bad = ~torch.isfinite(value.detach())  # (a sum can also overflow: look at every entry)
    if bad.any():
        raise ValueError(f"{name} contains NaN or inf ({int(bad.sum())} of {value.numel()} entries): "
                         "expected finite numbers, or the result is undefined")


def nonzero(value: torch.Tensor, name: str, why: str) -> None:
    """`value` must not be all zeros (`why`: what would divide by its norm)."""
    if not value.detach().abs().sum() > 0:
        raise ValueError(f"{name} is all zeros: {why} is 0 / 0, undefined")


def head_weights(value: torch.Tensor, name: str, why: str) -> None:
    """Weights [layer, head_index, ...]: finite, and no head all zeros (`why`: what divides by a head's norm)."""
    finite(value, name)
    zero = (value.detach().flatten(2).abs().sum(-1) == 0).nonzero().tolist()
    if zero:
        raise ValueError(f"{name} is all zeros for heads (layer, head) {[tuple(h) for h in zero]}: {why} is 0 / 0, undefined")


def positions_at_least(value: torch.Tensor, n: int, name: str, why: str) -> None:
    """`value`'s position axis (-1) must have at least n entries (`why`: what needs them)."""
    if value.shape[-1] < n:
        raise ValueError(f"{name} has {value.shape[-1]} position(s), but {why} needs at least {n}, got shape {tuple(value.shape)}")


def selects(chosen: torch.Tensor, positions, n: int, name: str = "positions") -> None:
    """`chosen` (what `positions` picked out of n predicted positions) must not be empty."""
    if chosen.numel() == 0:
        raise ValueError(f"{name} {positions!r} selects none of the {n} predicted positions")


def ids(value: torch.Tensor, d_vocab: int, name: str = "tokens", what: str = "the vocabulary") -> None:
    """Integer ids in [0, d_vocab): a negative id would silently index from the end."""
    if value.numel() == 0:
        return
    low, high = int(value.min()), int(value.max())
    if low < 0 or high >= d_vocab:
        raise ValueError(f"{name} contains id {low if low < 0 else high}, outside {what} [0, {d_vocab})")


def tokens(value, cfg, name: str = "tokens") -> None:
    """`value` must be token ids [batch, pos] that a model with config `cfg` can read: at least one
    sequence and position, at most cfg.n_ctx positions, ids in [0, cfg.d_vocab)."""
    if isinstance(value, torch.Tensor) and value.ndim == 1:
        raise ValueError(f"{name} must have shape [batch, pos], got shape {tuple(value.shape)} "
                         f"(add a batch dimension: {name}[None])")
    tensor(value, name, "batch pos", dtype="int")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(value.shape)}, expected at least one sequence and position")
    if value.shape[1] > cfg.n_ctx:
        raise ValueError(f"{name} has {value.shape[1]} positions but the model's context is n_ctx={cfg.n_ctx}")
    ids(value, cfg.d_vocab, name)


def vectors(value, cfg, name: str = "inputs") -> None:
    """`value` must be input vectors [batch, pos, d_input] that a model reading vectors (notebook 13,
    `cfg.d_input` set) can take: float, finite, at most cfg.n_ctx positions."""
    tensor(value, name, "batch pos d_input", dtype="float")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(value.shape)}, expected at least one sequence and position")
    if value.shape[1] > cfg.n_ctx:
        raise ValueError(f"{name} has {value.shape[1]} positions but the model's context is n_ctx={cfg.n_ctx}")
    if value.shape[2] != cfg.d_input:
        raise ValueError(f"{name} must have shape [batch, pos, d_input={cfg.d_input}], got shape {tuple(value.shape)}")
    finite(value, name)


def answers(value, tokens: torch.Tensor, name: str = "answers", d_vocab: int | None = None) -> None:
    """`value` must hold one token id per prompt of `tokens`: [batch], ids in [0, d_vocab) if given."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [batch] = [{tokens.shape[0]}] (one answer per prompt), "
                        f"got {type(value).__name__}")
    if value.shape != tokens.shape[:1]:
        raise ValueError(f"{name} must have shape [batch] = [{tokens.shape[0]}] (one answer per prompt), "
                         f"got shape {tuple(value.shape)}")
    tensor(value, name, "batch", dtype="int")
    if d_vocab is not None:
        ids(value, d_vocab, name)


def shape_is(value, name: str, shape: tuple[int, ...], meaning: str) -> None:
    """`value` must be a tensor of exactly `shape` (`meaning` names the axes: "[layer, head, d_head]")."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {meaning} = {list(shape)}, got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {meaning} = {list(shape)}, got shape {tuple(value.shape)}")


def cache(value, model_, name: str = "cache", made_from: str = "tokens") -> None:
    """`value` must be a full ActivationCache of `model_` (from `model_.run_with_cache(made_from)`): its
    layers, d_model, n_heads and d_head must be the model's, or patching and lenses mix two models."""
    if not hasattr(value, "accumulated_resid"):
        raise TypeError(f"{name} must be the ActivationCache from model.run_with_cache({made_from}), got {type(value).__name__}")
    model(model_)
    cfg = model_.cfg
    missing = [n for n in ("hook_embed", f"blocks.{cfg.n_layers - 1}.hook_resid_post") if n not in value]
    if missing:
        raise ValueError(f"{name} lacks {missing}: run model.run_with_cache({made_from}) without a names_filter")
    heads = (cfg.n_heads, cfg.d_model // cfg.n_heads)
    for key in value.keys():
        layer_ = re.match(r"blocks\.(\d+)\.", key)
        shape = tuple(value[key].shape)
        if layer_ and int(layer_.group(1)) >= cfg.n_layers:
            wrong = f"it has {key} but the model has n_layers={cfg.n_layers}"
        elif key.endswith(("hook_embed", "hook_resid_pre", "hook_resid_post")) and shape[-1] != cfg.d_model:
            wrong = f"{key} has shape {shape} but the model has d_model={cfg.d_model}"
        elif key.endswith(("attn.hook_z", "attn.hook_q", "attn.hook_k", "attn.hook_v")) and len(shape) == 4 and shape[2:] != heads:
            wrong = f"{key} has shape {shape} but the model has [n_heads, d_head] = {list(heads)}"
        else:
            continue
        raise ValueError(f"{name} comes from another model: {wrong}")


# ---- layers and heads ------------------------------------------------------------------------------


def layer(model_, value, name: str = "layer") -> None:
    """`value` must be a layer of the model: an int in [0, n_layers - 1]."""
    model(model_)
    n_layers = model_.cfg.n_layers
    int_in(value, 0, n_layers - 1, name, f"the model has {n_layers} layers")


def head(model_, layer_, head_, name: str = "") -> None:
    """(layer_, head_) must be a head of the model. `name` ("writer", "heads") says which argument
    holds the pair, when it is not two arguments called layer and head."""
    where = f"{name}: " if name else ""
    layer(model_, layer_, f"{where}layer")
    n_heads = model_.cfg.n_heads
    int_in(head_, 0, n_heads - 1, f"{where}head", f"a layer has {n_heads} heads")


def heads(model_, value, name: str = "heads") -> list[tuple[int, int]]:
    """One (layer, head) pair or a list of them, each a head of the model, as a list of pairs."""
    if isinstance(value, tuple) and len(value) == 2 and all(_is_int(x) for x in value):
        value = [value]
    try:
        pairs = [tuple(pair) for pair in value]
    except TypeError:
        raise TypeError(f"{name} must be a (layer, head) pair or a list of them, got {value!r}") from None
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"{name} must be (layer, head) pairs, got {pair!r}")
        head(model_, *pair, name=name)
    return pairs


def k_path(model_, writer, readers, caller: str) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """A K-path: a `writer` head and `readers` heads in later layers, in a model without LayerNorm
    (where a key is linear in the residual stream). Returns (writer, readers) as int pairs."""
    model(model_)
    if model_.cfg.normalization_type is not None:
        raise ValueError(f"{caller} needs a model without LayerNorm (normalization_type=None), got "
                         f"{model_.cfg.normalization_type!r}: with LayerNorm a key is not linear in the residual stream")
    (w_layer, w_head), = heads(model_, [writer], name="writer")
    readers = heads(model_, readers, name="readers")
    for r_layer, r_head in readers:
        if r_layer <= w_layer:
            raise ValueError(f"readers: head {r_layer}.{r_head} is not in a later layer than the writer "
                             f"{w_layer}.{w_head}, so it cannot read its output")
    return (w_layer, w_head), readers
