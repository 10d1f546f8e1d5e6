"""The model zoo: small models the course trained itself, shipped inside the package.

Each entry NAME has, in `course_utils/zoo_weights/`:
- `NAME.safetensors`: the final weights;
- `NAME.history.safetensors`: the weights at every checkpoint of training (for notebooks 02 and 04);
- `NAME.json`: the card: model config, data recipe, seed, training config, the loss at every step,
  and the metrics the notebooks rely on.

`load(NAME)` takes about a second and never unpickles. `retrain(NAME)` reproduces the weights from
the card alone, on the CPU. `python -m course_utils.zoo build [NAME...]` rewrites the shipped files.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import SyntheticLanguage, repeated_tokens
from .icl_tasks import ICLTasks
from .metrics import head_scores, induction_score, prev_token_score
from .model import Config, Transformer
from .validate import model as _check_model
from .train import TrainConfig, atomic_save, check_weights, list_checkpoints, load_model, read_safetensors, train

ZOO_DIR = Path(__file__).resolve().parent / "zoo_weights"


@dataclass(frozen=True)
class Recipe:
    description: str
    model: Config
    language: SyntheticLanguage | ICLTasks  # any data with batch(step, size) and to_dict()
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

# Probes for the card's metrics: fixed, and disjoint from the training data's seeds.
EVAL_SEED = 10**9
EVAL_BATCH = 256


def names() -> list[str]:
    """The names of the shipped models."""
    return sorted(p.name[: -len(".json")] for p in ZOO_DIR.glob("*.json"))


def _check_name(name: str) -> None:
    if name not in names():
        known = ", ".join(names()) or "(none shipped)"
        raise KeyError(f"no zoo model named {name!r}; known models: {known} (name must be one of them)")


def _check_recipe(name: str) -> None:
    if name not in RECIPES:
        raise KeyError(f"no recipe named {name!r}; recipes: {', '.join(sorted(RECIPES))}")


def card(name: str) -> dict:
    """The model's card: config, data recipe, training config, losses and metrics."""
    _check_name(name)
    return json.loads((ZOO_DIR / f"{name}.json").read_text())


def language(name: str) -> SyntheticLanguage | ICLTasks:
    """The data the model was trained on: a synthetic language, or in-context tasks."""
    return _data_from_card(card(name))


def _data_from_card(info: dict) -> SyntheticLanguage | ICLTasks:
    if info.get("data_kind") == "ICLTasks":
        return ICLTasks.from_dict(info["language"])
    return SyntheticLanguage(**info["language"])


def _model_from(tensors: dict[str, torch.Tensor], cfg: dict, prefix: str = "") -> Transformer:
    model = Transformer(Config.from_dict(cfg))
    weights = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    check_weights(weights, model, f"the zoo file (entries {prefix or 'without prefix'}*)")
    model.load_state_dict(weights, strict=True)
    return model.eval()


def load(name: str, step: int | None = None, device: str | torch.device = "cpu") -> Transformer:
    """The shipped model NAME: its final weights, or those at a training `step` of its history."""
    info = card(name)
    if step is None:
        tensors, _ = read_safetensors(ZOO_DIR / f"{name}.safetensors")
        return _model_from(tensors, info["model"]).to(device)
    if not isinstance(step, int) or isinstance(step, bool) or step not in info["history_steps"]:
        raise ValueError(f"{name} has no checkpoint at step {step!r}; its history has steps {info['history_steps']}")
    tensors, _ = read_safetensors(ZOO_DIR / f"{name}.history.safetensors")
    return _model_from(tensors, info["model"], prefix=f"step_{step:06d}.").to(device)


def history(name: str) -> dict[int, Transformer]:
    """{step: model} for every checkpoint saved while training NAME (step 0 is the initial model)."""
    info = card(name)
    tensors, _ = read_safetensors(ZOO_DIR / f"{name}.history.safetensors")
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


