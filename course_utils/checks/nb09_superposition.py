"""Checks for notebook 09, "Superposition, a privileged basis, and sparse autoencoders": the toy
model's forward pass and loss, the superposition and neuron-alignment measures per feature, the
SAE's forward pass, loss and training step, and the score of feature recovery."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import sae as sae_module
from .. import superposition as sp
from . import fixtures
from .framework import ExerciseError, _pair, _check_dtype, _check_kind, call, compare, done

REFERENCES = {
    "toy_forward": sp.toy_forward,
    "toy_loss": sp.toy_loss,
    "superposition_measure": sp.superposition_measure,
    "neuron_alignment": sp.neuron_alignment,
    "sae_forward": sae_module.sae_forward,
    "sae_loss": sae_module.sae_loss,
    "sae_training_step": sae_module.sae_training_step,
    "feature_recovery": sae_module.feature_recovery,
    "clamp_latent": sae_module.clamp_latent,
}

# (instances, hidden, features, batch): never the notebook's shapes, hidden != features
_TOY_SHAPES = [(3, 2, 5, 7), (2, 4, 9, 5), (4, 3, 4, 6)]


def _toy(seed: int, n_instances: int, n_hidden: int, n_features: int, batch: int):
    g = fixtures.generator(seed)
    W = torch.randn(n_instances, n_hidden, n_features, generator=g)
    b = torch.randn(n_instances, n_features, generator=g) * 0.3
    x = torch.rand(batch, n_instances, n_features, generator=g) * (torch.rand(batch, n_instances, n_features, generator=g) < 0.6)
    return W, b, x


def check_toy_forward(fn):
    """fn(W [instance, hidden, feature], b [instance, feature], x [batch, instance, feature]) -> x_hat."""
    __tracebackhide__ = True
    for seed, shape in enumerate(_TOY_SHAPES):
        W, b, x = _toy(seed, *shape)
        expected = sp.toy_forward(W, b, x)
        got = call("toy_forward", fn, {"W": W, "b": b, "x": x})
        h = torch.einsum("ihf,bif->bih", W, x)
        back = torch.einsum("ihf,bih->bif", W, h)
        mistakes = {
            "you left out the ReLU at the output: x' = ReLU(W^T W x + b)": back + b,
            "you left out the bias b: x' = ReLU(W^T W x + b)": F.relu(back),
            "you added the bias after the ReLU: it goes inside, ReLU(W^T W x + b)": F.relu(back) + b,
            "you put a ReLU on the hidden layer too: this model's hidden layer is linear, h = W x":
                F.relu(torch.einsum("ihf,bih->bif", W, F.relu(h)) + b),
        }
        compare("toy_forward", got, expected, mistakes, atol=1e-4, axes="batch instance feature")
    done("toy_forward", len(_TOY_SHAPES))


def check_toy_loss(fn):
    """fn(x, x_hat [batch, instance, feature], importance [instance, feature]) -> [instance]."""
    __tracebackhide__ = True
    for seed, shape in enumerate(_TOY_SHAPES):
        W, b, x = _toy(seed, *shape)
        x_hat = sp.toy_forward(W, b, x)
        importance = torch.rand(shape[0], shape[2], generator=fixtures.generator(seed + 10)) + 0.1
        expected = sp.toy_loss(x, x_hat, importance)
        got = call("toy_loss", fn, {"x": x, "x_hat": x_hat, "importance": importance})
        error = (x - x_hat) ** 2
        mistakes = {
            "you left out the importances: weigh each feature's squared error by its importance":
                error.sum(-1).mean(0),
            "you averaged over the features: sum them (each feature's weighted error counts in full)":
                (importance * error).mean(-1).mean(0),
            "you summed over the batch: average over it, so the loss does not grow with the batch size":
                (importance * error).sum(-1).sum(0),
            "you squared the importances: they multiply the squared error once": (importance ** 2 * error).sum(-1).mean(0),
            "you returned one number for all the instances: return one loss per instance, [instance]":
                (importance * error).sum(-1).mean(0).sum(),
        }
        compare("toy_loss", got, expected, mistakes, atol=1e-4, axes="instance")
    done("toy_loss", len(_TOY_SHAPES))


def check_superposition_measure(fn):
    """fn(W [instance, hidden, feature]) -> [instance, feature]: sum_{j != i} (W_i/||W_i|| . W_j)^2."""
    __tracebackhide__ = True
    for seed, shape in enumerate(_TOY_SHAPES):
        W = _toy(seed, *shape)[0] * (torch.rand(shape[2], generator=fixtures.generator(seed)) + 0.3)  # unequal norms
        expected = sp.superposition_measure(W)
        got = call("superposition_measure", fn, {"W": W})
        dots = torch.einsum("ihf,ihg->ifg", W, W)
        norms = W.norm(dim=1)
        normalised = dots / norms[:, :, None]
        mistakes = {
            "you kept the term j = i (feature i with itself, ||W_i||^2): sum over the other features only":
                (normalised ** 2).sum(-1),
            "you did not divide by ||W_i||: the measure uses feature i's unit direction, W_i / ||W_i||":
                (dots ** 2).sum(-1) - (dots ** 2).diagonal(dim1=-2, dim2=-1),
            "you divided by both norms (squared cosines): only W_i is normalised; W_j keeps its length, so a "
            "feature the model dropped adds nothing": ((normalised / norms[:, None, :]) ** 2).sum(-1) - 1,
            "you summed the dot products without squaring them: a feature at the opposite direction interferes "
            "as much as one in the same direction": normalised.sum(-1) - norms,
            "you normalised W_j instead of W_i": ((dots / norms[:, None, :]) ** 2).sum(-1) - norms ** 2,
        }
        compare("superposition_measure", got, expected, mistakes, atol=1e-4, axes="instance feature")
    done("superposition_measure", len(_TOY_SHAPES))


def check_neuron_alignment(fn):
    """fn(W [instance, hidden, feature]) -> [instance, feature]: max_k |W_ki| / ||W_i||."""
    __tracebackhide__ = True
    for seed, shape in enumerate(_TOY_SHAPES):
        W = _toy(seed, *shape)[0] * (torch.rand(shape[2], generator=fixtures.generator(seed)) + 0.3)
        expected = sp.neuron_alignment(W)
        got = call("neuron_alignment", fn, {"W": W})
        norms = W.norm(dim=1)
        mistakes = {
            "you took the largest entry with its sign: a feature along minus a neuron is aligned too; take "
            "the largest absolute value": W.amax(dim=1) / norms,
            "you did not divide by ||W_i||: the alignment is a cosine, the largest entry of the unit direction":
                W.abs().amax(dim=1),
            "you divided by the sum of absolute values, not by the norm": W.abs().amax(dim=1) / W.abs().sum(1),
            "you took the largest squared entry: that is the cosine squared; take the largest |W_ki| / ||W_i||":
                W.pow(2).amax(dim=1) / norms ** 2,
        }
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (shape[0], shape[1]):
            raise ExerciseError("[neuron_alignment] you took the maximum over the features: for each feature i, "
                                "the maximum over the hidden dimensions k (axis 1 of W)")
        compare("neuron_alignment", got, expected, mistakes, atol=1e-5, axes="instance feature")
    done("neuron_alignment", len(_TOY_SHAPES))


_SAE_SHAPES = [(6, 5, 11), (4, 7, 9), (8, 3, 6)]  # (batch, d_in, d_sae)


def _sae_inputs(seed: int, batch: int, d_in: int, d_sae: int):
    g = fixtures.generator(seed)
    x = torch.randn(batch, d_in, generator=g)
    W_enc = torch.randn(d_in, d_sae, generator=g) * 0.7
    b_enc = torch.randn(d_sae, generator=g) * 0.3
    W_dec = torch.randn(d_sae, d_in, generator=g) * 0.6  # rows not of unit norm: a forgotten norm shows
    b_dec = torch.randn(d_in, generator=g) * 0.5
    return x, W_enc, b_enc, W_dec, b_dec


def check_sae_forward(fn):
    """fn(x, W_enc, b_enc, W_dec, b_dec) -> (latents [batch, d_sae], reconstruction [batch, d_in])."""
    __tracebackhide__ = True
    for seed, shape in enumerate(_SAE_SHAPES):
        x, W_enc, b_enc, W_dec, b_dec = _sae_inputs(seed, *shape)
        latents, reconstruction = sae_module.sae_forward(x, W_enc, b_enc, W_dec, b_dec)
        got = _pair("sae_forward", call("sae_forward", fn, {"x": x, "W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec,
                                                            "b_dec": b_dec}), "latents, reconstruction")
        pre = (x - b_dec) @ W_enc + b_enc
        compare("sae_forward", got[0], latents, {
            "you did not subtract b_dec before encoding: latents = ReLU((x - b_dec) W_enc + b_enc)":
                F.relu(x @ W_enc + b_enc),
            "you left out the ReLU: latents are never negative": pre,
            "you left out b_enc": F.relu((x - b_dec) @ W_enc),
            "you added b_dec before encoding: subtract it": F.relu((x + b_dec) @ W_enc + b_enc),
        }, atol=1e-4, axes="batch d_sae")
        compare("sae_forward", got[1], reconstruction, {
            "you left out b_dec in the reconstruction: x' = latents W_dec + b_dec": latents @ W_dec,
            "you reconstructed from the latents before the ReLU": pre @ W_dec + b_dec,
            "you decoded with W_enc transposed: the decoder is W_dec": latents @ W_enc.T + b_dec,
        }, atol=1e-4, axes="batch d_in")
    done("sae_forward", len(_SAE_SHAPES))


def check_sae_loss(fn):
    """fn(x, latents, reconstruction, W_dec, l1_coefficient) -> a 0-d tensor."""
    __tracebackhide__ = True
    for seed, (shape, l1) in enumerate(zip(_SAE_SHAPES, (0.3, 0.05, 1.5))):
        x, W_enc, b_enc, W_dec, b_dec = _sae_inputs(seed, *shape)
        latents, reconstruction = sae_module.sae_forward(x, W_enc, b_enc, W_dec, b_dec)
        expected = sae_module.sae_loss(x, latents, reconstruction, W_dec, l1)
        got = call("sae_loss", fn, {"x": x, "latents": latents, "reconstruction": reconstruction, "W_dec": W_dec,
                                    "l1_coefficient": l1})
        squared = (reconstruction - x).pow(2)
        weighted = latents * W_dec.norm(dim=-1)
        mistakes = {
            "you averaged the squared error over d_in: sum it over the entries of each activation, then average "
            "over the batch": (squared.mean(-1) + l1 * weighted.sum(-1)).mean(),
            "you left out the decoder norms: weigh each latent by ||W_dec[j]||, or the SAE can shrink the latents "
            "and grow W_dec to dodge the penalty": (squared.sum(-1) + l1 * latents.sum(-1)).mean(),
            "you penalised the squared latents (L2): the sparsity penalty is their L1 norm":
                (squared.sum(-1) + l1 * (latents.pow(2) * W_dec.norm(dim=-1)).sum(-1)).mean(),
            "you summed over the batch: average over it": (squared.sum(-1) + l1 * weighted.sum(-1)).sum(),
            "you averaged the penalty over the latents: sum it over them": (squared.sum(-1) + l1 * weighted.mean(-1)).mean(),
            "you left out the l1_coefficient": (squared.sum(-1) + weighted.sum(-1)).mean(),
        }
        compare("sae_loss", got, expected, mistakes, atol=1e-4)
    done("sae_loss", len(_SAE_SHAPES))


def _step_variant(sae, optimizer, x, l1, zero_grad=True, normalise="after"):
    """A training step as the reference takes it, or with one mistake (for the check's messages)."""
    if normalise == "before":
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=-1, keepdim=True)
    latents, reconstruction = sae_module.sae_forward(x, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)
    loss = sae_module.sae_loss(x, latents, reconstruction, sae.W_dec, l1)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        if normalise == "after":
            sae.W_dec /= sae.W_dec.norm(dim=-1, keepdim=True)
        elif normalise == "columns":
            sae.W_dec /= sae.W_dec.norm(dim=0, keepdim=True)
    return loss.detach()


