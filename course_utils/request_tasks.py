"""Requests, some of which the model refuses: the data of notebook 12 (one direction), from a seed.

A request is a task token and `n_args` distinct items, then `->`; the model answers with one token:

    <bos> max 7 19 3 11 ->      answer: 19
    <bos> first 7 2 15 5 ->     answer: 7
    <bos> max 7 19 21 11 ->     answer: <refuse>   (21 is a forbidden item)

The tasks ("first", "last", "min", "max") read every argument, and one kind of request is refused:
any request that mentions a *forbidden* item, wherever it stands, is answered with the REFUSE token
instead. The forbidden items are a fixed random subset drawn from the seed, so the model must learn
which items they are and look for them among the arguments: refusal is learned from the request's
content, not hard-coded or tied to a position (Arditi et al. 2024 study the same kind of behaviour in
chat models: harmful prompts answered with "I cannot help with that").

Token layout: items 0 .. n_items-1, then one token per task, then `->` (ARROW), <refuse> (REFUSE),
<bos> (BOS). A training sequence is [BOS, task, args..., ARROW, answer]; the loss is on the answer
only (`loss_positions`), since everything before it is random. Same seed, same data on any machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import torch
from jaxtyping import Int
from torch import Tensor

from . import validate
from .data import generator

TASKS = ("first", "last", "min", "max")


@dataclass
class RequestBatch:
    tokens: torch.Tensor  # [batch, n_args + 3]: <bos> task args... ->
    answers: torch.Tensor  # [batch]: the right answer to be predicted at `->` (REFUSE for a refused request)
    task_answers: torch.Tensor  # [batch]: what the task gives on the arguments, refused or not
    refused: torch.Tensor  # [batch] bool: the request mentions a forbidden item

    def to(self, device) -> RequestBatch:
        """The same prompts with every tensor on `device` (where the model is)."""
        return RequestBatch(*(t.to(device) for t in (self.tokens, self.answers, self.task_answers, self.refused)))


@dataclass(frozen=True)
class Requests:
    """Requests `task args... ->` over `n_items` items; those that mention a forbidden item are refused.

    `prompts.batch(step, size)` is deterministic (a fraction `p_refuse` of refused prompts, tasks
    drawn at random); `prompts.prompts(size, refused=..., task=..., seed=...)` gives evaluation
    prompts of one kind, without the answer.
    """

    n_items: int = 24
    n_args: int = 4
    n_forbidden: int = 4
    tasks: tuple[str, ...] = TASKS
    p_refuse: float = 0.5
    seed: int = 0
    d_vocab: int = field(init=False)
    n_ctx: int = field(init=False)

    def __post_init__(self):
        validate.positive(n_items=self.n_items, n_args=self.n_args, n_forbidden=self.n_forbidden)
        validate.integer(seed=self.seed)
        if self.n_items - self.n_forbidden < self.n_args + 1:
            raise ValueError(f"n_items - n_forbidden must be > n_args (enough allowed items for a request), "
                             f"got n_items={self.n_items}, n_forbidden={self.n_forbidden}, n_args={self.n_args}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct names among {TASKS}, got {self.tasks!r}")
        if not 0.0 < self.p_refuse < 1.0:
            raise ValueError(f"p_refuse must be in (0, 1), got {self.p_refuse!r}")
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "d_vocab", self.n_items + len(self.tasks) + 3)
        object.__setattr__(self, "n_ctx", self.n_args + 4)

    # Special tokens.
    @property
    def ARROW(self) -> int:
        return self.d_vocab - 3

    @property
    def REFUSE(self) -> int:
        return self.d_vocab - 2

    @property
    def BOS(self) -> int:
        return self.d_vocab - 1

    @property
    def loss_positions(self) -> list[int]:
        """Which predictions the training loss counts: only the last, the answer predicted at `->`."""
        return [-1]

    def task_token(self, task: str) -> int:
        validate.one_of(task, self.tasks, "task", "the tasks")
        return self.n_items + self.tasks.index(task)

    def forbidden(self) -> Int[Tensor, " n_forbidden"]:
        """The forbidden items (sorted): a request that mentions any of them is refused."""
        return _forbidden(self.n_items, self.n_forbidden, self.seed).clone()

    def to_dict(self) -> dict:
        d = asdict(self)
        for derived in ("d_vocab", "n_ctx"):
            del d[derived]
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Requests:
        if not isinstance(d, dict):
            raise TypeError(f"d must be a dict of Requests fields, got {type(d).__name__}")
        known = {f.name for f in fields(cls) if f.init}
        if set(d) - known:
            raise ValueError(f"unknown Requests fields {sorted(set(d) - known)}; known: {sorted(known)}")
        return cls(**{**d, "tasks": tuple(d.get("tasks", TASKS))})

    def token_names(self) -> list[str]:
        return [str(i) for i in range(self.n_items)] + list(self.tasks) + ["->", "<refuse>", "<bos>"]

    def to_str(self, tokens: Int[Tensor, " pos"]) -> str:
        """One request [pos] as text, e.g. '<bos> max 7 19 3 11 ->'."""
        names = self.token_names()
        validate.tensor(tokens, "tokens", "pos", dtype="int")
        validate.ids(tokens, len(names), "tokens")
        return " ".join(names[int(t)] for t in tokens)

    def task_answer(self, task_ids: Int[Tensor, " batch"], args: Int[Tensor, "batch arg"]) -> Int[Tensor, " batch"]:
        """What each task gives on its arguments (items), refused or not."""
        answers = torch.stack([args[:, 0], args[:, -1], args.min(-1).values, args.max(-1).values])
        index = torch.tensor([TASKS.index(t) for t in self.tasks])[task_ids]
        return answers.gather(0, index[None])[0]

    def _requests(self, task_ids: Tensor, refused: Tensor, gen: torch.Generator) -> RequestBatch:
        size = len(task_ids)
        forbidden = _forbidden(self.n_items, self.n_forbidden, self.seed)
        allowed_mask = torch.ones(self.n_items, dtype=torch.bool)
        allowed_mask[forbidden] = False
        allowed = torch.arange(self.n_items)[allowed_mask]
        # Distinct allowed items, then in refused prompts 1 to n_args of them replaced by distinct forbidden ones.
        args = allowed[torch.rand(size, len(allowed), generator=gen).argsort(-1)[:, : self.n_args]]
        bad = forbidden[torch.rand(size, len(forbidden), generator=gen).argsort(-1)]
        bad = torch.cat([bad, bad[:, :1].expand(-1, max(0, self.n_args - len(forbidden)))], 1)[:, : self.n_args]
        n_bad = torch.randint(1, min(self.n_args, self.n_forbidden) + 1, (size,), generator=gen)
        where = torch.rand(size, self.n_args, generator=gen).argsort(-1)  # which argument slots get them
        take = (where < n_bad[:, None]) & refused[:, None]
        args = torch.where(take, bad.gather(1, where.clamp(max=self.n_args - 1)), args)
        tokens = torch.empty(size, self.n_args + 3, dtype=torch.long)
        tokens[:, 0] = self.BOS
        tokens[:, 1] = self.n_items + task_ids
        tokens[:, 2:-1] = args
        tokens[:, -1] = self.ARROW
        task_answers = self.task_answer(task_ids, args)
        answers = torch.where(refused, torch.full_like(task_answers, self.REFUSE), task_answers)
        return RequestBatch(tokens=tokens, answers=answers, task_answers=task_answers, refused=refused.clone())

    def batch(self, step: int, size: int) -> Int[Tensor, "batch pos"]:
        """The training batch for `step`: [size, n_args + 4], each request followed by its answer.
        Depends only on (seed, step, size)."""
        validate.integer(step=step)
        validate.positive(size=size)
        gen = generator(self.seed, 23, step)
        task_ids = torch.randint(0, len(self.tasks), (size,), generator=gen)
        refused = torch.rand(size, generator=gen) < self.p_refuse
        r = self._requests(task_ids, refused, gen)
        return torch.cat([r.tokens, r.answers[:, None]], dim=1)

    def prompts(self, size: int, refused: bool, task: str | None = None, seed: int = 0) -> RequestBatch:
        """`size` evaluation prompts, all refused (they mention a forbidden item) or all harmless; of
        one task, or (task=None) of tasks drawn at random."""
        validate.positive(size=size)
        validate.boolean(refused=refused)
        validate.integer(seed=seed)
        if task is not None:
            validate.one_of(task, self.tasks, "task", "the tasks")
        which = -1 if task is None else self.tasks.index(task)
        gen = generator(self.seed, 29, seed, int(refused), which + 1)
        if task is None:
            task_ids = torch.randint(0, len(self.tasks), (size,), generator=gen)
        else:
            task_ids = torch.full((size,), which, dtype=torch.long)
        return self._requests(task_ids, torch.full((size,), refused), gen)

    def paired_prompts(self, size: int, seed: int = 0) -> tuple[RequestBatch, RequestBatch]:
        """(refused, harmless): `size` pairs of prompts that differ only in their forbidden items: the
        same task, and each forbidden item replaced by an allowed one not already among the arguments."""
        refused = self.prompts(size, refused=True, seed=seed)
        gen = generator(self.seed, 31, seed)
        forbidden = _forbidden(self.n_items, self.n_forbidden, self.seed)
        harmless = refused.tokens.clone()
        for i in range(size):
            args = harmless[i, 2:-1]
            free = [x for x in range(self.n_items) if x not in forbidden.tolist() and x not in args.tolist()]
            order = torch.randperm(len(free), generator=gen)
            bad = torch.isin(args, forbidden).nonzero()[:, 0]
            for j, slot in enumerate(bad.tolist()):
                args[slot] = free[int(order[j])]
        task_ids = harmless[:, 1] - self.n_items
        task_answers = self.task_answer(task_ids, harmless[:, 2:-1])
        return refused, RequestBatch(tokens=harmless, answers=task_answers, task_answers=task_answers,
                                     refused=torch.zeros(size, dtype=torch.bool))


@lru_cache(maxsize=16)
def _forbidden(n_items: int, n_forbidden: int, seed: int) -> torch.Tensor:
    return torch.randperm(n_items, generator=generator(seed, 37))[:n_forbidden].sort().values
