"""Modular addition and the Fourier tools to read a model that groks it (notebook 10).

The task (Power et al. 2022; Nanda et al. 2023): given a and b in 0..p-1, predict (a + b) mod p. A
sequence is the three tokens `a b =` (the token `=` is p), and the answer is predicted at the last
position only: a and b are given, not predicted. All p * p pairs exist; a fixed fraction of them,
drawn from a seed, is the training set, and the rest is the test set. Training sees the whole
training set at every step (full batch), so only the weights change from step to step.

A model that generalises does it with waves (Nanda et al. 2023): it embeds each number x as
cos(w x) and sin(w x) for a few "key" frequencies w = 2 pi k / p, combines them into cos(w (a + b))
and sin(w (a + b)) in its MLP, and its logit for an answer c is about a sum over the key
frequencies of cos(w (a + b - c)), largest when c = (a + b) mod p. The functions here measure that:

- `ModularAddition`: the data, the train/test split, `batch(step, size)` for `train.train`;
- `train_test_split`: the split itself (an exercise);
- `fourier_basis`: the constant, cos and sin waves over 0..p-1, orthonormal (an exercise);
- `frequency_norms`, `key_frequencies`: how much of an embedding each frequency carries, and the few that carry most of it (an exercise);
- `logit_table`, `restricted_logits`, `excluded_logits`, `table_loss`: the progress measures of
  Nanda et al. (restricted loss: the logits kept to the key frequencies' cos(w (a + b)) and
  sin(w (a + b)) terms; excluded loss: those terms removed), an exercise;
- `cos_fit`: how much of the logits a sum of cos(w (a + b - c)) over the key frequencies explains;
- `neuron_frequency_shares`: how much of each MLP neuron's activation one frequency explains;
- `weight_norm`, `accuracy`: the total L2 norm of the weights; accuracy on a set of pairs.

Everything is computed on the CPU or on the model's device, from the seed: nothing is downloaded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from . import validate
from .data import generator


def _check_p(p) -> None:
    validate.integer(p=p)
    if p < 3 or any(p % d == 0 for d in range(2, int(math.isqrt(p)) + 1)):
        raise ValueError(f"p must be a prime >= 3 (every frequency 1..(p-1)/2 then has its own cos and sin), got {p!r}")


def train_test_split(p: int, train_fraction: float, seed: int) -> tuple[Int[Tensor, " train"], Int[Tensor, " test"]]:
    """The indices (pair a * p + b) of the training and the test pairs: a random permutation of the
    p * p pairs drawn with `data.generator(seed)`, the first round(train_fraction * p * p) of it for
    training, the rest for testing. Same seed, same split, on any machine."""
    _check_p(p)
    validate.integer(seed=seed)
    validate.fraction(train_fraction, "train_fraction")
    n_train = round(train_fraction * p * p)
    if not 0 < n_train < p * p:
        raise ValueError(f"train_fraction must leave at least one pair for training and one for testing "
                         f"(p * p = {p * p} pairs), got {train_fraction!r}")
    order = torch.randperm(p * p, generator=generator(seed))
    return order[:n_train], order[n_train:]


@dataclass(frozen=True)
class ModularAddition:
    """All pairs (a, b) of 0..p-1 as sequences `a b =`, with the answer (a + b) mod p.

    `batch(step, size)` gives the training batch: the whole training set when size is its size (full
    batch, as the zoo's grokking runs train), else `size` training pairs drawn from (seed, step).
    """

    p: int = 59
    train_fraction: float = 0.5
    seed: int = 0
    d_vocab: int = field(init=False)  # p + 1: the numbers, then `=`
    n_ctx: int = field(init=False)  # 3: `a b =`

    def __post_init__(self):
        _check_p(self.p)
        validate.integer(seed=self.seed)
        train_test_split(self.p, self.train_fraction, self.seed)  # the same errors as the split itself
        object.__setattr__(self, "d_vocab", self.p + 1)
        object.__setattr__(self, "n_ctx", 3)

    @property
    def EQUALS(self) -> int:
        return self.p

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["d_vocab"], d["n_ctx"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModularAddition:
        known = {f.name for f in fields(cls) if f.init}
        if not isinstance(d, dict) or set(d) - known:
            raise ValueError(f"d must be a dict with ModularAddition's fields {sorted(known)}, got {d!r}")
        return cls(**d)

    def tokens(self) -> Int[Tensor, "pair pos"]:
        """Every pair as a sequence `a b =`: [p * p, 3], pair a * p + b in row a * p + b."""
        a, b = torch.arange(self.p).repeat_interleave(self.p), torch.arange(self.p).repeat(self.p)
        return torch.stack([a, b, torch.full_like(a, self.EQUALS)], dim=1)

    def answers(self) -> Int[Tensor, " pair"]:
        """(a + b) mod p for every pair, in the order of `tokens()`."""
        tokens = self.tokens()
        return (tokens[:, 0] + tokens[:, 1]) % self.p

    def split(self) -> tuple[Int[Tensor, " train"], Int[Tensor, " test"]]:
        """The indices of the training and the test pairs (`train_test_split` with this seed)."""
        return train_test_split(self.p, self.train_fraction, self.seed)

    @property
    def n_train(self) -> int:
        return round(self.train_fraction * self.p * self.p)

    def batch(self, step: int, size: int) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, " batch"]]:
        """(tokens, answers) of the training batch at `step`: the whole training set (in a fixed
        order) when size == n_train, else `size` training pairs drawn from (seed, step)."""
        validate.integer(step=step)
        validate.int_in(size, 1, self.n_train, "size", f"at most the {self.n_train} training pairs")
        train, _ = self.split()
        if size < self.n_train:
            train = train[torch.randperm(self.n_train, generator=generator(self.seed, 5, step))[:size]]
        return self.tokens()[train], self.answers()[train]


# ---- the Fourier basis ----------------------------------------------------------------------------


def fourier_basis(p: int) -> Float[Tensor, "component x"]:
    """[p, p]: row 0 the constant, then for each frequency k = 1..(p-1)/2 the rows cos(w x) and
    sin(w x) with w = 2 pi k / p, over x = 0..p-1; every row of unit norm, so the rows are an
    orthonormal basis of functions of x (B @ B.T is the identity)."""
    _check_p(p)
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, (p - 1) // 2 + 1):
        w = 2 * math.pi * k / p
        rows += [torch.cos(w * x), torch.sin(w * x)]
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).float()


def fourier_basis_names(p: int) -> list[str]:
    """The names of `fourier_basis(p)`'s rows: "const", "cos 1", "sin 1", "cos 2", ..."""
    _check_p(p)
    return ["const"] + [f"{f} {k}" for k in range(1, (p - 1) // 2 + 1) for f in ("cos", "sin")]


def frequency_norms(W: Float[Tensor, "x d"]) -> Float[Tensor, " frequency"]:
    """How much of W ([p, d], one row per number x, as the embedding W_E[:p]) each frequency carries:
    the squared norm of W written in the Fourier basis, summed over its cos and sin rows and over d,
    for k = 1..(p-1)/2 (entry k - 1). The constant row is left out: it says nothing about x."""
    validate.tensor(W, "W", "x d", dtype="float")
    validate.finite(W, "W")
    _check_p(W.shape[0])
    coefficients = fourier_basis(W.shape[0]).to(W.device) @ W  # [component, d]
    squared = coefficients[1:].pow(2).sum(-1)  # [2 * frequency]
    return squared.view(-1, 2).sum(-1)


def key_frequencies(W: Float[Tensor, "x d"], share: float = 0.9) -> Int[Tensor, " key"]:
    """The fewest frequencies (1..(p-1)/2) that together carry at least `share` of W's non-constant
    squared norm (`frequency_norms`), the largest first."""
    validate.fraction(share, "share")
    norms = frequency_norms(W)
    order = norms.argsort(descending=True)
    cumulative = norms[order].cumsum(0) / norms.sum()
    n = int((cumulative < share).sum()) + 1
    return order[: min(n, len(order))] + 1


# ---- progress measures on the full table of logits ------------------------------------------------


def logit_table(model, data: ModularAddition) -> Float[Tensor, "a b c"]:
    """The model's logits at the last position for every pair: [p, p, d_vocab], entry [a, b, c]."""
    validate.model(model)
    validate.instance(data, ModularAddition, "data")
    with torch.no_grad():
        logits = model(data.tokens().to(model.W_E.device))[:, -1]
    return logits.view(data.p, data.p, -1)


def _sum_waves(p: int, frequencies, device) -> Float[Tensor, "wave a b"]:
    """[2 * n, p, p]: cos(w (a + b)) and sin(w (a + b)) for each frequency, each of unit norm."""
    s = torch.arange(p, device=device)[:, None] + torch.arange(p, device=device)[None, :]
    waves = []
    for k in frequencies:
        w = 2 * math.pi * int(k) / p
        waves += [torch.cos(w * s), torch.sin(w * s)]
    waves = torch.stack(waves).float()
    return waves / waves.flatten(1).norm(dim=1)[:, None, None]


def _pair_table(table, name: str, axes: str, last: str) -> int:
    """`table` must be a finite float table [p, p, last] over every pair (a, b), p prime: return p."""
    validate.tensor(table, name, axes, dtype="float")
    validate.finite(table, name)
    p = table.shape[0]
    if table.shape[1] != p:
        raise ValueError(f"{name} must be a table [p, p, {last}] over every pair (a, b), got shape {tuple(table.shape)}")
    _check_p(p)
    return p


def _check_table(logits, frequencies) -> int:
    p = _pair_table(logits, "logits", "a b c", "d_vocab")
    validate.tensor(frequencies, "frequencies", "key", dtype="int")
    if len(frequencies) == 0 or int(frequencies.min()) < 1 or int(frequencies.max()) > (p - 1) // 2:
        raise ValueError(f"frequencies must be frequencies in 1..{(p - 1) // 2} (one or more), got {frequencies.tolist()}")
    return p


def _project_sum_waves(logits, frequencies) -> Tensor:
    """The part of the logits (for each answer c, as a function of (a, b)) along cos(w (a + b)) and
    sin(w (a + b)) of the given frequencies."""
    waves = _sum_waves(logits.shape[0], frequencies.tolist(), logits.device)  # orthonormal: k != k' and cos/sin
    coefficients = torch.einsum("wab,abc->wc", waves, logits)
    return torch.einsum("wc,wab->abc", coefficients, waves)


def restricted_logits(logits: Float[Tensor, "a b c"], frequencies: Int[Tensor, " key"]) -> Float[Tensor, "a b c"]:
    """The logits kept to the key frequencies: for every answer c, the logits over the pairs (a, b)
    projected onto their mean and onto cos(w (a + b)) and sin(w (a + b)) of each key frequency;
    everything else (memorised detail, other frequencies) removed (Nanda et al. 2023's restricted loss)."""
    _check_table(logits, frequencies)
    return logits.mean(dim=(0, 1), keepdim=True) + _project_sum_waves(logits, frequencies)


def excluded_logits(logits: Float[Tensor, "a b c"], frequencies: Int[Tensor, " key"]) -> Float[Tensor, "a b c"]:
    """The logits with the key frequencies' cos(w (a + b)) and sin(w (a + b)) terms removed and
    everything else kept (Nanda et al. 2023's excluded loss, measured on the training pairs)."""
    _check_table(logits, frequencies)
    return logits - _project_sum_waves(logits, frequencies)


def table_loss(logits: Float[Tensor, "a b c"], data: ModularAddition, pairs: Int[Tensor, " pair"] | None = None
               ) -> float:
    """Mean cross-entropy of the answers (a + b) mod p under a logit table, over `pairs` (indices
    a * p + b, e.g. data.split()[0]) or over every pair."""
    validate.instance(data, ModularAddition, "data")
    validate.tensor(logits, "logits", "a b c", dtype="float")
    if logits.shape[:2] != (data.p, data.p):
        raise ValueError(f"logits must be a table [p, p, d_vocab] = [{data.p}, {data.p}, ...], got shape {tuple(logits.shape)}")
    flat, answers = logits.reshape(data.p * data.p, -1), data.answers().to(logits.device)
    if pairs is not None:
        validate.tensor(pairs, "pairs", "pair", dtype="int")
        validate.ids(pairs, data.p * data.p, "pairs", "the pairs a * p + b")
        flat, answers = flat[pairs.to(logits.device)], answers[pairs.to(logits.device)]
    return F.cross_entropy(flat, answers).item()


def accuracy(logits: Float[Tensor, "a b c"], data: ModularAddition, pairs: Int[Tensor, " pair"] | None = None) -> float:
    """Share of `pairs` (or of every pair) whose largest logit is the answer (a + b) mod p."""
    validate.instance(data, ModularAddition, "data")
    validate.tensor(logits, "logits", "a b c", dtype="float")
    if logits.shape[:2] != (data.p, data.p):
        raise ValueError(f"logits must be a table [p, p, d_vocab] = [{data.p}, {data.p}, ...], got shape {tuple(logits.shape)}")
    hit = logits.reshape(data.p * data.p, -1).argmax(-1).cpu() == data.answers()
    if pairs is not None:
        validate.tensor(pairs, "pairs", "pair", dtype="int")
        validate.ids(pairs, data.p * data.p, "pairs", "the pairs a * p + b")
        hit = hit[pairs.cpu()]
    return hit.float().mean().item()


def weight_norm(model) -> float:
    """The L2 norm of all the model's weights together: sqrt(sum of every parameter squared)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return math.sqrt(sum(p.detach().pow(2).sum().item() for p in model.parameters()))


# ---- reading the algorithm off the model ----------------------------------------------------------


def cos_fit(logits: Float[Tensor, "a b c"], frequencies: Int[Tensor, " key"]) -> tuple[Float[Tensor, " key"], float]:
    """Fit the answer logits (c in 0..p-1, each pair's mean over c removed: softmax ignores it) with
    sum_k alpha_k cos(w_k (a + b - c)) over the key frequencies, by least squares. Returns (alpha
    per frequency, the share of the logits' variance the fit explains)."""
    p = _check_table(logits, frequencies)
    target = logits[..., :p] - logits[..., :p].mean(-1, keepdim=True)
    x = torch.arange(p, device=logits.device)
    phase = (x[:, None, None] + x[None, :, None] - x[None, None, :]).float()  # a + b - c
    design = torch.stack([torch.cos(2 * math.pi * int(k) / p * phase) for k in frequencies.tolist()], dim=-1)
    design, y = design.reshape(-1, len(frequencies)), target.reshape(-1, 1)
    alpha = torch.linalg.lstsq(design.double(), y.double()).solution[:, 0]
    residual = y.double() - design.double() @ alpha[:, None]
    explained = 1 - residual.pow(2).sum() / y.double().pow(2).sum()
    return alpha.float(), explained.item()


def neuron_frequency_shares(acts: Float[Tensor, "a b neuron"]) -> Float[Tensor, "neuron frequency"]:
    """For every neuron (its activation over the pairs (a, b)), the share of its variance carried by
    each frequency k: the terms of the 2D Fourier transform that involve only frequency k in a, b or
    both (cos/sin of w a, of w b, and their products), over all non-constant terms."""
    p = _pair_table(acts, "acts", "a b neuron", "neuron")
    basis = fourier_basis(p).to(acts.device)
    power = torch.einsum("ia,jb,abn->ijn", basis, basis, acts).pow(2)  # [component a, component b, neuron]
    freq = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(1, (p - 1) // 2 + 1).repeat_interleave(2)]).to(acts.device)
    total = power.sum((0, 1)) - power[0, 0]
    shares = []
    for k in range(1, (p - 1) // 2 + 1):
        keep = (freq == k) | (freq == 0)
        shares.append(power[keep][:, keep].sum((0, 1)) - power[0, 0])
    return (torch.stack(shares, dim=-1) / total[:, None].clamp_min(1e-12))


# ---- a training history, measured ----------------------------------------------------------------


def progress_measures(history: dict, data: ModularAddition, frequencies: Int[Tensor, " key"]) -> dict[str, list]:
    """For every checkpoint of a training history {step: model}: train and test loss and accuracy,
    the restricted loss (logits kept to the key frequencies, over every pair), the excluded loss
    (key frequencies removed, over the training pairs) and the total weight norm. Lists, in step order."""
    if not isinstance(history, dict) or not history or not all(isinstance(s, int) for s in history):
        raise TypeError(f"history must be a dict {{step: model}} (zoo.history), got {type(history).__name__}")
    validate.instance(data, ModularAddition, "data")
    train_pairs, test_pairs = data.split()
    out = {key: [] for key in ("steps", "train_loss", "test_loss", "train_accuracy", "test_accuracy",
                               "restricted_loss", "excluded_loss", "weight_norm")}
    for step in sorted(history):
        model = history[step]
        table = logit_table(model, data)
        out["steps"].append(step)
        out["train_loss"].append(table_loss(table, data, train_pairs))
        out["test_loss"].append(table_loss(table, data, test_pairs))
        out["train_accuracy"].append(accuracy(table, data, train_pairs))
        out["test_accuracy"].append(accuracy(table, data, test_pairs))
        out["restricted_loss"].append(table_loss(restricted_logits(table, frequencies), data))
        out["excluded_loss"].append(table_loss(excluded_logits(table, frequencies), data, train_pairs))
        out["weight_norm"].append(weight_norm(model))
    return out


MEMORISED = 0.99  # training accuracy at which the training set counts as memorised
GENERALISED = 0.95  # test accuracy at which the model counts as having generalised (grokked)


def grokking_phases(steps: Int[Tensor, " checkpoint"], train_accuracy: Float[Tensor, " checkpoint"],
                    test_loss: Float[Tensor, " checkpoint"], test_accuracy: Float[Tensor, " checkpoint"],
                    chance_loss: float) -> Float[Tensor, " 3"]:
    """The steps that end the phases of a grokking run, [memorised, circuit_formed, generalised]:
    - memorised: the first checkpoint at which training accuracy >= MEMORISED (0.99);
    - circuit_formed: the first checkpoint from `memorised` on at which the test loss falls below
      `chance_loss` (ln p, a uniform guess): the clean-up phase begins;
    - generalised: the first checkpoint at which test accuracy >= GENERALISED (0.95).
    NaN for a boundary never reached (a run that does not grok has no `generalised`)."""
    validate.tensor(steps, "steps", "checkpoint", dtype="int")
    for name, t in (("train_accuracy", train_accuracy), ("test_loss", test_loss), ("test_accuracy", test_accuracy)):
        validate.tensor(t, name, "checkpoint", dtype="float")
        validate.shape_is(t, name, tuple(steps.shape), "[checkpoint] (one value per step of steps)")
    validate.positive_number(chance_loss=chance_loss)

    def first(condition: Tensor) -> float:
        hits = torch.nonzero(condition)
        return float(steps[hits[0, 0]]) if len(hits) else math.nan

    memorised = first(train_accuracy >= MEMORISED)
    after = steps >= memorised if not math.isnan(memorised) else torch.zeros_like(steps, dtype=torch.bool)
    return torch.tensor([memorised, first(after & (test_loss < chance_loss)), first(test_accuracy >= GENERALISED)])
