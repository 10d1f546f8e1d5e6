"""Sparse autoencoders (notebook 09), after Bricken et al. (2023) and Cunningham et al. (2023).

An SAE rewrites an activation `x` [d_in] as a sparse, non-negative combination of `d_sae` learned
directions (the rows of `W_dec`): latents `f = ReLU((x - b_dec) W_enc + b_enc)`, reconstruction
`x' = f W_dec + b_dec`. Its loss is the squared error plus an L1 penalty on the latents, each
weighted by its decoder row's norm (so the penalty cannot be dodged by shrinking `f` and growing
`W_dec`); after each step the decoder rows are put back to unit norm. Notebook 09 writes
`sae_forward`, `sae_loss`, `sae_training_step` and `feature_recovery`; the rest is the course's.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from safetensors.torch import load_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import validate, zoo


class SparseAutoencoder(nn.Module):
    """W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in] (unit rows), b_dec [d_in]."""

    def __init__(self, d_in: int, d_sae: int, seed: int = 0):
        super().__init__()
        validate.positive(d_in=d_in, d_sae=d_sae)
        validate.integer(seed=seed)
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(d_sae, d_in, generator=g)
        W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone())  # encoder starts as the decoder's transpose
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def forward(self, x: Float[Tensor, "batch d_in"]) -> tuple[Tensor, Tensor]:
        """(latents [batch, d_sae], reconstruction [batch, d_in])."""
        return sae_forward(x, self.W_enc, self.b_enc, self.W_dec, self.b_dec)


def sae_forward(x: Float[Tensor, "batch d_in"], W_enc: Float[Tensor, "d_in d_sae"], b_enc: Float[Tensor, " d_sae"],
                W_dec: Float[Tensor, "d_sae d_in"], b_dec: Float[Tensor, " d_in"]) -> tuple[Tensor, Tensor]:
    """(latents, reconstruction): f = ReLU((x - b_dec) W_enc + b_enc), x' = f W_dec + b_dec."""
    validate.tensor(x, "x", "batch d_in", "float")
    validate.tensor(W_enc, "W_enc", "d_in d_sae", "float")
    d_in, d_sae = W_enc.shape
    validate.shape_is(x[0], "x[0]", (d_in,), "d_in entries, as W_enc's rows")
    validate.shape_is(b_enc, "b_enc", (d_sae,), "d_sae entries")
    validate.shape_is(W_dec, "W_dec", (d_sae, d_in), "[d_sae, d_in], W_enc's shape transposed")
    validate.shape_is(b_dec, "b_dec", (d_in,), "d_in entries")
    latents = F.relu((x - b_dec) @ W_enc + b_enc)
    return latents, latents @ W_dec + b_dec


def sae_loss(x: Float[Tensor, "batch d_in"], latents: Float[Tensor, "batch d_sae"],
             reconstruction: Float[Tensor, "batch d_in"], W_dec: Float[Tensor, "d_sae d_in"],
             l1_coefficient: float) -> Float[Tensor, ""]:
    """Mean over the batch of ||x - x'||^2 + l1_coefficient * sum_j f_j ||W_dec[j]||."""
    validate.tensor(x, "x", "batch d_in", "float")
    validate.shape_is(reconstruction, "reconstruction", tuple(x.shape), "the shape of x")
    validate.tensor(W_dec, "W_dec", "d_sae d_in", "float")
    validate.shape_is(latents, "latents", (x.shape[0], W_dec.shape[0]), "[batch, d_sae]")
    validate.non_negative(l1_coefficient=l1_coefficient)
    squared_error = (reconstruction - x).pow(2).sum(-1)
    l1 = (latents * W_dec.norm(dim=-1)).sum(-1)
    return (squared_error + l1_coefficient * l1).mean()


def sae_training_step(sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, x: Float[Tensor, "batch d_in"],
                      l1_coefficient: float) -> Float[Tensor, ""]:
    """One step: loss, gradients, the optimizer's step, then the decoder rows back to unit norm. Returns the loss."""
    validate.instance(sae, SparseAutoencoder, "sae")
    validate.instance(optimizer, torch.optim.Optimizer, "optimizer")
    latents, reconstruction = sae_forward(x, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)
    loss = sae_loss(x, latents, reconstruction, sae.W_dec, l1_coefficient)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        sae.W_dec /= sae.W_dec.norm(dim=-1, keepdim=True)
    return loss.detach()


