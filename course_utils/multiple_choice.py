"""Multiple-choice questions for notebook 08 (correct-letter heads), generated from a seed.

A question is a question token, then `n_options` options, each followed by its label, then `->`:

    <bos> q5 o3 A o11 B o7 C o0 D ->        answer: the label of the option that answers q5

The relation is fixed and learned: each question q has one answer `answer_of(q)`, a random
permutation drawn from the seed (as a model learns that Paris answers "capital of France"). Exactly
one option is the answer; the others are distinct wrong answers. The target is the correct option's
label, predicted at `->`; the loss is on that position only (`loss_positions`), since everything
else in a question is random.

Why "option label" and not Lieberum et al.'s "A. option": attention is causal, so in "A. option" the
label cannot see its option, and nothing at the label's position can say "I am the right one". A
head that finds the right label must then know *which* label it wants before it looks (a query such
as "the second one" or "B", computed by earlier heads). We tried that order first: with randomised
labels, two layers (with or without MLPs) stayed at chance for 1500 steps, where this order reached
accuracy 1.00. Putting the label after its option lets the label's position gather "my option answers
the question" (layer 0 can read the question and the option, the MLP can compare them), so one head
in layer 1 can attend to the right label and copy it: a correct-letter head (notebook 08 finds them).

Two label regimes, the only difference between the notebook's two models:
- "fixed": the labels are always A, B, C, D, ... in order, so "labelled B" and "the second option"
  always coincide: the model has no reason to tell them apart;
- "randomised": each question draws its labels from the whole alphabet, in random order, so only
  the label's identity, read in context, says what to answer.

The mutations (`mutated_labels`, `questions(..., labels=..., n_options=..., correct_at=...)`):
random letters, the first letters in a shuffled order, more or fewer options, the correct option
moved to one slot. Same seed, same data on any machine: every draw comes from a seeded generator.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import validate
from .data import generator

LABEL_REGIMES = ("fixed", "randomised")
MUTATIONS = ("fixed", "shuffled", "random")  # how `mutated_labels` draws labels
LETTERS = string.ascii_uppercase


@dataclass
class Questions:
    tokens: torch.Tensor  # [batch, 2 * n_options + 3]: <bos> q (option label) * n_options ->
    answers: torch.Tensor  # [batch]: the label token of the correct option, to be predicted at `->`
    correct: torch.Tensor  # [batch]: the slot (0 .. n_options - 1) of the correct option
    labels: torch.Tensor  # [batch, n_options]: the label tokens, slot by slot
    options: torch.Tensor  # [batch, n_options]: the option tokens, slot by slot


def option_positions(n_options: int) -> Int[Tensor, " option"]:
    """The positions of the options in a question of n_options options: 2, 4, 6, ..."""
    validate.positive(n_options=n_options)
    return 2 + 2 * torch.arange(n_options)


def label_positions(n_options: int) -> Int[Tensor, " option"]:
    """The positions of the labels (each just after its option): 3, 5, 7, ..."""
    validate.positive(n_options=n_options)
    return 3 + 2 * torch.arange(n_options)


@dataclass(frozen=True)
class MultipleChoice:
    """Multiple-choice questions over a learned relation question -> answer.

    `mc.batch(step, size)` is deterministic: `size` questions with `n_options` options, each followed
    by its answer label (the token the loss is on). `mc.questions(size, seed, ...)` gives evaluation
    questions without the answer, in the model's own format or mutated.
    """

    n_questions: int = 16
    n_options: int = 4
    labels: str = "fixed"  # "fixed" (A, B, C, D in order) or "randomised" (drawn per question)
    max_options: int = 8  # the context holds this many options (for the "more options" mutation)
    seed: int = 0
    d_vocab: int = field(init=False)
    n_ctx: int = field(init=False)

    def __post_init__(self):
        validate.positive(n_questions=self.n_questions, n_options=self.n_options, max_options=self.max_options)
        validate.integer(seed=self.seed)
        validate.one_of(self.labels, LABEL_REGIMES, "labels", "the label regimes")
        if self.n_questions < 4:
            raise ValueError(f"n_questions must be an int >= 4 (enough wrong answers for the options), got {self.n_questions!r}")
        validate.int_in(self.n_options, 2, min(self.n_questions, len(LETTERS)), "n_options",
                        "at least 2, and no more than there are answers and letters")
        validate.int_in(self.max_options, self.n_options, min(self.n_questions, len(LETTERS)), "max_options",
                        "at least n_options, and no more than there are answers and letters")
        object.__setattr__(self, "d_vocab", 2 * self.n_questions + len(LETTERS) + 2)
        object.__setattr__(self, "n_ctx", 2 * self.max_options + 4)

    # Token layout: questions, answers (the options), letters, then `->` and <bos>.
    @property
    def first_answer(self) -> int:
        return self.n_questions

    @property
    def first_letter(self) -> int:
        return 2 * self.n_questions

    @property
    def ARROW(self) -> int:
        return self.d_vocab - 2

    @property
    def BOS(self) -> int:
        return self.d_vocab - 1

    @property
    def loss_positions(self) -> list[int]:
        """Which predictions the training loss counts: only the last, the answer label predicted at `->`."""
        return [-1]

    def letter(self, i: int) -> int:
        """The token of the i-th letter (0 is A)."""
        validate.int_in(i, 0, len(LETTERS) - 1, "i", "the alphabet")
        return self.first_letter + i

    def to_dict(self) -> dict:
        d = asdict(self)
        for derived in ("d_vocab", "n_ctx"):
            del d[derived]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MultipleChoice:
        known = {f.name for f in fields(cls) if f.init}
        if not isinstance(d, dict):
            raise TypeError(f"d must be a dict of MultipleChoice fields, got {type(d).__name__}")
        if set(d) - known:
            raise ValueError(f"unknown MultipleChoice fields {sorted(set(d) - known)}; known: {sorted(known)}")
        return cls(**d)

    def answer_of(self, q: Int[Tensor, "*batch"]) -> Int[Tensor, "*batch"]:
        """The answer token of each question index q (a fixed random permutation drawn from the seed)."""
        validate.tensor(q, "q", "...", dtype="int")
        validate.ids(q, self.n_questions, "q", "the question indices")
        return _relation(self.n_questions, self.seed)[q] + self.first_answer

    def token_names(self) -> list[str]:
        return ([f"q{i}" for i in range(self.n_questions)] + [f"o{i}" for i in range(self.n_questions)]
                + list(LETTERS) + ["->", "<bos>"])

    def to_str(self, tokens: Int[Tensor, " pos"]) -> str:
        """One question [pos] as text, e.g. '<bos> q5 o3 A o11 B o7 C o0 D ->'."""
        names = self.token_names()
        validate.tensor(tokens, "tokens", "pos", dtype="int")
        validate.ids(tokens, len(names), "tokens")
        return " ".join(names[int(t)] for t in tokens)

    def own_labels(self) -> str:
        """The label mutation that is this language's own format: 'fixed' or 'random'."""
        return "fixed" if self.labels == "fixed" else "random"

    def batch(self, step: int, size: int) -> Int[Tensor, "batch pos"]:
        """The training batch for `step`: [size, 2 * n_options + 4], each question followed by its
        answer label. Depends only on (seed, step, size)."""
        validate.integer(step=step)
        validate.positive(size=size)
        q = self._questions(size, generator(self.seed, 17, step), self.own_labels(), self.n_options, None)
        return torch.cat([q.tokens, q.answers[:, None]], dim=1)

    def questions(self, size: int, seed: int = 0, labels: str | None = None, n_options: int | None = None,
                  correct_at: int | None = None) -> Questions:
        """`size` evaluation questions: the model's own format, or mutated.

        labels: "fixed" (A, B, C, ... in order), "shuffled" (the same letters in a random order) or
            "random" (distinct letters drawn from the alphabet, in random order); None: this
            language's own (fixed, or random for the randomised regime).
        n_options: more or fewer options than in training (up to max_options).
        correct_at: put the correct option in this slot in every question (None: a random slot).
        """
        validate.positive(size=size)
        validate.integer(seed=seed)
        labels = self.own_labels() if labels is None else labels
        validate.one_of(labels, MUTATIONS, "labels", "the label mutations")
        n_options = self.n_options if n_options is None else n_options
        validate.int_in(n_options, 2, self.max_options, "n_options", "the context holds max_options options")
        if correct_at is not None:
            validate.int_in(correct_at, 0, n_options - 1, "correct_at", "a slot of the options")
        which = MUTATIONS.index(labels) + 3 * n_options + 100 * (-1 if correct_at is None else correct_at)
        return self._questions(size, generator(self.seed, 19, seed, which), labels, n_options, correct_at)

    def with_labels(self, questions: Questions, letters: Int[Tensor, "batch option"]) -> Questions:
        """The same questions with new labels: `letters` [batch, option] are letter indices (0 is A),
        as `mutated_labels` draws them; the answers follow (the new label of the correct option)."""
        validate.instance(questions, Questions, "questions")
        validate.tensor(letters, "letters", "batch option", dtype="int")
        validate.shape_is(letters, "letters", tuple(questions.labels.shape), "[batch, option]")
        validate.ids(letters, len(LETTERS), "letters", "the alphabet")
        n_options = questions.labels.shape[1]
        labels = letters.to(questions.tokens.device) + self.first_letter
        tokens = questions.tokens.clone()
        tokens[:, label_positions(n_options).to(tokens.device)] = labels
        rows = torch.arange(len(labels), device=labels.device)
        return Questions(tokens=tokens, answers=labels[rows, questions.correct.to(labels.device)],
                         correct=questions.correct, labels=labels, options=questions.options)

    def _questions(self, size: int, gen: torch.Generator, labels: str, n_options: int, correct_at: int | None) -> Questions:
        q = torch.randint(0, self.n_questions, (size,), generator=gen)
        answer = _relation(self.n_questions, self.seed)[q]
        # wrong answers: a random order of the answers with the right one sent to the end
        order = torch.rand(size, self.n_questions, generator=gen)
        order[torch.arange(size), answer] = 2.0
        wrong = order.argsort(dim=-1)[:, : n_options - 1]
        if correct_at is None:
            correct = torch.randint(0, n_options, (size,), generator=gen)
        else:
            correct = torch.full((size,), correct_at, dtype=torch.long)
        # slot s holds wrong[s] before the correct slot, wrong[s - 1] after it
        slots = torch.arange(n_options).expand(size, -1)
        index = (slots - (slots > correct[:, None]).long()).clamp(max=n_options - 2)
        options = wrong.gather(1, index)
        options[torch.arange(size), correct] = answer
        label_ids = mutated_labels(labels, size, n_options, gen)
        tokens = torch.empty(size, 2 * n_options + 3, dtype=torch.long)
        tokens[:, 0], tokens[:, 1], tokens[:, -1] = self.BOS, q, self.ARROW
        tokens[:, option_positions(n_options)] = options + self.first_answer
        tokens[:, label_positions(n_options)] = label_ids + self.first_letter
        label_tokens = label_ids + self.first_letter
        return Questions(tokens=tokens, answers=label_tokens[torch.arange(size), correct], correct=correct,
                         labels=label_tokens, options=options + self.first_answer)