def _fixture_sae(seed: int, d_in: int, d_sae: int):
    sae = sae_module.SparseAutoencoder(d_in, d_sae, seed=seed)
    g = fixtures.generator(seed + 100)
    with torch.no_grad():  # every parameter matters: non-zero biases, an encoder that is not the decoder's transpose
        sae.W_enc.add_(torch.randn(sae.W_enc.shape, generator=g) * 0.3)
        sae.b_enc.copy_(torch.randn(d_sae, generator=g) * 0.1)
        sae.b_dec.copy_(torch.randn(d_in, generator=g) * 0.2)
    return sae


_STEPS = 3


def _run_steps(sae, batches, l1, step):
    optimizer = torch.optim.Adam(sae.parameters(), lr=0.05)
    with torch.enable_grad():
        return [step(sae, optimizer, x, l1) for x in batches]


def check_sae_training_step(fn):
    """fn(sae, optimizer, x, l1_coefficient) -> the loss (before the step), a 0-d tensor; the step
    updates sae's parameters with optimizer and puts W_dec's rows back to unit norm."""
    __tracebackhide__ = True
    for seed, ((batch, d_in, d_sae), l1) in enumerate(zip(_SAE_SHAPES, (0.3, 0.1, 0.6))):
        g = fixtures.generator(seed)
        batches = [torch.randn(batch, d_in, generator=g) for _ in range(_STEPS)]
        reference = _fixture_sae(seed, d_in, d_sae)
        expected_losses = _run_steps(reference, batches, l1, sae_module.sae_training_step)
        learner = _fixture_sae(seed, d_in, d_sae)
        optimizer = torch.optim.Adam(learner.parameters(), lr=0.05)
        losses = []
        with torch.enable_grad():
            for x in batches:
                got = call("sae_training_step", fn, {"sae": learner, "optimizer": optimizer, "x": x,
                                                     "l1_coefficient": l1}, changes=("sae", "optimizer"))
                _check_kind("sae_training_step", got, expected_losses[0])
                _check_dtype("sae_training_step", got, expected_losses[0])
                losses.append(got)

        def variant(**how):
            sae = _fixture_sae(seed, d_in, d_sae)
            _run_steps(sae, batches, l1, lambda *a: _step_variant(*a, **how))
            return sae.W_dec.detach()

        compare("sae_training_step", learner.W_dec.detach(), reference.W_dec.detach(), {
            "you did not zero the gradients: call optimizer.zero_grad() each step, or each step's gradients "
            "pile onto the last ones'": lambda: variant(zero_grad=False),
            "you did not put the decoder rows back to unit norm after the step: W_dec /= W_dec.norm(dim=-1, "
            "keepdim=True), under torch.no_grad()": lambda: variant(normalise="none"),
            "you normalised W_dec's columns: each latent's direction is a row, W_dec[j], so normalise over dim=-1":
                lambda: variant(normalise="columns"),
            "you normalised W_dec before the optimizer's step: normalise after it, so the rows are unit at the "
            "end of every step": lambda: variant(normalise="before"),
        }, atol=1e-4, axes="d_sae d_in")
        for name in ("W_enc", "b_enc", "b_dec"):
            compare("sae_training_step", getattr(learner, name).detach(), getattr(reference, name).detach(),
                    atol=1e-4, axes="d_in d_sae" if name == "W_enc" else None)
        for got, expected in zip(losses, expected_losses):
            compare("sae_training_step", got, expected, atol=1e-4)
    done("sae_training_step", len(_SAE_SHAPES))


