"""The multiple-choice questions of notebook 08 (course_utils.multiple_choice)."""

from __future__ import annotations

import torch

from course_utils.model import Config, Transformer
from course_utils.multiple_choice import (
    LETTERS,
    MultipleChoice,
    accuracy_and_loss,
    label_positions,
    mutated_labels,
    mutation_table,
    option_positions,
)
from course_utils.train import TrainConfig, train


def check_well_formed(mc: MultipleChoice, q, n_options: int) -> None:
    size = q.tokens.shape[0]
    assert q.tokens.shape == (size, 2 * n_options + 3)
    assert (q.tokens[:, 0] == mc.BOS).all() and (q.tokens[:, -1] == mc.ARROW).all()
    assert (q.tokens[:, 1] < mc.n_questions).all()
    options, labels = q.tokens[:, option_positions(n_options)], q.tokens[:, label_positions(n_options)]
    assert torch.equal(options, q.options) and torch.equal(labels, q.labels)
    assert ((options >= mc.first_answer) & (options < mc.first_letter)).all()
    assert ((labels >= mc.first_letter) & (labels < mc.ARROW)).all()
    rows = torch.arange(size)
    # exactly one option answers the question, and it sits in the slot `correct`
    right = options == mc.answer_of(q.tokens[:, 1])[:, None]
    assert (right.sum(1) == 1).all() and torch.equal(right.long().argmax(1), q.correct)
    assert torch.equal(q.answers, labels[rows, q.correct])
    # options and labels are distinct within a question
    for row in range(size):
        assert len(set(options[row].tolist())) == n_options and len(set(labels[row].tolist())) == n_options


def test_fixed_questions_are_well_formed_and_labelled_a_b_c_d():
    mc = MultipleChoice()
    q = mc.questions(200, seed=3)
    check_well_formed(mc, q, 4)
    assert (q.labels == mc.first_letter + torch.arange(4)).all()
    assert mc.to_str(q.tokens[0]).startswith("<bos> q") and mc.to_str(q.tokens[0]).endswith("D ->")


def test_randomised_questions_draw_their_labels():
    mc = MultipleChoice(labels="randomised")
    q = mc.questions(400, seed=3)
    check_well_formed(mc, q, 4)
    assert len(q.labels.unique()) == len(LETTERS)  # every letter is used somewhere
    assert not (q.labels == mc.first_letter + torch.arange(4)).all(1).any()  # in 400 draws, never A B C D


def test_the_correct_slot_is_uniform_and_can_be_moved():
    mc = MultipleChoice()
    counts = torch.bincount(mc.questions(4000, seed=1).correct, minlength=4).float() / 4000
    assert (counts - 0.25).abs().max() < 0.03
    for slot in range(4):
        q = mc.questions(50, seed=1, correct_at=slot)
        check_well_formed(mc, q, 4)
        assert (q.correct == slot).all()


def test_mutations():
    mc = MultipleChoice()
    shuffled = mc.questions(300, seed=2, labels="shuffled")
    check_well_formed(mc, shuffled, 4)
    assert (shuffled.labels.sort(1).values == mc.first_letter + torch.arange(4)).all()  # A-D, reordered
    assert not (shuffled.labels == mc.first_letter + torch.arange(4)).all(1).all()
    random = mc.questions(300, seed=2, labels="random")
    check_well_formed(mc, random, 4)
    assert random.labels.max() > mc.first_letter + 3
    for n in (2, 3, 5, 8):
        check_well_formed(mc, mc.questions(100, seed=2, n_options=n), n)
    assert mc.questions(3, n_options=8).tokens.shape[1] == mc.n_ctx - 1  # room for the answer in training


def test_with_labels_relabels_and_moves_the_answer():
    mc = MultipleChoice()
    q = mc.questions(100, seed=6)
    letters = mutated_labels("random", 100, 4, torch.Generator().manual_seed(1))
    r = mc.with_labels(q, letters)
    check_well_formed(mc, r, 4)
    assert torch.equal(r.labels, letters + mc.first_letter) and torch.equal(r.options, q.options)
    assert torch.equal(r.tokens[:, option_positions(4)], q.tokens[:, option_positions(4)])


def test_mutated_labels_rows():
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(mutated_labels("fixed", 2, 3, gen), torch.tensor([[0, 1, 2], [0, 1, 2]]))
    shuffled = mutated_labels("shuffled", 50, 4, gen)
    assert (shuffled.sort(1).values == torch.arange(4)).all()
    random = mutated_labels("random", 50, 4, gen)
    assert random.max() < 26 and all(len(set(r.tolist())) == 4 for r in random)


def test_batches_are_deterministic_and_end_with_the_answer():
    mc = MultipleChoice(labels="randomised", seed=5)
    a, b = mc.batch(7, 32), MultipleChoice(labels="randomised", seed=5).batch(7, 32)
    assert torch.equal(a, b) and not torch.equal(a, mc.batch(8, 32))
    assert a.shape == (32, mc.n_ctx - 2 * (mc.max_options - mc.n_options))
    options, labels = a[:, option_positions(4)], a[:, label_positions(4)]
    right = (options == mc.answer_of(a[:, 1])[:, None]).long().argmax(1)
    assert torch.equal(a[:, -1], labels[torch.arange(32), right])
    assert torch.equal(mc.questions(16, seed=4).tokens, mc.questions(16, seed=4).tokens)


