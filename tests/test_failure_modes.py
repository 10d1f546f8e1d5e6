"""course_utils.failure_modes (notebook 11): each measurement on cases with a known answer, and the
seed study's record of the shipped models reproduced."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import failure_modes as fm
from course_utils import zoo
from course_utils.ablation import ablation_effects, loss_with_hooks
from course_utils.checks import fixtures
from course_utils.metrics import copying_score, eigenvalue_copying_score

STUDY_FILE = zoo.ZOO_DIR / "studies" / "failure_modes.seeds.json"


def test_value_weighted_pattern_rows_sum_to_one_and_equal_values_change_nothing():
    pattern = fixtures.causal_patterns(0, 2, 3, 6)
    v = torch.randn(2, 6, 3, 4, generator=fixtures.generator(1))
    W_O = torch.randn(3, 4, 5, generator=fixtures.generator(2))
    weighted = fm.value_weighted_pattern(pattern, v, W_O)
    assert torch.allclose(weighted.sum(-1), torch.ones(2, 3, 6), atol=1e-5)
    same = torch.zeros(2, 6, 3, 4)
    same[..., 0] = 1.0  # every position writes the same vector: the weighting is uniform
    assert torch.allclose(fm.value_weighted_pattern(pattern, same, W_O), pattern, atol=1e-6)


def test_the_sink_model_looks_at_position_0_and_moves_nothing_from_it():
    sink = fm.attention_sink_model()
    tokens = torch.randint(1, sink.cfg.d_vocab, (8, sink.cfg.n_ctx), generator=fixtures.generator(0))
    tokens[:, 0] = 0
    _, cache = sink.run_with_cache(tokens)
    pattern = cache["blocks.0.attn.hook_pattern"]
    with torch.no_grad():
        weighted = fm.value_weighted_pattern(pattern, cache["blocks.0.attn.hook_v"], sink.W_O[0])
    assert pattern[:, 0, 1:, 0].mean() > 0.9 and weighted[:, 0, 1:, 0].abs().max() < 1e-6


def test_the_two_ov_matrices_fool_one_measure_each():
    for d in (3, 10, 64):
        fav, sup = fm.favourite_token_ov(d), fm.suppressing_ov(d)
        assert eigenvalue_copying_score(fav) == pytest.approx(1.0) and copying_score(fav) == pytest.approx(1 / d)
        assert copying_score(sup) == 1.0 and eigenvalue_copying_score(sup) < -0.5


def test_ablation_verdicts_agree_with_notebook_04s_sweep():
    model = fixtures.model(0, n_layers=3, n_heads=3, d_model=12, d_vocab=13, n_ctx=12)
    g = fixtures.generator(0)
    tokens, ref = fixtures.tokens(g, 4, 10, 13), fixtures.tokens(g, 4, 10, 13)
    for i, method in enumerate(("zero", "mean", "resample")):
        sweep = ablation_effects(model, tokens, slice(3, 9), method, ref)
        assert fm.ablation_verdicts(model, tokens, (1, 2), slice(3, 9), ref)[i] == pytest.approx(float(sweep[1, 2]), abs=1e-5)


def test_removal_effect_is_zero_for_nothing_and_dla_where_the_norm_does_not_move():
    model = fixtures.model(1, n_layers=2, n_heads=3, d_model=12, d_vocab=13, n_ctx=12)
    tokens = fixtures.tokens(fixtures.generator(1), 3, 8, 13)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        assert fm.removal_effect(model, cache, tokens, torch.zeros(3, 8, 12)).abs().max() == 0
        # a small centred component orthogonal to the centred stream leaves the LayerNorm's scale unchanged
        # to first order: there, and only there, the frozen-scale estimate (DLA) is the removal effect
        resid = cache["blocks.1.hook_resid_post"]
        centred = resid - resid.mean(-1, keepdim=True)
        u = torch.randn(3, 8, 12, generator=fixtures.generator(4))
        u = u - u.mean(-1, keepdim=True)
        u = u - (u * centred).sum(-1, keepdim=True) / centred.pow(2).sum(-1, keepdim=True) * centred
        small = 1e-3 * u
        dla = ((small / cache["ln_final.hook_scale"]) * model.ln_final.w) @ model.W_U
        dla = dla[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
        assert torch.allclose(fm.removal_effect(model, cache, tokens, small), dla, atol=1e-6)
        # a component along the stream changes the scale: the two differ at first order
        along = 1e-3 * centred
        dla_along = (((along / cache["ln_final.hook_scale"]) * model.ln_final.w) @ model.W_U)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
        assert not torch.allclose(fm.removal_effect(model, cache, tokens, along), dla_along, atol=1e-5)


def test_scrubbed_loss_keeping_everything_or_resampling_from_the_same_tokens_is_the_clean_loss():
    model = fixtures.model(2, n_layers=2, n_heads=3, d_model=12, d_vocab=13, n_ctx=12, attn_only=True)
    g = fixtures.generator(2)
    tokens, other = fixtures.tokens(g, 3, 9, 13), fixtures.tokens(g, 3, 9, 13)
    clean = loss_with_hooks(model, tokens, [])
    everything = {"q": "all", "k": "all", "v": "all"}
    assert torch.allclose(fm.scrubbed_loss(model, tokens, other, everything), clean, atol=1e-5)
    nothing = {"q": "none", "k": "0.1", "v": "embed"}
    assert torch.allclose(fm.scrubbed_loss(model, tokens, tokens, nothing), clean, atol=1e-5)
    assert not torch.allclose(fm.scrubbed_loss(model, tokens, other, nothing), clean, atol=1e-3)


def test_loss_recovered():
    assert fm.loss_recovered(3.0, 3.0, 6.0) == 1.0
    assert fm.loss_recovered(torch.tensor(6.0), 3.0, 6.0) == 0.0
    assert fm.loss_recovered(4.5, 3.0, 6.0) == pytest.approx(0.5)


def test_bias_share_is_one_for_a_head_that_writes_only_its_bias():
    model = fixtures.model(3, n_layers=2, n_heads=3, d_model=12, d_vocab=13, n_ctx=12, attn_only=True)
    with torch.no_grad():
        model.blocks[0].attn.W_V[1].zero_()  # head 0.1's values are b_V alone: its output is b_V W_O everywhere
        _, cache = model.run_with_cache(fixtures.tokens(fixtures.generator(3), 2, 6, 13))
    shares = fm.bias_share(model, cache, 0)
    assert float(shares[1]) == pytest.approx(1.0, abs=1e-5) and (shares[[0, 2]] < 1).all()


def test_the_study_has_three_seeds_or_more_and_its_seed_0_is_the_shipped_models():
    study = json.loads(STUDY_FILE.read_text())
    assert len(study["seeds"]) >= 3 and study["seeds"][0] == 0 and set(study["runs"]) == {str(s) for s in study["seeds"]}
    again = fm.study(zoo.load("attn_only_2l"), zoo.load("ln_mlp_4l"), zoo.language("attn_only_2l"))
    recorded = study["runs"]["0"]
    assert again.keys() == recorded.keys()
    for key, value in again.items():
        assert torch.allclose(torch.tensor(value, dtype=torch.float64) if not isinstance(value, dict) else
                              torch.tensor(list(value.values()), dtype=torch.float64),
                              torch.tensor(recorded[key] if not isinstance(value, dict) else list(recorded[key].values()),
                                           dtype=torch.float64), atol=2e-3), key