def train_sae(sae: SparseAutoencoder, activations: Float[Tensor, "n d_in"], l1_coefficient: float, steps: int = 2000,
              batch: int = 512, lr: float = 3e-3, seed: int = 0, step=None, progress: bool = True) -> Float[Tensor, " step"]:
    """Train `sae` with Adam on random batches of `activations`; return the loss at each step.

    step(sae, optimizer, x, l1_coefficient) defaults to the course's `sae_training_step`; notebook 09
    passes the learner's.
    """
    validate.instance(sae, SparseAutoencoder, "sae")
    validate.tensor(activations, "activations", "n d_in", "float")
    validate.shape_is(activations[0], "activations[0]", (sae.W_dec.shape[1],), "one activation of d_in entries")
    validate.non_negative(l1_coefficient=l1_coefficient)
    validate.positive(steps=steps, batch=batch)
    validate.positive_number(lr=lr)
    step = step or sae_training_step
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    losses = torch.empty(steps)
    with torch.enable_grad():
        for i in tqdm(range(steps), disable=not progress, desc="SAE", leave=False):
            rows = torch.randint(len(activations), (batch,), generator=g)
            losses[i] = step(sae, optimizer, activations[rows], l1_coefficient)
    return losses


def feature_recovery(true_directions: Float[Tensor, "feature d_in"],
                     W_dec: Float[Tensor, "d_sae d_in"]) -> Float[Tensor, " feature"]:
    """For each true feature, the largest cosine similarity between its direction and any decoder row."""
    validate.tensor(true_directions, "true_directions", "feature d_in", "float")
    validate.tensor(W_dec, "W_dec", "d_sae d_in", "float")
    cos = F.normalize(true_directions, dim=-1) @ F.normalize(W_dec, dim=-1).T  # [feature, d_sae]
    return cos.max(-1).values


def random_dictionary(d_sae: int, d_in: int, seed: int = 0) -> Float[Tensor, "d_sae d_in"]:
    """d_sae random unit directions: the baseline an SAE's decoder must beat."""
    validate.positive(d_sae=d_sae, d_in=d_in)
    validate.integer(seed=seed)
    W = torch.randn(d_sae, d_in, generator=torch.Generator().manual_seed(seed))
    return W / W.norm(dim=-1, keepdim=True)


def l0(latents: Float[Tensor, "batch d_sae"]) -> float:
    """The mean number of latents active (> 0) per input."""
    validate.tensor(latents, "latents", "batch d_sae", "float")
    return (latents > 0).float().sum(-1).mean().item()


def dead_latents(latents: Float[Tensor, "batch d_sae"]) -> int:
    """How many latents are zero on every input of the batch."""
    validate.tensor(latents, "latents", "batch d_sae", "float")
    return int((latents.amax(0) <= 0).sum())


