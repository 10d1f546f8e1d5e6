"""In-context linear regression (notebook 13), generated from a seed: nothing is downloaded.

A prompt holds `n_points` pairs (x_i, y_i) with y_i = w . x_i (+ noise), and one w drawn per prompt:
the model has to find w from the examples it has seen so far. The pairs are interleaved as vectors
of d + 1 numbers, as Garg et al. (2022) do:

    position 2i:     [x_i, 0]        the model predicts y_i here, from the i examples before it
    position 2i + 1: [0, ..., 0, y_i]

so one prompt gives a prediction with k = 0, 1, ..., n_points - 1 examples in context. The model
(`model.Config(d_input=d + 1, d_vocab=1)`) reads these vectors through a linear W_E and writes one
number per position; `prediction_loss` is its training loss.

The baselines a learner builds in notebook 13 (the references the checks compare with):
`least_squares_predictions` (minimum-norm when k < d), `ridge_predictions`, `nearest_neighbour_predictions`,
`averaging_predictions`, `gd_predictions` (gradient descent from w = 0, von Oswald et al. 2023),
and `error_curve`, `model_predictions`, `probe_r2`.

Same seed, same data, on any machine: every draw comes from a seeded `torch.Generator`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from . import validate
from .data import EVAL_SEED, generator


@dataclass(frozen=True)
class Prompts:
    inputs: Float[Tensor, "batch pos d_input"]  # the interleaved vectors the model reads
    xs: Float[Tensor, "batch point d"]
    ys: Float[Tensor, "batch point"]
    w: Float[Tensor, "batch d"]  # each prompt's weights


@dataclass(frozen=True)
class LinearRegressionTasks:
    """Prompts of in-context linear regression: x ~ N(0, x_scale^2 diag(covariance)), w ~ N(0, I)
    with a share `sparsity` of its entries set to 0, y = w . x + noise * N(0, 1). With `active_dims`
    set, only the first `active_dims` coordinates of every x vary (the others are 0): the task has that
    many unknowns, while the model still reads d numbers.

    Training uses the defaults (isotropic x, dense w, no noise); notebook 13's sweep changes one
    property at a time with `dataclasses.replace`."""

    d: int = 5
    n_points: int = 11
    noise: float = 0.0
    x_scale: float = 1.0
    anisotropy: float = 1.0  # the largest over the smallest standard deviation of x's coordinates (log-spaced)
    sparsity: float = 0.0  # the share of w's entries that are zero (drawn per prompt)
    seed: int = 0
    active_dims: int | None = None  # how many coordinates of x vary (the rest are 0); None: all d

    def __post_init__(self):
        validate.positive(d=self.d, n_points=self.n_points)
        validate.integer(seed=self.seed)
        validate.non_negative(noise=self.noise)
        validate.positive_number(x_scale=self.x_scale)
        if not isinstance(self.anisotropy, (int, float)) or isinstance(self.anisotropy, bool) or not self.anisotropy >= 1:
            raise ValueError(f"anisotropy must be a number >= 1 (largest over smallest scale of x), got {self.anisotropy!r}")
        if not isinstance(self.sparsity, (int, float)) or isinstance(self.sparsity, bool) or not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be a number in [0, 1) (the share of w's entries that are zero), got {self.sparsity!r}")
        if self.active_dims is not None:
            validate.int_in(self.active_dims, 1, self.d, "active_dims", f"how many of x's d = {self.d} coordinates vary, or None for all")

    @property
    def d_input(self) -> int:
        return self.d + 1

    @property
    def n_ctx(self) -> int:
        return 2 * self.n_points

    def x_scales(self) -> Tensor:
        """[d]: the standard deviation of each coordinate of x, from x_scale down to x_scale / anisotropy
        (0 past the first `active_dims`)."""
        scales = self.x_scale * torch.logspace(0, -torch.log10(torch.tensor(float(self.anisotropy))).item(), self.d)
        if self.active_dims is not None:
            scales[self.active_dims:] = 0.0
        return scales

    @property
    def signal_power(self) -> float:
        """E[(w . x)^2], the mean square of y without its noise: d for the training prompts. Dividing an
        error by it makes predicting 0 score 1, whatever the sweep changed."""
        return (1 - self.sparsity) * self.x_scales().pow(2).sum().item()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LinearRegressionTasks:
        known = {f.name for f in fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown LinearRegressionTasks fields {sorted(set(d) - known)}; known: {sorted(known)}")
        return cls(**d)

    def sample(self, size: int, seed: int) -> Prompts:
        """`size` prompts drawn with `seed` (training uses `batch`; evaluations use other seeds)."""
        validate.positive(size=size)
        validate.integer(seed=seed)
        gen = generator(self.seed, 13, seed)
        xs = torch.randn(size, self.n_points, self.d, generator=gen) * self.x_scales()
        w = torch.randn(size, self.d, generator=gen)
        keep = torch.rand(size, self.d, generator=gen) >= self.sparsity
        w = w * keep
        ys = torch.einsum("bpd,bd->bp", xs, w) + self.noise * torch.randn(size, self.n_points, generator=gen)
        return Prompts(interleave(xs, ys), xs, ys, w)

    def batch(self, step: int, size: int) -> tuple[Tensor, Tensor]:
        """The training batch for `step`: (inputs [size, 2 n_points, d + 1], ys [size, n_points])."""
        validate.integer(step=step)
        p = self.sample(size, seed=step)
        return p.inputs, p.ys

    def eval_prompts(self, size: int = 2000) -> Prompts:
        """Prompts no training step sees (the seed `data.EVAL_SEED`)."""
        return self.sample(size, EVAL_SEED)

    def with_(self, **changes) -> LinearRegressionTasks:
        """The same tasks with some properties changed (the sweep): `tasks.with_(noise=0.5)`."""
        return replace(self, **changes)


# ---- the prompt and the model's predictions -------------------------------------------------------


def _points(xs, ys) -> None:
    validate.tensor(xs, "xs", "batch point d", dtype="float")
    validate.tensor(ys, "ys", "batch point", dtype="float")
    if xs.shape[:2] != ys.shape:
        raise ValueError(f"xs [batch, point, d] and ys [batch, point] must agree, got shapes "
                         f"{tuple(xs.shape)} and {tuple(ys.shape)}")
    validate.finite(xs, "xs")
    validate.finite(ys, "ys")


def interleave(xs: Float[Tensor, "batch point d"], ys: Float[Tensor, "batch point"]) -> Float[Tensor, "batch pos d_input"]:
    """The prompt the model reads: [x_1, 0], [0, y_1], [x_2, 0], ... as [batch, 2 point, d + 1]."""
    _points(xs, ys)
    batch, n, d = xs.shape
    inputs = xs.new_zeros(batch, n, 2, d + 1)
    inputs[:, :, 0, :d] = xs  # x_i at position 2i, its last coordinate 0
    inputs[:, :, 1, d] = ys  # y_i at position 2i + 1, alone in the last coordinate
    return inputs.flatten(1, 2)


def prediction_loss(outputs: Float[Tensor, "batch pos 1"], ys: Float[Tensor, "batch point"]) -> Float[Tensor, ""]:
    """The training loss: mean squared error of the prediction at every x position (2i) for y_i."""
    validate.tensor(outputs, "outputs", "batch pos out", dtype="float")
    validate.tensor(ys, "ys", "batch point", dtype="float")
    if outputs.shape[-1] != 1 or outputs.shape[1] != 2 * ys.shape[1] or outputs.shape[0] != ys.shape[0]:
        raise ValueError(f"outputs must be [batch, 2 point, 1] for ys [batch, point], got shapes "
                         f"{tuple(outputs.shape)} and {tuple(ys.shape)}")
    return F.mse_loss(outputs[:, 0::2, 0], ys.to(outputs.device))


def model_predictions(model, xs: Float[Tensor, "batch point d"], ys: Float[Tensor, "batch point"]) -> Float[Tensor, "batch point"]:
    """The model's prediction of every y_i, read at x_i's position (2i): [batch, point]."""
    validate.model(model)
    _points(xs, ys)
    with torch.no_grad():
        return model(interleave(xs, ys).to(model.W_E.device))[:, 0::2, 0].cpu()


def error_curve(predictions: Float[Tensor, "batch point"], ys: Float[Tensor, "batch point"], d: int) -> Float[Tensor, " point"]:
    """Squared error by number of examples in context, averaged over prompts and divided by d (the
    expected y^2 with x ~ N(0, I), w ~ N(0, I)), as Garg et al. plot it: 1 is predicting 0."""
    validate.tensor(predictions, "predictions", "batch point", dtype="float")
    validate.tensor(ys, "ys", "batch point", dtype="float")
    validate.shape_is(predictions, "predictions", tuple(ys.shape), "the shape of ys [batch, point]")
    validate.positive(d=d)
    return (predictions - ys).pow(2).mean(0) / d


# ---- baselines: the predictions of y_i from the i examples before it ------------------------------


def _each_k(xs, ys, estimate) -> Tensor:
    """[batch, point]: x_k . estimate(x_1..x_{k-1}, y_1..y_{k-1}) for every k; 0 with no example."""
    preds = torch.zeros_like(ys)
    for k in range(1, xs.shape[1]):
        w_hat = estimate(xs[:, :k], ys[:, :k])  # [batch, d]
        preds[:, k] = (xs[:, k] * w_hat).sum(-1)
    return preds


def least_squares_predictions(xs: Float[Tensor, "batch point d"], ys: Float[Tensor, "batch point"]) -> Float[Tensor, "batch point"]:
    """Least squares on the examples so far; with fewer examples than d, the minimum-norm solution
    (the pseudo-inverse), which is also ridge as its penalty goes to 0."""
    _points(xs, ys)
    return _each_k(xs, ys, lambda X, y: (torch.linalg.pinv(X) @ y[..., None])[..., 0])


def ridge_predictions(xs: Float[Tensor, "batch point d"], ys: Float[Tensor, "batch point"], lam: float) -> Float[Tensor, "batch point"]:
    """Ridge regression, w = (X^T X + lam I)^-1 X^T y. With w ~ N(0, I) and noise sigma, lam = sigma^2
    is the Bayes-optimal (posterior mean) prediction."""
    _points(xs, ys)
    validate.positive_number(lam=lam)
    eye = torch.eye(xs.shape[-1], dtype=xs.dtype)

    def estimate(X, y):
        return torch.linalg.solve(X.mT @ X + lam * eye, (X.mT @ y[..., None]))[..., 0]

    return _each_k(xs, ys, estimate)


def nearest_neighbour_predictions(xs: Float[Tensor, "batch point d"], ys: Float[Tensor, "batch point"],
                                  n_neighbours: int = 3) -> Float[Tensor, "batch point"]:
    """The mean y of the n_neighbours examples nearest to the query (all of them when fewer)."""
    _points(xs, ys)
    validate.positive(n_neighbours=n_neighbours)
    preds = torch.zeros_like(ys)
    for k in range(1, xs.shape[1]):
        dist = (xs[:, :k] - xs[:, k : k + 1]).pow(2).sum(-1)  # [batch, k]
        nearest = dist.topk(min(n_neighbours, k), dim=-1, largest=False).indices
        preds[:, k] = ys[:, :k].gather(1, nearest).mean(-1)
    return preds


def averaging_predictions(xs: Float[Tensor, "batch point d"], ys: Float[Tensor, "batch point"]) -> Float[Tensor, "batch point"]:
    """w = the mean of y_i x_i: right on average when E[x x^T] = I, but noisy; one step of gradient
    descent from w = 0 with learning rate 1 gives exactly this."""
    _points(xs, ys)
    return _each_k(xs, ys, lambda X, y: (X * y[..., None]).mean(1))


def gd_predictions(xs: Float[Tensor, "batch point d"], ys: Float[Tensor, "batch point"], lr: float,
                   steps: int) -> Float[Tensor, "batch point"]:
    """`steps` steps of gradient descent from w = 0 on the mean squared error of the examples so far,
    L(w) = mean_i (x_i . w - y_i)^2 / 2, with learning rate lr (von Oswald et al. 2023)."""
    _points(xs, ys)
    validate.positive_number(lr=lr)
    validate.positive(steps=steps)

    def estimate(X, y):
        w = X.new_zeros(X.shape[0], X.shape[-1])
        for _ in range(steps):
            residual = (X * w[:, None]).sum(-1) - y  # [batch, k]
            w = w - lr * (X * residual[..., None]).mean(1)
        return w

    return _each_k(xs, ys, estimate)


# ---- inside the model -----------------------------------------------------------------------------


def probe_r2(acts: Float[Tensor, "sample d_model"], targets: Float[Tensor, "sample d"], n_train: int) -> Float[Tensor, ""]:
    """How much of `targets` a linear probe (with a bias) reads from `acts`: fitted by least squares on
    the first n_train samples, scored on the rest as R^2 = 1 - (squared error) / (squared deviation
    from the targets' mean), both summed over all the targets' coordinates. A 0-dim tensor."""
    validate.tensor(acts, "acts", "sample d_model", dtype="float")
    validate.tensor(targets, "targets", "sample d", dtype="float")
    if len(acts) != len(targets):
        raise ValueError(f"acts and targets must have the same number of samples, got {len(acts)} and {len(targets)}")
    validate.positive(n_train=n_train)
    if n_train >= len(acts):
        raise ValueError(f"n_train must leave samples to score the probe on: below {len(acts)}, got {n_train}")
    A = torch.cat([acts, torch.ones(len(acts), 1, dtype=acts.dtype)], dim=1)  # the column of ones: the bias
    coef = torch.linalg.lstsq(A[:n_train], targets[:n_train]).solution  # [d_model + 1, d]
    test_pred, test = A[n_train:] @ coef, targets[n_train:]
    return 1 - (test_pred - test).pow(2).sum() / (test - test.mean(0)).pow(2).sum()


def sweep_curves(model, tasks: LinearRegressionTasks, prop: str, values, size: int = 1000) -> Float[Tensor, "value method point"]:
    """[value, method, point]: for each value of the property `prop`, the error curves of the model, of
    least squares and of ridge with lam = noise^2 (least squares when there is no noise), on
    `tasks.with_(prop=value).eval_prompts(size)`, times d / signal_power (so that predicting 0 scores 1)."""
    validate.model(model)
    validate.instance(tasks, LinearRegressionTasks, "tasks")
    validate.one_of(prop, sorted(SWEEPS), "prop", "the properties of the prompts that the sweep changes")
    if not isinstance(values, (tuple, list)) or not values:
        raise ValueError(f"values must be a non-empty list of values of {prop}, got {values!r}")
    rows = []
    for value in values:
        swept = tasks.with_(**{prop: value})
        p = swept.eval_prompts(size)
        least_squares = least_squares_predictions(p.xs, p.ys)
        ridge = ridge_predictions(p.xs, p.ys, swept.noise**2) if swept.noise > 0 else least_squares
        curves = [error_curve(preds, p.ys, swept.d) for preds in (model_predictions(model, p.xs, p.ys), least_squares, ridge)]
        rows.append(torch.stack(curves) * (swept.d / swept.signal_power))
    return torch.stack(rows)


# ---- the numbers notebook 13 asserts (a zoo card records them for every seed) ---------------------

# The sweep: one property of the prompts changed at a time, the rest as in training.
SWEEPS = {"noise": (0.0, 0.25, 0.5, 1.0), "x_scale": (0.5, 1.0, 2.0, 4.0), "anisotropy": (1.0, 3.0, 10.0, 30.0),
          "sparsity": (0.0, 0.4, 0.8), "active_dims": (2, 3, 4, 5)}
SWEEP_METHODS = ("model", "least_squares", "ridge")
GD_STEPS = (1, 2, 4, 16)
GD_LRS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def _rounded(t: Tensor) -> list[float]:
    return [round(x, 4) for x in t.tolist()]


def residual_at(model, xs: Tensor, ys: Tensor, point: int) -> Tensor:
    """[layer + 1, batch, d_model]: the residual stream at x_point's position (2 point), entering each
    layer and after the last (`blocks.L.hook_resid_pre`, then `blocks.{last}.hook_resid_post`)."""
    validate.model(model)
    _points(xs, ys)
    validate.int_in(point, 0, xs.shape[1] - 1, "point", "the prompt's points")
    n_layers = model.cfg.n_layers
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)] + [f"blocks.{n_layers - 1}.hook_resid_post"]
    with torch.no_grad():
        _, cache = model.run_with_cache(interleave(xs, ys).to(model.W_E.device), names_filter=lambda n: n in names)
    return torch.stack([cache[n][:, 2 * point].cpu() for n in names])


def min_norm_estimate(xs: Tensor, ys: Tensor, k: int) -> Tensor:
    """[batch, d]: the minimum-norm least-squares w from the first k examples."""
    _points(xs, ys)
    validate.int_in(k, 1, xs.shape[1], "k", "the number of examples, at most the prompt's points")
    return (torch.linalg.pinv(xs[:, :k]) @ ys[:, :k, None])[..., 0]


def gd_fit(model_preds: Tensor, xs: Tensor, ys: Tensor, steps: int, lrs=GD_LRS) -> tuple[float, float]:
    """(best lr, distance): the learning rate in `lrs` whose `steps`-step gradient descent predicts most
    like the model, and the mean squared difference from the model / d (over prompts and k >= 1)."""
    validate.tensor(model_preds, "model_preds", "batch point", dtype="float")
    if not isinstance(lrs, (tuple, list)) or not lrs:
        raise ValueError(f"lrs must be a non-empty sequence of positive numbers, got {lrs!r}")
    best = None
    for lr in lrs:
        gd = gd_predictions(xs, ys, lr, steps)
        gap = (gd - model_preds)[:, 1:].pow(2).mean().item() / xs.shape[-1]
        if best is None or gap < best[1]:
            best = (lr, gap)
    return best


def study(model, tasks: LinearRegressionTasks, size: int = 2000) -> dict:
    """Everything notebook 13 asserts, measured on fresh prompts with the course's references:
    error curves, the sweeps of noise and input scale, the probes, the fit by gradient descent."""
    validate.model(model)
    validate.instance(tasks, LinearRegressionTasks, "tasks")
    p = tasks.eval_prompts(size)
    d = tasks.d
    model_preds = model_predictions(model, p.xs, p.ys)
    curves = {name: _rounded(error_curve(preds, p.ys, d)) for name, preds in (
        ("model", model_preds), ("least_squares", least_squares_predictions(p.xs, p.ys)),
        ("nearest_neighbour", nearest_neighbour_predictions(p.xs, p.ys, 3)),
        ("averaging", averaging_predictions(p.xs, p.ys)))}
    sweeps = {prop: {str(value): dict(zip(SWEEP_METHODS, map(_rounded, curves)))
                     for value, curves in zip(values, sweep_curves(model, tasks, prop, values, size))}
              for prop, values in SWEEPS.items()}
    n_train = size * 3 // 4
    probes = {}
    for point in (2, tasks.n_points - 1):  # fewer examples than d (w_least_squares is not w), and the most
        resid = residual_at(model, p.xs, p.ys, point)
        w_ls = min_norm_estimate(p.xs, p.ys, point)
        targets = {"w": p.w, "w_least_squares": w_ls, "prediction_least_squares": (p.xs[:, point] * w_ls).sum(-1, keepdim=True)}
        probes[str(point)] = {name: [round(probe_r2(r, target, n_train).item(), 4) for r in resid]
                              for name, target in targets.items()}
    gd = {}
    for steps in GD_STEPS:
        lr, gap = gd_fit(model_preds, p.xs, p.ys, steps)
        gd[str(steps)] = {"lr": lr, "distance": round(gap, 5)}
    gd["least_squares"] = round((least_squares_predictions(p.xs, p.ys) - model_preds)[:, 1:].pow(2).mean().item() / d, 5)
    return {"curves": curves, "sweeps": sweeps, "probes": probes, "gd": gd}