def mutated_labels(kind: str, size: int, n_options: int, gen: torch.Generator) -> Int[Tensor, "batch option"]:
    """Letter indices (0 is A) for `size` questions of `n_options` options: [size, n_options].

    "fixed": 0, 1, 2, ... in every row; "shuffled": the same letters in a random order per row;
    "random": n_options distinct letters drawn from the alphabet, in random order, per row.
    """
    validate.one_of(kind, MUTATIONS, "kind", "the label mutations")
    validate.positive(size=size)
    validate.int_in(n_options, 1, len(LETTERS), "n_options", "one letter per option")
    validate.instance(gen, torch.Generator, "gen")
    if kind == "fixed":
        return torch.arange(n_options).expand(size, -1).clone()
    if kind == "shuffled":
        return torch.rand(size, n_options, generator=gen).argsort(dim=-1)
    return torch.rand(size, len(LETTERS), generator=gen).argsort(dim=-1)[:, :n_options]


@lru_cache(maxsize=16)
def _relation(n_questions: int, seed: int) -> torch.Tensor:
    """answer index of each question index: a random permutation, drawn from the seed."""
    return torch.randperm(n_questions, generator=generator(seed, 13))


def answer_logits(model, questions: Questions, fwd_hooks=()) -> Float[Tensor, "batch d_vocab"]:
    """The model's logits at the last position (`->`), where it predicts the answer label."""
    validate.model(model)
    validate.instance(questions, Questions, "questions")
    validate.tokens(questions.tokens, model.cfg, "questions.tokens")
    with torch.no_grad():
        return model.run_with_hooks(questions.tokens, fwd_hooks=list(fwd_hooks))[:, -1].float().cpu()


