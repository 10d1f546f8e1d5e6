"""Modular addition (notebook 10): the data and its split, the Fourier tools, the progress measures,
and the training loop's loss at the answer position."""

import math

import pytest
import torch

from course_utils import modular_addition as ma
from course_utils.model import Config, Transformer, last_position_loss
from course_utils.train import TrainConfig, train

P = 13


def small_model(p=P, seed=0) -> Transformer:
    return Transformer(Config(d_vocab=p + 1, n_ctx=3, d_model=32, n_heads=4, n_layers=1, attn_only=False,
                              d_mlp=64, act_fn="relu", seed=seed))


def test_every_pair_once_with_its_answer():
    data = ma.ModularAddition(p=P, train_fraction=0.3, seed=1)
    tokens, answers = data.tokens(), data.answers()
    assert tokens.shape == (P * P, 3) and tokens.dtype == torch.long and data.d_vocab == P + 1 and data.n_ctx == 3
    assert (tokens[:, 2] == P).all() and len({tuple(t) for t in tokens[:, :2].tolist()}) == P * P
    assert torch.equal(tokens[5 * P + 7, :2], torch.tensor([5, 7])) and answers[5 * P + 7] == (5 + 7) % P
    assert torch.equal(answers, (tokens[:, 0] + tokens[:, 1]) % P)


def test_the_split_is_a_seeded_partition():
    train_idx, test_idx = ma.train_test_split(P, 0.3, 1)
    assert len(train_idx) == round(0.3 * P * P) and len(train_idx) + len(test_idx) == P * P
    assert sorted(torch.cat([train_idx, test_idx]).tolist()) == list(range(P * P))
    again = ma.train_test_split(P, 0.3, 1)
    assert torch.equal(train_idx, again[0]) and torch.equal(test_idx, again[1])
    assert set(train_idx.tolist()) != set(ma.train_test_split(P, 0.3, 2)[0].tolist())
    data = ma.ModularAddition(p=P, train_fraction=0.3, seed=1)
    assert torch.equal(data.split()[0], train_idx) and data.n_train == len(train_idx)


def test_full_batch_is_the_training_set_and_smaller_batches_are_drawn_from_it():
    data = ma.ModularAddition(p=P, train_fraction=0.5, seed=0)
    tokens, answers = data.batch(0, data.n_train)
    train_idx = data.split()[0]
    assert torch.equal(tokens, data.tokens()[train_idx]) and torch.equal(answers, data.answers()[train_idx])
    assert torch.equal(data.batch(7, data.n_train)[0], tokens)  # full batch: the same at every step
    small = data.batch(3, 10)
    assert small[0].shape == (10, 3) and torch.equal(small[0], data.batch(3, 10)[0])
    rows = {tuple(t) for t in tokens.tolist()}
    assert all(tuple(t) in rows for t in small[0].tolist())
    assert ma.ModularAddition.from_dict(data.to_dict()) == data


def test_fourier_basis_is_orthonormal_and_named():
    basis = ma.fourier_basis(P)
    assert basis.shape == (P, P) and basis.dtype == torch.float32
    assert torch.allclose(basis @ basis.T, torch.eye(P), atol=1e-5)
    x = torch.arange(P, dtype=torch.float32)
    assert torch.allclose(basis[3], torch.cos(2 * math.pi * 2 * x / P) / math.sqrt(P / 2), atol=1e-5)
    assert torch.allclose(basis[4], torch.sin(2 * math.pi * 2 * x / P) / math.sqrt(P / 2), atol=1e-5)
    assert ma.fourier_basis_names(P)[:5] == ["const", "cos 1", "sin 1", "cos 2", "sin 2"]


