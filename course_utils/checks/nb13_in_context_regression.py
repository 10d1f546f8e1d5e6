"""Checks for notebook 13, "In-context regression": the prompt, the baselines (least squares, ridge,
nearest neighbours), the error curve, the sweep, gradient descent, and the probe."""

from __future__ import annotations

import torch

from .. import in_context_regression as icr
from . import fixtures
from .framework import call, compare, done

REFERENCES = {
    "interleave": icr.interleave,
    "least_squares_predictions": icr.least_squares_predictions,
    "ridge_predictions": icr.ridge_predictions,
    "nearest_neighbour_predictions": icr.nearest_neighbour_predictions,
    "error_curve": icr.error_curve,
    "sweep_curves": icr.sweep_curves,
    "gd_predictions": icr.gd_predictions,
    "probe_r2": icr.probe_r2,
}


def _points(batch: int, n: int, d: int, seed: int, noise: float = 0.3):
    """Prompts of another size than the notebook's (a hard-coded d = 5 shows), with noise."""
    g = fixtures.generator(seed)
    xs = torch.randn(batch, n, d, generator=g)
    w = torch.randn(batch, d, generator=g)
    ys = (xs * w[:, None]).sum(-1) + noise * torch.randn(batch, n, generator=g)
    return xs, ys


_CASES = ((3, 7, 3, 0), (2, 9, 4, 1), (4, 5, 2, 2))  # batch, points, d, seed


def check_interleave(fn):
    """fn(xs [batch, point, d], ys [batch, point]) -> [batch, 2 point, d + 1]."""
    __tracebackhide__ = True
    for batch, n, d, seed in _CASES:
        xs, ys = _points(batch, n, d, seed)
        expected = icr.interleave(xs, ys)
        got = call("interleave", fn, {"xs": xs, "ys": ys})
        first_y = expected.clone()
        first_y[:, 1::2] = 0
        first_y[:, 1::2, 0] = ys
        mistakes = {
            "you put y in the first coordinate of its vector: it goes in the last (index d), the coordinate no x "
            "uses, so the model can tell a y from an x by where it is": first_y,
            "you put every y after all the x's: alternate them, x_1, y_1, x_2, y_2, ...":
                torch.cat([expected[:, 0::2], expected[:, 1::2]], dim=1),
            "your y comes before its x: the order is x_i then y_i, so that the model predicts y_i at x_i's position":
                expected.view(batch, n, 2, d + 1).flip(2).flatten(1, 2),
        }
        compare("interleave", got, expected, mistakes, axes="batch pos d_input")
    done("interleave", len(_CASES))


def _baseline_check(name, fn, reference, extras: list[dict], mistakes_of):
    """Compare fn with the reference on every case, with each set of extra arguments (lam, ...)."""
    __tracebackhide__ = True
    for extra in extras:
        for batch, n, d, seed in _CASES:
            xs, ys = _points(batch, n, d, seed)
            expected = reference(xs, ys, *extra.values())
            got = call(name, fn, {"xs": xs, "ys": ys, **extra})
            compare(name, got, expected, mistakes_of(xs, ys, **extra), atol=1e-4, axes="batch point")
    done(name, len(_CASES) * len(extras))


def _shift(xs, ys, estimate):
    """Predictions that also see the query's own y (the examples up to and including k)."""
    preds = torch.zeros_like(ys)
    for k in range(xs.shape[1]):
        preds[:, k] = (xs[:, k] * estimate(xs[:, : k + 1], ys[:, : k + 1])).sum(-1)
    return preds


def check_least_squares_predictions(fn):
    """fn(xs, ys) -> [batch, point]: y_k predicted by minimum-norm least squares on the k examples before it."""
    __tracebackhide__ = True

    def mistakes(xs, ys):
        def lstsq_all(X, y):
            return (torch.linalg.pinv(X) @ y[..., None])[..., 0]
        return {
            "your prediction for y_k uses y_k itself: fit on the examples before it, xs[:, :k], ys[:, :k]":
                lambda: _shift(xs, ys, lstsq_all),
            "you fitted w once on every example of the prompt: each y_k may use only the k examples before it":
                lambda: (xs * lstsq_all(xs, ys)[:, None]).sum(-1),
            "you predicted the mean of the y's so far, not x_k . w from least squares": lambda: torch.stack(
                [torch.zeros(len(ys))] + [ys[:, :k].mean(1) for k in range(1, ys.shape[1])], dim=1),
            "with fewer examples than d, X^T X cannot be inverted: use the pseudo-inverse (torch.linalg.pinv), which "
            "gives the minimum-norm solution": lambda: _each_k_ridge(xs, ys, 1e-1),
        }

    _baseline_check("least_squares_predictions", fn, icr.least_squares_predictions, [{}], mistakes)


