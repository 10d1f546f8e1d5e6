"""Toy models of superposition (notebook 09), after Elhage et al. (2022), *Toy models of superposition*.

`n` features, each in [0, 1] and present with probability `1 - sparsity`, go through a bottleneck of
`m < n` dimensions and back: `h = W x` (`W` is [m, n], column `i` is feature `i`'s direction), and
the output `x' = ReLU(W^T h + b)`. The loss weighs each feature's squared error by its importance.
A model is cheap, so we train many at once: every weight has a leading `instance` axis, and each
instance has its own sparsity (and importances). Notebook 09 writes `toy_forward`, `toy_loss`,
`superposition_measure` and `neuron_alignment`; the rest is the course's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import validate


def _float(value, name: str, shape: str) -> None:
    validate.tensor(value, name, shape, "float")


def feature_batch(batch: int, sparsity: Float[Tensor, " instance"], n_features: int,
                  generator: torch.Generator) -> Float[Tensor, "batch instance feature"]:
    """Random inputs: each feature is uniform in [0, 1] with probability `1 - sparsity` (per instance), else 0."""
    validate.positive(batch=batch, n_features=n_features)
    _float(sparsity, "sparsity", "instance")
    if ((sparsity < 0) | (sparsity >= 1)).any():
        raise ValueError(f"sparsity must be in [0, 1) (the chance a feature is absent), got {sparsity.tolist()}")
    shape = (batch, len(sparsity), n_features)
    values = torch.rand(shape, generator=generator)
    present = torch.rand(shape, generator=generator) >= sparsity[None, :, None]
    return values * present


def _toy_shapes(W: Tensor, b: Tensor, x: Tensor) -> None:
    _float(W, "W", "instance hidden feature")
    validate.shape_is(b, "b", (W.shape[0], W.shape[2]), "one bias per instance and feature")
    _float(x, "x", "batch instance feature")
    validate.shape_is(x[0], "x[0]", (W.shape[0], W.shape[2]), "[instance, feature], as W's")


def toy_forward(W: Float[Tensor, "instance hidden feature"], b: Float[Tensor, "instance feature"],
                x: Float[Tensor, "batch instance feature"]) -> Float[Tensor, "batch instance feature"]:
    """ReLU(W^T W x + b), for every instance at once."""
    _toy_shapes(W, b, x)
    h = torch.einsum("ihf,bif->bih", W, x)  # [batch, instance, hidden]
    return F.relu(torch.einsum("ihf,bih->bif", W, h) + b)


def toy_loss(x: Float[Tensor, "batch instance feature"], x_hat: Float[Tensor, "batch instance feature"],
             importance: Float[Tensor, "instance feature"]) -> Float[Tensor, " instance"]:
    """Per instance: the importance-weighted squared error, summed over features, averaged over the batch."""
    _float(x, "x", "batch instance feature")
    validate.shape_is(x_hat, "x_hat", tuple(x.shape), "the shape of x")
    validate.shape_is(importance, "importance", tuple(x.shape[1:]), "[instance, feature], as x's")
    return (importance * (x - x_hat) ** 2).sum(-1).mean(0)


class ToyModel(nn.Module):
    """`n_instances` toy models of `n_features` features in `n_hidden` dimensions, trained together.

    hidden_relu=False: x' = ReLU(W^T W x + b) (the paper's "linear bottleneck"; its hidden basis is
    arbitrary). hidden_relu=True: h = ReLU(W x), x' = ReLU(W^T h + b) (a privileged basis: each
    hidden dimension is a neuron).
    """

    def __init__(self, n_instances: int, n_features: int, n_hidden: int, hidden_relu: bool = False, seed: int = 0):
        super().__init__()
        validate.positive(n_instances=n_instances, n_features=n_features, n_hidden=n_hidden)
        validate.boolean(hidden_relu=hidden_relu)
        validate.integer(seed=seed)
        g = torch.Generator().manual_seed(seed)
        bound = math.sqrt(6 / (n_features + n_hidden))  # Xavier uniform, as Elhage et al.
        self.W = nn.Parameter((torch.rand(n_instances, n_hidden, n_features, generator=g) * 2 - 1) * bound)
        self.b = nn.Parameter(torch.zeros(n_instances, n_features))
        self.hidden_relu = hidden_relu

    def hidden(self, x: Float[Tensor, "batch instance feature"]) -> Float[Tensor, "batch instance hidden"]:
        h = torch.einsum("ihf,bif->bih", self.W, x)
        return F.relu(h) if self.hidden_relu else h

    def forward(self, x: Float[Tensor, "batch instance feature"]) -> Float[Tensor, "batch instance feature"]:
        _toy_shapes(self.W, self.b, x)
        return F.relu(torch.einsum("ihf,bih->bif", self.W, self.hidden(x)) + self.b)


def train_toy(model: ToyModel, importance: Float[Tensor, "instance feature"], sparsity: Float[Tensor, " instance"],
              steps: int = 3000, batch: int = 1024, lr: float = 1e-2, seed: int = 0, forward=None, loss=None,
              progress: bool = True) -> Float[Tensor, "step instance"]:
    """Train every instance with Adam on fresh random batches; return the loss of each instance at each step.

    forward(W, b, x) and loss(x, x_hat, importance) default to the course's (`toy_forward`,
    `toy_loss`); notebook 09 passes the learner's. A model with a hidden ReLU uses its own forward.
    """
    validate.instance(model, ToyModel, "model")
    n_instances, _, n_features = model.W.shape
    validate.shape_is(importance, "importance", (n_instances, n_features), "one importance per instance and feature")
    validate.shape_is(sparsity, "sparsity", (n_instances,), "one sparsity per instance")
    validate.positive(steps=steps, batch=batch)
    validate.positive_number(lr=lr)
    forward = forward or toy_forward
    loss = loss or toy_loss
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = torch.empty(steps, n_instances)
    with torch.enable_grad():
        for step in tqdm(range(steps), disable=not progress, desc="toy models", leave=False):
            x = feature_batch(batch, sparsity, n_features, g)
            x_hat = model(x) if model.hidden_relu else forward(model.W, model.b, x)
            per_instance = loss(x, x_hat, importance)
            optimizer.zero_grad()
            per_instance.sum().backward()
            optimizer.step()
            losses[step] = per_instance.detach()
    return losses


def feature_norms(W: Float[Tensor, "instance hidden feature"]) -> Float[Tensor, "instance feature"]:
    """||W_i||: how much of the hidden space each feature gets (about 1: represented; about 0: dropped)."""
    _float(W, "W", "instance hidden feature")
    return W.norm(dim=1)


def superposition_measure(W: Float[Tensor, "instance hidden feature"]) -> Float[Tensor, "instance feature"]:
    """sum over j != i of (W_i/||W_i|| . W_j)^2: how much of the other features lies along feature i.

    0 when feature i has a dimension of its own; about ||W_j||^2 summed over the features sharing it.
    """
    _float(W, "W", "instance hidden feature")
    unit = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    overlaps = torch.einsum("ihf,ihg->ifg", unit, W) ** 2  # [instance, i, j]
    return overlaps.sum(-1) - overlaps.diagonal(dim1=-2, dim2=-1)


def represented(W: Float[Tensor, "instance hidden feature"], threshold: float = 0.5) -> torch.Tensor:
    """[instance, feature] bool: features whose direction has norm above `threshold`."""
    return feature_norms(W) > threshold


def neuron_alignment(W: Float[Tensor, "instance hidden feature"]) -> Float[Tensor, "instance feature"]:
    """max over hidden dimensions k of |W_ki| / ||W_i||: 1 when feature i lies along one neuron,
    about sqrt(2 ln m / m) or less for a random direction in m dimensions."""
    _float(W, "W", "instance hidden feature")
    return W.abs().amax(dim=1) / W.norm(dim=1).clamp_min(1e-8)


def random_rotation(n_instances: int, n_hidden: int, seed: int = 0) -> Float[Tensor, "instance hidden hidden"]:
    """One random orthogonal matrix per instance (the Q of a Gaussian matrix's QR, signs fixed)."""
    validate.positive(n_instances=n_instances, n_hidden=n_hidden)
    validate.integer(seed=seed)
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n_instances, n_hidden, n_hidden, generator=g))
    return q * torch.sign(r.diagonal(dim1=-2, dim2=-1))[:, None, :]