def check_feature_recovery(fn):
    """fn(true_directions [feature, d_in], W_dec [d_sae, d_in]) -> [feature]: best cosine with any decoder row."""
    __tracebackhide__ = True
    for seed, (n_features, d_in, d_sae) in enumerate([(5, 6, 8), (7, 4, 10), (3, 5, 6)]):
        g = fixtures.generator(seed)
        true = torch.randn(n_features, d_in, generator=g) * (torch.rand(n_features, 1, generator=g) + 0.5)
        W_dec = torch.randn(d_sae, d_in, generator=g) * (torch.rand(d_sae, 1, generator=g) + 0.5)
        W_dec[0] = -true[0] * 1.7  # a latent pointing away from feature 0: |cos| = 1, cos = -1
        W_dec[1] = true[1] * 0.6 + 0.3 * torch.randn(d_in, generator=g)
        expected = sae_module.feature_recovery(true, W_dec)
        got = call("feature_recovery", fn, {"true_directions": true, "W_dec": W_dec})
        unit_true, unit_dec = F.normalize(true, dim=-1), F.normalize(W_dec, dim=-1)
        cos = unit_true @ unit_dec.T
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (d_sae,):
            raise ExerciseError("[feature_recovery] you took the maximum over the true features: return one "
                                "score per true feature, the maximum over the decoder rows")
        compare("feature_recovery", got, expected, {
            "you took the absolute cosine: a latent is non-negative, so a decoder row pointing away from a "
            "feature cannot express it; keep the sign": cos.abs().max(-1).values,
            "you did not normalise: the score is a cosine, the dot product of unit vectors": (true @ W_dec.T).max(-1).values,
            "you normalised the true directions only: normalise the decoder rows too": (unit_true @ W_dec.T).max(-1).values,
            "you normalised the decoder rows only: normalise the true directions too": (true @ unit_dec.T).max(-1).values,
            "you averaged over the decoder rows: take the best one, the maximum": cos.mean(-1),
        }, atol=1e-5, axes="feature")
    done("feature_recovery", 3)