def explained_variance(x: Float[Tensor, "batch d_in"], reconstruction: Float[Tensor, "batch d_in"]) -> float:
    """1 - ||x - x'||^2 / ||x - mean(x)||^2, over the batch."""
    validate.tensor(x, "x", "batch d_in", "float")
    validate.shape_is(reconstruction, "reconstruction", tuple(x.shape), "the shape of x")
    return 1 - ((x - reconstruction).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()


def sparse_activations(n: int, directions: Float[Tensor, "feature d_in"], p_active: float,
                       generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Activations made of known features: (x [n, d_in], coefficients [n, feature]).

    Each feature is on with probability p_active, with a coefficient uniform in [0, 1]; x is the
    coefficients times the features' directions."""
    validate.positive(n=n)
    validate.tensor(directions, "directions", "feature d_in", "float")
    validate.fraction(p_active, "p_active")
    shape = (n, len(directions))
    coefficients = torch.rand(shape, generator=generator) * (torch.rand(shape, generator=generator) < p_active)
    return coefficients @ directions, coefficients


# ---- an SAE on a course model (notebook 09, section 7) -------------------------------------------------------

SAE_DIR = Path(__file__).resolve().parent / "zoo_weights" / "saes"
COURSE_SAE = "attn_only_2l.blocks.1.hook_resid_pre"


def clamp_latent(x: Float[Tensor, "... d_in"], W_enc: Float[Tensor, "d_in d_sae"], b_enc: Float[Tensor, " d_sae"],
                 W_dec: Float[Tensor, "d_sae d_in"], b_dec: Float[Tensor, " d_in"], latent: int,
                 value: float) -> Float[Tensor, "... d_in"]:
    """x with latent `latent` set to `value`: x + (value - f_latent(x)) W_dec[latent]. Everything the SAE does
    not explain (its error) is kept."""
    validate.tensor(x, "x", "... d_in", "float")
    validate.int_in(latent, 0, W_dec.shape[0] - 1, "latent", "a latent of the SAE")
    latents, _ = sae_forward(x.reshape(-1, x.shape[-1]), W_enc, b_enc, W_dec, b_dec)
    now = latents[:, latent].reshape(x.shape[:-1])
    return x + (value - now)[..., None] * W_dec[latent]


def latent_precision(latents: Float[Tensor, "n d_sae"], labels: Int[Tensor, " n"], n_classes: int) -> Float[Tensor, "d_sae n_classes"]:
    """For each latent and class: of the inputs on which the latent fires (> 0), the share whose label is
    that class (NaN for a latent that never fires)."""
    validate.tensor(latents, "latents", "n d_sae", "float")
    validate.tensor(labels, "labels", "n", "int")
    validate.shape_is(labels, "labels", (latents.shape[0],), "one label per input")
    validate.positive(n_classes=n_classes)
    fires = (latents > 0).float()
    counts = fires.T @ F.one_hot(labels, n_classes).float()  # [d_sae, class]
    return counts / fires.sum(0)[:, None]


def course_activations(model, tokens: Int[Tensor, "batch pos"], hook: str) -> Float[Tensor, "n d_model"]:
    """The activations at `hook` of every position of `tokens`, flattened to [batch * pos, d_model]."""
    validate.model(model)
    _, cache = model.run_with_cache(tokens, names_filter=hook)
    return cache[hook].flatten(0, 1)


def course_sae_recipe() -> dict:
    """How the shipped SAE was trained: model, hook, data, SAE size, penalty, optimiser, seed (its card's recipe)."""
    return {"model": "attn_only_2l", "hook": "blocks.1.hook_resid_pre", "n_sequences": 200, "sample_seed": 123,
            "d_sae": 256, "l1_coefficient": 0.1, "steps": 1500, "batch": 256, "lr": 0.003, "seed": 100}


def _recipe(recipe) -> None:
    validate.instance(recipe, dict, "recipe")
    missing = sorted(set(course_sae_recipe()) - set(recipe))
    if missing:
        raise ValueError(f"recipe must have every key of course_sae_recipe(), missing {missing}")


def course_sae_data(recipe: dict) -> tuple[Tensor, Tensor, Tensor, float]:
    """(activations divided by their mean norm [n, d_model], token at each [n], copied [n], the mean norm)."""
    _recipe(recipe)
    model, language = zoo.load(recipe["model"]), zoo.language(recipe["model"])
    batch = language.sample(recipe["n_sequences"], seed=recipe["sample_seed"])
    with torch.no_grad():
        raw = course_activations(model, batch.tokens, recipe["hook"])
    scale = raw.norm(dim=-1).mean().item()
    return raw / scale, batch.tokens.flatten(), batch.copied.flatten(), scale


def train_course_sae(recipe: dict | None = None, seed: int | None = None, progress: bool = True) -> tuple[SparseAutoencoder, Tensor]:
    """Train the course-model SAE from its recipe (about 10 s on one CPU thread); returns (sae, losses)."""
    recipe = course_sae_recipe() if recipe is None else recipe
    _recipe(recipe)
    seed = recipe["seed"] if seed is None else seed
    acts, _, _, _ = course_sae_data(recipe)
    sae = SparseAutoencoder(acts.shape[1], recipe["d_sae"], seed=seed)
    losses = train_sae(sae, acts, recipe["l1_coefficient"], steps=recipe["steps"], batch=recipe["batch"],
                       lr=recipe["lr"], seed=seed, progress=progress)
    return sae, losses


def load_course_sae(retrain: bool = False) -> tuple[SparseAutoencoder, dict]:
    """The shipped SAE on attn_only_2l's blocks.1.hook_resid_pre and its card (recipe, metrics, seed study);
    retrain=True trains it again from the card's recipe, with a progress bar."""
    validate.boolean(retrain=retrain)
    card = json.loads((SAE_DIR / f"{COURSE_SAE}.json").read_text())
    if retrain:
        sae, _ = train_course_sae(card["recipe"])
        return sae, card
    path = SAE_DIR / f"{COURSE_SAE}.safetensors"
    if zoo.sha256(path) != card["sha256"]:
        raise ValueError(f"{path} does not match the checksum in its card: reinstall the course, or rebuild it with "
                         f"`python -m maintainer.superposition_study sae`")
    tensors = load_file(path)
    sae = SparseAutoencoder(tensors["W_enc"].shape[0], tensors["W_enc"].shape[1])
    sae.load_state_dict(tensors, strict=True)
    return sae, card


def successor_mass(model, tokens: Int[Tensor, "batch pos"], hook: str, edit, successors: torch.Tensor) -> float:
    """The mean probability the model puts on `successors` (a [d_vocab] bool mask) at every position of
    `tokens`, with edit(resid) -> resid applied at `hook` (edit=None: the model as it is)."""
    validate.model(model)
    validate.shape_is(successors, "successors", (model.cfg.d_vocab,), "one flag per token of the vocabulary")
    hooks = [] if edit is None else [(hook, lambda resid, hook: edit(resid))]
    with torch.no_grad():
        probs = model.run_with_hooks(tokens, fwd_hooks=hooks).softmax(-1)
    return (probs * successors.float()).sum(-1).mean().item()