def evaluate(model, lang: SyntheticLanguage) -> dict:
    """The metrics a card records: losses on fresh data (all, copied tokens, the rest) and head scores."""
    _check_model(model)
    if not isinstance(lang, SyntheticLanguage):
        raise TypeError(f"lang must be a course_utils.data.SyntheticLanguage, got {type(lang).__name__}")
    batch = lang.sample(EVAL_BATCH, seed=EVAL_SEED)
    period = lang.n_ctx // 2
    rep = repeated_tokens(EVAL_BATCH // 4, period, lang.d_vocab, seed=EVAL_SEED)
    with torch.no_grad():
        per_token = model(batch.tokens, return_type="loss", loss_per_token=True)
    copied = batch.copied[:, 1:]
    return {
        "loss": round(per_token.mean().item(), 4),
        "loss_copied": round(per_token[copied].mean().item(), 4),
        "loss_not_copied": round(per_token[~copied].mean().item(), 4),
        "bigram_entropy": round(lang.bigram_entropy(), 4),
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


def _train_from(cfg: Config, lang: SyntheticLanguage, tcfg: TrainConfig, checkpoint_dir, progress, stop_at=None):
    model = Transformer(cfg)
    result = train(model, lambda step: lang.batch(step, tcfg.batch_size), tcfg,
                   checkpoint_dir=checkpoint_dir, progress=progress, stop_at=stop_at)
    return model.eval(), result


def story(history_models: dict, lang: SyntheticLanguage) -> dict:
    """ICL score and best induction score at every checkpoint of a training history {step: model}."""
    from .metrics import training_curves

    curves = training_curves(history_models, lang)
    return {
        "steps": curves["steps"],
        "icl": [round(x, 4) for x in curves["icl"]],
        "best_induction_score": [round(x, 4) for x in curves["best_induction"]],
    }


def seed_study(name: str, seeds, workdir: str | Path, progress: bool = True) -> dict:
    """Train NAME's recipe with other seeds (model init and language) and measure `story` for each.

    Runs resume from `workdir`, so an interrupted study loses nothing.
    """
    from dataclasses import replace

    _check_recipe(name)
    recipe = RECIPES[name]
    results = {}
    for seed in seeds:
        cfg, lang = replace(recipe.model, seed=seed), replace(recipe.language, seed=seed)
        ckpt_dir = Path(workdir) / f"{name}_seed{seed}"
        _train_from(cfg, lang, recipe.train, ckpt_dir, progress)
        results[str(seed)] = story(_history_from(ckpt_dir, cfg), lang)
    return results


def build(name: str, progress: bool = True) -> dict:
    """Train NAME from its recipe and write its weights, history and card into ZOO_DIR."""
    _check_recipe(name)
    recipe = RECIPES[name]
    if isinstance(recipe.language, ICLTasks):
        return _build_icl(name, recipe, progress)
    with tempfile.TemporaryDirectory() as tmp:
        model, result = _train_from(recipe.model, recipe.language, recipe.train, tmp, progress)
        hist = _history_from(tmp, recipe.model)
    info = {
        "name": name,
        "description": recipe.description,
        "model": recipe.model.to_dict(),
        "language": recipe.language.to_dict(),
        "train": {**recipe.train.to_dict(), "device": "cpu"},
        "torch_version": torch.__version__,
        "history_steps": sorted(hist),
        "losses": [round(x, 4) for x in result.losses],
        "metrics": evaluate(model, recipe.language),
    }
    info["metrics"]["story"] = story(hist, recipe.language)
    old = ZOO_DIR / f"{name}.json"
    if old.exists():  # a seed study is expensive: keep the one already recorded
        previous = json.loads(old.read_text())
        info.update({key: previous[key] for key in ("seed_study", "phase_change") if key in previous})
    meta = {"card": json.dumps({"name": name, "model": info["model"]})}
    atomic_save(model.state_dict(), ZOO_DIR / f"{name}.safetensors", meta)
    atomic_save({f"step_{s:06d}.{k}": v for s, m in hist.items() for k, v in m.state_dict().items()},
                ZOO_DIR / f"{name}.history.safetensors", meta)
    (ZOO_DIR / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def record_seed_study(name: str, seeds, workdir: str | Path) -> dict:
    """Run seed_study and write its results into NAME's card (with seed 0, the shipped run)."""
    info = card(name)
    runs = {"0": info["metrics"]["story"], **seed_study(name, seeds, workdir)}
    info["seed_study"] = {"seeds": [int(s) for s in runs], "runs": runs}
    (ZOO_DIR / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info["seed_study"]


def record_phase_change(two: str = "attn_only_2l", one: str = "attn_only_1l") -> dict:
    """From both cards' seed studies: the phase change of every seed, and its seed-to-seed spread,
    written into the two-layer model's card (notebook 02's thresholds come from this spread)."""
    from .metrics import phase_change

    info, other = card(two), card(one)
    width = 0.2 * info["train"]["steps"]
    runs = {}
    for seed, run in info["seed_study"]["runs"].items():
        if seed in other["seed_study"]["runs"]:
            if other["seed_study"]["runs"][seed]["steps"] != run["steps"]:
                raise ValueError(f"seed {seed}: the two models' checkpoints are at different steps")
            found = phase_change(run["steps"], run["icl"], other["seed_study"]["runs"][seed]["icl"],
                                 run["best_induction_score"], width)
            runs[seed] = {"excess_final": round(found["excess_final"], 4), "window": found["window"],
                          "share_in_window": round(found["share_in_window"], 4),
                          "induction_half_rise_step": found["induction_half_rise_step"]}
    icl_two = [r["icl"][-1] for r in info["seed_study"]["runs"].values()]
    icl_one = [r["icl"][-1] for r in other["seed_study"]["runs"].values()]
    spread = {
        "excess_final": [min(r["excess_final"] for r in runs.values()), max(r["excess_final"] for r in runs.values())],
        "share_in_window": [min(r["share_in_window"] for r in runs.values()), max(r["share_in_window"] for r in runs.values())],
        "half_rise_inside_window": all(r["window"][0] <= r["induction_half_rise_step"] <= r["window"][1] for r in runs.values()),
        "icl_final_two_layer": [min(icl_two), max(icl_two)],
        "icl_final_one_layer": [min(icl_one), max(icl_one)],
    }
    info["phase_change"] = {"window_steps": width, "runs": runs, "spread": spread}
    (ZOO_DIR / f"{two}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info["phase_change"]


# ---- the in-context tasks model (notebook 07) -----------------------------------------------------


def evaluate_icl(model, tasks: ICLTasks, size: int = EVAL_BATCH) -> dict:
    """The metrics an in-context-tasks card records: accuracy (top token = the answer) by task and
    number of demonstrations, on fresh prompts."""
    _check_model(model)
    if not isinstance(tasks, ICLTasks):
        raise TypeError(f"tasks must be a course_utils.icl_tasks.ICLTasks, got {type(tasks).__name__}")
    accuracy = {}
    with torch.no_grad():
        for task in tasks.tasks:
            accuracy[task] = []
            for shots in range(tasks.max_shots):
                p = tasks.prompts(task, shots, size, seed=EVAL_SEED)
                hit = model(p.tokens)[:, -1].argmax(-1).cpu() == p.answers
                accuracy[task].append(round(hit.float().mean().item(), 4))
    return {"accuracy_by_shots": accuracy, "chance_zero_shot": round(1 / len(tasks.tasks), 4)}


def _build_icl(name: str, recipe: Recipe, progress: bool) -> dict:
    """build() for a model of in-context tasks: final weights and card (no history: nothing uses it)."""
    model, result = _train_from(recipe.model, recipe.language, recipe.train, None, progress)
    info = {
        "name": name,
        "description": recipe.description,
        "model": recipe.model.to_dict(),
        "data_kind": "ICLTasks",
        "language": recipe.language.to_dict(),
        "train": {**recipe.train.to_dict(), "device": "cpu"},
        "torch_version": torch.__version__,
        "losses": [round(x, 4) for x in result.losses],
        "metrics": evaluate_icl(model, recipe.language),
    }
    meta = {"card": json.dumps({"name": name, "model": info["model"]})}
    atomic_save(model.state_dict(), ZOO_DIR / f"{name}.safetensors", meta)
    (ZOO_DIR / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def icl_seed_study(name: str, seeds, workdir: str | Path, k: int, layer: int, progress: bool = True) -> dict:
    """Train NAME's in-context-tasks recipe with other seeds (model init and task tables) and run
    `function_vectors.study` on each, with the shipped model as seed 0; written to
    zoo_weights/studies/NAME.seeds.json (notebook 07's thresholds come from it). Resumable."""
    from dataclasses import replace

    from .function_vectors import study
    from .train import load_model

    _check_recipe(name)
    recipe = RECIPES[name]
    if not isinstance(recipe.language, ICLTasks):
        icl = [n for n, r in RECIPES.items() if isinstance(r.language, ICLTasks)]
        raise ValueError(f"name must be a recipe of in-context tasks (ICLTasks): one of {icl}, got {name!r}")
    runs = {"0": study(load(name), recipe.language, k, layer)}
    for seed in seeds:
        cfg, data = replace(recipe.model, seed=seed), replace(recipe.language, seed=seed)
        ckpt_dir = Path(workdir) / f"{name}_seed{seed}"
        _train_from(cfg, data, recipe.train, ckpt_dir, progress)
        runs[str(seed)] = study(load_model(list_checkpoints(ckpt_dir)[-1]).eval(), data, k, layer)
    tasks = recipe.language.tasks
    spread = {key: [min(r[t][key] for r in runs.values() for t in tasks), max(r[t][key] for r in runs.values() for t in tasks)]
              for key in ("zero_shot", "few_shot", "shuffled_labels", "random_labels", "zero_shot_with_fv")}
    spread["top_k_share_of_positive_aie"] = [min(r["top_k_share_of_positive_aie"] for r in runs.values()),
                                             max(r["top_k_share_of_positive_aie"] for r in runs.values())]
    result = {"name": name, "k": k, "layer": layer, "seeds": [int(s) for s in runs], "runs": runs, "spread": spread}
    out = ZOO_DIR / "studies" / f"{name}.seeds.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    usage = ("usage: python -m course_utils.zoo build [NAME ...] | seeds NAME WORKDIR SEED [SEED ...]"
             " | phase-change")
    if len(sys.argv) >= 2 and sys.argv[1] == "build":
        for n in sys.argv[2:] or sorted(RECIPES):
            print(n, json.dumps(build(n)["metrics"]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "seeds":
        print(json.dumps(record_seed_study(sys.argv[2], [int(s) for s in sys.argv[4:]], sys.argv[3]), indent=1))
    elif len(sys.argv) >= 7 and sys.argv[1] == "icl-seeds":  # icl-seeds NAME WORKDIR K LAYER SEED...
        result = icl_seed_study(sys.argv[2], [int(s) for s in sys.argv[6:]], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        print(json.dumps(result["spread"], indent=1))
    elif sys.argv[1:] == ["phase-change"]:
        print(json.dumps(record_phase_change()["spread"], indent=1))
    else:
        sys.exit(usage)
