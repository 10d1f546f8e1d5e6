"""Every check accepts the right answer and rejects plausible wrong ones with a specific hint."""

import einops
import pytest
import torch

from course_utils import checks
from course_utils import model as reference
from course_utils.checks import ExerciseError
from course_utils.model import Config, Transformer


def not_done(*args):
    raise NotImplementedError("Exercise 'x': hint")


def test_embed():
    checks.check_embed(reference.embed)
    with pytest.raises(ExerciseError, match=r"\[pos, batch, d_model\]"):
        checks.check_embed(lambda tokens, W_E: W_E[tokens].transpose(0, 1))
    with pytest.raises(ExerciseError, match="one-hot"):
        checks.check_embed(lambda tokens, W_E: torch.nn.functional.one_hot(tokens, W_E.shape[0]).float())
    with pytest.raises(ExerciseError, match="IndexError"):
        checks.check_embed(lambda tokens, W_E: W_E[:, tokens])


def test_pos_embed():
    checks.check_pos_embed(reference.pos_embed)
    with pytest.raises(ExerciseError, match="indexed W_pos with the token ids"):
        checks.check_pos_embed(lambda tokens, W_pos: W_pos[tokens])
    with pytest.raises(ExerciseError, match="forgot the batch axis"):
        checks.check_pos_embed(lambda tokens, W_pos: W_pos[: tokens.shape[1]])
    with pytest.raises(ExerciseError, match="all n_ctx rows"):
        checks.check_pos_embed(lambda tokens, W_pos: W_pos.expand(tokens.shape[0], -1, -1))


def _scores(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5


def _mask(q):
    n = q.shape[-2]
    return torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)


def test_attention_pattern():
    checks.check_attention_pattern(reference.attention_pattern)
    wrong = {
        "future positions": lambda q, k: _scores(q, k).softmax(-1),
        "not divided by sqrt": lambda q, k: (q @ k.transpose(-2, -1)).masked_fill(_mask(q), float("-inf")).softmax(-1),
        "softmax over the last axis": lambda q, k: _scores(q, k).masked_fill(_mask(q), float("-inf")).softmax(-2),
        "masked after the softmax": lambda q, k: _scores(q, k).softmax(-1).masked_fill(_mask(q), 0.0),
        "transposed": lambda q, k: _scores(q, k).masked_fill(_mask(q), float("-inf")).softmax(-1).transpose(-1, -2),
    }
    for hint, fn in wrong.items():
        with pytest.raises(ExerciseError, match=hint):
            checks.check_attention_pattern(fn)


def _mha(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O, reduce="sum", bias=True, mask=True):
    q = einops.einsum(x, W_Q, "b p d, h d e -> b h p e") + b_Q[:, None]
    k = einops.einsum(x, W_K, "b p d, h d e -> b h p e") + b_K[:, None]
    v = einops.einsum(x, W_V, "b p d, h d e -> b h p e") + b_V[:, None]
    pattern = reference.attention_pattern(q, k) if mask else _scores(q, k).softmax(-1)
    out = einops.einsum(pattern @ v, W_O, "b h p e, h e d -> b h p d")
    out = out.sum(1) if reduce == "sum" else out.mean(1) if reduce == "mean" else out
    return out + b_O if bias and reduce else out


def test_multi_head_attention():
    checks.check_multi_head_attention(_mha)
    checks.check_multi_head_attention(reference.multi_head_attention)
    with pytest.raises(ExerciseError, match="left out b_O"):
        checks.check_multi_head_attention(lambda *a: _mha(*a, bias=False))
    with pytest.raises(ExerciseError, match="averaged the heads"):
        checks.check_multi_head_attention(lambda *a: _mha(*a, reduce="mean"))
    with pytest.raises(ExerciseError, match="still has a head axis"):
        checks.check_multi_head_attention(lambda *a: _mha(*a, reduce=None))
    with pytest.raises(ExerciseError, match="see the future"):
        checks.check_multi_head_attention(lambda *a: _mha(*a, mask=False))


def test_unembed():
    checks.check_unembed(reference.unembed)
    with pytest.raises(ExerciseError, match="left out the bias"):
        checks.check_unembed(lambda r, W_U, b_U: r @ W_U)
    with pytest.raises(ExerciseError, match="softmax"):
        checks.check_unembed(lambda r, W_U, b_U: (r @ W_U + b_U).softmax(-1))
    with pytest.raises(ExerciseError, match="wrong values"):
        checks.check_unembed(lambda r, W_U, b_U: r @ W_U + 2 * b_U)


def _forward(tokens, model, pos=True, residual=True):
    resid = reference.embed(tokens, model.W_E)
    if pos:
        resid = resid + reference.pos_embed(tokens, model.W_pos)
    for block in model.blocks:
        a = block.attn
        out = reference.multi_head_attention(resid, a.W_Q, a.b_Q, a.W_K, a.b_K, a.W_V, a.b_V, a.W_O, a.b_O)
        resid = resid + out if residual else out
    return reference.unembed(resid, model.W_U, model.b_U)


def test_forward():
    model = Transformer(Config(d_vocab=20, n_ctx=16, d_model=16, n_heads=2, n_layers=2))
    checks.check_forward(_forward, model)
    with pytest.raises(ExerciseError, match="positional embedding"):
        checks.check_forward(lambda t, m: _forward(t, m, pos=False), model)
    with pytest.raises(ExerciseError, match="adding to it"):
        checks.check_forward(lambda t, m: _forward(t, m, residual=False), model)
    with pytest.raises(TypeError, match="course_utils Transformer"):
        checks.check_forward(_forward, "model")


