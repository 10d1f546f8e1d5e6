"""Building the zoo: train each recipe of `course_utils.zoo.RECIPES`, write its weights, history and
card (with the checksum of every file and the numerics it was built with), and record seed studies.

    python -m maintainer.zoo_build build [NAME ...]
    python -m maintainer.zoo_build seeds NAME WORKDIR SEED [SEED ...]
    python -m maintainer.zoo_build icl-seeds NAME WORKDIR K LAYER SEED [SEED ...]
    python -m maintainer.zoo_build phase-change

The command re-runs itself with the zoo's numerics (course_utils/zoo_numerics.env) when they are not
in force, since torch reads them only when it is imported.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from course_utils import numerics, validate, zoo
from course_utils.icl_tasks import ICLTasks
from course_utils.in_context_regression import LinearRegressionTasks, study as regression_study
from course_utils.modular_addition import ModularAddition
from course_utils.multiple_choice import MultipleChoice
from course_utils.request_tasks import Requests
from course_utils.train import atomic_save, atomic_write, list_checkpoints, load_model
from course_utils.zoo import (
    RECIPES,
    Recipe,
    _history_from,
    _train_from,
    card,
    evaluate,
    evaluate_grokking,
    evaluate_icl,
    evaluate_mc,
    evaluate_request_tasks,
    load,
    sha256,
    story,
)


def write_json(path: Path, data: dict, indent: int | None = 1) -> None:
    """Write a JSON file atomically (`train.atomic_write`). indent=None writes it compact (the
    clamping study: 80 runs)."""
    text = json.dumps(data, indent=indent, separators=None if indent else (",", ":")) + "\n"  # a TypeError names what cannot be written
    atomic_write(path, text.encode())


def _write_model_files(name: str, info: dict, model, hist: dict | None) -> dict:
    """Write NAME's weights (and history), then its card with their checksums and build numerics."""
    meta = {"card": json.dumps({"name": name, "model": info["model"]})}
    files = {f"{name}.safetensors": model.state_dict()}
    if hist is not None:
        files[f"{name}.history.safetensors"] = {f"step_{s:06d}.{k}": v for s, m in hist.items()
                                                for k, v in m.state_dict().items()}
    for filename, tensors in files.items():
        atomic_save(tensors, zoo.ZOO_DIR / filename, meta)
    info["files"] = {filename: sha256(zoo.ZOO_DIR / filename) for filename in files}
    info["numerics"] = numerics.current()
    old = zoo.ZOO_DIR / f"{name}.json"
    if old.exists():  # a seed study is expensive: keep the one already recorded
        previous = json.loads(old.read_text())
        info.update({key: previous[key] for key in ("seed_study", "phase_change") if key in previous})
    write_json(zoo.ZOO_DIR / f"{name}.json", info)
    return info


def build(name: str, progress: bool = True) -> dict:
    """Train NAME from its recipe and write its weights, history and card into zoo.ZOO_DIR."""
    validate.one_of(name, sorted(RECIPES), "name", "the recipes")
    recipe = RECIPES[name]
    if isinstance(recipe.language, ICLTasks):
        return _build_icl(name, recipe, progress)
    if isinstance(recipe.language, Requests):  # notebook 12: final weights only
        return _build_final(name, recipe, progress, evaluate_request_tasks)
    if isinstance(recipe.language, ModularAddition):  # notebook 10: the progress measures at every checkpoint
        return _build_with_history(name, recipe, progress, lambda model, hist: evaluate_grokking(hist, recipe.language))
    if isinstance(recipe.language, LinearRegressionTasks):  # notebook 13: the study of the final model
        return _build_with_history(name, recipe, progress, lambda model, hist: regression_study(model, recipe.language))
    if isinstance(recipe.language, MultipleChoice):  # notebook 08: the mutation table; the history for proto-heads
        return _build_with_history(name, recipe, progress, lambda model, hist: evaluate_mc(model, recipe.language))
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
    return _write_model_files(name, info, model, hist)


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
    return _write_model_files(name, info, model, None)


def _card(name: str, recipe: Recipe, result, metrics: dict, history_steps: list[int] | None = None) -> dict:
    """The card of a model whose data names its own class (`data_kind`): recipe, losses, metrics, and
    the steps of its history when one is shipped."""
    info = {
        "name": name,
        "description": recipe.description,
        "model": recipe.model.to_dict(),
        "data_kind": type(recipe.language).__name__,
        "language": recipe.language.to_dict(),
        "train": {**recipe.train.to_dict(), "device": "cpu"},
        "torch_version": torch.__version__,
    }
    if history_steps is not None:
        info["history_steps"] = history_steps
    return {**info, "losses": [round(x, 4) for x in result.losses], "metrics": metrics}


