import pytest
import torch

from course_utils.data import SyntheticLanguage, repeated_tokens


def test_repeated_tokens_repeat_and_are_deterministic():
    toks = repeated_tokens(4, 10, 30, seed=7)
    assert toks.shape == (4, 20) and toks.dtype == torch.long
    assert torch.equal(toks[:, :10], toks[:, 10:])
    assert torch.equal(toks, repeated_tokens(4, 10, 30, seed=7))
    assert not torch.equal(toks, repeated_tokens(4, 10, 30, seed=8))


def test_language_is_deterministic_and_copies_are_copies():
    language = SyntheticLanguage(seed=3)
    a, b = language.sample(64, seed=5), language.sample(64, seed=5)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.copied, b.copied)
    assert not torch.equal(a.tokens, language.sample(64, seed=6).tokens)
    assert torch.equal(language.batch(12, 8), language.batch(12, 8))
    # every copied token equals the token at the same offset back as the token before it
    for row in range(64):
        pos = torch.nonzero(a.copied[row])[:, 0]
        if len(pos) == 0:
            continue
        seq = a.tokens[row]
        offsets = [o for o in range(1, language.n_ctx) if all(seq[p] == seq[p - o] and seq[p - 1] == seq[p - 1 - o] for p in pos)]
        assert offsets, f"row {row}: copied positions {pos.tolist()} are not a copy"


def test_copies_sit_at_random_offsets_and_lengths():
    batch = SyntheticLanguage(p_repeat=1.0).sample(256, seed=0)
    starts = batch.copied.float().argmax(-1)
    lengths = batch.copied.sum(-1)
    assert len(set(starts.tolist())) > 10 and len(set(lengths.tolist())) > 5
    assert batch.copied.any(-1).all()


def test_bigram_structure():
    language = SyntheticLanguage(successors=4, p_repeat=0.0)
    probs = language.transition_matrix()
    assert torch.allclose(probs.sum(-1), torch.ones(language.d_vocab, dtype=torch.float64))
    assert ((probs > 0).sum(-1) == 4).all()
    toks = language.sample(32, seed=1).tokens
    assert (probs[toks[:, :-1], toks[:, 1:]] > 0).all()  # with no copies, every transition is a bigram
    assert 0 < language.bigram_entropy() < torch.log(torch.tensor(4.0)).item() + 1e-6


@pytest.mark.parametrize("kwargs,message", [
    (dict(successors=100), "successors=100 cannot exceed d_vocab=64"),
    (dict(p_repeat=1.5), r"p_repeat must be in \[0, 1\]"),
    (dict(max_span=40), "must fit"),
    (dict(d_vocab=0), "d_vocab must be a positive int"),
])
def test_bad_language_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticLanguage(**kwargs)


def test_bad_repeated_tokens_arguments():
    with pytest.raises(ValueError, match="prefix_len must be a positive int"):
        repeated_tokens(2, 0, 10)
    with pytest.raises(TypeError, match="batch must be a positive int, got 2.5"):
        repeated_tokens(2.5, 3, 10)
