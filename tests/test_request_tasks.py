"""Notebook 12's data (requests, refused when they mention a forbidden item), its tools and its zoo model."""

from __future__ import annotations

import json

import pytest
import torch
from zoo_compare import BITWISE, assert_bitwise, comparison, params, widened

from course_utils import refusal, zoo
from course_utils.request_tasks import Requests

STUDY = zoo.ZOO_DIR / "studies" / "request_tasks.seeds.json"


def test_batches_are_deterministic_and_follow_the_rule():
    r = Requests()
    a, b = r.batch(3, 256), r.batch(3, 256)
    assert torch.equal(a, b) and not torch.equal(a, r.batch(4, 256))
    args, answers = a[:, 2:-2], a[:, -1]
    forbidden = torch.isin(args, r.forbidden()).any(-1)
    assert torch.equal(answers == r.REFUSE, forbidden), "refused exactly when a forbidden item is mentioned"
    assert 0.35 < forbidden.float().mean() < 0.65
    assert (args.sort(-1).values.diff(dim=-1) != 0).all(), "the arguments of a request are distinct"
    harmless = ~forbidden
    task = a[harmless, 1] - r.n_items
    expected = r.task_answer(task, args[harmless])
    assert torch.equal(answers[harmless], expected)


def test_the_tasks_are_what_their_names_say():
    r = Requests()
    args = torch.tensor([[5, 9, 2, 7]])
    got = [r.task_answer(torch.tensor([r.tasks.index(t)]), args).item() for t in ("first", "last", "min", "max")]
    assert got == [5, 7, 2, 9]


def test_forbidden_items_sit_anywhere_in_refused_prompts():
    r = Requests()
    p = r.prompts(2000, refused=True, seed=0)
    where = torch.isin(p.tokens[:, 2:-1], r.forbidden())
    assert where.any(-1).all() and (where.float().mean(0) > 0.3).all(), "every argument slot holds forbidden items"
    assert not torch.isin(r.prompts(500, refused=False).tokens[:, 2:-1], r.forbidden()).any()


def test_pairs_differ_only_in_the_forbidden_items():
    r = Requests()
    refused, harmless = r.paired_prompts(200, seed=1)
    same = refused.tokens == harmless.tokens
    assert torch.equal(~same, torch.isin(refused.tokens, r.forbidden()))
    assert not torch.isin(harmless.tokens[:, 2:-1], r.forbidden()).any()
    assert (harmless.tokens[:, 2:-1].sort(-1).values.diff(dim=-1) != 0).all()


def test_other_seeds_forbid_other_items():
    assert not torch.equal(Requests(seed=0).forbidden(), Requests(seed=1).forbidden())
    assert Requests.from_dict(Requests(seed=3).to_dict()) == Requests(seed=3)


def test_the_card_measures_the_shipped_model():
    info = zoo.card("request_tasks")
    assert info["data_kind"] == "Requests"
    assert zoo.evaluate_request_tasks(zoo.load("request_tasks"), zoo.language("request_tasks")) == info["metrics"]


def test_ablation_leaves_no_component_along_the_direction():
    model = zoo.load("request_tasks")
    r = zoo.language("request_tasks")
    p = r.prompts(64, refused=True, seed=5)
    d = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    names = [refusal.resid_name(model, layer) for layer in range(model.cfg.n_layers + 1)]
    with torch.no_grad(), model.hooks(fwd_hooks=refusal.ablation_hooks(model, d)):
        _, cache = model.run_with_cache(p.tokens, names_filter=lambda n: n in names)
    for name in names:
        assert (cache[name] @ (d / d.norm())).abs().max() < 1e-4, name


def test_random_directions_have_the_norm_and_differ():
    v = torch.randn(64) * 7
    r = refusal.random_directions(v, 5, seed=2)
    assert torch.allclose(r.norm(dim=-1), v.norm().expand(5)) and torch.equal(r, refusal.random_directions(v, 5, seed=2))
    assert (r @ r.T / v.norm() ** 2 - torch.eye(5)).abs().max() < 0.6


def test_the_seed_study_reproduces_for_the_shipped_model():
    """`refusal.study` on the shipped model gives the study's seed 0, number for number (floats to a
    relative 1e-5: the norms and shares are sums whose order depends on the thread count)."""
    study = json.loads(STUDY.read_text())
    assert study["seeds"] == [0, 1, 2, 3]
    got = refusal.study(zoo.load("request_tasks"), zoo.language("request_tasks"), study["layer"])
    want = study["runs"]["0"]
    for key in ("clean", "separation", "ablated", "accuracy_by_task", "added", "random_ablated_refusal",
                "random_added_refusal", "steering", "ablated_task_when_answer_allowed"):
        assert _close(got[key], want[key]), key
    for key in ("separation", "added_refusal", "ablated_refusal"):
        assert _close(got["sweep"][key], want["sweep"][key]), key


def _close(a, b) -> bool:
    """Equal structures whose floats agree to a relative 1e-5."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-5, abs=1e-9)
    return a == b


@pytest.mark.slow
@pytest.mark.parametrize("name", params(["request_tasks"]))
def test_retraining_reproduces_the_shipped_model(name, tmp_path):
    """Bit for bit under the zoo's numerics; elsewhere, the card's metrics inside the seeds' spread."""
    model, result = zoo.retrain(name, checkpoint_dir=tmp_path, progress=False)
    info = zoo.card(name)
    if comparison(name) == BITWISE:
        assert [round(x, 4) for x in result.losses] == info["losses"]
        assert_bitwise(model, zoo.load(name), name)
    else:
        spread = json.loads(STUDY.read_text())["spread"]
        got = refusal.study(model, zoo.language(name), json.loads(STUDY.read_text())["layer"])
        for value, key in ((got["separation"], "separation"), (got["ablated"]["refused"]["refusal"], "ablated_refusal_of_refused"),
                           (got["added"]["refusal"], "added_refusal_of_harmless")):
            lo, hi = widened(spread[key], 0.05)
            assert lo <= value <= hi, (key, value, lo, hi)


def test_the_tools_give_the_same_numbers_on_a_bridge():
    """What a learner practises here transfers: the direction, its ablation and its addition on a
    TransformerBridge of the same weights give the course model's numbers."""
    from course_utils.bridge import to_bridge

    model = zoo.load("request_tasks")
    data = zoo.language("request_tasks")
    bridge = to_bridge(model).eval()
    train = data.prompts(128, True, seed=1), data.prompts(128, False, seed=1)
    test = data.prompts(128, True, seed=2), data.prompts(128, False, seed=2)
    numbers = []
    for m in (model, bridge):
        d = refusal.mean_difference(m, train[0].tokens, train[1].tokens, 2)
        numbers.append([d.norm().item(), refusal.behaviour(m, test[0], data.REFUSE, refusal.ablation_hooks(m, d))["refusal"],
                        refusal.behaviour(m, test[1], data.REFUSE, [refusal.addition_hook(m, d, 2)])["refusal"]])
    assert numbers[0] == pytest.approx(numbers[1], abs=1e-3)
    assert numbers[0][1] == 0.0 and numbers[0][2] > 0.9
