"""The grokking models of notebook 10 (`grokking`, and its control without weight decay,
`grokking_no_wd`): shipped weights and history match their cards, the cards' seed studies back the
notebook's claims, and retraining reproduces them (tests/zoo_compare.py)."""

import pytest
import torch

from course_utils import modular_addition as ma
from course_utils import zoo
from zoo_compare import BITWISE, assert_bitwise, comparison, params, retrain_and_compare, widened

GROKKING = [n for n in zoo.names() if zoo.card(n).get("data_kind") == "ModularAddition"]


def test_both_models_are_shipped():
    assert GROKKING == ["grokking", "grokking_no_wd"]


@pytest.mark.parametrize("name", GROKKING)
def test_the_card_measures_these_weights(name):
    info = zoo.card(name)
    hist = zoo.history(name)
    assert sorted(hist) == info["history_steps"] and info["history_steps"][-1] == info["train"]["steps"]
    assert len(info["losses"]) == info["train"]["steps"]
    final = zoo.load(name)
    assert all(torch.equal(a, b) for a, b in zip(hist[max(hist)].parameters(), final.parameters()))
    measured = zoo.evaluate_grokking({s: hist[s] for s in info["history_steps"][-2:]}, zoo.language(name))
    assert measured["key_frequencies"] == info["metrics"]["key_frequencies"]
    for key, values in measured["measures"].items():
        assert values == pytest.approx(info["metrics"]["measures"][key][-2:], abs=2e-3), key


@pytest.mark.parametrize("name", GROKKING)
def test_the_seed_study_is_recorded(name):
    runs = zoo.card(name)["seed_study"]["runs"]
    assert len(runs) >= 4 and runs["0"] == zoo.card(name)["metrics"]


def _test_accuracy_spread(name):
    runs = zoo.card(name)["seed_study"]["runs"]
    return [run["measures"]["test_accuracy"] for run in runs.values()]


@pytest.mark.slow
@pytest.mark.parametrize("name", params(GROKKING))
def test_retraining_reproduces_the_shipped_model(name, tmp_path):
    """Bit for bit under the zoo's numerics; elsewhere, the test accuracy at every checkpoint inside
    the seeds' spread (widened by its width, at least 0.05)."""
    def within_spread(hist):
        got = ma.progress_measures(hist, zoo.language(name), torch.tensor(zoo.card(name)["metrics"]["key_frequencies"]))
        for i, value in enumerate(got["test_accuracy"]):
            lo, hi = widened([run[i] for run in _test_accuracy_spread(name)], 0.05)
            assert lo <= value <= hi, (name, got["steps"][i], value, lo, hi)

    retrain_and_compare(name, tmp_path, within_spread)


@pytest.mark.parametrize("name", params(GROKKING))
def test_retraining_part_way_reproduces_the_shipped_history(name, tmp_path):
    step = zoo.card(name)["history_steps"][1]
    model, _ = zoo.retrain(name, checkpoint_dir=tmp_path, progress=False, stop_at=step)
    if comparison(name) == BITWISE:
        assert_bitwise(model, zoo.load(name, step=step), f"{name} at step {step}")
    else:
        shipped = zoo.card(name)["metrics"]["measures"]["test_accuracy"][1]
        got = ma.progress_measures({step: model}, zoo.language(name), torch.tensor([1]))["test_accuracy"][0]
        assert got == pytest.approx(shipped, abs=0.1)