def test_key_frequencies_of_an_embedding_made_of_waves():
    x = torch.arange(P, dtype=torch.float32)
    W = torch.stack([3 * torch.cos(2 * math.pi * 4 * x / P), torch.sin(2 * math.pi * 4 * x / P),
                     2 * torch.cos(2 * math.pi * 2 * x / P), 0.01 * torch.cos(2 * math.pi * 5 * x / P)], dim=1) + 1.0
    norms = ma.frequency_norms(W)
    assert norms.shape == ((P - 1) // 2,)
    assert norms[3] == norms.max() and norms.sum() == pytest.approx(((W - W.mean(0)) ** 2).sum().item(), rel=1e-4)
    assert ma.key_frequencies(W).tolist() == [4, 2]
    assert ma.key_frequencies(W, share=0.5).tolist() == [4]


def test_restricted_and_excluded_logits_split_an_ideal_table():
    """Logits made of cos(w (a + b - c)) at frequencies 2 and 5 plus noise: restricting to {2, 5} keeps
    the waves, excluding them leaves the noise, and the two add up to the table plus its mean."""
    x = torch.arange(P)
    phase = (x[:, None, None] + x[None, :, None] - x[None, None, :]).float()
    waves = sum(torch.cos(2 * math.pi * k / P * phase) for k in (2, 5)) * 4
    noise = torch.randn(P, P, P, generator=torch.Generator().manual_seed(0)) * 0.1
    logits = torch.cat([waves + noise, torch.full((P, P, 1), -5.0)], dim=-1)  # the `=` column too
    keys = torch.tensor([2, 5])
    restricted, excluded = ma.restricted_logits(logits, keys), ma.excluded_logits(logits, keys)
    assert (restricted[..., :P] - waves).abs().max() < 0.2
    assert torch.allclose(restricted + excluded, logits + logits.mean((0, 1), keepdim=True), atol=1e-4)
    data = ma.ModularAddition(p=P, train_fraction=0.5)
    assert ma.accuracy(restricted, data) == 1.0 and ma.accuracy(logits, data) == 1.0
    assert ma.table_loss(restricted, data) < ma.table_loss(excluded, data)
    assert ma.table_loss(excluded, data) == pytest.approx(math.log(P + 1), abs=0.3)  # noise only: near chance
    alpha, explained = ma.cos_fit(logits, keys)
    assert alpha.tolist() == pytest.approx([4, 4], abs=0.05) and explained > 0.99


def test_neuron_shares_find_a_neurons_frequency():
    x = torch.arange(P, dtype=torch.float32)
    w = 2 * math.pi * 3 / P
    a, b = x[:, None], x[None, :]
    acts = torch.stack([torch.relu(torch.cos(w * a) + torch.cos(w * b)), torch.cos(w * (a + b))], dim=-1)
    shares = ma.neuron_frequency_shares(acts)
    assert shares.shape == (2, (P - 1) // 2)
    assert shares[1, 2] == pytest.approx(1.0, abs=1e-4)  # cos(w(a+b)) is all frequency 3
    assert shares[0].argmax() == 2 and shares[0, 2] > 0.5  # the ReLU adds harmonics, but frequency 3 leads
    assert torch.all(shares.sum(-1) <= 1 + 1e-4)


def test_weight_norm_and_table_measures_on_a_model():
    data = ma.ModularAddition(p=P, train_fraction=0.5)
    model = small_model()
    assert ma.weight_norm(model) == pytest.approx(math.sqrt(sum((p ** 2).sum().item() for p in model.parameters())))
    table = ma.logit_table(model, data)
    assert table.shape == (P, P, P + 1)
    loss = ma.table_loss(table, data, data.split()[0])
    tokens, answers = data.batch(0, data.n_train)
    assert loss == pytest.approx(last_position_loss(model(tokens), answers).item(), rel=1e-5)


def test_train_learns_the_answer_at_the_last_position_with_betas():
    """The training loop with (tokens, answers) batches: the loss is the answer's, at the last
    position; AdamW gets the betas asked for; weight decay shrinks the weights."""
    data = ma.ModularAddition(p=P, train_fraction=0.8)
    model = small_model()
    cfg = TrainConfig(steps=150, batch_size=data.n_train, lr=3e-3, weight_decay=1.0, betas=(0.9, 0.98), warmup_steps=10,
                      checkpoint_every=150)
    result = train(model, lambda step: data.batch(step, cfg.batch_size), cfg, progress=False)
    table = ma.logit_table(model, data)
    assert result.losses[-1] < 0.2 * result.losses[0]
    assert ma.table_loss(table, data, data.split()[0]) == pytest.approx(result.losses[-1], abs=0.05)
    assert ma.accuracy(table, data, data.split()[0]) > 0.9


def test_train_resumes_a_run_with_betas(tmp_path):
    data = ma.ModularAddition(p=P, train_fraction=0.5)
    cfg = TrainConfig(steps=6, batch_size=data.n_train, weight_decay=1.0, betas=(0.9, 0.98), checkpoint_every=3)
    whole, part = small_model(), small_model()
    train(whole, lambda s: data.batch(s, cfg.batch_size), cfg, progress=False)
    train(part, lambda s: data.batch(s, cfg.batch_size), cfg, checkpoint_dir=tmp_path, progress=False, stop_at=3)
    part = small_model()
    train(part, lambda s: data.batch(s, cfg.batch_size), cfg, checkpoint_dir=tmp_path, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), part.state_dict().values()))
    other = TrainConfig(**{**cfg.to_dict(), "betas": [0.9, 0.999]})
    with pytest.raises(ValueError, match=r"betas=\[0\.9, 0\.98\], not \[0\.9, 0\.999\]"):
        train(small_model(), lambda s: data.batch(s, cfg.batch_size), other, checkpoint_dir=tmp_path, progress=False)
