"""The seed study behind notebook 09's claims: its toy models and SAEs, trained live in the notebook
with seed 0, trained here with seeds 0-3 and measured with the course's reference functions.

    python -m maintainer.superposition_study [course_utils/zoo_weights/studies/superposition.seeds.json]
    python -m maintainer.superposition_study sae   (the shipped SAE on a course model, its card and seed study)

Writes SETTINGS (the notebook checks that its own are the same) and, per seed, every number the
notebook asserts. About a minute per seed on one CPU thread.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from course_utils import sae as S
from course_utils import superposition as sp

OUT = Path(__file__).resolve().parent.parent / "course_utils" / "zoo_weights" / "studies" / "superposition.seeds.json"
SEEDS = (0, 1, 2, 3)
SETTINGS = {
    "train": {"steps": 1000, "batch": 512, "lr": 0.02},
    "five_in_two": {"n_features": 5, "n_hidden": 2, "importance_decay": 0.9,
                    "sparsity": [0.0, 0.7, 0.9, 0.97, 0.99, 0.999]},
    "phase": {"densities": 7, "ratios": 7, "density_range": [-2, 0], "ratio_range": [-1, 1], "inits": 4},
    "privileged": {"n_features": 6, "n_hidden": 6, "n_instances": 4, "sparsity": 0.5},
    "sae": {"n_features": 64, "d_in": 32, "p_active": 0.04, "n_activations": 20000, "d_sae": 128,
            "l1_coefficients": [0.01, 0.03, 0.1, 0.3, 1.0], "main_l1": 0.1, "steps": 800, "batch": 256, "lr": 0.003},
}


def _five_in_two(seed: int) -> tuple[sp.ToyModel, torch.Tensor, torch.Tensor]:
    s = SETTINGS["five_in_two"]
    sparsity = torch.tensor(s["sparsity"])
    importance = (s["importance_decay"] ** torch.arange(s["n_features"]).float()).repeat(len(sparsity), 1)
    model = sp.ToyModel(len(sparsity), s["n_features"], s["n_hidden"], seed=seed)
    sp.train_toy(model, importance, sparsity, seed=seed, progress=False, **SETTINGS["train"])
    return model, importance, sparsity


def _phase_grid() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(densities, ratios, sparsity per instance, importance per instance): instance = density * ratios + ratio."""
    s = SETTINGS["phase"]
    densities = torch.logspace(*s["density_range"], s["densities"])
    ratios = torch.logspace(*s["ratio_range"], s["ratios"])
    D, R = torch.meshgrid(densities, ratios, indexing="ij")
    importance = torch.stack([torch.ones(R.numel()), R.flatten()], dim=1)
    return densities, ratios, 1 - D.flatten(), importance


def _phase(seed: int) -> torch.Tensor:
    """The phase of each cell, from the lowest-loss of `inits` models trained for it."""
    densities, ratios, sparsity, importance = _phase_grid()
    k, cells = SETTINGS["phase"]["inits"], len(sparsity)
    sparsity, importance = sparsity.repeat(k), importance.repeat(k, 1)  # instance = init * cells + cell
    model = sp.ToyModel(len(sparsity), 2, 1, seed=seed)
    sp.train_toy(model, importance, sparsity, seed=seed, progress=False, **SETTINGS["train"])
    best = sp.evaluate_toy(model, importance, sparsity, seed=seed + 1).view(k, cells).argmin(0)
    phases = sp.two_feature_phase(model.W.detach()).view(k, cells)
    return phases.gather(0, best[None])[0].view(len(densities), len(ratios))


def _privileged(seed: int, hidden_relu: bool) -> tuple[sp.ToyModel, torch.Tensor, torch.Tensor]:
    s = SETTINGS["privileged"]
    sparsity = torch.full((s["n_instances"],), s["sparsity"])
    importance = torch.ones(s["n_instances"], s["n_features"])
    model = sp.ToyModel(s["n_instances"], s["n_features"], s["n_hidden"], hidden_relu=hidden_relu, seed=seed)
    sp.train_toy(model, importance, sparsity, seed=seed, progress=False, **SETTINGS["train"])
    return model, importance, sparsity