def check_clamp_latent(fn):
    """fn(x [..., d_in], W_enc, b_enc, W_dec, b_dec, latent, value) -> x with that latent set to value."""
    __tracebackhide__ = True
    cases = [((2, 3, 5), 11, 4, 2.5), ((6, 7), 9, 0, 0.0), ((4, 3), 6, 5, 1.2)]  # (x's shape, d_sae, latent, value)
    for seed, (shape, d_sae, latent, value) in enumerate(cases):
        d_in = shape[-1]
        _, W_enc, b_enc, W_dec, b_dec = _sae_inputs(seed, 1, d_in, d_sae)
        x = torch.randn(shape, generator=fixtures.generator(seed + 50)) * 1.5
        expected = sae_module.clamp_latent(x, W_enc, b_enc, W_dec, b_dec, latent, value)
        got = call("clamp_latent", fn, {"x": x, "W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec,
                                         "latent": latent, "value": value})
        flat = x.reshape(-1, d_in)
        latents, reconstruction = sae_module.sae_forward(flat, W_enc, b_enc, W_dec, b_dec)
        now = latents[:, latent].reshape(x.shape[:-1])[..., None]
        set_latents = latents.clone()
        set_latents[:, latent] = value
        mistakes = {
            "you added value * W_dec[latent] without taking away what the latent already contributes: add "
            "(value - the latent's current activation) * W_dec[latent]": x + value * W_dec[latent],
            "you returned the SAE's reconstruction with the latent set: that drops everything the SAE does not "
            "explain (its error); change x only along W_dec[latent]": (set_latents @ W_dec + b_dec).reshape(x.shape),
            "you moved x along the encoder's column W_enc[:, latent]: a latent writes along its decoder row, "
            "W_dec[latent]": x + (value - now) * W_enc[:, latent],
            "you subtracted the other way round: (value - current), so that the latent ends at value":
                x + (now - value) * W_dec[latent],
        }
        compare("clamp_latent", got, expected, mistakes, atol=1e-4, axes=" ".join(["batch", "pos", "d_in"][-len(shape):]))
    done("clamp_latent", len(cases))
