"""Data the course generates from a seed: nothing is downloaded.

- `repeated_tokens`: a random prefix followed by its exact repeat, the classic probe for induction.
- `SyntheticLanguage`: tokens from a bigram (Markov) model, where most sequences contain a span of
  random length copied from earlier in the sequence at a random offset. The bigram statistics reward
  a model that looks one token back; the copied spans reward a model that has learnt induction
  ("the last time I saw this token, what came next?"). Because lengths and offsets are random, no
  positional trick can predict the copies.

Same seed, same data, on any machine: every random draw comes from a `torch.Generator` seeded from
the arguments, on the CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import validate

EVAL_SEED = 10**9  # the seed of evaluation data: no training step's batch is drawn with it


def generator(*seeds: int) -> torch.Generator:
    """A CPU `torch.Generator` seeded from several ints (a dataset's seed, a purpose, a step), so that
    every draw of every generated dataset in the course is reproducible on any machine."""
    validate.integer(**{f"seeds[{i}]": s for i, s in enumerate(seeds)})
    seed = 0
    for s in seeds:
        seed = (seed * 1_000_003 + s) % (2**63)
    return torch.Generator().manual_seed(seed)


def repeated_tokens(batch: int, prefix_len: int, d_vocab: int, seed: int = 0) -> Int[Tensor, "batch pos"]:
    """Random tokens followed by the same tokens again: [batch, 2 * prefix_len].

    Position t >= prefix_len holds a copy of position t - prefix_len, so an induction head
    at position t attends to position t - prefix_len + 1.
    """
    validate.positive(batch=batch, prefix_len=prefix_len, d_vocab=d_vocab)
    validate.integer(seed=seed)
    prefix = torch.randint(0, d_vocab, (batch, prefix_len), generator=generator(seed, prefix_len))
    return torch.cat([prefix, prefix], dim=1)


@dataclass
class Batch:
    tokens: torch.Tensor  # [batch, pos] token ids
    copied: torch.Tensor  # [batch, pos] bool: a copied token that induction can predict


@dataclass(frozen=True)
class SyntheticLanguage:
    """A bigram language with repeated spans. `language.batch(step, size)` is deterministic."""

    d_vocab: int = 64
    n_ctx: int = 64
    successors: int = 8  # how many tokens can follow each token (the bigram's branching)
    p_repeat: float = 0.8  # fraction of sequences with a copied span
    min_span: int = 6
    max_span: int = 20
    seed: int = 0

    def __post_init__(self):
        validate.positive(d_vocab=self.d_vocab, n_ctx=self.n_ctx, successors=self.successors,
                        min_span=self.min_span, max_span=self.max_span)
        validate.integer(seed=self.seed)
        if self.successors > self.d_vocab:
            raise ValueError(f"successors={self.successors} cannot exceed d_vocab={self.d_vocab}")
        validate.fraction(self.p_repeat, "p_repeat")
        if not self.min_span <= self.max_span or 2 * self.max_span + 2 > self.n_ctx:
            raise ValueError(
                f"need min_span <= max_span and 2 * max_span + 2 <= n_ctx (the span and its copy "
                f"must fit); got min_span={self.min_span}, max_span={self.max_span}, n_ctx={self.n_ctx}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    def transition_matrix(self) -> Float[Tensor, "d_vocab d_vocab"]:
        """[d_vocab, d_vocab]: P(next = j | current = i). Each row has `successors` nonzero entries."""
        return _transition_matrix(self.d_vocab, self.successors, self.seed).clone()

    def bigram_entropy(self) -> float:
        """Mean entropy (nats) of the next token given the current one: the best loss without copies."""
        p = self.transition_matrix()
        return float(-(p * p.clamp_min(1e-30).log()).sum(-1).mean())

    def sample(self, size: int, seed: int) -> Batch:
        """`size` sequences drawn with generator seed `seed`."""
        validate.positive(size=size)
        validate.integer(seed=seed)
        gen = generator(self.seed, 2, seed)
        cdf = _transition_cdf(self.d_vocab, self.successors, self.seed)
        n = self.n_ctx
        # Where each copied span comes from (src), where it lands (dst) and how long it is.
        length = torch.randint(self.min_span, self.max_span + 1, (size,), generator=gen)
        src = (torch.rand(size, generator=gen, dtype=torch.float64) * (n - 2 * length)).long()
        gap = (torch.rand(size, generator=gen, dtype=torch.float64) * (n - 2 * length - src + 1)).long()
        dst = src + length + gap
        has_copy = torch.rand(size, generator=gen) < self.p_repeat
        pos = torch.arange(n)
        in_copy = has_copy[:, None] & (pos >= dst[:, None]) & (pos < (dst + length)[:, None])

        tokens = torch.empty(size, n, dtype=torch.long)
        tokens[:, 0] = torch.randint(0, self.d_vocab, (size,), generator=gen)
        rows = torch.arange(size)
        for t in range(1, n):
            u = torch.rand(size, 1, generator=gen, dtype=torch.float64)
            fresh = torch.searchsorted(cdf[tokens[:, t - 1]], u)[:, 0].clamp_max(self.d_vocab - 1)
            copy = tokens[rows, (t - (dst - src)).clamp_min(0)]
            tokens[:, t] = torch.where(in_copy[:, t], copy, fresh)
        # The first copied token follows an unrelated token; from the second on, induction predicts.
        copied = in_copy & (pos > dst[:, None])
        return Batch(tokens=tokens, copied=copied)

    def batch(self, step: int, size: int) -> Int[Tensor, "batch pos"]:
        """The training batch for `step`: [size, n_ctx]. Depends only on (seed, step, size)."""
        validate.integer(step=step)
        return self.sample(size, seed=step).tokens


@lru_cache(maxsize=16)
def _transition_matrix(d_vocab: int, successors: int, seed: int) -> torch.Tensor:
    gen = generator(seed, 1)
    probs = torch.zeros(d_vocab, d_vocab, dtype=torch.float64)
    for i in range(d_vocab):
        nxt = torch.randperm(d_vocab, generator=gen)[:successors]
        weights = torch.rand(successors, generator=gen, dtype=torch.float64) + 0.5
        probs[i, nxt] = weights / weights.sum()
    return probs


@lru_cache(maxsize=16)
def _transition_cdf(d_vocab: int, successors: int, seed: int) -> torch.Tensor:
    cdf = _transition_matrix(d_vocab, successors, seed).cumsum(-1)
    cdf[:, -1] = 1.0
    return cdf