def test_unfinished_exercise_and_carry_on(capsys):
    checks._passed.clear()
    with pytest.raises(NotImplementedError, match="Exercise 'embed' is not done yet"):
        checks.check_embed(not_done)
    assert checks.carry_on("embed", not_done) is reference.embed
    assert "using the reference" in capsys.readouterr().out
    checks.check_embed(reference.embed)
    mine = lambda tokens, W_E: W_E[tokens]  # noqa: E731
    assert checks.carry_on("embed", mine) is mine


def test_wrong_kinds_of_answer():
    with pytest.raises(ExerciseError, match="expected a function"):
        checks.check_embed(42)
    with pytest.raises(ExerciseError, match="expected a torch.Tensor, got list"):
        checks.check_embed(lambda tokens, W_E: [1, 2])
    with pytest.raises(ExerciseError, match="expected dtype"):
        checks.check_embed(lambda tokens, W_E: W_E[tokens].double())


# ---- notebooks 02 and 03 ------------------------------------------------------------------------

from course_utils import metrics  # noqa: E402


def test_per_token_loss():
    checks.check_per_token_loss(lambda logits, tokens: reference.next_token_loss(logits, tokens, per_token=True))
    with pytest.raises(ExerciseError, match="same position"):
        checks.check_per_token_loss(lambda l, t: -l.log_softmax(-1).gather(-1, t[..., None])[..., 0][:, 1:])
    with pytest.raises(ExerciseError, match="MINUS"):
        checks.check_per_token_loss(lambda l, t: l.log_softmax(-1)[:, :-1].gather(-1, t[:, 1:, None])[..., 0])
    with pytest.raises(ExerciseError, match="probability, not its log"):
        checks.check_per_token_loss(lambda l, t: -l.softmax(-1)[:, :-1].gather(-1, t[:, 1:, None])[..., 0])


def test_icl_score():
    checks.check_icl_score(metrics.icl_score)
    checks.check_icl_score(lambda loss, early, late: float(loss[..., late].mean() - loss[..., early].mean()))
    with pytest.raises(ExerciseError, match="sign is flipped"):
        checks.check_icl_score(lambda loss, early, late: loss[..., early].mean() - loss[..., late].mean())
    with pytest.raises(ExerciseError, match="summed"):
        checks.check_icl_score(lambda loss, early, late: loss[..., late].sum() - loss[..., early].sum())


def _diag(pattern, offset, skip=0):
    return pattern.diagonal(offset=offset, dim1=-2, dim2=-1)[..., skip:].mean(-1).mean(0)


def test_prev_token_score():
    checks.check_prev_token_score(metrics.prev_token_score)
    with pytest.raises(ExerciseError, match="NEXT"):
        checks.check_prev_token_score(lambda p: _diag(p, 1))
    with pytest.raises(ExerciseError, match="token itself"):
        checks.check_prev_token_score(lambda p: _diag(p, 0))
    with pytest.raises(ExerciseError, match="one score per head"):
        checks.check_prev_token_score(lambda p: _diag(p, -1).mean())


def test_induction_score():
    checks.check_induction_score(metrics.induction_score)
    with pytest.raises(ExerciseError, match="duplicate-token score"):
        checks.check_induction_score(lambda p, period: _diag(p, -period))
    with pytest.raises(ExerciseError, match="drop the first entry"):
        checks.check_induction_score(lambda p, period: _diag(p, -(period - 1)))
    with pytest.raises(ExerciseError, match="one score per head"):
        checks.check_induction_score(lambda p, period: _diag(p, -(period - 1), skip=1).mean())


def test_duplicate_token_score():
    checks.check_duplicate_token_score(metrics.duplicate_token_score)
    with pytest.raises(ExerciseError, match="that is induction"):
        checks.check_duplicate_token_score(lambda p, period: _diag(p, -(period - 1), skip=1))
    with pytest.raises(ExerciseError, match="one score per head"):
        checks.check_duplicate_token_score(lambda p, period: _diag(p, -period).mean())
    with pytest.raises(ExerciseError, match="wrong values|shape"):
        checks.check_duplicate_token_score(lambda p, period: _diag(p, -1))


def test_composition_score():
    checks.check_composition_score(lambda A, B: (A @ B).norm() / (A.norm() * B.norm()))
    with pytest.raises(ExerciseError, match="did not normalise"):
        checks.check_composition_score(lambda A, B: (A @ B).norm())
    with pytest.raises(ExerciseError, match="wrong order"):
        checks.check_composition_score(lambda A, B: (B @ A).norm() / (A.norm() * B.norm()))
    with pytest.raises(ExerciseError, match="squared norms"):
        checks.check_composition_score(lambda A, B: (A @ B).norm() / (A.norm() ** 2 * B.norm() ** 2))


def test_every_exercise_has_a_check_and_every_carry_on_a_reference():
    """Each exercise in the solution notebooks has a check_<name>, and each carry_on("<name>", ...)
    in them finds a same-name reference in course_utils."""
    import re
    from pathlib import Path

    import nbformat

    checks._passed.clear()
    root = Path(__file__).resolve().parent.parent
    exercises, carried = set(), set()
    for path in sorted((root / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            exercises |= set(re.findall(r"# BEGIN SOLUTION (\w+):", cell.source))
            carried |= set(re.findall(r"carry_on\(\"(\w+)\"", cell.source))
    assert exercises and carried
    for name in exercises:
        assert callable(getattr(checks, f"check_{name}", None)), f"no check_{name} for exercise {name}"
    for name in carried:
        assert name in exercises, f"carry_on({name!r}) names no exercise"
        ref = checks.carry_on(name, not_done)
        assert callable(ref) and ref is not not_done, name
    with pytest.raises(KeyError, match="no reference implementation named 'nope'"):
        checks.carry_on("nope", not_done)
