"""What every exercise check shares: calling your function safely, and comparing its answer.

A check computes the expected answer first (with the course's reference implementation), then calls
your function through `call`, which fails if your function changed its inputs (a tensor, the cache,
the model's weights) or left a hook on the model. `compare` then judges the answer in a fixed order:

1. its kind: a tensor where a tensor is expected (a Python float is not one), and the reverse;
2. its dtype (a float64 answer gets a dtype message, whatever else is wrong with it);
3. the named mistakes: when the answer equals what a known mistake produces, the check says which;
4. its shape, then NaN or infinite entries, then its values: where they differ, and by how much.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
import torch.nn as nn
from transformer_lens import ActivationCache
from transformer_lens.hook_points import HookPoint


class ExerciseError(AssertionError):
    """Your answer to an exercise is not right yet; the message says why."""


passed: dict[str, bool] = {}  # exercise name -> its check passed; `carry_on` reads it


# ---- calling the learner's function ---------------------------------------------------------------


def _hook_counts(model: nn.Module) -> dict[str, int]:
    """How many hooks each HookPoint of `model` holds: {"blocks.0.hook_resid_pre": 1, ...}. By the names
    of `hook_dict` where the model has one (a TransformerBridge's include TransformerLens's aliases)."""
    points = getattr(model, "hook_dict", None) or dict(model.named_modules())
    return {name: len(point.fwd_hooks) + len(point.bwd_hooks)
            for name, point in points.items() if isinstance(point, HookPoint)}


def _remove_hooks(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, HookPoint):
            module.remove_hooks("both", including_permanent=False)


def _snapshot(value):
    """A copy of what `value` holds, to see afterwards whether the learner's function changed it."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, ActivationCache):
        return {name: t.detach().clone() for name, t in value.cache_dict.items()}
    if isinstance(value, nn.Module):
        return {name: t.detach().clone() for name, t in value.state_dict().items()}, _hook_counts(value)
    return None


def _changed(before, after: torch.Tensor) -> bool:
    return before.shape != after.shape or not torch.equal(before, after.detach())


def _what_changed(before, value) -> list[str]:
    """What the learner's function changed in `value`: cache entries, weights, or hook points with a
    new hook; for a tensor, ["values"]. Puts a cache or a model back as it was."""
    if isinstance(value, torch.Tensor):
        return ["values"] if _changed(before, value) else []
    if isinstance(value, ActivationCache):
        current = value.cache_dict
        edited = [key for key, tensor in before.items() if key not in current or _changed(tensor, current[key])]
        current.update(before)
        return edited
    if isinstance(value, nn.Module):
        weights, hooks = before
        left = [f"a hook at {name}" for name, count in _hook_counts(value).items() if count > hooks.get(name, 0)]
        if left:
            _remove_hooks(value)
        state = value.state_dict()
        edited = [key for key, tensor in weights.items() if _changed(tensor, state[key])]
        with torch.no_grad():
            for key in edited:
                state[key].copy_(weights[key])
        return left + edited
    return []


def _check_unchanged(name: str, arg: str, before, value) -> None:
    """Raise ExerciseError if the learner's function changed `value` (input `arg`) or left a hook on it."""
    __tracebackhide__ = True
    changed = _what_changed(before, value)
    if not changed:
        return
    if isinstance(value, torch.Tensor):
        raise ExerciseError(
            f"[{name}] your function changed its input `{arg}` in place: clone it first "
            f"(`{arg} = {arg}.clone()`) and write into the copy. The caller still holds `{arg}` and "
            f"expects it unchanged (it may sit in a cache, or be the input of the next step).")
    if isinstance(value, ActivationCache):
        raise ExerciseError(
            f"[{name}] your function changed the cache `{arg}` (its entry {changed[0]!r}): read from the "
            f"cache, never write into it. A hook that edits a tensor taken from the cache edits the "
            f"cache: copy it with .clone() first. (The check has put the cache back.)")
    hooks = [c.removeprefix("a hook at ") for c in changed if c.startswith("a hook at ")]
    if hooks:
        raise ExerciseError(
            f"[{name}] your function left a hook on the model (at {', '.join(hooks[:3])}): later runs "
            f"of the model would still be changed by it. Use model.run_with_hooks(tokens, fwd_hooks=...) "
            f"or `with model.hooks(fwd_hooks=...):`, which remove their hooks; the check has removed it.")
    raise ExerciseError(
        f"[{name}] your function changed the model's weights ({', '.join(changed[:3])}) in place: an "
        f"exercise reads the weights and never writes them (the check has put them back).")


