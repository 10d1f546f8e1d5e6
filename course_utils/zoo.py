"""The model zoo: small models the course trained itself, shipped inside the package.

Each entry NAME has, in `course_utils/zoo_weights/`:
- `NAME.safetensors`: the final weights;
- `NAME.history.safetensors`: the weights at every checkpoint of training (for notebooks 02 and 04);
- `NAME.json`: the card: model config, data recipe, seed, training config, the loss at every step,
  and the metrics the notebooks rely on.

`load(NAME)` takes about a second and never unpickles; it checks each file against the checksum in
the card first, so a damaged or edited file is refused, never loaded. `retrain(NAME)` trains the
model again from the card alone, on the CPU: with the numerics of `course_utils/numerics.py` in force
it gives the shipped weights bit for bit. Building the zoo (`make zoo`) is the maintainers' work:
`maintainer/zoo_build.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .data import EVAL_SEED, SyntheticLanguage, repeated_tokens
from .icl_tasks import ICLTasks
from .in_context_regression import LinearRegressionTasks
from .modular_addition import (ModularAddition, cos_fit, frequency_norms, grokking_phases, key_frequencies, logit_table,
                               neuron_frequency_shares, progress_measures)
from .multiple_choice import MultipleChoice, mutation_table
from .request_tasks import Requests
from .metrics import head_scores, induction_score, prev_token_score
from .model import Config, Transformer
from . import validate
from .train import TrainConfig, list_checkpoints, load_model, read_safetensors, train

ZOO_DIR = Path(__file__).resolve().parent / "zoo_weights"


@dataclass(frozen=True)
class Recipe:
    description: str
    model: Config
    language: SyntheticLanguage | ICLTasks | ModularAddition | MultipleChoice | Requests  # any data with batch(step, size) and to_dict()
    train: TrainConfig


_LANGUAGE = SyntheticLanguage(d_vocab=64, n_ctx=32, successors=16, p_repeat=0.9, min_span=6, max_span=15, seed=0)
# The one- and two-layer models are trained identically: same data, same schedule.
_TRAIN = TrainConfig(steps=3000, batch_size=64, lr=1e-2, warmup_steps=100, checkpoint_every=150)

RECIPES: dict[str, Recipe] = {
    "attn_only_2l": Recipe(
        description="Two-layer attention-only transformer (4 heads per layer) trained on the synthetic "
        "bigram language with repeated spans; it forms a previous-token head and induction heads.",
        model=Config(d_vocab=64, n_ctx=32, d_model=64, n_heads=4, n_layers=2, attn_only=True, seed=0),
        language=_LANGUAGE,
        train=_TRAIN,
    ),
    "attn_only_1l": Recipe(
        description="One-layer attention-only transformer trained exactly like attn_only_2l: "
        "the control that cannot form an induction head.",
        model=Config(d_vocab=64, n_ctx=32, d_model=64, n_heads=4, n_layers=1, attn_only=True, seed=0),
        language=_LANGUAGE,
        train=_TRAIN,
    ),
}

# A deeper model for the logit lens and activation patching (notebooks 05 and 06): four layers with
# MLPs and LayerNorm, on the same language. Shorter training than the attention-only models, so that
# retraining it stays around a minute.
RECIPES["ln_mlp_4l"] = Recipe(
    description="Four-layer transformer with MLPs and LayerNorm (4 heads per layer) trained on the "
    "synthetic bigram language with repeated spans; it forms induction heads, spread over several heads of layers 1 and 2 (no single previous-token head).",
    model=Config(d_vocab=64, n_ctx=32, d_model=64, n_heads=4, n_layers=4, attn_only=False, d_mlp=128,
                 normalization_type="LN", seed=0),
    language=_LANGUAGE,
    train=TrainConfig(steps=2500, batch_size=64, lr=3e-3, warmup_steps=100, checkpoint_every=100),
)

# Notebook 07's model: in-context tasks (function vectors). Appended; the models above are unchanged.
_ICL_TASKS = ICLTasks(n_items=32, max_shots=8, seed=0)
RECIPES["icl_tasks"] = Recipe(
    description="Two-layer transformer with MLPs and LayerNorm trained on in-context tasks "
    "(x -> f(x) demonstrations, then a query): it infers the task from the demonstrations.",
    model=Config(d_vocab=_ICL_TASKS.d_vocab, n_ctx=_ICL_TASKS.n_ctx, d_model=64, n_heads=4, n_layers=2,
                 attn_only=False, normalization_type="LN", seed=0),
    language=_ICL_TASKS,
    train=TrainConfig(steps=1500, batch_size=64, lr=3e-3, warmup_steps=100, checkpoint_every=1500),
)

# Notebook 10's models: modular addition, grokked on a CPU. Appended; the models above are unchanged.
# The choices, measured on a 2-core CPU (see the cards' seed studies): p = 59 and half of the 3481
# pairs for training, one layer (d_model 64, 4 heads, ReLU MLP of 256, no LayerNorm), full batch,
# AdamW with betas (0.9, 0.98) and weight decay 1.0, as Nanda et al. (2023) but smaller. Their p = 113
# with 30% of the pairs takes tens of thousands of steps; with 35% of the pairs here one seed grokked
# by step 1850 and two had not begun by step 1400, too slow to retrain in a notebook. The learning
# rate 3e-3 (theirs 1e-3) makes weight decay act three times faster per step (AdamW shrinks the
# weights by lr * weight_decay each step), so the run groks in about 1000 steps instead of 3000.
# A long plateau (issue 19) needs fewer pairs. Probed 2026-12-03 (1 thread, ~33 ms a step, seed = the
# model's and the split's): 30% of the pairs, lr 5e-3, 6000 steps: all memorise by step 100; seed 0
# has 50% test accuracy at 1900 and 95% at 2100; seeds 2 and 3 cross chance test loss at 2100 and 3100
# and reach 95% at 2500 and 3400 (a plateau 5-10 times the climb); seed 1 creeps from 6% to 92% test
# accuracy between steps 1000 and 6000 with no jump. With lr 3e-3 and weight decay 2.0, seed 0 groks at 1500 and seed 1
# stays at 6% by 6000. So one split in four does not grok sharply within 3 CPU-minutes: not shipped.
_MODULAR_ADDITION = ModularAddition(p=59, train_fraction=0.5, seed=0)
_GROKKING_MODEL = Config(d_vocab=_MODULAR_ADDITION.d_vocab, n_ctx=_MODULAR_ADDITION.n_ctx, d_model=64, n_heads=4,
                         n_layers=1, attn_only=False, d_mlp=256, act_fn="relu", seed=0)
_GROKKING_TRAIN = TrainConfig(steps=2000, batch_size=_MODULAR_ADDITION.n_train, lr=3e-3, weight_decay=1.0,
                              betas=(0.9, 0.98), warmup_steps=10, checkpoint_every=100)
RECIPES["grokking"] = Recipe(
    description="One-layer transformer with a ReLU MLP and no LayerNorm trained on modular addition "
    "(a + b mod 59, half of the pairs, full batch, weight decay 1.0): it memorises the training pairs "
    "within a few hundred steps and generalises to the test pairs (groks) later, with a few Fourier frequencies.",
    model=_GROKKING_MODEL,
    language=_MODULAR_ADDITION,
    train=_GROKKING_TRAIN,
)
RECIPES["grokking_no_wd"] = Recipe(
    description="The control of `grokking`: the same model, data and training without weight decay. It "
    "memorises the training pairs as fast and does not generalise within the same 2000 steps. Its history "
    "is saved every 250 steps (the files stay small; the curves need no more).",
    model=_GROKKING_MODEL,
    language=_MODULAR_ADDITION,
    train=replace(_GROKKING_TRAIN, weight_decay=0.0, checkpoint_every=250),
)
# Notebook 08's two models: multiple-choice questions, trained identically except for the labels:
# always A, B, C, D in order ("fixed"), or letters drawn per question ("randomised"). LayerNorm: without
# it the fixed-label model stayed on its plateau (loss ln 4) for 4000 steps; with it both learn. lr 1e-3:
# at 3e-3 two of four seeds of the randomised model stalled at accuracy 0.6-0.7 (and stayed there to
# step 3000); at 1e-3 they learn. 3000 steps: the randomised model's plateau lasts up to ~1700 steps.
_MC_MODEL = dict(n_ctx=MultipleChoice().n_ctx, d_vocab=MultipleChoice().d_vocab, d_model=64, n_heads=4, n_layers=2,
                 attn_only=False, d_mlp=128, normalization_type="LN", seed=0)
_MC_TRAIN = TrainConfig(steps=3000, batch_size=64, lr=1e-3, warmup_steps=100, checkpoint_every=200)
for _name, _labels in (("mc_fixed", "fixed"), ("mc_random", "randomised")):
    RECIPES[_name] = Recipe(
        description=f"Two-layer transformer with MLPs and LayerNorm trained on multiple-choice questions "
        f"(a learned relation question -> answer, four labelled options) with {_labels} labels: "
        + ("always A, B, C, D in order." if _labels == "fixed" else "four letters drawn per question, in random order."),
        model=Config(**_MC_MODEL),
        language=MultipleChoice(labels=_labels),
        train=_MC_TRAIN,
    )

# Notebook 12's model: prompts, refused when they mention a forbidden item. Three layers, so that the
# layer sweep has a middle; MLPs and LayerNorm as the other task models. It is nearly perfect within
# ~300 steps; 800 keep its retraining under a minute or two on one CPU thread.
_REQUESTS = Requests(n_items=24, n_args=4, n_forbidden=4, seed=0)
RECIPES["request_tasks"] = Recipe(
    description="Three-layer transformer with MLPs and LayerNorm trained on prompts `task args... ->` "
    "(first, last, min, max of four items): it answers them, and answers <refuse> to any request that "
    "mentions one of four forbidden items.",
    model=Config(d_vocab=_REQUESTS.d_vocab, n_ctx=_REQUESTS.n_ctx, d_model=64, n_heads=4, n_layers=3,
                 attn_only=False, d_mlp=128, normalization_type="LN", seed=0),
    language=_REQUESTS,
    train=TrainConfig(steps=800, batch_size=128, lr=3e-3, warmup_steps=50, checkpoint_every=800),
)

# Notebook 13's model: in-context linear regression. It reads vectors ([x, 0] and [0, y], `d_input`)
# and writes one number per position (`d_vocab=1`). LayerNorm and MLPs, as Garg et al. (2022), but
# d = 5 (theirs 20), 3 layers of d_model 64 and 5000 steps without a curriculum, so that it trains in
# about 5 minutes on a 2-core CPU. Measured while choosing: the error at k = 10 examples (least
# squares: 0) was 0.122 after 1500 steps at lr 2e-3 and 0.110 at 3e-3, 0.076 after 3000 steps at
# 2e-3, and about 0.06 after 5000 at 3e-3; it is still falling when training stops (notebook 13).
_REGRESSION = LinearRegressionTasks(d=5, n_points=11, seed=0)
RECIPES["in_context_regression"] = Recipe(
    description="Three-layer transformer with MLPs and LayerNorm that reads vectors (x as [x, 0], y as "
    "[0, y]) and predicts each y from the (x, y) pairs before it, y = w . x with w drawn per prompt "
    "(d = 5, up to 10 examples in context), trained with the squared error at every x.",
    model=Config(d_vocab=1, d_input=_REGRESSION.d_input, n_ctx=_REGRESSION.n_ctx, d_model=64, n_heads=4,
                 n_layers=3, attn_only=False, d_mlp=128, normalization_type="LN", seed=0),
    language=_REGRESSION,
    train=TrainConfig(steps=5000, batch_size=64, lr=3e-3, warmup_steps=100, checkpoint_every=1000),
)

# Probes for the card's metrics: fixed, and disjoint from the training data's seeds.
EVAL_BATCH = 256


def names() -> list[str]:
    """The names of the shipped models."""
    return sorted(p.name[: -len(".json")] for p in ZOO_DIR.glob("*.json"))


def card(name: str) -> dict:
    """The model's card: config, data recipe, training config, losses and metrics."""
    validate.one_of(name, names(), "name", "the shipped models")
    return json.loads((ZOO_DIR / f"{name}.json").read_text())


