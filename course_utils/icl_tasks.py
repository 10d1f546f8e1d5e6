"""In-context tasks for function vectors (notebook 07), generated from a seed: nothing is downloaded.

A prompt is a few demonstrations of a function `f`, then a query:

    <bos> x1 -> f(x1) , x2 -> f(x2) , ... , xq ->

and the model must answer f(xq). Every task maps the same items (tokens 0..n_items-1) to items, and
for every x the tasks give different answers, so nothing in `xq` alone says which task is meant: the
model must infer the task from the demonstrations. With zero demonstrations it can only guess.

The tasks (names as in Todd et al. 2023, whose tasks are English word lists):
- "copy": f(x) = x;
- "successor": f(x) = x + 1 (mod n_items), like "next letter";
- "antonym": a fixed random pairing of the items (antonym(antonym(x)) = x);
- "capital": a fixed random lookup table, like "country -> capital".

Token layout: items are 0..n_items-1, then `->` (ARROW), `,` (COMMA) and <bos> (BOS). The answer to
demonstration i is predicted at the `->` position 4 * i + 2, and the answer sits at 4 * i + 3.

Same seed, same data, on any machine: every random draw comes from a seeded `torch.Generator`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import torch

from .data import _check_positive, _check_seed, _generator

TASKS = ("copy", "successor", "antonym", "capital")


@dataclass
class Prompts:
    tokens: torch.Tensor  # [batch, 4 * shots + 3]: demonstrations, then the query `xq ->`
    answers: torch.Tensor  # [batch]: f(xq), the token the model should predict at the last position
    queries: torch.Tensor  # [batch]: xq


@dataclass(frozen=True)
class ICLTasks:
    """Prompts of demonstrations `x -> f(x)` for several tasks `f` over one vocabulary.

    `tasks.batch(step, size)` is deterministic: `size` sequences of `max_shots` demonstrations, each
    of a task drawn at random. Trained on these with the next-token loss, the model predicts every
    answer f(x_i) from the i - 1 demonstrations before it: zero-shot to (max_shots - 1)-shot at once.
    """

    n_items: int = 32
    max_shots: int = 8
    tasks: tuple[str, ...] = TASKS
    p_noise: float = 0.0  # in training batches, each answer is replaced by a random item with this probability
    seed: int = 0
    d_vocab: int = field(init=False)
    n_ctx: int = field(init=False)

    def __post_init__(self):
        _check_positive(n_items=self.n_items, max_shots=self.max_shots)
        _check_seed(seed=self.seed)
        if self.n_items < 8 or self.n_items % 2:
            raise ValueError(f"n_items must be an even number >= 8, got {self.n_items!r}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct names among {TASKS}, got {self.tasks!r}")
        if not 0.0 <= self.p_noise < 1.0:
            raise ValueError(f"p_noise must be in [0, 1), got {self.p_noise!r}")
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "d_vocab", self.n_items + 3)
        object.__setattr__(self, "n_ctx", 4 * self.max_shots)

    # Special tokens.
    @property
    def ARROW(self) -> int:
        return self.n_items

    @property
    def COMMA(self) -> int:
        return self.n_items + 1

    @property
    def BOS(self) -> int:
        return self.n_items + 2

    def to_dict(self) -> dict:
        d = asdict(self)
        for derived in ("d_vocab", "n_ctx"):
            del d[derived]
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ICLTasks:
        known = {f.name for f in fields(cls) if f.init}
        if set(d) - known:
            raise ValueError(f"unknown ICLTasks fields {sorted(set(d) - known)}; known: {sorted(known)}")
        return cls(**{**d, "tasks": tuple(d["tasks"])})

    def task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}; the tasks are {self.tasks}")
        return self.tasks.index(task)

    def table(self) -> torch.Tensor:
        """[n_tasks, n_items]: table[t, x] = f_t(x)."""
        return _table(self.n_items, self.tasks, self.seed).clone()

    def apply(self, task: str, x: torch.Tensor) -> torch.Tensor:
        """f_task(x) for a tensor of items x."""
        return _table(self.n_items, self.tasks, self.seed)[self.task_index(task)][x]

    def token_names(self) -> list[str]:
        return [str(i) for i in range(self.n_items)] + ["->", ",", "<bos>"]

    def to_str(self, tokens: torch.Tensor) -> str:
        """One prompt [pos] as text, e.g. '<bos> 3 -> 4 , 17 -> 18 , 9 ->'."""
        names = self.token_names()
        return " ".join(names[int(t)] for t in tokens)

    def _sequences(self, task_ids: torch.Tensor, n_pairs: int, gen: torch.Generator, shuffle_labels: bool,
                   noise: float = 0.0):
        size = len(task_ids)
        # Distinct items in each prompt, so the answer to the query never appears among the demos.
        xs = torch.rand(size, self.n_items, generator=gen).argsort(dim=-1)[:, :n_pairs]
        ys = _table(self.n_items, self.tasks, self.seed)[task_ids[:, None], xs]
        if noise > 0:
            wrong = torch.rand(size, n_pairs, generator=gen) < noise
            ys = torch.where(wrong, torch.randint(0, self.n_items, (size, n_pairs), generator=gen), ys)
        if shuffle_labels and n_pairs > 2:  # shuffle the demonstrations' answers, not the query's
            order = torch.rand(size, n_pairs - 1, generator=gen).argsort(dim=-1)
            ys = torch.cat([ys[:, :-1].gather(1, order), ys[:, -1:]], dim=1)
        tokens = torch.empty(size, 4 * n_pairs, dtype=torch.long)
        tokens[:, 0] = self.BOS
        tokens[:, 1::4], tokens[:, 2::4], tokens[:, 3::4] = xs, self.ARROW, ys
        tokens[:, 4::4] = self.COMMA
        return tokens, xs, ys

    def batch(self, step: int, size: int) -> torch.Tensor:
        """The training batch for `step`: [size, 4 * max_shots]. Depends only on (seed, step, size)."""
        _check_positive(size=size)
        gen = _generator(self.seed, 7, step)
        task_ids = torch.randint(0, len(self.tasks), (size,), generator=gen)
        return self._sequences(task_ids, self.max_shots, gen, shuffle_labels=False, noise=self.p_noise)[0]

    def prompts(self, task: str, shots: int, size: int, seed: int = 0, shuffle_labels: bool = False) -> Prompts:
        """`size` prompts of `shots` demonstrations of `task` then a query `xq ->`: tokens [size, 4 * shots + 3].

        shuffle_labels: the demonstrations' answers are shuffled among themselves, so they no longer
        show the task (Todd et al.'s corrupted prompts); the query's right answer is still f(xq).
        """
        t = self.task_index(task)
        _check_positive(size=size)
        if not (isinstance(shots, int) and 0 <= shots < self.max_shots):
            raise ValueError(f"shots must be an int in [0, {self.max_shots - 1}] (the model saw at most "
                             f"max_shots - 1 demonstrations before an answer), got {shots!r}")
        if shuffle_labels and shots < 2:
            raise ValueError(f"shuffle_labels needs at least 2 demonstrations to shuffle, got shots={shots}")
        gen = _generator(self.seed, 11, t, shots, seed, int(shuffle_labels))
        task_ids = torch.full((size,), t, dtype=torch.long)
        tokens, xs, ys = self._sequences(task_ids, shots + 1, gen, shuffle_labels)
        return Prompts(tokens=tokens[:, :-1], answers=ys[:, -1], queries=xs[:, -1])


@lru_cache(maxsize=16)
def _table(n_items: int, tasks: tuple[str, ...], seed: int) -> torch.Tensor:
    """Every task's lookup table, [n_tasks, n_items], with all tasks' answers distinct for each x."""
    gen = _generator(seed, 3)
    x = torch.arange(n_items)
    fixed = {"copy": x, "successor": (x + 1) % n_items}
    taken = torch.stack([x, (x + 1) % n_items])  # answers the random tables must avoid
    while True:  # a random pairing of the items in which no pair is already taken
        pairs = torch.randperm(n_items, generator=gen).view(-1, 2)
        antonym = torch.empty(n_items, dtype=torch.long)
        antonym[pairs[:, 0]], antonym[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
        if not (antonym == taken).any():
            break
    taken = torch.cat([taken, antonym[None]])
    while True:  # a random lookup table that differs from every other task at every x
        capital = torch.randperm(n_items, generator=gen)
        if not (capital == taken).any():
            break
    fixed.update(antonym=antonym, capital=capital)
    return torch.stack([fixed[t] for t in tasks])