def call(name: str, fn, inputs: dict[str, Any], changes: tuple[str, ...] = ()):
    """fn(*inputs.values()), turning a crash, a missing answer or a changed input into a clear message.

    `inputs` maps each argument's name (used in messages) to its value, in the order fn takes them.
    `changes` names the arguments the function is asked to change (a model a training loop trains, a
    lens it fits in place): their values are not compared, but a model's hooks still are.
    """
    __tracebackhide__ = True
    if not callable(fn):
        raise ExerciseError(f"[{name}] expected a function as fn (pass the function itself, not its result), "
                            f"got {type(fn).__name__}")
    before = {arg: _snapshot(value) for arg, value in inputs.items()}
    for arg in changes:  # no values to compare: only a module's hooks
        if isinstance(inputs[arg], nn.Module):
            before[arg] = ({}, before[arg][1])
        else:
            del before[arg]
    try:
        answer = fn(*inputs.values())
    except NotImplementedError:
        raise NotImplementedError(
            f"Exercise '{name}' is not done yet: replace the `raise NotImplementedError(...)` line "
            f"with your code. The notebook carries on with the reference implementation meanwhile."
        ) from None
    except Exception as err:  # the learner's code crashed: say where, briefly
        for arg, value in before.items():  # a hook added, or a weight changed, before the crash: undone
            _what_changed(value, inputs[arg])
        called = ", ".join(f"{arg} {_describe(value)}" for arg, value in inputs.items())
        raise ExerciseError(f"[{name}] your function raised {type(err).__name__}: {err}\n"
                            f"It was called with {called}.") from None
    for arg, value in before.items():
        _check_unchanged(name, arg, value, inputs[arg])
    return answer


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"[shape {tuple(value.shape)}, {value.dtype}]"
    if isinstance(value, nn.Module):
        return f"[a {type(value).__name__}]"
    if isinstance(value, ActivationCache):
        return "[an ActivationCache]"
    if callable(value):
        return "[a function]"
    return f"= {value!r}"


# ---- comparing the answer with the expected one ---------------------------------------------------


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, numbers.Integral):
        return "a Python int"
    if isinstance(value, numbers.Real):
        return "a Python float"
    if value is None:
        return "None (did your function forget to `return` its answer?)"
    return f"a {type(value).__module__.split('.')[0]}.{type(value).__name__}".replace("builtins.", "")


def _pair(name: str, got, what: str) -> tuple:
    """A learner's answer that must be a pair (a tuple or list of two): as a tuple, or a clear error."""
    __tracebackhide__ = True
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise ExerciseError(f"[{name}] expected a pair ({what}), got {_kind(got)}"
                            + (f" of {len(got)}" if isinstance(got, (tuple, list)) else ""))
    return tuple(got)