def rotate_hidden(model: ToyModel, rotation: Float[Tensor, "instance hidden hidden"]) -> ToyModel:
    """A copy of `model` with its hidden space rotated: W -> R W (the features' geometry is unchanged)."""
    validate.instance(model, ToyModel, "model")
    validate.shape_is(rotation, "rotation", tuple(model.W.shape[:2]) + (model.W.shape[1],), "[instance, hidden, hidden]")
    out = ToyModel(*model.W.shape[:1], model.W.shape[2], model.W.shape[1], hidden_relu=model.hidden_relu)
    with torch.no_grad():
        out.W.copy_(rotation @ model.W)
        out.b.copy_(model.b)
    return out


def evaluate_toy(model: ToyModel, importance: Float[Tensor, "instance feature"], sparsity: Float[Tensor, " instance"],
                 batch: int = 20000, seed: int = 1) -> Float[Tensor, " instance"]:
    """The loss of every instance on one large fresh batch."""
    validate.instance(model, ToyModel, "model")
    x = feature_batch(batch, sparsity, model.W.shape[2], torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return toy_loss(x, model(x), importance)


PHASES = ("feature 2 dropped", "feature 2 on its own", "superposition")


def two_feature_phase(W: Float[Tensor, "instance hidden 2"], threshold: float = 0.5) -> torch.Tensor:
    """[instance] long, for 2 features in 1 dimension (the phase diagram): 0 if feature 2 is not
    represented, 1 if it is and feature 1 is not, 2 if both are (necessarily in superposition:
    the two share the one dimension, with opposite signs)."""
    _float(W, "W", "instance hidden feature")
    if W.shape[2] != 2:
        raise ValueError(f"W must hold 2 features (the phase diagram's model), got shape {tuple(W.shape)}")
    on = represented(W, threshold)
    return torch.where(on[:, 1], torch.where(on[:, 0], 2, 1), 0)
