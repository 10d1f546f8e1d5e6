"""How the retrain tests compare a retrained zoo model with the shipped one.

With the zoo's numerics in force (course_utils/numerics.py), retraining must give the shipped
weights bit for bit. Without them (another torch, an ARM machine, a caller who forced other CPU
kernels), retraining gives another model of the same recipe, as another seed would: then its
metrics must fall inside the seed-to-seed spread the card records, widened on each side by that
spread's width (at least `floor`), so that the phenomenon, not the bits, is what is checked.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from course_utils import numerics, zoo

BITWISE, SEED_SPREAD = "bitwise", "seed-spread"


def why_not_bitwise(name: str) -> str | None:
    return numerics.why_not_bitwise(zoo.card(name).get("numerics"))


@contextmanager
def card_threads(name: str):
    """Train with the thread count NAME's card was built with. A model that reads vectors
    (`Config.d_input`, notebook 13) trains to other bits with another count (the gradient of its
    read-in is a matrix product over the batch, split between threads); the token models do not."""
    before = torch.get_num_threads()
    torch.set_num_threads((zoo.card(name).get("numerics") or {}).get("threads", before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def comparison(name: str) -> str:
    return BITWISE if why_not_bitwise(name) is None else SEED_SPREAD


def params(names) -> list:
    """pytest parameters whose ids say which comparison will run: `attn_only_2l-bitwise`."""
    return [pytest.param(n, id=f"{n}-{comparison(n)}") for n in names]


def assert_bitwise(model, shipped, what: str) -> None:
    for (key, a), b in zip(model.state_dict().items(), shipped.state_dict().values()):
        assert torch.equal(a, b), f"{what}: {key} differs (max {(a - b).abs().max().item():.2e}) under the zoo's numerics"


def retrain_and_compare(name: str, workdir, within_spread) -> None:
    """Retrain NAME in full (with its card's thread count) into `workdir` and compare it with the shipped
    model: bit for bit (every loss to the card's 4 decimals, and the final weights) under the zoo's
    numerics; elsewhere `within_spread(history)` asserts that the retrained run, {step: model}, falls
    inside the card's seed spread (what that means is each model's own)."""
    with card_threads(name):
        hist, losses = zoo.training_history(name, retrain=True, workdir=workdir)
    if comparison(name) == BITWISE:
        assert [round(x, 4) for x in losses] == zoo.card(name)["losses"], f"{name}: the losses differ from the card's"
        assert_bitwise(hist[max(hist)], zoo.load(name), name)
    else:
        within_spread(hist)


def widened(values, floor: float) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    width = max(hi - lo, floor)
    return lo - width, hi + width


def assert_within_seed_spread(name: str, run_story: dict, floor_icl: float = 0.02, floor_score: float = 0.01) -> None:
    """`run_story` (zoo.story of a retrained history, up to any step) against the card's seed study:
    at every step, the ICL score and the best induction score inside the widened spread."""
    seeds = zoo.card(name)["seed_study"]["runs"]
    for i, step in enumerate(run_story["steps"]):
        j = seeds["0"]["steps"].index(step)
        for key, floor in (("icl", floor_icl), ("best_induction_score", floor_score)):
            lo, hi = widened([run[key][j] for run in seeds.values()], floor)
            assert lo <= run_story[key][i] <= hi, (
                f"{name} retrained without the zoo's numerics ({why_not_bitwise(name)}): at step {step} its {key} "
                f"is {run_story[key][i]:.4f}, outside the seeds' spread widened to [{lo:.4f}, {hi:.4f}]")


def assert_losses_follow_the_card(name: str, losses: list[float], window: int = 20, rel: float = 0.1) -> None:
    """An early retrain's losses against the card's, step by step. Under the zoo's numerics they are
    equal (to the card's 4 decimals); elsewhere kernels round differently and runs drift apart
    slowly, so the mean of the last `window` steps must be within `rel` of the card's."""
    shipped = zoo.card(name)["losses"][: len(losses)]
    if comparison(name) == BITWISE:
        assert [round(x, 4) for x in losses] == shipped, f"{name}: the first {len(losses)} losses differ from the card's"
        return
    got, want = sum(losses[-window:]) / window, sum(shipped[-window:]) / window
    assert abs(got - want) <= rel * want, (
        f"{name} retrained without the zoo's numerics ({why_not_bitwise(name)}): mean loss of steps "
        f"{len(losses) - window}-{len(losses)} is {got:.4f}, the card's {want:.4f} (allowed {rel:.0%})")
