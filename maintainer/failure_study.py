"""Notebook 11's seed study: every number its prose asserts about a trained model, measured on the
shipped model (seed 0) and on the same recipe trained with seeds 1-3, written to
course_utils/zoo_weights/studies/failure_modes.seeds.json.

    python -m maintainer.failure_study WORKDIR SEED [SEED ...]

Runs resume from WORKDIR/NAME_seedS (the same folders as `zoo_build seeds`), one at a time. The
command re-runs itself with the zoo's numerics (course_utils/zoo_numerics.env).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from course_utils import validate, zoo
from course_utils.train import list_checkpoints, load_model
from course_utils.zoo import RECIPES, _train_from
from maintainer.zoo_build import with_zoo_numerics, write_json

MODELS = ("attn_only_2l", "ln_mlp_4l")


def trained(name: str, seed: int, workdir: str | Path):
    """(model, language) of NAME's recipe with `seed` (model init and language); seed 0 is the shipped model."""
    validate.one_of(name, MODELS, "name", "notebook 11's models")
    validate.integer(seed=seed)
    recipe = RECIPES[name]
    if seed == 0:
        return zoo.load(name), zoo.language(name)
    cfg, language = replace(recipe.model, seed=seed), replace(recipe.language, seed=seed)
    ckpt_dir = Path(workdir) / f"{name}_seed{seed}"
    _train_from(cfg, language, recipe.train, ckpt_dir, progress=True)
    return load_model(list_checkpoints(ckpt_dir)[-1]).eval(), language


def run(workdir: str | Path, seeds) -> dict:
    from course_utils.failure_modes import study

    if not isinstance(seeds, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in seeds):
        raise ValueError(f"seeds must be a list of positive ints (seed 0 is the shipped models, always included), got {seeds!r}")
    runs = {}
    for seed in [0, *seeds]:
        models = {name: trained(name, seed, workdir) for name in MODELS}
        runs[str(seed)] = study(models["attn_only_2l"][0], models["ln_mlp_4l"][0], models["attn_only_2l"][1])
        print(seed, runs[str(seed)], flush=True)
    result = {"models": list(MODELS), "seeds": [0, *seeds], "runs": runs}
    out = zoo.ZOO_DIR / "studies" / "failure_modes.seeds.json"
    write_json(out, result)
    return result


def add_prev_scores(workdir: str | Path, seeds) -> dict:
    """Add each seed's layer-0 previous-token scores (attn_only_2l only) to the study's JSON, for a
    study recorded before `study` measured them. The other numbers are left as they are."""
    from course_utils.failure_modes import prev_token_scores

    out = zoo.ZOO_DIR / "studies" / "failure_modes.seeds.json"
    result = json.loads(out.read_text())
    for seed in seeds:
        model, language = trained("attn_only_2l", seed, workdir)
        result["runs"][str(seed)]["prev_scores"] = prev_token_scores(model, language)
        print(seed, result["runs"][str(seed)]["prev_scores"], flush=True)
    write_json(out, result)
    return result


if __name__ == "__main__":
    with_zoo_numerics("maintainer.failure_study")
    if len(sys.argv) >= 3 and sys.argv[1] == "prev-scores":  # prev-scores WORKDIR SEED...
        add_prev_scores(sys.argv[2], [int(s) for s in sys.argv[3:]])
    elif len(sys.argv) >= 3 and sys.argv[1] == "train":  # train only: WORKDIR SEED...
        for s in sys.argv[3:]:
            for n in MODELS:
                trained(n, int(s), sys.argv[2])
    elif len(sys.argv) >= 3:
        run(sys.argv[1], [int(s) for s in sys.argv[2:]])
    else:
        sys.exit("usage: python -m maintainer.failure_study WORKDIR SEED [SEED ...]")
