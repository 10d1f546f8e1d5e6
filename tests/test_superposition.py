"""Notebook 09's toy models of superposition and sparse autoencoders (course_utils.superposition, course_utils.sae)
and the seed study behind its claims."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from course_utils import sae as S
from course_utils import superposition as sp
from maintainer import superposition_study

STUDY = Path(__file__).resolve().parent.parent / "course_utils" / "zoo_weights" / "studies" / "superposition.seeds.json"


def pentagon(length: float = 1.0) -> torch.Tensor:
    angles = torch.arange(5) * 2 * math.pi / 5
    return length * torch.stack([angles.cos(), angles.sin()])[None]  # [1, 2, 5]


def test_toy_forward_is_the_models_forward_and_a_rotation_leaves_the_linear_model_unchanged():
    model = sp.ToyModel(3, 5, 2, seed=1)
    with torch.no_grad():
        model.b.copy_(torch.randn(3, 5) * 0.1)
    x = sp.feature_batch(16, torch.tensor([0.0, 0.5, 0.9]), 5, torch.Generator().manual_seed(0))
    assert torch.allclose(model(x), sp.toy_forward(model.W, model.b, x))
    rotated = sp.rotate_hidden(model, sp.random_rotation(3, 2, seed=4))
    assert torch.allclose(rotated(x), model(x), atol=1e-5)
    assert not torch.allclose(rotated.W, model.W)


def test_a_rotation_changes_a_model_with_a_hidden_relu():
    model = sp.ToyModel(2, 4, 4, hidden_relu=True, seed=0)
    x = sp.feature_batch(64, torch.tensor([0.0, 0.0]), 4, torch.Generator().manual_seed(0))
    rotated = sp.rotate_hidden(model, sp.random_rotation(2, 4, seed=1))
    assert not torch.allclose(rotated(x), model(x), atol=1e-3)


def test_feature_batch_sparsity_and_range():
    x = sp.feature_batch(20000, torch.tensor([0.0, 0.9]), 3, torch.Generator().manual_seed(0))
    present = (x > 0).float().mean((0, 2))
    assert abs(present[0] - 1) < 1e-3 and abs(present[1] - 0.1) < 0.01
    assert x.min() >= 0 and x.max() <= 1


def test_superposition_measure_orthogonal_pentagon_and_dropped_features():
    assert torch.allclose(sp.superposition_measure(torch.eye(3)[None]), torch.zeros(1, 3), atol=1e-6)
    assert torch.allclose(sp.superposition_measure(pentagon()), torch.full((1, 5), 1.5), atol=1e-5)
    W = torch.tensor([[[1.0, 0.0, 1e-3], [0.0, 1.0, 1e-3]]])  # the third feature dropped
    assert sp.superposition_measure(W)[0, :2].max() < 1e-5
    assert sp.represented(W).tolist() == [[True, True, False]]


def test_neuron_alignment_and_its_random_baseline():
    assert torch.allclose(sp.neuron_alignment(-torch.eye(4)[None]), torch.ones(1, 4))
    rotated = sp.random_rotation(50, 6, seed=0) @ torch.eye(6)
    mean = sp.neuron_alignment(rotated).mean().item()
    assert 0.55 < mean < 0.8, mean  # a random direction in 6 dimensions: about 0.7
    R = sp.random_rotation(2, 5, seed=3)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(5).expand(2, 5, 5), atol=1e-5)


def test_two_feature_phase():
    W = torch.tensor([[[1.0, 0.01]], [[0.01, 1.0]], [[1.0, -1.0]], [[0.1, 0.1]]])
    assert sp.two_feature_phase(W).tolist() == [0, 1, 2, 0]


def test_train_toy_learns_the_dense_answer():
    sparsity, importance = torch.tensor([0.0]), (0.5 ** torch.arange(4).float())[None]  # far apart: a short run settles
    model = sp.ToyModel(1, 4, 2, seed=0)
    losses = sp.train_toy(model, importance, sparsity, steps=300, batch=256, lr=0.02, progress=False)
    assert losses[-20:].mean() < 0.5 * losses[:5].mean()
    assert sp.represented(model.W.detach()).tolist() == [[True, True, False, False]]


def test_sae_forward_training_step_and_unit_decoder_rows():
    sae = S.SparseAutoencoder(6, 12, seed=0)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(12))
    x = torch.randn(32, 6)
    latents, reconstruction = sae(x)
    assert latents.min() >= 0 and reconstruction.shape == x.shape
    optimizer = torch.optim.Adam(sae.parameters(), lr=0.01)
    before = sae.W_enc.detach().clone()
    with torch.enable_grad():
        loss = S.sae_training_step(sae, optimizer, x, 0.1)
    assert loss.ndim == 0 and not loss.requires_grad
    assert not torch.equal(before, sae.W_enc)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(12), atol=1e-6)


def test_sae_loss_by_hand():
    x = torch.tensor([[1.0, 0.0]])
    latents = torch.tensor([[2.0, 0.0, 1.0]])
    W_dec = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    # squared error (0.5^2 + 1^2) + 0.1 * (2 * 1 + 1 * 3)
    assert math.isclose(S.sae_loss(x, latents, torch.tensor([[0.5, 1.0]]), W_dec, 0.1).item(), 1.25 + 0.5, rel_tol=1e-6)


def test_feature_recovery_l0_dead_and_explained_variance():
    true = torch.randn(5, 8)
    assert torch.allclose(S.feature_recovery(true, 3 * true), torch.ones(5), atol=1e-6)
    assert (S.feature_recovery(true, -true) < 1).all()
    latents = torch.tensor([[1.0, 0.0, 0.0], [2.0, 3.0, 0.0]])
    assert S.l0(latents) == 1.5 and S.dead_latents(latents) == 1
    x = torch.randn(10, 4)
    assert S.explained_variance(x, x) == 1.0
    assert abs(S.explained_variance(x, x.mean(0).expand(10, 4))) < 1e-6


def test_sparse_activations_are_made_of_the_directions():
    directions = S.random_dictionary(7, 5, seed=0)
    assert torch.allclose(directions.norm(dim=-1), torch.ones(7))
    x, coefficients = S.sparse_activations(5000, directions, 0.1, torch.Generator().manual_seed(0))
    assert torch.allclose(x, coefficients @ directions)
    assert abs((coefficients > 0).float().mean() - 0.1) < 0.01


def test_an_sae_recovers_known_features_quickly():
    directions = S.random_dictionary(16, 12, seed=0)
    x, _ = S.sparse_activations(4000, directions, 0.08, torch.Generator().manual_seed(0))
    sae = S.SparseAutoencoder(12, 32, seed=0)
    S.train_sae(sae, x, 0.1, steps=400, batch=128, lr=0.005, progress=False)
    recovery = S.feature_recovery(directions, sae.W_dec.detach())
    random = S.feature_recovery(directions, S.random_dictionary(32, 12, seed=1))
    assert recovery.median() > 0.9 > random.median()


def test_the_study_is_of_the_maintainers_settings_and_four_seeds():
    study = json.loads(STUDY.read_text())
    assert study["settings"] == json.loads(json.dumps(superposition_study.SETTINGS))
    assert study["seeds"] == list(superposition_study.SEEDS) and len(study["runs"]) == 4


@pytest.mark.slow
def test_the_study_reproduces_for_seed_0():
    """measure(0) again, against the shipped study (CPU numerics may differ a little: compared with tolerances)."""
    study = json.loads(STUDY.read_text())["runs"]["0"]
    again = superposition_study.measure(0)
    assert again["five_in_two"]["represented"] == study["five_in_two"]["represented"]
    assert torch.allclose(torch.tensor(again["five_in_two"]["norms"]), torch.tensor(study["five_in_two"]["norms"]), atol=0.02)
    for key in ("privileged_linear", "privileged_relu"):
        assert abs(again[key]["alignment"] - study[key]["alignment"]) < 0.02
    for l1, row in study["sae"].items():
        assert abs(again["sae"][l1]["l0"] - row["l0"]) < 0.1 * row["l0"]
        assert abs(again["sae"][l1]["explained_variance"] - row["explained_variance"]) < 0.01


def test_clamp_latent_sets_the_latent_and_keeps_the_error():
    sae = S.SparseAutoencoder(6, 10, seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(0.2)
    x = torch.randn(3, 4, 6)
    W = [p.detach() for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)]
    out = S.clamp_latent(x, *W, 2, 3.0)
    before, _ = S.sae_forward(x.reshape(-1, 6), *W)
    moved = (out - x).reshape(-1, 6)
    assert torch.allclose(moved, (3.0 - before[:, 2])[:, None] * W[2][2], atol=1e-5)


def test_latent_precision_by_hand():
    latents = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.5, 0.0]])
    precision = S.latent_precision(latents, torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(precision[0], torch.tensor([2 / 3, 1 / 3])) and precision[1].isnan().all()


def test_the_shipped_course_sae_loads_and_matches_its_card():
    sae, card = S.load_course_sae()
    assert card["recipe"] == S.course_sae_recipe() and len(card["seed_study"]["runs"]) == 4
    acts, tokens, copied, scale = S.course_sae_data(card["recipe"])
    with torch.no_grad():
        latents, reconstruction = sae(acts)
    assert abs(S.l0(latents) - card["metrics"]["l0"]) < 1e-3
    assert abs(S.explained_variance(acts, reconstruction) - card["metrics"]["explained_variance"]) < 1e-4
    assert acts.shape == (200 * 32, 64) and tokens.shape == copied.shape == (200 * 32,) and scale > 0


def test_a_damaged_sae_file_is_refused(tmp_path, monkeypatch):
    card = json.loads((S.SAE_DIR / f"{S.COURSE_SAE}.json").read_text())
    (tmp_path / f"{S.COURSE_SAE}.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    (tmp_path / f"{S.COURSE_SAE}.safetensors").write_bytes((S.SAE_DIR / f"{S.COURSE_SAE}.safetensors").read_bytes())
    monkeypatch.setattr(S, "SAE_DIR", tmp_path)
    with pytest.raises(ValueError, match="does not match the checksum in its card"):
        S.load_course_sae()


@pytest.mark.slow
def test_the_course_sae_retrains_to_its_card():
    """RETRAIN = True in notebook 09: the SAE trained again from its recipe gives the card's metrics (bit for bit
    where the CPU numerics match the build's; else within the seed study's spread)."""
    from maintainer.superposition_study import course_sae_metrics

    shipped, card = S.load_course_sae()
    again, losses = S.train_course_sae(card["recipe"], progress=False)
    if all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), shipped.state_dict().values())):
        return
    metrics = course_sae_metrics(again, card["recipe"])
    runs = card["seed_study"]["runs"].values()
    for key in ("token_latents", "distinct_tokens"):
        assert min(r[key] for r in runs) - 5 <= metrics[key] <= max(r[key] for r in runs) + 5
    assert abs(metrics["l0"] - card["metrics"]["l0"]) < 1.5
