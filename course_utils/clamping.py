"""Clamping and ablating parts of a model *while it trains* (Singh et al. 2024), on the in-context
classification task of `icl_classification` (notebook 04).

Four conditions, each a list of forward hooks passed to `train(..., fwd_hooks=...)` and kept on
when the model is evaluated:
- "baseline": nothing held;
- "clamp_prev_token": head 0.0's attention pattern held at a perfect previous-token pattern
  (position i attends only to i - 1), so the model need not *learn* where to look in layer 0;
- "clamp_layer0_output": layer 0's whole attention output held at the previous position's
  embedding (its residual stream entering layer 0), so the model need not learn where layer 0
  looks *nor* what it writes: the previous-token sub-circuit is given whole;
- "ablate_layer0": every layer-0 head's output zeroed, so no position can learn which token came
  before it: the previous-token path that K-composition needs is cut. (Ablating one head is not
  enough in a fresh model: another layer-0 head would take its job.)

`run(RunConfig(...))` trains one tiny two-layer model (seconds on a CPU) and returns its query
accuracy at every checkpoint and its `formation_step`. `STUDY_FILE` holds a sweep over conditions,
numbers of classes and labels and seeds: `run_study()` computes it (notebook 04's `RETRAIN = True`),
and the maintainers write the shipped file with `python -m maintainer.clamping_study`.
`reproduce(point)` re-runs any recorded point from its config, bit for bit on a CPU with the zoo's
numerics (`course_utils/numerics.py`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from . import numerics, validate
from .ablation import ablation_hooks
from .icl_classification import FORMED_ACCURACY, ICLClassification, formation_step, query_accuracy
from .model import Config, Transformer
from .train import TrainConfig, list_checkpoints, load_model, train

CONDITIONS = ("baseline", "clamp_prev_token", "clamp_layer0_output", "ablate_layer0")
STUDY_FILE = Path(__file__).resolve().parent / "zoo_weights" / "studies" / "icl_clamping.json"


def perfect_prev_token_pattern(n_ctx: int) -> torch.Tensor:
    """[n_ctx, n_ctx]: each query i attends only to key i - 1 (query 0, which has no previous
    token, attends to itself)."""
    validate.at_least(n_ctx, 2, "n_ctx")
    pattern = torch.diag(torch.ones(n_ctx - 1), diagonal=-1)
    pattern[0, 0] = 1.0
    return pattern


def clamp_prev_token_hooks(model, layer: int = 0, head: int = 0) -> list:
    """Hooks holding head layer.head's attention pattern at `perfect_prev_token_pattern`."""
    validate.head(model, layer, head)
    perfect = perfect_prev_token_pattern(model.cfg.n_ctx)

    def clamp(pattern, hook):  # [batch, head, query_pos, key_pos]
        n = pattern.shape[-1]
        pattern = pattern.clone()
        pattern[:, head] = perfect[:n, :n].to(pattern.device, pattern.dtype)
        return pattern

    return [(f"blocks.{layer}.attn.hook_pattern", clamp)]


def clamp_layer0_output_hooks(model) -> list:
    """Hooks holding layer 0's attention output at the previous position's embedding: position i
    receives blocks.0.hook_resid_pre at position i - 1 (position 0 receives zeros)."""
    validate.model(model)
    kept = {}

    def keep(resid, hook):  # [batch, pos, d_model]: token plus position embedding
        kept["embedding"] = resid
        return resid

    def clamp(attn_out, hook):  # runs later in the same forward pass
        out = torch.zeros_like(attn_out)
        out[:, 1:] = kept.pop("embedding")[:, :-1]
        return out

    return [("blocks.0.hook_resid_pre", keep), ("blocks.0.hook_attn_out", clamp)]


def condition_hooks(model, condition: str) -> list:
    """The forward hooks of a training condition (see the module's docstring)."""
    if condition == "baseline":
        return []
    if condition == "clamp_prev_token":
        return clamp_prev_token_hooks(model, 0, 0)
    if condition == "clamp_layer0_output":
        return clamp_layer0_output_hooks(model)
    if condition == "ablate_layer0":
        return ablation_hooks(model, [(0, h) for h in range(model.cfg.n_heads)], "zero")
    validate.one_of(condition, CONDITIONS, "condition")