def _build_final(name: str, recipe: Recipe, progress: bool, metrics) -> dict:
    """build() for a model whose card's metrics come from `metrics(model, language)` and whose history
    nothing studies (notebook 12): final weights and card (`data_kind` names the data's class)."""
    model, result = _train_from(recipe.model, recipe.language, recipe.train, None, progress)
    return _write_model_files(name, _card(name, recipe, result, metrics(model, recipe.language)), model, None)


def _build_with_history(name: str, recipe: Recipe, progress: bool, metrics) -> dict:
    """build() for a model whose card's metrics come from `metrics(model, history)` (notebooks 08 and
    10): weights, the whole history, and the card (`data_kind` names the data's class)."""
    with tempfile.TemporaryDirectory() as tmp:
        model, result = _train_from(recipe.model, recipe.language, recipe.train, tmp, progress)
        hist = _history_from(tmp, recipe.model)
    return _write_model_files(name, _card(name, recipe, result, metrics(model, hist), sorted(hist)), model, hist)


def seed_study(name: str, seeds, workdir: str | Path, progress: bool = True) -> dict:
    """Train NAME's recipe with other seeds (model init and language) and measure `story` for each.

    Runs resume from `workdir`, so an interrupted study loses nothing.
    """
    validate.one_of(name, sorted(RECIPES), "name", "the recipes")
    recipe = RECIPES[name]
    results = {}
    for seed in seeds:
        cfg, language = replace(recipe.model, seed=seed), replace(recipe.language, seed=seed)
        ckpt_dir = Path(workdir) / f"{name}_seed{seed}"
        _train_from(cfg, language, recipe.train, ckpt_dir, progress)
        if isinstance(language, LinearRegressionTasks):  # notebook 13: the final model's study
            results[str(seed)] = regression_study(load_model(list_checkpoints(ckpt_dir)[-1]).eval(), language)
            continue
        measure = evaluate_grokking if isinstance(language, ModularAddition) else story
        results[str(seed)] = measure(_history_from(ckpt_dir, cfg), language)
    return results


def record_seed_study(name: str, seeds, workdir: str | Path) -> dict:
    """Run seed_study and write its results into NAME's card (with seed 0, the shipped run); for a
    multiple-choice model, `mc_seed_study`."""
    if name in RECIPES and isinstance(RECIPES[name].language, MultipleChoice):
        return mc_seed_study(name, seeds, workdir)["spread"]
    if name in RECIPES and isinstance(RECIPES[name].language, Requests):
        return request_tasks_seed_study(name, seeds, workdir)["spread"]
    info = card(name)
    if info.get("data_kind") == "LinearRegressionTasks":  # measure the shipped model with today's `study`, as the seeds are
        info["metrics"] = regression_study(zoo.load(name).eval(), zoo.language(name))
    shipped = info["metrics"] if info.get("data_kind") in ("ModularAddition", "LinearRegressionTasks") else info["metrics"]["story"]
    runs = {"0": shipped, **seed_study(name, seeds, workdir)}
    info["seed_study"] = {"seeds": [int(s) for s in runs], "runs": runs}
    write_json(zoo.ZOO_DIR / f"{name}.json", info)
    return info["seed_study"]


def record_phase_change(two: str = "attn_only_2l", one: str = "attn_only_1l") -> dict:
    """From both cards' seed studies: the phase change of every seed, and its seed-to-seed spread,
    written into the two-layer model's card (notebook 02's thresholds come from this spread)."""
    from course_utils.metrics import phase_change

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
    write_json(zoo.ZOO_DIR / f"{two}.json", info)
    return info["phase_change"]


def icl_seed_study(name: str, seeds, workdir: str | Path, k: int, layer: int, progress: bool = True) -> dict:
    """Train NAME's in-context-tasks recipe with other seeds (model init and task tables) and run
    `function_vectors.study` on each, with the shipped model as seed 0; written to
    zoo_weights/studies/NAME.seeds.json (notebook 07's thresholds come from it). Resumable."""
    from course_utils.function_vectors import study

    validate.one_of(name, sorted(RECIPES), "name", "the recipes")
    recipe = RECIPES[name]
    if not isinstance(recipe.language, ICLTasks):
        icl = [n for n, r in RECIPES.items() if isinstance(r.language, ICLTasks)]
        raise ValueError(f"name must be a recipe of in-context tasks (ICLTasks): one of {icl}, got {name!r}")
    runs = {"0": study(load(name), recipe.language, k, layer)}
    for seed in seeds:
        cfg, language = replace(recipe.model, seed=seed), replace(recipe.language, seed=seed)
        ckpt_dir = Path(workdir) / f"{name}_seed{seed}"
        _train_from(cfg, language, recipe.train, ckpt_dir, progress)
        runs[str(seed)] = study(load_model(list_checkpoints(ckpt_dir)[-1]).eval(), language, k, layer)
    tasks = recipe.language.tasks
    spread = {key: [min(r[t][key] for r in runs.values() for t in tasks), max(r[t][key] for r in runs.values() for t in tasks)]
              for key in ("zero_shot", "few_shot", "shuffled_labels", "random_labels", "zero_shot_with_fv")}
    spread["top_k_share_of_positive_aie"] = [min(r["top_k_share_of_positive_aie"] for r in runs.values()),
                                             max(r["top_k_share_of_positive_aie"] for r in runs.values())]
    result = {"name": name, "k": k, "layer": layer, "seeds": [int(s) for s in runs], "runs": runs, "spread": spread}
    out = zoo.ZOO_DIR / "studies" / f"{name}.seeds.json"
    out.parent.mkdir(exist_ok=True)
    write_json(out, result)
    return result


