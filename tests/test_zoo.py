import json

import pytest
import torch

from course_utils import zoo
from course_utils.bridge import to_bridge
from course_utils.model import Transformer
from course_utils.train import read_safetensors
from maintainer import zoo_build
from zoo_compare import BITWISE, assert_bitwise, assert_within_seed_spread, comparison, params, retrain_and_compare

NAMES = zoo.names()
# Models of the synthetic language (notebooks 02-04); the in-context-tasks model is tested in
# tests/test_function_vectors.py.
LANGUAGE_NAMES = [n for n in NAMES if "data_kind" not in zoo.card(n)]


def test_the_first_model_is_shipped():
    assert "attn_only_2l" in NAMES
    assert set(NAMES) <= set(zoo.RECIPES)


@pytest.mark.parametrize("name", LANGUAGE_NAMES)
def test_shipped_weights_load_and_match_their_card(name):
    info = zoo.card(name)
    model = zoo.load(name)
    assert isinstance(model, Transformer)
    assert model.cfg.to_dict() == info["model"]
    # The card's metrics are measured on exactly these weights.
    measured = zoo.evaluate(model, zoo.language(name))
    for key in ("loss", "loss_copied", "loss_not_copied"):
        assert measured[key] == pytest.approx(info["metrics"][key], abs=2e-3), key
    assert torch.allclose(torch.tensor(measured["induction_scores"]), torch.tensor(info["metrics"]["induction_scores"]), atol=2e-3)
    assert len(info["losses"]) == info["train"]["steps"]


@pytest.mark.parametrize("name", LANGUAGE_NAMES)
def test_history_is_shipped_and_ends_at_the_final_weights(name):
    info = zoo.card(name)
    steps = info["history_steps"]
    assert steps[0] == 0 and steps[-1] == info["train"]["steps"] and len(steps) >= 15
    hist = zoo.history(name)
    assert sorted(hist) == steps
    final = zoo.load(name)
    assert all(torch.equal(a, b) for a, b in zip(hist[steps[-1]].parameters(), final.parameters()))
    mid = zoo.load(name, step=steps[len(steps) // 2])
    assert not torch.equal(mid.W_E, final.W_E)


def test_the_shipped_two_layer_model_has_learnt_induction():
    m = zoo.card("attn_only_2l")["metrics"]
    assert m["loss_copied"] < 0.5 * m["loss_not_copied"], m
    assert max(max(row) for row in m["induction_scores"][1:]) > 0.4
    assert max(m["prev_token_scores"][0]) > 0.4


def test_zoo_weights_are_plain_safetensors():
    for name in NAMES:
        tensors, metadata = read_safetensors(zoo.ZOO_DIR / f"{name}.safetensors")
        assert json.loads(metadata["card"])["name"] == name
        assert all(isinstance(t, torch.Tensor) for t in tensors.values())


def test_zoo_models_convert_to_the_bridge():
    model = zoo.load("attn_only_2l")
    tokens = zoo.language("attn_only_2l").batch(0, 4)
    with torch.no_grad():
        assert (model(tokens) - to_bridge(model)(tokens)).abs().max() < 1e-4


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="name must be one of the shipped models .*attn_only_2l.*got 'gpt5'"):
        zoo.load("gpt5")
    with pytest.raises(ValueError, match="no checkpoint at step 7"):
        zoo.load("attn_only_2l", step=7)
    with pytest.raises(ValueError, match="name must be one of the recipes"):
        zoo_build.build("gpt5")


@pytest.mark.slow
@pytest.mark.parametrize("name", params(LANGUAGE_NAMES))
def test_retraining_reproduces_the_shipped_model(name, tmp_path):
    """Bit for bit under the zoo's numerics; elsewhere, the story (ICL score and best induction
    score at every checkpoint) inside the seed-to-seed spread of the card (tests/zoo_compare.py)."""
    retrain_and_compare(name, tmp_path, lambda hist: assert_within_seed_spread(name, zoo.story(hist, zoo.language(name))))


def test_build_then_retrain_gives_the_same_history(tmp_path, monkeypatch):
    """build() writes weights, history and card; training_history(retrain=True) redoes the run
    (as notebook 02 does with RETRAIN = True) and gets the same weights at every checkpoint."""
    from course_utils.data import SyntheticLanguage
    from course_utils.model import Config
    from course_utils.train import TrainConfig

    tiny = zoo.Recipe(
        description="tiny test model",
        model=Config(d_vocab=16, n_ctx=16, d_model=16, n_heads=2, n_layers=2, seed=3),
        language=SyntheticLanguage(d_vocab=16, n_ctx=16, successors=4, min_span=3, max_span=6, seed=3),
        train=TrainConfig(steps=20, batch_size=8, lr=1e-2, warmup_steps=5, checkpoint_every=5),
    )
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.setitem(zoo.RECIPES, "tiny", tiny)
    (tmp_path / "zoo").mkdir()
    info = zoo_build.build("tiny", progress=False)
    assert zoo.names() == ["tiny"] and info["history_steps"] == [0, 5, 10, 15, 20]
    shipped, shipped_losses = zoo.training_history("tiny")
    again, losses = zoo.training_history("tiny", retrain=True, workdir=tmp_path / "runs")
    assert sorted(again) == sorted(shipped) == info["history_steps"]
    assert losses == pytest.approx(shipped_losses, abs=1e-4)
    for step in shipped:
        for a, b in zip(again[step].parameters(), shipped[step].parameters()):
            assert torch.allclose(a, b, atol=1e-5), step
    # the card's metrics describe the shipped weights
    assert zoo.evaluate(zoo.load("tiny"), zoo.language("tiny"))["loss"] == pytest.approx(info["metrics"]["loss"], abs=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_training_a_zoo_model_twice_gives_identical_weights(name):
    """Determinism, for every model of the zoo: the same card, the same seed, the same bits."""
    first, result = zoo.retrain(name, progress=False, stop_at=40)
    second, again = zoo.retrain(name, progress=False, stop_at=40)
    assert len(result.losses) == 40 and result.losses == again.losses
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name", params(LANGUAGE_NAMES))
def test_retraining_part_way_reproduces_the_shipped_history(name, tmp_path):
    """Retraining to an early checkpoint of the shipped history gives its weights (seconds, where
    the full retrain above takes minutes); without the zoo's numerics, its scores stay in the spread."""
    step = zoo.card(name)["history_steps"][2]
    model, _ = zoo.retrain(name, checkpoint_dir=tmp_path, progress=False, stop_at=step)
    if comparison(name) == BITWISE:
        assert_bitwise(model, zoo.load(name, step=step), f"{name} at step {step}")
    else:
        assert_within_seed_spread(name, zoo.story({step: model}, zoo.language(name)))