@dataclass(frozen=True)
class RunConfig:
    """One training run: the task, the condition, the model's size and the schedule."""

    task: ICLClassification = field(default_factory=ICLClassification)
    condition: str = "baseline"
    d_model: int = 32
    n_heads: int = 2
    model_seed: int = 0
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-2
    eval_every: int = 25

    def __post_init__(self):
        validate.instance(self.task, ICLClassification, "RunConfig.task")
        validate.one_of(self.condition, CONDITIONS, "RunConfig.condition")
        self.model_config(), self.train_config()  # Config and TrainConfig name any bad field

    def model_config(self) -> Config:
        return Config(d_vocab=self.task.d_vocab, n_ctx=self.task.n_ctx, d_model=self.d_model,
                      n_heads=self.n_heads, n_layers=2, attn_only=True, seed=self.model_seed)

    def train_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_steps=20,
                           checkpoint_every=self.eval_every, device="cpu")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        return cls(**{**d, "task": ICLClassification(**d["task"])})


def run(cfg: RunConfig, progress: bool = False) -> dict:
    """Train one model under cfg.condition; its query accuracy (evaluated with the same hooks) at
    step 0 and every cfg.eval_every steps, and the step at which induction forms (None: never)."""
    validate.instance(cfg, RunConfig, "cfg")
    model = Transformer(cfg.model_config())
    hooks = condition_hooks(model, cfg.condition)
    task = cfg.task
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and the same on every machine
    try:
        steps, accuracy = [0], [query_accuracy(model, task, hooks)]
        with tempfile.TemporaryDirectory() as tmp:
            result = train(model, lambda step: task.batch(step, cfg.batch_size), cfg.train_config(),
                           checkpoint_dir=tmp, fwd_hooks=hooks, progress=progress)
            for path in list_checkpoints(tmp):
                steps.append(int(path.stem.split("_")[1]))
                accuracy.append(query_accuracy(load_model(path), task, hooks))
    finally:
        torch.set_num_threads(threads)
    accuracy = [round(a, 4) for a in accuracy]
    return {"steps": steps, "accuracy": accuracy, "formation_step": formation_step(steps, accuracy),
            "final_loss": round(sum(result.losses[-20:]) / 20, 4)}


# ---- the study: conditions, classes and labels, seeds -------------------------------------------

STUDY_SEEDS = tuple(range(10))  # formation steps vary a lot from seed to seed: three seeds could not tell
STUDY_CLASSES = (8, 16, 32)  # with the default 4 labels
STUDY_LABELS = (2, 4, 8)  # with the default 8 classes


def study_points(seeds=STUDY_SEEDS, classes=STUDY_CLASSES, labels=STUDY_LABELS) -> list[RunConfig]:
    """Every run of the study, for each seed (the seed sets both the data and the initial weights):
    the four conditions on the default task, then the baseline with more or fewer classes (at the
    default number of labels) and with more or fewer labels (at the default number of classes)."""
    base = RunConfig()
    points = []
    for seed in seeds:
        task = replace(base.task, seed=seed)
        for condition in CONDITIONS:
            points.append(replace(base, task=task, condition=condition, model_seed=seed))
        variants = [replace(task, n_classes=c) for c in classes] + [replace(task, n_labels=n) for n in labels]
        for t in variants:
            if t != task:
                points.append(replace(base, task=t, model_seed=seed))
    return points


def run_study(points=None, progress: bool = True) -> dict:
    """Run every point (a tqdm bar over the runs) and return the study as a dict for JSON."""
    from tqdm.auto import tqdm

    points = study_points() if points is None else list(points)
    for p in points:
        if not isinstance(p, RunConfig):
            raise TypeError(f"points must be a list of course_utils.clamping.RunConfig, got an item of type {type(p).__name__}")
    return {
        "formed_accuracy": FORMED_ACCURACY,
        "torch_version": torch.__version__,
        "numerics": {**numerics.current(), "threads": 1},  # run() trains on one thread
        "runs": [{"config": p.to_dict(), **run(p)} for p in tqdm(points, desc="runs", disable=not progress)],
    }