def accuracy_and_loss(model, questions: Questions, fwd_hooks=()) -> dict[str, float]:
    """{"accuracy": share of questions whose top token is the correct label, "loss": mean cross-entropy
    of the correct label}, optionally with hooks attached (an ablation)."""
    logits = answer_logits(model, questions, fwd_hooks)
    answers = questions.answers.cpu()
    return {"accuracy": (logits.argmax(-1) == answers).float().mean().item(),
            "loss": torch.nn.functional.cross_entropy(logits, answers).item()}


def mutations(mc: MultipleChoice) -> dict[str, dict]:
    """The mutation table's rows: name -> keyword arguments of `mc.questions` (notebook 08)."""
    validate.instance(mc, MultipleChoice, "mc")
    n = mc.n_options
    return {
        "own format": {},
        "labels A, B, C, D": {"labels": "fixed"},
        "shuffled order": {"labels": "shuffled"},
        "random letters": {"labels": "random"},
        "answer always first": {"correct_at": 0},
        "answer always last": {"correct_at": n - 1},
        "one option fewer": {"n_options": n - 1},
        "one option more": {"n_options": n + 1},
    }


def mutation_table(model, mc: MultipleChoice, size: int = 512, seed: int = 0) -> dict[str, dict[str, float]]:
    """Accuracy and loss of the model under each mutation of `mutations(mc)`: {row: {"accuracy", "loss"}}."""
    validate.model(model)
    validate.instance(mc, MultipleChoice, "mc")
    validate.positive(size=size)
    validate.integer(seed=seed)
    return {name: accuracy_and_loss(model, mc.questions(size, seed, **kwargs)) for name, kwargs in mutations(mc).items()}
