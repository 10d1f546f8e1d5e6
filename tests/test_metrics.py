import pytest
import torch

from course_utils import metrics, zoo
from course_utils.data import repeated_tokens
from course_utils.metrics import duplicate_token_score, head_scores, induction_score, prev_token_score
from course_utils.bridge import to_bridge


def offset_pattern(seq: int, offset: int, heads: int = 2) -> torch.Tensor:
    """A pattern where each query q >= offset attends fully to q - offset (else to itself)."""
    pattern = torch.zeros(1, heads, seq, seq)
    for q in range(seq):
        pattern[0, :, q, q - offset if q >= offset else q] = 1.0
    return pattern


def test_scores_recognise_their_ideal_patterns():
    period = 6
    assert torch.allclose(prev_token_score(offset_pattern(12, 1)), torch.ones(2))
    assert torch.allclose(induction_score(offset_pattern(12, period - 1), period), torch.ones(2))
    assert torch.allclose(duplicate_token_score(offset_pattern(12, period), period), torch.ones(2))
    # and not each other's
    assert prev_token_score(offset_pattern(12, period - 1)).max() == 0
    assert induction_score(offset_pattern(12, 1), period).max() == 0


def test_scores_on_the_shipped_model_agree_with_the_bridge():
    model = zoo.load("attn_only_2l")
    tokens = repeated_tokens(8, 16, model.cfg.d_vocab, seed=1)
    ours = head_scores(model, tokens, induction_score, period=16)
    theirs = head_scores(to_bridge(model), tokens, induction_score, period=16)
    assert ours.shape == (2, 4)
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("bad,error,message", [
    (torch.zeros(3, 4), ValueError, r"pattern must be square, query_pos == key_pos, got shape \(3, 4\)"),
    (torch.zeros(5), ValueError, r"pattern must have shape \[\.\.\., query_pos, key_pos\], got shape \(5,\)"),
    ("pattern", TypeError, r"pattern must be a torch\.Tensor \[\.\.\., query_pos, key_pos\], got str"),
])
def test_bad_patterns(bad, error, message):
    with pytest.raises(error, match=message):
        prev_token_score(bad)


def test_bad_periods():
    with pytest.raises(ValueError, match=r"period must be an int in \[1, 10\].*got 11"):
        induction_score(offset_pattern(12, 1), 11)
    with pytest.raises(ValueError, match="got 0"):
        duplicate_token_score(offset_pattern(12, 1), 0)


def test_bad_arguments_to_circuit_and_curve_functions():
    model = zoo.load("attn_only_2l")
    for fn in (metrics.full_ov_circuit, metrics.positional_qk_circuit, metrics.token_qk_circuit):
        with pytest.raises(ValueError, match=r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"):
            fn(model, 2, 0)
        with pytest.raises(ValueError, match=r"head must be an int in \[0, 3\] \(a layer has 4 heads\), got 4"):
            fn(model, 0, 4)
    with pytest.raises(ValueError, match="mode must be 'Q', 'K' or 'V', got 'O'"):
        metrics.composition_scores(model, "O")
    with pytest.raises(ValueError, match="mode must be 'Q', 'K' or 'V'"):
        metrics.random_composition_baseline(model, "q")
    with pytest.raises(ValueError, match="square"):
        metrics.eigenvalue_copying_score(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"full_ov must have shape \[d_vocab, d_vocab\], got shape \(5,\)"):
        metrics.copying_score(torch.zeros(5))
    with pytest.raises(ValueError, match="late must be a non-empty slice of the 10 predicted positions"):
        metrics.icl_score(torch.zeros(2, 10), slice(0, 3), slice(12, 15))
    with pytest.raises(ValueError, match="early must be"):
        metrics.icl_score(torch.zeros(2, 10), (0, 3), slice(5, 9))
    with pytest.raises(ValueError, match="same length, at least 3"):
        metrics.phase_window([0, 1, 2], [1.0, 2.0], width=1)
    with pytest.raises(ValueError, match="one value per checkpoint"):
        metrics.phase_change([0, 1, 2], [0, -1, -2], [0, 0], [0.1, 0.5, 0.9], width=2)


def test_phase_change_finds_a_sudden_drop():
    steps = list(range(0, 1001, 100))
    one = [0.0, -0.3, -0.5] + [-0.5] * 8
    two = [0.0, -0.3, -0.5, -0.5, -0.5, -0.5, -1.1, -1.2, -1.2, -1.2, -1.2]
    induction = [0.05] * 5 + [0.1, 0.5, 0.6, 0.6, 0.6, 0.6]
    found = metrics.phase_change(steps, two, one, induction, width=200)
    assert found["excess_final"] == pytest.approx(-0.7)
    assert found["window"] == [500, 700] and found["share_in_window"] == pytest.approx(1.0)
    assert found["induction_half_rise_step"] == 600