def _check_kind(name: str, got, expected) -> None:
    __tracebackhide__ = True
    if isinstance(expected, torch.Tensor) and not isinstance(got, torch.Tensor):
        fix = ""
        if isinstance(got, numbers.Number):
            fix = (": a Python number cannot be indexed, moved to a device or stacked with other results; "
                   "drop the `.item()` or `float(...)` and return the tensor itself")
        elif type(got).__module__.startswith("numpy"):
            fix = ": compute with torch on the tensors you were given instead of converting to numpy"
        elif isinstance(got, (tuple, list)):
            fix = ": return one tensor (torch.stack turns a list of tensors into one)"
        shape = f" of shape {tuple(expected.shape)}" if expected.ndim else " (a 0-d tensor: one number)"
        raise ExerciseError(f"[{name}] expected a torch.Tensor{shape}, got {_kind(got)}{fix}")
    if isinstance(expected, numbers.Real) and not isinstance(expected, bool):
        if isinstance(got, torch.Tensor):
            raise ExerciseError(f"[{name}] expected a Python float, got a torch.Tensor of shape {tuple(got.shape)}: "
                                f"the notebook uses this answer as a number; return `.item()` of a one-element tensor")
        if not isinstance(got, numbers.Real) or isinstance(got, bool):
            raise ExerciseError(f"[{name}] expected a Python float, got {_kind(got)}")


def _check_dtype(name: str, got: torch.Tensor, expected: torch.Tensor) -> None:
    __tracebackhide__ = True
    if got.dtype == expected.dtype:
        return
    why = ""
    if expected.dtype == torch.long and got.is_floating_point():
        why = (": the answer is integers (token ids, positions, row numbers); argmax and torch.multinomial give torch.long tensors, so keep theirs "
               "(a tensor made from Python floats, or torch.zeros / torch.empty without a dtype, is float)")
    elif got.dtype == torch.float64:
        why = (": float64 usually comes from numpy, from torch.tensor(...) of Python floats with dtype=torch.float64, "
               "or from mixing in a float64 tensor; compute with the float32 tensors you were given")
    elif got.is_complex() and not expected.is_complex():
        why = (": complex numbers (eigenvalues often are) where the answer is real; take the real part, "
               ".real, of the finished result")
    elif not got.is_floating_point() and expected.is_floating_point():
        why = (": an integer or bool tensor cannot hold these values; build it with floats "
               "(torch.ones, torch.zeros, ...), or call .float()")
    raise ExerciseError(f"[{name}] expected dtype {expected.dtype}, got {got.dtype}{why}")


def _index(where: tuple[int, ...], axes: list[str] | None) -> str:
    if axes and len(axes) == len(where):
        return "(" + ", ".join(f"{axis} {i}" for axis, i in zip(axes, where)) + ")"
    return str(where)


def _shape_message(name: str, got: torch.Tensor, expected: torch.Tensor, axes: list[str] | None) -> str:
    named = f" [{', '.join(axes)}]" if axes and len(axes) == expected.ndim else ""
    message = f"[{name}] expected shape {tuple(expected.shape)}{named}, got {tuple(got.shape)}"
    squeezed = [n for n in got.shape if n != 1], [n for n in expected.shape if n != 1]
    if got.ndim > expected.ndim and squeezed[0] == squeezed[1]:
        return message + ": an extra axis of size 1 (drop it with .squeeze(dim) or by indexing it with 0)"
    if got.ndim < expected.ndim and squeezed[0] == squeezed[1]:
        return message + ": an axis of size 1 is missing (keepdim=True, or [None] / .unsqueeze(dim), puts it back)"
    if got.ndim == expected.ndim and sorted(got.shape) == sorted(expected.shape):
        return message + ": the same sizes in another order; check the order of the axes"
    if got.ndim == expected.ndim:
        i = next(i for i, (a, b) in enumerate(zip(got.shape, expected.shape)) if a != b)
        axis = f" ({axes[i]})" if named else ""
        return message + f": axis {i}{axis} has {got.shape[i]} {'entry' if got.shape[i] == 1 else 'entries'}, expected {expected.shape[i]}"
    if got.numel() == expected.numel():
        return message + ": the same number of entries, arranged differently (did you flatten or reshape it?)"
    if got.ndim < expected.ndim:
        missing = expected.ndim - got.ndim
        return message + f": {missing} {'axis' if missing == 1 else 'axes'} missing (did you average or sum over an axis you should keep?)"
    extra = got.ndim - expected.ndim
    return message + f": {extra} {'axis' if extra == 1 else 'axes'} too many"


