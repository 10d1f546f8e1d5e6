"""In-context tasks for function vectors (notebook 07), generated from a seed: nothing is downloaded.

A prompt is a few demonstrations of a function `f`, then a query:

    <bos> x1 -> f(x1) , x2 -> f(x2) , ... , xq ->

and the model must answer f(xq). Every task reads the same items (tokens 0..n_items-1), so nothing
in `xq` alone says which task is meant: the model must infer the task from the demonstrations. With
zero demonstrations it can only guess.

Each task answers with tokens of its own kind, as Todd et al.'s word tasks do (every answer of
"country -> capital" is a city, every answer of "antonym" an adjective): task t's answers are a
block of n_items tokens of their own, written `task:i`. The tasks (names as in Todd et al. 2023):
- "copy": x -> copy:x;
- "successor": x -> successor:(x + 1 mod n_items), like "next letter";
- "antonym": x -> antonym:a(x), a fixed random pairing of the items (a(a(x)) = x);
- "capital": x -> capital:c(x), a fixed random lookup table, like "country -> capital".
For every x the index i of the answer differs between the tasks too.

Why answers of their own kind: our first version answered every task with the items themselves.
Then the answers of any task are spread evenly over the same tokens, and a head's output averaged
over many prompts (the function vector's ingredient) is nearly the same for every task: only the
*pairing* of x with f(x) shows the task, and a mean cannot hold a pairing. The vectors recovered
little (0.25 to 0.50 zero-shot accuracy against 1.00 with demonstrations). See notebook 07.

Token layout: items are 0..n_items-1; task t's answers n_items * (1 + t) + i; then `->` (ARROW),
`,` (COMMA) and <bos> (BOS). The answer to demonstration i is predicted at the `->` position
4 * i + 2, and the answer sits at 4 * i + 3.

Same seed, same data, on any machine: every random draw comes from a seeded `torch.Generator`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import torch
from jaxtyping import Int
from torch import Tensor

from . import validate
from .data import generator

TASKS = ("copy", "successor", "antonym", "capital")


@dataclass
class Prompts:
    tokens: torch.Tensor  # [batch, 4 * shots + 3]: demonstrations, then the query `xq ->`
    answers: torch.Tensor  # [batch]: f(xq) (a token of the task's answer block), to be predicted at the last position
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
    p_noise: float = 0.0  # in training batches, each answer is replaced by a random answer token with this probability
    seed: int = 0
    d_vocab: int = field(init=False)
    n_ctx: int = field(init=False)

    def __post_init__(self):
        validate.positive(n_items=self.n_items, max_shots=self.max_shots)
        validate.integer(seed=self.seed)
        if self.n_items < 8 or self.n_items % 2:
            raise ValueError(f"n_items must be an even number >= 8, got {self.n_items!r}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct names among {TASKS}, got {self.tasks!r}")
        if not 0.0 <= self.p_noise < 1.0:
            raise ValueError(f"p_noise must be in [0, 1), got {self.p_noise!r}")
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "d_vocab", self.n_items * (1 + len(self.tasks)) + 3)
        object.__setattr__(self, "n_ctx", 4 * self.max_shots)

    # Special tokens.
    @property
    def ARROW(self) -> int:
        return self.d_vocab - 3

    @property
    def COMMA(self) -> int:
        return self.d_vocab - 2

    @property
    def BOS(self) -> int:
        return self.d_vocab - 1

    def answer_block(self, task: str) -> range:
        """The tokens that answer `task`: n_items tokens of its own, `task:0` to `task:{n_items - 1}`."""
        start = self.n_items * (1 + self.task_index(task))
        return range(start, start + self.n_items)

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

    def table(self) -> Int[Tensor, "task x"]:
        """[n_tasks, n_items]: table[t, x] = f_t(x), a token of task t's answer block."""
        return _table(self.n_items, self.tasks, self.seed).clone()

    def apply(self, task: str, x: Int[Tensor, "*items"]) -> Int[Tensor, "*items"]:
        """f_task(x) (answer tokens) for a tensor of items x."""
        table = _table(self.n_items, self.tasks, self.seed)[self.task_index(task)]
        validate.tensor(x, "x", "...", dtype="int")
        validate.ids(x, self.n_items, "x", "the items")
        return table[x]

    def token_names(self) -> list[str]:
        items = [str(i) for i in range(self.n_items)]
        answers = [f"{task}:{i}" for task in self.tasks for i in range(self.n_items)]
        return items + answers + ["->", ",", "<bos>"]

    def to_str(self, tokens: Int[Tensor, " pos"]) -> str:
        """One prompt [pos] as text, e.g. '<bos> 3 -> successor:4 , 17 -> successor:18 , 9 ->'."""
        names = self.token_names()
        validate.tensor(tokens, "tokens", "pos", dtype="int")
        validate.ids(tokens, len(names), "tokens")
        return " ".join(names[int(t)] for t in tokens)

    def _random_answers(self, shape, gen: torch.Generator) -> torch.Tensor:
        """Answer tokens drawn uniformly from every task's block: answers of no task in particular."""
        return torch.randint(self.n_items, self.ARROW, shape, generator=gen)

    def _sequences(self, task_ids: torch.Tensor, n_pairs: int, gen: torch.Generator, shuffle_labels: bool = False,
                   noise: float = 0.0, random_labels: bool = False):
        size = len(task_ids)
        # Distinct items in each prompt, so the answer to the query never appears among the demos.
        xs = torch.rand(size, self.n_items, generator=gen).argsort(dim=-1)[:, :n_pairs]
        ys = _table(self.n_items, self.tasks, self.seed)[task_ids[:, None], xs]
        if noise > 0:
            wrong = torch.rand(size, n_pairs, generator=gen) < noise
            ys = torch.where(wrong, self._random_answers((size, n_pairs), gen), ys)
        if shuffle_labels and n_pairs > 2:  # shuffle the demonstrations' answers, not the query's
            order = torch.rand(size, n_pairs - 1, generator=gen).argsort(dim=-1)
            ys = torch.cat([ys[:, :-1].gather(1, order), ys[:, -1:]], dim=1)
        if random_labels:  # replace the demonstrations' answers, not the query's
            ys = torch.cat([self._random_answers((size, n_pairs - 1), gen), ys[:, -1:]], dim=1)
        tokens = torch.empty(size, 4 * n_pairs, dtype=torch.long)
        tokens[:, 0] = self.BOS
        tokens[:, 1::4], tokens[:, 2::4], tokens[:, 3::4] = xs, self.ARROW, ys
        tokens[:, 4::4] = self.COMMA
        return tokens, xs, ys

    def batch(self, step: int, size: int) -> Int[Tensor, "batch pos"]:
        """The training batch for `step`: [size, 4 * max_shots]. Depends only on (seed, step, size)."""
        validate.positive(size=size)
        validate.integer(step=step)
        gen = generator(self.seed, 7, step)
        task_ids = torch.randint(0, len(self.tasks), (size,), generator=gen)
        return self._sequences(task_ids, self.max_shots, gen, noise=self.p_noise)[0]

    def prompts(self, task: str, shots: int, size: int, seed: int = 0, shuffle_labels: bool = False,
                random_labels: bool = False) -> Prompts:
        """`size` prompts of `shots` demonstrations of `task` then a query `xq ->`: tokens [size, 4 * shots + 3].

        shuffle_labels: the demonstrations' answers are shuffled among themselves (Todd et al.'s
        corrupted prompts): the pairs are wrong, but the answers are still of the task's kind.
        random_labels: each demonstration's answer is a random answer token of any task, so the
        demonstrations show no task at all. Either way the query's right answer is still f(xq).
        """
        t = self.task_index(task)
        validate.positive(size=size)
        validate.int_in(shots, 0, self.max_shots - 1, "shots",
                        "the model saw at most max_shots - 1 demonstrations before an answer")
        validate.integer(seed=seed)
        validate.boolean(shuffle_labels=shuffle_labels, random_labels=random_labels)
        if shuffle_labels and shots < 2:
            raise ValueError(f"shuffle_labels needs at least 2 demonstrations to shuffle, got shots={shots}")
        if shuffle_labels and random_labels:
            raise ValueError("choose one corruption: shuffle_labels or random_labels, not both")
        if random_labels and shots < 1:
            raise ValueError("random_labels needs at least 1 demonstration, got shots=0")
        gen = generator(self.seed, 11, t, shots, seed, int(shuffle_labels) + 2 * int(random_labels))
        task_ids = torch.full((size,), t, dtype=torch.long)
        tokens, xs, ys = self._sequences(task_ids, shots + 1, gen, shuffle_labels, random_labels=random_labels)
        return Prompts(tokens=tokens[:, :-1], answers=ys[:, -1], queries=xs[:, -1])


@lru_cache(maxsize=16)
def _table(n_items: int, tasks: tuple[str, ...], seed: int) -> torch.Tensor:
    """Every task's lookup table, [n_tasks, n_items] of answer tokens: task t's answers lie in its own
    block, n_items * (1 + t) + i, and the index i differs between the tasks for each x."""
    gen = generator(seed, 3)
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
    return torch.stack([fixed[t] + n_items * (1 + i) for i, t in enumerate(tasks)])