def language(name: str) -> SyntheticLanguage | ICLTasks | ModularAddition:
    """The language the model was trained on: the synthetic bigram language, the language of
    in-context tasks (`ICLTasks`), or modular addition (`ModularAddition`, notebook 10). The course
    calls this generated data a model's `language` everywhere."""
    return _data_from_card(card(name))


def _data_from_card(info: dict) -> SyntheticLanguage | ICLTasks | ModularAddition | MultipleChoice | Requests | LinearRegressionTasks:
    if info.get("data_kind") == "LinearRegressionTasks":
        return LinearRegressionTasks.from_dict(info["language"])
    if info.get("data_kind") == "ICLTasks":
        return ICLTasks.from_dict(info["language"])
    if info.get("data_kind") == "ModularAddition":
        return ModularAddition.from_dict(info["language"])
    if info.get("data_kind") == "MultipleChoice":
        return MultipleChoice.from_dict(info["language"])
    if info.get("data_kind") == "Requests":
        return Requests.from_dict(info["language"])
    return SyntheticLanguage(**info["language"])


def sha256(path: str | Path) -> str:
    """The SHA-256 of a file, as the cards record it for each shipped file."""
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        raise FileNotFoundError(f"path must be an existing file, got {path!r}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_verified(name: str, info: dict, filename: str) -> dict[str, torch.Tensor]:
    """The tensors of a shipped file, after checking it against its card: the checksum, the config
    the file carries, and every tensor float32 and finite. Anything else is a clear error."""
    path = ZOO_DIR / filename
    fix = "reinstall the course (a fresh clone), or rebuild the zoo with `make zoo`"
    expected = info.get("files", {}).get(filename)
    if expected is None:
        raise ValueError(f"the card of {name} records no checksum for {filename}: {fix}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {fix}")
    if sha256(path) != expected:
        raise ValueError(f"{path} does not match the checksum in its card (damaged or edited): {fix}")
    tensors, metadata = read_safetensors(path)
    carried = json.loads(metadata.get("card", "{}"))
    if carried.get("name") != name or carried.get("model") != info["model"]:
        raise ValueError(f"{path} was built with another config than its card records "
                         f"({carried.get('model')} against {info['model']}): {fix}")
    for key, tensor in tensors.items():
        if tensor.dtype != torch.float32:
            raise ValueError(f"{path}: {key} is {tensor.dtype}, expected torch.float32: {fix}")
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{path}: {key} holds NaN or inf: {fix}")
    return tensors


def _model_from(tensors: dict[str, torch.Tensor], cfg: dict, prefix: str = "") -> Transformer:
    model = Transformer(Config.from_dict(cfg))
    weights = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    validate.weights(weights, model, f"the zoo file (entries {prefix or 'without prefix'}*)")
    model.load_state_dict(weights, strict=True)
    return model.eval()


def load(name: str, step: int | None = None, device: str | torch.device = "cpu") -> Transformer:
    """The shipped model NAME: its final weights, or those at a training `step` of its history."""
    info = card(name)
    if step is None:
        return _model_from(_read_verified(name, info, f"{name}.safetensors"), info["model"]).to(device)
    if not isinstance(step, int) or isinstance(step, bool) or step not in info.get("history_steps", []):
        raise ValueError(f"{name} has no checkpoint at step {step!r}; its history has steps {info.get('history_steps', [])}")
    tensors = _read_verified(name, info, f"{name}.history.safetensors")
    return _model_from(tensors, info["model"], prefix=f"step_{step:06d}.").to(device)


def history(name: str) -> dict[int, Transformer]:
    """{step: model} for every checkpoint saved while training NAME (step 0 is the initial model)."""
    info = card(name)
    tensors = _read_verified(name, info, f"{name}.history.safetensors")
    return {s: _model_from(tensors, info["model"], prefix=f"step_{s:06d}.") for s in info["history_steps"]}


def training_history(name: str, retrain: bool = False, workdir: str | Path = "runs") -> tuple[dict, list[float]]:
    """({step: model}, training losses) for NAME: the shipped history, or with retrain=True a new
    training run (progress bar; checkpoints in workdir/NAME, so an interrupted run resumes)."""
    if not retrain:
        return history(name), card(name)["losses"]
    ckpt_dir = Path(workdir) / name
    _, result = _retrain_from_card(name, ckpt_dir, progress=True)
    return _history_from(ckpt_dir, Config.from_dict(card(name)["model"])), result.losses


def _history_from(checkpoint_dir, cfg: Config) -> dict[int, Transformer]:
    """{0: the initial model, step: model...} from a training run's checkpoints."""
    models = {0: Transformer(cfg).eval()}
    models.update({int(p.stem.split("_")[1]): load_model(p).eval() for p in list_checkpoints(checkpoint_dir)})
    return models


def evaluate(model, language: SyntheticLanguage) -> dict:
    """The metrics a card records: losses on fresh data (all, copied tokens, the rest) and head scores."""
    validate.model(model)
    validate.instance(language, SyntheticLanguage, "language")
    batch = language.sample(EVAL_BATCH, seed=EVAL_SEED)
    period = language.n_ctx // 2
    rep = repeated_tokens(EVAL_BATCH // 4, period, language.d_vocab, seed=EVAL_SEED)
    with torch.no_grad():
        per_token = model(batch.tokens, return_type="loss", loss_per_token=True)
    copied = batch.copied[:, 1:]
    return {
        "loss": round(per_token.mean().item(), 4),
        "loss_copied": round(per_token[copied].mean().item(), 4),
        "loss_not_copied": round(per_token[~copied].mean().item(), 4),
        "bigram_entropy": round(language.bigram_entropy(), 4),
        "induction_scores": head_scores(model, rep, induction_score, period=period).round(decimals=4).tolist(),
        "prev_token_scores": head_scores(model, rep, prev_token_score).round(decimals=4).tolist(),
    }


def retrain(name: str, checkpoint_dir: str | Path | None = None, progress: bool = True, stop_at: int | None = None):
    """Train NAME again from its card, on the CPU. Returns (model, TrainResult).

    With a checkpoint_dir, an interrupted retrain resumes where it stopped. With stop_at, training
    stops after that step (the weights then equal the shipped history's at that step).
    """
    return _retrain_from_card(name, checkpoint_dir, progress, stop_at)


def _retrain_from_card(name: str, checkpoint_dir, progress: bool, stop_at: int | None = None):
    info = card(name)
    return _train_from(Config.from_dict(info["model"]), _data_from_card(info),
                       TrainConfig(**{**info["train"], "device": "cpu"}), checkpoint_dir, progress, stop_at)


def _train_from(cfg: Config, language: SyntheticLanguage | ICLTasks | ModularAddition | MultipleChoice, tcfg: TrainConfig, checkpoint_dir, progress, stop_at=None):
    model = Transformer(cfg)
    result = train(model, lambda step: language.batch(step, tcfg.batch_size), tcfg,
                   checkpoint_dir=checkpoint_dir, progress=progress, stop_at=stop_at,
                   loss_positions=getattr(language, "loss_positions", None))
    return model.eval(), result


def story(history_models: dict, language: SyntheticLanguage) -> dict:
    """ICL score and best induction score at every checkpoint of a training history {step: model}."""
    from .metrics import training_curves

    curves = training_curves(history_models, language)
    return {
        "steps": curves["steps"],
        "icl": [round(x, 4) for x in curves["icl"]],
        "best_induction_score": [round(x, 4) for x in curves["best_induction"]],
    }


# ---- the in-context tasks model (notebook 07) -----------------------------------------------------


def evaluate_icl(model, language: ICLTasks, size: int = EVAL_BATCH) -> dict:
    """The metrics an in-context-tasks card records: accuracy (top token = the answer) by task and
    number of demonstrations, on fresh prompts."""
    validate.model(model)
    validate.instance(language, ICLTasks, "language")
    accuracy = {}
    with torch.no_grad():
        for task in language.tasks:
            accuracy[task] = []
            for shots in range(language.max_shots):
                p = language.prompts(task, shots, size, seed=EVAL_SEED)
                hit = model(p.tokens)[:, -1].argmax(-1).cpu() == p.answers
                accuracy[task].append(round(hit.float().mean().item(), 4))
    return {"accuracy_by_shots": accuracy, "chance_zero_shot": round(1 / len(language.tasks), 4)}




# ---- grokking modular addition (notebook 10) ------------------------------------------------------


def evaluate_grokking(history_models: dict, language: ModularAddition) -> dict:
    """The metrics a grokking card records (notebook 10 asserts them, with the seed study's spread):
    - from the final model: the key frequencies of its embedding (the fewest carrying 90% of W_E's
      non-constant squared norm) and every frequency's share of it; the fit of its answer logits by
      a sum of cos(w (a + b - c)) over the key frequencies; how much of each MLP neuron's activation
      one key frequency explains (the median over the neurons that fire, and the share of them above 0.5);
    - at every checkpoint: the progress measures (`modular_addition.progress_measures`);
    - the steps that end the phases (`modular_addition.grokking_phases`)."""
    validate.instance(language, ModularAddition, "language")
    if not isinstance(history_models, dict) or not history_models:
        raise TypeError(f"history_models must be a dict {{step: model}}, got {type(history_models).__name__}")
    final = history_models[max(history_models)]
    W = final.W_E.detach()[: language.p]
    keys = key_frequencies(W)
    norms = frequency_norms(W)
    alpha, explained = cos_fit(logit_table(final, language), keys)
    with torch.no_grad():
        _, cache = final.run_with_cache(language.tokens(), names_filter=lambda n: n == "blocks.0.mlp.hook_post")
    acts = cache["blocks.0.mlp.hook_post"][:, -1].view(language.p, language.p, -1)
    alive = acts.flatten(0, 1).var(0) > 1e-6
    best = neuron_frequency_shares(acts[..., alive])[:, keys - 1].max(-1).values
    measures = progress_measures(history_models, language, keys)
    phases = grokking_phases(torch.tensor(measures["steps"]), torch.tensor(measures["train_accuracy"]),
                             torch.tensor(measures["test_loss"]), torch.tensor(measures["test_accuracy"]),
                             math.log(language.p))
    return {
        "key_frequencies": keys.tolist(),
        "frequency_shares": [round(x, 4) for x in (norms / norms.sum()).tolist()],
        "cos_fit": {"alpha": [round(x, 4) for x in alpha.tolist()], "explained": round(explained, 4)},
        "neurons": {"firing": int(alive.sum()), "best_key_share_median": round(best.median().item(), 4),
                    "share_over_half": round((best > 0.5).float().mean().item(), 4)},
        "phases": dict(zip(("memorised", "circuit_formed", "generalised"),
                           [None if math.isnan(x) else int(x) for x in phases.tolist()])),
        "measures": {k: v if k == "steps" else [round(x, 4) for x in v] for k, v in measures.items()},
    }
# ---- the multiple-choice models (notebook 08) -----------------------------------------------------


def evaluate_mc(model, language: MultipleChoice, size: int = EVAL_BATCH) -> dict:
    """The metrics a multiple-choice card records: accuracy and loss on fresh questions in the model's
    own format and under each label mutation (`multiple_choice.mutation_table`)."""
    validate.model(model)
    validate.instance(language, MultipleChoice, "language")
    table = mutation_table(model, language, size=size, seed=EVAL_SEED)
    return {"mutations": {row: {k: round(v, 4) for k, v in r.items()} for row, r in table.items()},
            "chance": round(1 / language.n_options, 4)}


# ---- the prompts model (notebook 12) -------------------------------------------------------------


def evaluate_request_tasks(model, language: Requests, size: int = EVAL_BATCH) -> dict:
    """The metrics a prompts card records: on fresh prompts, each task's accuracy on harmless ones
    and the refusal rate of refused and of harmless ones."""
    validate.model(model)
    validate.instance(language, Requests, "language")
    out = {"accuracy": {}, "refusal_of_refused": {}, "refusal_of_harmless": {}}
    with torch.no_grad():
        for task in language.tasks:
            for refused in (True, False):
                p = language.prompts(size, refused=refused, task=task, seed=EVAL_SEED)
                got = model(p.tokens)[:, -1].argmax(-1).cpu()
                key = "refusal_of_refused" if refused else "refusal_of_harmless"
                out[key][task] = round((got == language.REFUSE).float().mean().item(), 4)
                if not refused:
                    out["accuracy"][task] = round((got == p.answers).float().mean().item(), 4)
    return out
