"""In-context classification (Singh et al. 2024), and what induction needs to form (notebook 04).

A sequence is `e1 l1 e2 l2 ... eN lN q l_q`: N exemplar-label pairs, then a query exemplar and
its label. Each exemplar belongs to one of `n_classes` classes; each class gets a label, one of
`n_labels`, **drawn afresh for every sequence**. So no weight can store "class 3 is label B":
the only way to name the query's label is to find the query's class earlier in the context and
copy the label after it. That is an induction head's job.

Exemplars are **tokens**, not vectors: token `c` (0 <= c < n_classes) is class c, and tokens
n_classes .. n_classes + n_labels - 1 are the labels. Singh et al. use Omniglot images embedded as
vectors, with noise within a class; our models read tokens, and with one token per class the
task isolates what we study (matching and copying) from recognising noisy exemplars.

The query's class always occurs among the N exemplars, and every exemplar of a class in a
sequence carries that class's label, so intermediate labels are predictable too whenever their
exemplar repeats.

"Induction forms" has one operational definition here, `formation_step`: the first checkpoint at
which the query accuracy on fresh sequences reaches `FORMED_ACCURACY`. Training runs are tiny
(seconds on a CPU); `clamping` holds or ablates parts of the model while they train.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from jaxtyping import Int
from torch import Tensor

from . import validate
from .data import EVAL_SEED, generator
from .metrics import first_step_above

FORMED_ACCURACY = 0.9  # "induction has formed": query accuracy on fresh sequences at least this


@dataclass(frozen=True)
class ICLClassification:
    """The task's parameters. `task.batch(step, size)` is deterministic."""

    n_classes: int = 8
    n_labels: int = 4
    n_pairs: int = 8  # exemplar-label pairs before the query
    seed: int = 0

    def __post_init__(self):
        validate.positive(n_classes=self.n_classes, n_labels=self.n_labels, n_pairs=self.n_pairs)
        if self.n_labels < 2:
            raise ValueError(f"n_labels must be at least 2 (one label cannot be learnt in context), got {self.n_labels}")
        validate.integer(seed=self.seed)

    @property
    def d_vocab(self) -> int:
        """Classes first (tokens 0..n_classes-1), then labels."""
        return self.n_classes + self.n_labels

    @property
    def n_ctx(self) -> int:
        """2 * n_pairs + 2 tokens: the pairs, the query, its label."""
        return 2 * self.n_pairs + 2

    @property
    def query_pos(self) -> int:
        """The position of the query; the logits there predict its label."""
        return 2 * self.n_pairs

    def to_dict(self) -> dict:
        return asdict(self)

    def sample(self, size: int, seed: int) -> Int[Tensor, "batch pos"]:
        """`size` sequences [size, n_ctx] drawn with generator seed `seed`."""
        validate.positive(size=size)
        validate.integer(seed=seed)
        gen = generator(self.seed, 3, seed)
        label_of = torch.randint(0, self.n_labels, (size, self.n_classes), generator=gen)  # per sequence
        exemplars = torch.randint(0, self.n_classes, (size, self.n_pairs), generator=gen)
        which = torch.randint(0, self.n_pairs, (size,), generator=gen)  # the query repeats one of them
        query = exemplars[torch.arange(size), which]
        classes = torch.cat([exemplars, query[:, None]], dim=1)  # [size, n_pairs + 1]
        labels = label_of.gather(1, classes) + self.n_classes
        return torch.stack([classes, labels], dim=2).flatten(1)  # e1 l1 e2 l2 ... q l_q

    def batch(self, step: int, size: int) -> Int[Tensor, "batch pos"]:
        """The training batch for `step`: depends only on (seed, step, size)."""
        validate.integer(step=step)
        return self.sample(size, seed=step)


EVAL_SIZE = 512


def query_accuracy(model, task: ICLClassification, hooks: list | None = None, size: int = EVAL_SIZE,
                   seed: int = EVAL_SEED) -> float:
    """Fraction of fresh sequences whose query label is the model's top guess among the labels.

    hooks: the same forward hooks the model was trained with (a clamped model is evaluated clamped).
    """
    validate.model(model)
    validate.instance(task, ICLClassification, "task")
    if model.cfg.d_vocab != task.d_vocab or model.cfg.n_ctx < task.n_ctx:
        raise ValueError(f"the model (d_vocab={model.cfg.d_vocab}, n_ctx={model.cfg.n_ctx}) does not fit the "
                         f"task (d_vocab={task.d_vocab}, n_ctx={task.n_ctx})")
    tokens = task.sample(size, seed).to(next(model.parameters()).device)
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks or [])
    label_logits = logits[:, task.query_pos, task.n_classes:]
    guess = label_logits.argmax(-1) + task.n_classes
    return float((guess == tokens[:, task.query_pos + 1]).float().mean())


def formation_step(steps, accuracies, threshold: float = FORMED_ACCURACY):
    """When induction forms: the first step whose query accuracy reaches `threshold`; None if never.

    The one definition the notebook, the study and the tests use: `metrics.first_step_above` with
    the course's threshold for a formed induction circuit.
    """
    return first_step_above(steps, accuracies, threshold)