def _sae_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(true directions [feature, d_in], activations [n, d_in])."""
    s = SETTINGS["sae"]
    directions = S.random_dictionary(s["n_features"], s["d_in"], seed=seed)
    x, _ = S.sparse_activations(s["n_activations"], directions, s["p_active"], torch.Generator().manual_seed(seed))
    return directions, x


def _train_one_sae(x: torch.Tensor, l1: float, seed: int, step=None, progress=False) -> S.SparseAutoencoder:
    s = SETTINGS["sae"]
    sae = S.SparseAutoencoder(s["d_in"], s["d_sae"], seed=seed)
    S.train_sae(sae, x, l1, steps=s["steps"], batch=s["batch"], lr=s["lr"], seed=seed, step=step, progress=progress)
    return sae


def measure(seed: int) -> dict:
    """Every number notebook 09 asserts, for one seed."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    out = {}
    model, importance, sparsity = _five_in_two(seed)
    W = model.W.detach()
    out["five_in_two"] = {"norms": sp.feature_norms(W).tolist(), "represented": sp.represented(W).sum(1).tolist(),
                          "superposition": sp.superposition_measure(W).tolist()}
    out["phase"] = _phase(seed).tolist()
    for relu in (False, True):
        model, importance, sparsity = _privileged(seed, relu)
        W = model.W.detach()
        rotation = sp.random_rotation(W.shape[0], W.shape[1], seed=seed + 1000)
        out["privileged_relu" if relu else "privileged_linear"] = {
            "alignment": sp.neuron_alignment(W).mean().item(),
            "rotated_alignment": sp.neuron_alignment(rotation @ W).mean().item(),
            "loss": sp.evaluate_toy(model, importance, sparsity).tolist(),
            "rotated_loss": sp.evaluate_toy(sp.rotate_hidden(model, rotation), importance, sparsity).tolist(),
        }
    directions, x = _sae_data(seed)
    s = SETTINGS["sae"]
    random = S.feature_recovery(directions, S.random_dictionary(s["d_sae"], s["d_in"], seed=seed + 1000))
    out["sae_random"] = {"median": random.median().item(), "above_0.9": (random > 0.9).float().mean().item()}
    out["sae"] = {}
    for l1 in s["l1_coefficients"]:
        sae = _train_one_sae(x, l1, seed)
        with torch.no_grad():
            latents, reconstruction = sae(x[:5000])
        recovery = S.feature_recovery(directions, sae.W_dec.detach())
        out["sae"][str(l1)] = {"l0": S.l0(latents), "explained_variance": S.explained_variance(x[:5000], reconstruction),
                               "dead": S.dead_latents(latents), "median": recovery.median().item(),
                               "above_0.9": (recovery > 0.9).float().mean().item()}
    return out


def main(path: str | None = None) -> None:
    out = Path(path) if path else OUT
    if not out.parent.is_dir():
        raise ValueError(f"path must be in an existing directory, got {str(out)!r}")
    torch.set_num_threads(1)
    runs = {}
    for seed in SEEDS:
        start = time.time()
        runs[str(seed)] = measure(seed)
        print(f"seed {seed}: {time.time() - start:.0f} s", flush=True)
    out.write_text(json.dumps({"settings": SETTINGS, "seeds": list(SEEDS), "torch": torch.__version__, "runs": runs},
                              indent=1) + "\n")
    print(f"wrote {out}")




# ---- the SAE on a course model (notebook 09, section 7): shipped, with a card and a seed study ------------------

SAE_SEEDS = (100, 101, 102, 103)
STEERED_LATENTS = 10  # the token latents of highest precision that are steered