def load_study(path: str | Path = STUDY_FILE) -> dict:
    """The shipped study (a plain JSON file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no study at {path}; compute it with clamping.run_study(), or `python -m maintainer.clamping_study`")
    return json.loads(path.read_text())


def find(study: dict, condition: str = "baseline", **task) -> list[dict]:
    """The recorded runs with this condition and these task parameters (defaults: RunConfig's)."""
    if not (isinstance(study, dict) and isinstance(study.get("runs"), list)):
        raise ValueError(f"study must be the dict of load_study() or run_study(), with a 'runs' list, got {study!r:.80}")
    validate.one_of(condition, CONDITIONS, "condition")
    want = ICLClassification().to_dict()
    want.pop("seed")
    if set(task) - set(want):
        raise ValueError(f"unknown task parameters {sorted(set(task) - set(want))}; known: {sorted(want)}")
    want.update(task)
    return [r for r in study["runs"] if r["config"]["condition"] == condition
            and all(r["config"]["task"][k] == v for k, v in want.items())]


def steps_to_form(runs: list[dict]) -> list[float]:
    """The formation step of each run, with "never, within the budget" counted as infinity."""
    if not (isinstance(runs, list) and all(isinstance(r, dict) and "formation_step" in r for r in runs)):
        raise ValueError(f"runs must be a list of recorded runs (dicts with a 'formation_step'), got {type(runs).__name__}")
    return [float("inf") if r["formation_step"] is None else r["formation_step"] for r in runs]


def median_steps_to_form(study: dict, condition: str = "baseline", **task) -> float:
    """The median over seeds of `steps_to_form` (infinity when most seeds never form)."""
    steps = sorted(steps_to_form(find(study, condition, **task)))
    if not steps:
        raise ValueError(f"the study has no runs with condition={condition!r} and task {task}")
    return steps[len(steps) // 2]


def study_claims(study: dict) -> dict[str, bool]:
    """The claims of Singh et al. (2024) that notebook 04 asserts, each checked on the study.

    - clamping a perfect previous-token pattern makes induction form earlier: in the median over
      seeds, and in most seeds; and every clamped run forms;
    - clamping layer 0's whole output (the previous-token sub-circuit) makes it form earlier in
      every seed;
    - ablating layer 0 during training keeps it from forming within the budget, in every seed;
    - more classes, or more labels, slow formation: the median step never decreases as either
      grows, and the largest is later than the smallest.
    """
    base = {int(r["config"]["task"]["seed"]): r for r in find(study, "baseline")}
    ablated = find(study, "ablate_layer0")

    def earlier(condition):  # seeds in which the condition forms before the baseline
        runs = {int(r["config"]["task"]["seed"]): r for r in find(study, condition)}
        return [s for s in base if s in runs and steps_to_form([runs[s]])[0] < steps_to_form([base[s]])[0]]

    def slower(name, values):
        medians = [median_steps_to_form(study, **{name: v}) for v in values]
        return all(a <= b for a, b in zip(medians, medians[1:])) and medians[-1] > medians[0]

    return {
        "clamping earlier in the median": median_steps_to_form(study, "clamp_prev_token")
        < median_steps_to_form(study, "baseline"),
        "clamping earlier in most seeds": 2 * len(earlier("clamp_prev_token")) > len(base),
        "clamped runs all form": all(r["formation_step"] is not None for r in find(study, "clamp_prev_token")),
        "clamping layer 0's output earlier in every seed": bool(base) and len(earlier("clamp_layer0_output")) == len(base),
        "ablation never forms": bool(ablated) and all(r["formation_step"] is None for r in ablated),
        "more classes slower": slower("n_classes", STUDY_CLASSES),
        "more labels slower": slower("n_labels", STUDY_LABELS),
    }


def reproduce(point: dict, progress: bool = False) -> dict:
    """Re-run a recorded point of the study from its config alone."""
    if not (isinstance(point, dict) and "config" in point):
        raise ValueError(f"point must be a recorded run of the study (a dict with a 'config'), got {type(point).__name__}")
    return run(RunConfig.from_dict(point["config"]), progress=progress)