def _each_k_ridge(xs, ys, lam, scale_with_k=False):
    eye = torch.eye(xs.shape[-1])
    preds = torch.zeros_like(ys)
    for k in range(1, xs.shape[1]):
        X, y = xs[:, :k], ys[:, :k]
        w = torch.linalg.solve(X.mT @ X + lam * (k if scale_with_k else 1) * eye, X.mT @ y[..., None])[..., 0]
        preds[:, k] = (xs[:, k] * w).sum(-1)
    return preds


def check_ridge_predictions(fn):
    """fn(xs, ys, lam) -> [batch, point]: ridge regression with penalty lam on the examples before each y."""
    __tracebackhide__ = True
    def mistakes(xs, ys, lam):
            return {
                "you multiplied the penalty by k (the mean squared error's ridge): here it is lam alone, "
                "w = (X^T X + lam I)^-1 X^T y": lambda: _each_k_ridge(xs, ys, lam, scale_with_k=True),
                "your penalty is lam squared: w = (X^T X + lam I)^-1 X^T y": lambda: _each_k_ridge(xs, ys, lam**2),
                "your prediction for y_k uses y_k itself: fit on the examples before it": lambda: _shift(
                    xs, ys, lambda X, y: torch.linalg.solve(X.mT @ X + lam * torch.eye(X.shape[-1]), X.mT @ y[..., None])[..., 0]),
            }
    _baseline_check("ridge_predictions", fn, icr.ridge_predictions, [{"lam": 0.5}, {"lam": 2.0}], mistakes)


def check_nearest_neighbour_predictions(fn):
    """fn(xs, ys, n_neighbours) -> [batch, point]: the mean y of the nearest examples before each query."""
    __tracebackhide__ = True

    def mistakes(xs, ys, n_neighbours):
        def knn(n_neighbours, far=False, include_self=False):
            preds = torch.zeros_like(ys)
            for k in range(1, xs.shape[1]):
                end = k + 1 if include_self else k
                dist = (xs[:, :end] - xs[:, k : k + 1]).pow(2).sum(-1)
                idx = dist.topk(min(n_neighbours, end), dim=-1, largest=far).indices
                preds[:, k] = ys[:, :end].gather(1, idx).mean(-1)
            return preds
        return {
            "you took the farthest examples: topk(..., largest=False) gives the nearest": lambda: knn(3, far=True),
            "you used only the single nearest example: average the n_neighbours nearest": lambda: knn(1),
            "your neighbours include the query itself (distance 0): search only the examples before it":
                lambda: knn(3, include_self=True),
        }

    _baseline_check("nearest_neighbour_predictions", fn, icr.nearest_neighbour_predictions, [{"n_neighbours": 3}], mistakes)


def check_error_curve(fn):
    """fn(predictions [batch, point], ys [batch, point], d) -> [point]."""
    __tracebackhide__ = True
    for batch, n, d, seed in _CASES:
        g = fixtures.generator(seed + 10)
        ys = torch.randn(batch, n, generator=g) * 2
        predictions = ys + torch.randn(batch, n, generator=g)
        expected = icr.error_curve(predictions, ys, d)
        got = call("error_curve", fn, {"predictions": predictions, "ys": ys, "d": d})
        sq = (predictions - ys).pow(2)
        mistakes = {
            "you did not divide by d: the curve is the mean squared error / d, so that predicting 0 scores 1": sq.mean(0),
            "you averaged over the points, not the prompts: one number per number of examples k, mean over the batch":
                sq.mean(1) / d,
            "you averaged the absolute error: square it": (predictions - ys).abs().mean(0) / d,
            "you took the square root (RMSE): the curve is the squared error": sq.mean(0).sqrt() / d,
        }
        compare("error_curve", got, expected, mistakes, axes="point")
    done("error_curve", len(_CASES))


def check_gd_predictions(fn):
    """fn(xs, ys, lr, steps) -> [batch, point]: gradient descent from w = 0 on the examples before each y."""
    __tracebackhide__ = True
    def mistakes(xs, ys, lr, steps):
            def gd(lr_, steps_, mean=True, start_at_lstsq=False):
                def estimate(X, y):
                    w = X.new_zeros(X.shape[0], X.shape[-1])
                    for _ in range(steps_):
                        grad = (X * ((X * w[:, None]).sum(-1) - y)[..., None])
                        w = w - lr_ * (grad.mean(1) if mean else grad.sum(1))
                    return w
                return icr._each_k(xs, ys, estimate)
            return {
                "you summed the gradient over the examples: take the mean, so that the step does not grow with k":
                    lambda: gd(lr, steps, mean=False),
                "you took one step whatever `steps` says": lambda: gd(lr, 1),
                "your step goes up the gradient: w = w - lr * gradient": lambda: gd(-lr, steps),
                "your prediction for y_k uses y_k itself: fit on the examples before it": lambda: _shift(
                    xs, ys, lambda X, y: _gd_w(X, y, lr, steps)),
            }
    _baseline_check("gd_predictions", fn, icr.gd_predictions, [{"lr": 0.7, "steps": 1}, {"lr": 0.4, "steps": 3}], mistakes)