def _matches(got: torch.Tensor, wrong, atol: float) -> bool:
    return (isinstance(wrong, torch.Tensor) and wrong.shape == got.shape
            and torch.allclose(got, wrong.to(got.dtype), atol=atol, equal_nan=True))


def compare(name: str, got, expected: torch.Tensor | float, mistakes: dict[str, Any] | None = None, atol: float = 1e-5,
            axes: str | None = None, nan_hint: str = "") -> None:
    """Raise ExerciseError unless `got` equals `expected` (a tensor, or a Python float) to within `atol`.

    mistakes: {hint: wrong answer}; a wrong answer may be a tensor or a function returning one
    (called only when needed; if it fails, that mistake is skipped). The hint is the message when
    `got` equals that wrong answer (and the wrong answer differs from the right one).
    axes: the expected answer's axis names ("batch pos d_model"), for messages.
    nan_hint: what NaN means in this exercise, added to the message when the answer has NaN.
    """
    __tracebackhide__ = True
    _check_kind(name, got, expected)
    if not isinstance(expected, torch.Tensor):  # a Python number: compared as one
        got, expected = torch.tensor(float(got), dtype=torch.float64), torch.tensor(float(expected), dtype=torch.float64)
    _check_dtype(name, got, expected)
    got, axis_names = got.detach(), axes.split() if axes else None
    if got.device != expected.device:
        raise ExerciseError(f"[{name}] expected a tensor on {expected.device}, the device of the inputs, "
                            f"got one on {got.device}: create new tensors with device=<input>.device")
    if _matches(got, expected, atol):  # right: no mistake to name, so none is computed (some run a model)
        mistakes = None
    for hint, wrong in (mistakes or {}).items():
        if callable(wrong):
            try:
                wrong = wrong()
            except Exception:  # this mistake cannot happen with these inputs
                continue
        if _matches(got, wrong, atol) and not _matches(expected, wrong, atol):
            raise ExerciseError(f"[{name}] {hint}")
    if got.shape != expected.shape:
        raise ExerciseError(_shape_message(name, got, expected, axis_names))
    bad = ~torch.isfinite(got) & torch.isfinite(expected)
    if bad.any():
        where = tuple(int(i) for i in torch.nonzero(bad)[0])
        kind = "NaN" if torch.isnan(got[where]) else "infinite values"
        raise ExerciseError(f"[{name}] your answer has {kind} in {int(bad.sum())} of {bad.numel()} entries, the first "
                            f"at index {_index(where, axis_names)}{': ' + nan_hint if nan_hint else ''}")
    close = torch.isclose(got, expected, atol=atol, equal_nan=True)
    if close.all():
        return
    diff = torch.where(close, torch.zeros_like(got), (got - expected).abs())
    where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
    if not where:
        raise ExerciseError(f"[{name}] wrong value: yours {got.item():.5g}, expected {expected.item():.5g}")
    message = (f"[{name}] right shape, wrong values: {int((~close).sum())} of {close.numel()} entries differ; the "
               f"largest difference is {diff.max():.3g} at index {_index(where, axis_names)} (yours "
               f"{got[where]:.5g}, expected {expected[where]:.5g})")
    only = []
    for i in range(got.ndim):  # the axes along which only some entries are wrong: say which
        wrong_at = (~close).movedim(i, 0).flatten(1).any(1) if got.ndim > 1 else ~close
        indices = torch.nonzero(wrong_at)[:, 0].tolist()
        if len(indices) < got.shape[i]:
            label = axis_names[i] if axis_names and len(axis_names) == got.ndim else f"axis {i}"
            listed = ", ".join(map(str, indices[:6])) + (", ..." if len(indices) > 6 else "")
            only.append(f"{label} {listed}")
    if only:
        message += f". Wrong only at {'; '.join(only)}; everywhere else right"
    raise ExerciseError(message + ".")


def done(name: str, cases: int) -> None:
    """Record that the check of `name` passed and say so."""
    passed[name] = True
    print(f"✓ {name}: correct on {cases} test cases.")