def course_sae_metrics(sae: S.SparseAutoencoder, recipe: dict) -> dict:
    """Everything notebook 09's section 7 asserts about one SAE, measured with the course's reference functions."""
    from course_utils import validate, zoo

    validate.instance(sae, S.SparseAutoencoder, "sae")

    acts, tokens, copied, scale = S.course_sae_data(recipe)
    model, language = zoo.load(recipe["model"]), zoo.language(recipe["model"])
    with torch.no_grad():
        latents, reconstruction = sae(acts)
    alive = (latents > 0).sum(0) >= 20
    token_precision, best_token = S.latent_precision(latents, tokens, model.cfg.d_vocab).nan_to_num(0).max(-1)
    token_latents = ((token_precision > 0.9) & alive).nonzero()[:, 0]
    copy_precision = S.latent_precision(latents, copied.long(), 2)[:, 1].nan_to_num(0) * alive
    order = token_latents[token_precision[token_latents].argsort(descending=True)][:STEERED_LATENTS]
    successors = language.transition_matrix() > 0
    test = language.sample(100, seed=recipe["sample_seed"] + 1).tokens
    g = torch.Generator().manual_seed(0)
    steer = {"base": [], "steered": [], "random": []}
    W = [sae.W_enc.detach(), sae.b_enc.detach(), sae.W_dec.detach(), sae.b_dec.detach()]
    for j in order.tolist():
        value = latents[:, j].max().item()
        random_dec = W[2].clone()
        r = torch.randn(W[2].shape[1], generator=g)
        random_dec[j] = r / r.norm()

        def edit(resid, dec):
            return S.clamp_latent(resid / scale, W[0], W[1], dec, W[3], j, value) * scale

        succ = successors[best_token[j]]
        steer["base"].append(S.successor_mass(model, test, recipe["hook"], None, succ))
        steer["steered"].append(S.successor_mass(model, test, recipe["hook"], lambda x: edit(x, W[2]), succ))
        steer["random"].append(S.successor_mass(model, test, recipe["hook"], lambda x: edit(x, random_dec), succ))
    return {"l0": S.l0(latents), "explained_variance": S.explained_variance(acts, reconstruction),
            "dead": S.dead_latents(latents), "token_latents": len(token_latents),
            "distinct_tokens": len(set(best_token[token_latents].tolist())),
            "best_copy_precision": copy_precision.max().item(), "copied_share": copied.float().mean().item(),
            "steered_latents": order.tolist(), "steering": steer}


def build_course_sae() -> None:
    """Train the shipped SAE (seed 100), write its safetensors and card, with the seed study of SAE_SEEDS."""
    from safetensors.torch import save_file

    from course_utils import zoo

    torch.set_num_threads(1)
    recipe = S.course_sae_recipe()
    study = {}
    for seed in SAE_SEEDS:
        start = time.time()
        sae, losses = S.train_course_sae(recipe, seed=seed, progress=False)
        study[str(seed)] = course_sae_metrics(sae, recipe)
        print(f"SAE seed {seed}: {time.time() - start:.0f} s", flush=True)
        if seed == recipe["seed"]:
            shipped, shipped_losses = sae, losses
    S.SAE_DIR.mkdir(exist_ok=True)
    path = S.SAE_DIR / f"{S.COURSE_SAE}.safetensors"
    save_file({k: v.detach().contiguous() for k, v in shipped.state_dict().items()}, str(path))
    card = {"name": S.COURSE_SAE, "recipe": recipe, "torch": torch.__version__, "sha256": zoo.sha256(path),
            "losses": [round(x, 6) for x in shipped_losses.tolist()], "metrics": study[str(recipe["seed"])],
            "seed_study": {"seeds": list(SAE_SEEDS), "runs": study}}
    (S.SAE_DIR / f"{S.COURSE_SAE}.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {path} and its card")


if __name__ == "__main__":
    if sys.argv[1:] == ["sae"]:
        build_course_sae()
    else:
        main(*sys.argv[1:])