def _gd_w(X, y, lr, steps):
    w = X.new_zeros(X.shape[0], X.shape[-1])
    for _ in range(steps):
        w = w - lr * (X * ((X * w[:, None]).sum(-1) - y)[..., None]).mean(1)
    return w


def check_probe_r2(fn):
    """fn(acts [sample, d_model], targets [sample, d], n_train) -> float: held-out R^2 of a linear probe."""
    __tracebackhide__ = True
    for n, d_model, d, seed in ((60, 8, 3, 0), (80, 12, 2, 1), (50, 6, 4, 2)):
        g = fixtures.generator(seed + 20)
        acts = torch.randn(n, d_model, generator=g)
        targets = acts[:, :d] @ torch.randn(d, d, generator=g) + 2.0 + 0.5 * torch.randn(n, d, generator=g)
        n_train = n * 2 // 3
        expected = icr.probe_r2(acts, targets, n_train)
        got = call("probe_r2", fn, {"acts": acts, "targets": targets, "n_train": n_train})

        def r2(train, test, bias=True):
            A = torch.cat([acts, torch.ones(n, 1)], 1) if bias else acts
            coef = torch.linalg.lstsq(A[train], targets[train]).solution
            pred, t = A[test] @ coef, targets[test]
            return 1 - (pred - t).pow(2).sum() / (t - t.mean(0)).pow(2).sum()
        train, test = slice(0, n_train), slice(n_train, None)
        mistakes = {
            "you scored the probe on the samples it was fitted on: score it on the rest, acts[n_train:]":
                lambda: r2(train, train),
            "your probe has no bias: add a column of ones to acts (the targets need not have mean 0)":
                lambda: r2(train, test, bias=False),
            "you returned the explained share of the error the wrong way round: R^2 = 1 - error / deviation":
                lambda: 1 - r2(train, test),
        }
        compare("probe_r2", got, expected, mistakes, atol=1e-4)
    done("probe_r2", 3)


def _sweep(model, tasks, prop, values, size, scale=True, lam_power=2, change=True):
    """sweep_curves with one thing done wrong (see the mistakes of check_sweep_curves)."""
    rows = []
    for value in values:
        swept = tasks.with_(**{prop: value}) if change else tasks
        p = swept.eval_prompts(size)
        ls = icr.least_squares_predictions(p.xs, p.ys)
        ridge = icr.ridge_predictions(p.xs, p.ys, swept.noise**lam_power) if swept.noise > 0 else ls
        curves = torch.stack([icr.error_curve(q, p.ys, swept.d) for q in (icr.model_predictions(model, p.xs, p.ys), ls, ridge)])
        rows.append(curves * (swept.d / swept.signal_power) if scale else curves)
    return torch.stack(rows)


def check_sweep_curves(fn):
    """fn(model, tasks, prop, values, size) -> [value, method (model, least squares, ridge), point]."""
    __tracebackhide__ = True
    model = fixtures.vector_model()
    cases = [("noise", [0.0, 0.5, 2.0]), ("x_scale", [0.5, 3.0]), ("anisotropy", [1.0, 10.0])]
    for i, (prop, values) in enumerate(cases):
        tasks = icr.LinearRegressionTasks(d=2, n_points=4, seed=3 + i)
        expected = icr.sweep_curves(model, tasks, prop, values, 64)
        got = call("sweep_curves", fn, {"model": model, "tasks": tasks, "prop": prop, "values": values, "size": 64})
        mistakes = {
            "every value gives the same curves: draw each value's prompts from tasks.with_(**{prop: value})":
                lambda: _sweep(model, tasks, prop, values, 64, change=False),
            "you did not rescale the curves by d / swept.signal_power: with inputs twice as large, y and its errors "
            "are twice as large too, and the curves would not compare": lambda: _sweep(model, tasks, prop, values, 64, scale=False),
            "your ridge penalty is the noise level, not its square: lam = noise^2 (the noise's variance, with "
            "w ~ N(0, I))": lambda: _sweep(model, tasks, prop, values, 64, lam_power=1),
            "your methods are in another order: model, least squares, ridge": lambda: expected[:, [1, 0, 2]],
        }
        compare("sweep_curves", got, expected, mistakes, atol=1e-4, axes="value method point")
    done("sweep_curves", len(cases))