def test_the_relation_is_a_permutation_drawn_from_the_seed():
    mc = MultipleChoice()
    answers = mc.answer_of(torch.arange(mc.n_questions)) - mc.first_answer
    assert sorted(answers.tolist()) == list(range(mc.n_questions))
    other = MultipleChoice(seed=1).answer_of(torch.arange(mc.n_questions)) - mc.first_answer
    assert not torch.equal(answers, other)


def test_round_trip_through_a_dict():
    mc = MultipleChoice(n_questions=12, n_options=3, labels="randomised", max_options=6, seed=4)
    assert MultipleChoice.from_dict(mc.to_dict()) == mc


def test_training_counts_only_the_answer():
    """With loss_positions=[-1] the training loss is the answer's cross-entropy alone."""
    mc = MultipleChoice(n_questions=8, max_options=4)
    model = Transformer(Config(d_vocab=mc.d_vocab, n_ctx=mc.n_ctx, d_model=16, n_heads=2, n_layers=1))
    tokens = mc.batch(0, 8)
    result = train(model, lambda step: tokens, TrainConfig(steps=1, batch_size=8), progress=False, loss_positions=[-1])
    fresh = Transformer(model.cfg)
    logits = fresh(tokens)
    expected = torch.nn.functional.cross_entropy(logits[:, -2], tokens[:, -1]).item()
    assert abs(result.losses[0] - expected) < 1e-5


def test_accuracy_loss_and_the_mutation_table_on_an_untrained_model():
    mc = MultipleChoice(n_questions=8, max_options=5)
    model = Transformer(Config(d_vocab=mc.d_vocab, n_ctx=mc.n_ctx, d_model=16, n_heads=2, n_layers=1))
    score = accuracy_and_loss(model, mc.questions(64))
    assert 0 <= score["accuracy"] <= 1 and score["loss"] > 0
    table = mutation_table(model, mc, size=16)
    assert list(table)[0] == "own format" and all(set(r) == {"accuracy", "loss"} for r in table.values())


# ---- the shipped models (mc_fixed, mc_random) ---------------------------------------------------------

import json  # noqa: E402

import pytest  # noqa: E402
from zoo_compare import BITWISE, assert_bitwise, assert_losses_follow_the_card, comparison, params, widened  # noqa: E402

from course_utils import zoo  # noqa: E402
from course_utils.bridge import to_bridge  # noqa: E402

MC_NAMES = ["mc_fixed", "mc_random"]


@pytest.mark.parametrize("name", MC_NAMES)
def test_the_shipped_mc_models_match_their_cards(name):
    info = zoo.card(name)
    model, mc = zoo.load(name), zoo.language(name)
    assert isinstance(mc, MultipleChoice) and mc.to_dict() == info["language"]
    assert mc.labels == ("fixed" if name == "mc_fixed" else "randomised")
    measured = zoo.evaluate_mc(model, mc)
    for row, r in measured["mutations"].items():
        assert r["accuracy"] == pytest.approx(info["metrics"]["mutations"][row]["accuracy"], abs=2e-3), row
        assert r["loss"] == pytest.approx(info["metrics"]["mutations"][row]["loss"], abs=2e-3), row
    assert measured["mutations"]["own format"]["accuracy"] > 0.98  # near-perfect on its own format
    steps = info["history_steps"]
    assert steps[0] == 0 and steps[-1] == info["train"]["steps"]
    assert all(torch.equal(a, b) for a, b in zip(zoo.load(name, step=steps[-1]).parameters(), model.parameters()))
    with torch.no_grad():
        tokens = mc.batch(0, 4)
        assert (model(tokens) - to_bridge(model)(tokens)).abs().max() < 1e-4


def test_the_two_recipes_differ_only_in_their_labels():
    fixed, random = zoo.RECIPES["mc_fixed"], zoo.RECIPES["mc_random"]
    assert fixed.model == random.model and fixed.train == random.train
    assert {**fixed.language.to_dict(), "labels": None} == {**random.language.to_dict(), "labels": None}


@pytest.mark.parametrize("name", params(MC_NAMES))
def test_retraining_an_mc_model_part_way_reproduces_its_history(name, tmp_path):
    step = zoo.card(name)["history_steps"][1]
    model, result = zoo.retrain(name, checkpoint_dir=tmp_path, progress=False, stop_at=step)
    assert_losses_follow_the_card(name, result.losses)
    if comparison(name) == BITWISE:
        assert_bitwise(model, zoo.load(name, step=step), f"{name} at step {step}")


@pytest.mark.slow
@pytest.mark.parametrize("name", params(MC_NAMES))
def test_retraining_reproduces_the_shipped_mc_model(name):
    """Full retrain from the card (2000 steps, 1-2 minutes): bit for bit under the zoo's numerics;
    elsewhere, the mutation table inside the seed study's spread."""
    model, result = zoo.retrain(name, progress=False)
    info = zoo.card(name)
    measured = zoo.evaluate_mc(model, zoo.language(name))
    if comparison(name) == BITWISE:
        assert [round(x, 4) for x in result.losses] == info["losses"]
        assert_bitwise(model, zoo.load(name), name)
        assert measured == info["metrics"]
    else:
        spread = json.loads((zoo.ZOO_DIR / "studies" / f"{name}.seeds.json").read_text())["spread"]
        for row, r in measured["mutations"].items():
            lo, hi = widened(spread[f"mutation {row} accuracy"], 0.05)
            assert lo <= r["accuracy"] <= hi, (row, r, (lo, hi))
