import pytest
import torch

from course_utils import zoo
from course_utils.data import repeated_tokens
from course_utils.metrics import duplicate_token_score, head_scores, induction_score, prev_token_score
from course_utils.model import to_bridge


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


@pytest.mark.parametrize("bad", [torch.zeros(3, 4), torch.zeros(5), "pattern"])
def test_bad_patterns(bad):
    with pytest.raises(ValueError, match=r"pattern must be a tensor \[\.\.\., query_pos, key_pos\]"):
        prev_token_score(bad)


def test_bad_periods():
    with pytest.raises(ValueError, match=r"period must be an int in \[1, 10\].*got 11"):
        induction_score(offset_pattern(12, 1), 11)
    with pytest.raises(ValueError, match="got 0"):
        duplicate_token_score(offset_pattern(12, 1), 0)