REQUESTS_LAYER = 2  # notebook 12 finds, ablates and adds the direction at blocks.2.hook_resid_pre


def request_tasks_seed_study(name: str, seeds, workdir: str | Path, layer: int = REQUESTS_LAYER, progress: bool = True) -> dict:
    """Train NAME's requests recipe with other seeds (model init, forbidden items, data) and run
    `refusal.study` on each, with the shipped model as seed 0; written to
    zoo_weights/studies/NAME.seeds.json with the spread (min, max over the seeds) of every number
    notebook 12 asserts. Resumable from workdir."""
    from course_utils.refusal import study

    validate.one_of(name, sorted(RECIPES), "name", "the recipes")
    recipe = RECIPES[name]
    if not isinstance(recipe.language, Requests):
        kinds = [n for n, r in RECIPES.items() if isinstance(r.language, Requests)]
        raise ValueError(f"name must be a recipe of requests (Requests): one of {kinds}, got {name!r}")
    runs = {"0": study(load(name), recipe.language, layer)}
    for seed in seeds:
        cfg, language = replace(recipe.model, seed=seed), replace(recipe.language, seed=seed)
        ckpt_dir = Path(workdir) / f"{name}_seed{seed}"
        _train_from(cfg, language, replace(recipe.train, checkpoint_every=recipe.train.steps), ckpt_dir, progress)
        runs[str(seed)] = study(load_model(list_checkpoints(ckpt_dir)[-1]).eval(), language, layer)

    def span(values):
        values = list(values)
        return [round(min(values), 4), round(max(values), 4)]

    r = runs.values()
    spread = {
        "clean_refusal_of_refused": span(x["clean"]["refused"]["refusal"] for x in r),
        "clean_refusal_of_harmless": span(x["clean"]["harmless"]["refusal"] for x in r),
        "clean_accuracy_harmless": span(x["clean"]["harmless"]["accuracy"] for x in r),
        "separation": span(x["separation"] for x in r),
        "ablated_refusal_of_refused": span(x["ablated"]["refused"]["refusal"] for x in r),
        "ablated_task_of_refused": span(x["ablated"]["refused"]["task"] for x in r),
        "ablated_task_when_answer_allowed": span(x["ablated_task_when_answer_allowed"] for x in r),
        "ablated_accuracy_harmless": span(x["ablated"]["harmless"]["accuracy"] for x in r),
        "ablated_accuracy_drop_by_task": span(t["clean"] - t["ablated"] for x in r for t in x["accuracy_by_task"].values()),
        "added_refusal_of_harmless": span(x["added"]["refusal"] for x in r),
        "random_ablated_refusal_min": span(min(x["random_ablated_refusal"]) for x in r),
        "random_added_refusal_max": span(max(x["random_added_refusal"]) for x in r),
    }
    n_layers = len(runs["0"]["sweep"]["separation"])
    for key in ("separation", "added_refusal"):
        spread[f"sweep_{key}"] = [span(x["sweep"][key][i] for x in r) for i in range(n_layers)]
    spread["sweep_ablated_refusal"] = [None if runs["0"]["sweep"]["ablated_refusal"][i] is None else
                                       span(x["sweep"]["ablated_refusal"][i] for x in r) for i in range(n_layers)]
    for vec in ("mean_difference", "function_vector", "function_vector_same_norm"):
        for key in ("refusal", "accuracy_beneath"):
            spread[f"steer_{vec}_{key}"] = span(x["steering"][vec][key] for x in r)
    for vec in ("mean_difference", "function_vector"):
        spread[f"steer_{vec}_norm"] = span(x["steering"]["norms"][vec] for x in r)
    for key in ("refusal", "accuracy_beneath"):
        spread[f"steer_one_pair_{key}_min"] = span(min(p[key] for p in x["steering"]["one_pair"]) for x in r)
        spread[f"steer_one_pair_{key}_median"] = span(sorted(p[key] for p in x["steering"]["one_pair"])[len(x["steering"]["one_pair"]) // 2] for x in r)
    result = {"name": name, "layer": layer, "seeds": [int(s) for s in runs], "runs": runs, "spread": spread}
    out = zoo.ZOO_DIR / "studies" / f"{name}.seeds.json"
    out.parent.mkdir(exist_ok=True)
    write_json(out, result)
    return result


def _mc_spread(runs: dict) -> dict:
    """min and max over the seeds of the numbers notebook 08 asserts."""
    def span(values):
        values = list(values)
        return [min(values), max(values)]

    spread = {
        "clean_accuracy": span(r["study"]["clean"]["accuracy"] for r in runs.values()),
        "best_label_score": span(r["study"]["best_label_score"] for r in runs.values()),
        "best_option_score": span(r["study"]["best_option_score"] for r in runs.values()),
        "ablated_answer_heads_accuracy": span(r["study"]["ablated_answer_heads"]["accuracy"] for r in runs.values()),
        "n_answer_heads": span(len(r["study"]["answer_heads"]) for r in runs.values()),
        "best_ov_label_accuracy": span(max(r["study"]["ov_label_accuracy"]) for r in runs.values()),
    }
    for k in runs["0"]["study"]["compressed"]["by_k"]:
        spread[f"compressed_k{k}_accuracy"] = span(r["study"]["compressed"]["by_k"][k]["accuracy"] for r in runs.values())
    spread["compressed_random_k1_accuracy"] = span(r["study"]["compressed"]["random_k1"]["accuracy"] for r in runs.values())
    for what in ("positions", "labels"):
        for key in ("follows_label", "follows_position"):
            spread[f"swap_{what}_{key}"] = span(r["study"]["position_or_label"][what][key] for r in runs.values())
    for row in runs["0"]["study"]["mutations"]:
        for key in ("accuracy", "loss"):
            spread[f"mutation {row} {key}"] = span(r["study"]["mutations"][row][key] for r in runs.values())
    return spread


def mc_seed_study(name: str, seeds, workdir: str | Path, progress: bool = True) -> dict:
    """Train NAME's multiple-choice recipe with other seeds (model init, relation and data) and run
    `correct_letter.study` on the final model and `correct_letter.proto_heads` on the history of
    each, with the shipped model as seed 0; written to zoo_weights/studies/NAME.seeds.json with the
    seeds' spread (notebook 08's thresholds come from it). Resumable."""
    from course_utils.correct_letter import proto_heads, study

    validate.one_of(name, sorted(RECIPES), "name", "the recipes")
    recipe = RECIPES[name]
    if not isinstance(recipe.language, MultipleChoice):
        mc = [n for n, r in RECIPES.items() if isinstance(r.language, MultipleChoice)]
        raise ValueError(f"name must be a recipe of multiple-choice questions: one of {mc}, got {name!r}")
    runs = {"0": {"study": study(load(name), recipe.language), "proto": proto_heads(zoo.history(name), recipe.language)}}
    for seed in seeds:
        cfg, language = replace(recipe.model, seed=seed), replace(recipe.language, seed=seed)
        ckpt_dir = Path(workdir) / f"{name}_seed{seed}"
        _train_from(cfg, language, recipe.train, ckpt_dir, progress)
        hist = _history_from(ckpt_dir, cfg)
        runs[str(seed)] = {"study": study(hist[max(hist)], language), "proto": proto_heads(hist, language)}
    result = {"name": name, "seeds": [int(s) for s in runs], "runs": runs, "spread": _mc_spread(runs)}
    out = zoo.ZOO_DIR / "studies" / f"{name}.seeds.json"
    out.parent.mkdir(exist_ok=True)
    write_json(out, result)
    return result


def with_zoo_numerics(module: str) -> None:
    """Re-run `python -m module` with the zoo's numerics when they are not in force: torch reads them
    only when it is imported, so setting them now would change nothing."""
    if not isinstance(module, str) or not module.startswith("maintainer."):
        raise ValueError(f"module must name a maintainer command such as 'maintainer.zoo_build', got {module!r}")
    wanted = numerics.zoo_environment()
    if numerics.applies_here() and any(os.environ.get(k) != v for k, v in wanted.items()):
        print(f"re-running with {wanted} (course_utils/zoo_numerics.env)", file=sys.stderr)
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], {**os.environ, **wanted})


if __name__ == "__main__":
    usage = ("usage: python -m maintainer.zoo_build build [NAME ...] | seeds NAME WORKDIR SEED [SEED ...]"
             " | icl-seeds NAME WORKDIR K LAYER SEED [SEED ...] | phase-change")
    with_zoo_numerics("maintainer.zoo_build")
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
