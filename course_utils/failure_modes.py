"""When the tools lie (notebook 11): the measurements that show where the course's methods mislead,
and the diagnostics that catch them.

Most of the notebook reuses notebooks 03-07's functions (`ablation`, `lens`, `metrics`); this module
holds only what they lack:

- `value_weighted_pattern`: an attention pattern weighted by how much each attended position's value
  actually writes (Kobayashi et al. 2020): the diagnostic for "the head looks at X".
- `ablation_verdicts`: one head's cost under zero, mean and resample ablation, side by side.
- `removal_effect`: the true direct effect of a component on the correct token's logit, with the
  final LayerNorm recomputed, to set against direct logit attribution's frozen-scale estimate.
- `bias_share`: how much of a head's output is its constant bias term b_V W_O, which weight-based
  scores (composition, copying) never see.
- `copying_counterexamples`: two OV matrices on which the eigenvalue copying score and full-OV top-1
  accuracy disagree completely.
- `scrubbed_loss`: a causal-scrubbing-style test of "the induction heads read the previous token
  from head 0.0 in their keys and the current token from the embedding in their queries and values".
- `illusion_layer`, `subspace_patch`, `variation_split`: the subspace-patching illusion of Makelov et
  al. (2023) in its smallest form, and the check that catches it.
- `study`: every number notebook 11 asserts about a trained model, for the seed study
  (`maintainer/failure_study.py`).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import validate
from .ablation import METHODS, ablated_loss, head_output, k_path_ablation_hooks, loss_with_hooks
from .data import EVAL_SEED, SyntheticLanguage, repeated_tokens
from .lens import head_attribution, ln_final_params, unembed_resid
from .metrics import (composition_scores, copying_score, eigenvalue_copying_score, full_ov_circuit, head_scores,
                      induction_score, per_token_loss, prev_token_score, random_composition_baseline)
from .model import Config, Transformer

# ---- attention patterns against value-weighted attention ---------------------------------------------


def value_weighted_pattern(pattern: Float[Tensor, "batch head_index query_pos key_pos"],
                           v: Float[Tensor, "batch key_pos head_index d_head"],
                           W_O: Float[Tensor, "head_index d_head d_model"]) -> Float[Tensor, "batch head_index query_pos key_pos"]:
    """Each attention weight times the norm of what that key position writes through the head,
    ||v[b, k, h] W_O[h]||, each query's row rescaled to sum to 1: the share of the head's output at a
    query that comes from each key position (up to cancellation). Notebook 11's exercise."""
    validate.tensor(pattern, "pattern", "batch head_index query_pos key_pos", dtype="float")
    validate.tensor(v, "v", "batch key_pos head_index d_head", dtype="float")
    validate.tensor(W_O, "W_O", "head_index d_head d_model", dtype="float")
    if v.shape[0] != pattern.shape[0] or v.shape[1] != pattern.shape[3] or v.shape[2] != pattern.shape[1] \
            or W_O.shape[:2] != v.shape[2:]:
        raise ValueError(f"pattern [batch, head, query_pos, key_pos], v [batch, key_pos, head, d_head] and W_O "
                         f"[head, d_head, d_model] do not fit together: shapes {tuple(pattern.shape)}, "
                         f"{tuple(v.shape)}, {tuple(W_O.shape)}")
    written = torch.einsum("bkhd,hdm->bhkm", v, W_O).norm(dim=-1)  # [batch, head, key_pos]
    weighted = pattern * written[:, :, None, :]
    return weighted / weighted.sum(-1, keepdim=True).clamp_min(1e-12)


def attention_sink_model(d_vocab: int = 8, n_ctx: int = 12, sink_logit: float = 5.0):
    """A one-layer, one-head attention-only model built by hand (no training), the pattern-versus-
    information case of notebook 11. Token 0 is a beginning-of-sequence marker whose embedding is zero;
    position 0's embedding has only a "first position" coordinate (dimension 2), which the key reads:
    every query attends mostly to position 0. The values read only the token coordinates (dimensions
    0 and 1), so position 0 writes nothing. Put token 0 at position 0 of every sequence."""
    validate.at_least(d_vocab, 3, "d_vocab")
    validate.at_least(n_ctx, 2, "n_ctx")
    model = Transformer(Config(d_vocab=d_vocab, n_ctx=n_ctx, d_model=4, n_heads=1, n_layers=1, attn_only=True))
    angles = torch.arange(d_vocab - 1) * (2 * torch.pi / (d_vocab - 1))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.W_E[1:, 0], model.W_E[1:, 1] = angles.cos(), angles.sin()  # tokens 1..: points on a circle
        model.W_pos[0, 2] = 1.0  # "this is the first position"
        model.blocks[0].attn.b_Q[0, 2] = sink_logit * 2.0  # every query asks for "first position" (score / sqrt(d_head) = 2)
        model.blocks[0].attn.W_K[0, 2, 2] = 1.0
        model.blocks[0].attn.W_V[0, 0, 0] = model.blocks[0].attn.W_V[0, 1, 1] = 1.0  # values: the token, nothing else
        model.blocks[0].attn.W_O[0, 0, 0] = model.blocks[0].attn.W_O[0, 1, 1] = 1.0
        model.W_U[0, 1:], model.W_U[1, 1:] = angles.cos(), angles.sin()
    return model.eval()


# ---- ablation: three methods, three verdicts ----------------------------------------------------------


def ablation_verdicts(model, tokens: Int[Tensor, "batch pos"], head: tuple[int, int], positions,
                      reference_tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, " method"]:
    """[3]: how much ablating `head` (layer, head) raises the mean loss at `positions` (a slice of the
    per-token loss [batch, pos - 1]) with zero, mean and resample ablation (`ablation.METHODS` order);
    mean and resample take the head's outputs from `reference_tokens`. Notebook 11's exercise."""
    validate.model(model)
    validate.heads(model, [head])
    clean = loss_with_hooks(model, tokens, [])[..., positions].mean()
    return torch.stack([ablated_loss(model, tokens, head, method, reference_tokens)[..., positions].mean() - clean
                        for method in METHODS])


# ---- LayerNorm: the frozen scale of direct logit attribution ------------------------------------------


def removal_effect(model, cache, tokens: Int[Tensor, "batch pos"],
                   component: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch predicted_pos"]:
    """The true direct effect of `component` (one term of the final residual stream) on the logit of
    the correct next token: that logit with the full residual stream minus the logit with the
    component taken out, the final LayerNorm recomputed on what is left. [batch, pos - 1], as
    `lens.head_attribution`, which estimates the same thing with the LayerNorm's scale frozen.
    Notebook 11's exercise."""
    validate.cache(cache, model)
    validate.tensor(tokens, "tokens", "batch pos", dtype="int")
    resid = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
    validate.tensor(component, "component", "batch pos d_model", dtype="float")
    if component.shape != resid.shape or tokens.shape != resid.shape[:2]:
        raise ValueError(f"component must have the residual stream's shape {tuple(resid.shape)} and tokens its "
                         f"[batch, pos], got {tuple(component.shape)} and {tuple(tokens.shape)}")
    w, b, eps = ln_final_params(model)
    nxt = tokens[:, 1:, None]

    def correct_logit(x):
        return unembed_resid(x, w, b, model.W_U, model.b_U, eps)[:, :-1].gather(-1, nxt)[..., 0]

    return correct_logit(resid) - correct_logit(resid - component)


def head_outputs(model, cache, layer: int) -> Float[Tensor, "head_index batch pos d_model"]:
    """What each head of `layer` writes into the residual stream, z W_O (without b_O):
    [head, batch, pos, d_model] from the cache of a run of `model`."""
    validate.cache(cache, model)
    validate.layer(model, layer)
    z = cache[f"blocks.{layer}.attn.hook_z"]
    return torch.stack([head_output(z, model.W_O[layer], h) for h in range(model.cfg.n_heads)])


def _dla_against_removal(model, tokens: Int[Tensor, "batch pos"]) -> dict:
    """Every head's direct logit attribution (frozen LayerNorm scale) and its removal effect
    (LayerNorm recomputed), each averaged over the batch and positions: {"dla", "removal"}
    [layer, head]."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        dla = head_attribution(model, cache, tokens).mean((-2, -1))
        removal = torch.stack([torch.stack([removal_effect(model, cache, tokens, out).mean() for out in
                                            head_outputs(model, cache, layer)]) for layer in range(model.cfg.n_layers)])
    return {"dla": dla, "removal": removal}


# ---- composition scores and the bias they do not see ---------------------------------------------------


def bias_share(model, cache, layer: int) -> Float[Tensor, " head_index"]:
    """Per head of `layer`: the share of the squared norm of its output (z W_O, averaged over the
    cache's batch and positions) that is the constant b_V W_O. Each row of a pattern sums to 1, so
    the bias b_V of the values reaches the output unchanged at every position. Notebook 11's exercise."""
    out = head_outputs(model, cache, layer)  # [head, batch, pos, d_model]: checks the cache and the layer
    bias = torch.einsum("hd,hdm->hm", model.b_V[layer], model.W_O[layer])  # [head, d_model]
    return bias.pow(2).sum(-1) / out.pow(2).sum(-1).mean((1, 2))


def k_path_effects(model, tokens: Int[Tensor, "batch pos"], period: int) -> Float[Tensor, "head_index head_index"]:
    """[writer head of layer 0, reader head of layer 1]: how much the reader's induction score on
    `tokens` (repeats after `period`) falls when the writer's output is removed from its keys only.
    The model must have two layers and no LayerNorm (keys linear in the residual stream)."""
    validate.model(model)
    if model.cfg.n_layers != 2 or model.cfg.normalization_type is not None:
        raise ValueError(f"model must have two layers and no LayerNorm, got n_layers={model.cfg.n_layers}, "
                         f"normalization_type={model.cfg.normalization_type!r}")
    validate.tokens(tokens, model.cfg)
    validate.int_in(period, 1, tokens.shape[1] - 1, "period", f"the tokens have {tokens.shape[1]} positions")
    names = "blocks.1.attn.hook_pattern"
    n = model.cfg.n_heads

    def scores(hooks):
        patterns = {}

        def keep(pattern, hook):
            patterns["p"] = pattern

        with torch.no_grad():
            model.run_with_hooks(tokens, fwd_hooks=[*hooks, (names, keep)])
        return induction_score(patterns["p"], period)

    clean = scores([])
    readers = [(1, h) for h in range(n)]
    return torch.stack([clean - scores(k_path_ablation_hooks(model, (0, w), readers)) for w in range(n)])


# ---- the eigenvalue copying score against full-OV top-1 accuracy ---------------------------------------


def favourite_token_ov(d_vocab: int) -> Float[Tensor, "d_vocab d_vocab"]:
    """A full-OV-like matrix [d_vocab, d_vocab] (row: attended token, column: logit) whose eigenvalues
    are all positive (copying score +1) but whose every row peaks at token 0: it copies no token
    other than 0 in top-1 terms. The identity plus 2 in column 0: eigenvalues 1 and 3. Notebook 11's exercise."""
    validate.integer(d_vocab=d_vocab)
    validate.at_least(d_vocab, 3, "d_vocab")
    ov = torch.eye(d_vocab)
    ov[:, 0] += 2.0
    return ov


def suppressing_ov(d_vocab: int) -> Float[Tensor, "d_vocab d_vocab"]:
    """The reverse case: 2 I - 10 (all ones). Each row peaks at its own token (2 - 10 > -10: top-1
    copying accuracy 1), yet one eigenvalue, 2 - 10 d_vocab, outweighs the d_vocab - 1 eigenvalues 2:
    a negative copying score."""
    validate.integer(d_vocab=d_vocab)
    validate.at_least(d_vocab, 3, "d_vocab")
    return 2.0 * torch.eye(d_vocab) - 10.0 * torch.ones(d_vocab, d_vocab)


def copying_table(model) -> dict:
    """Every head's eigenvalue copying score and full-OV top-1 copying accuracy: {"eigen", "top1"} [layer, head]."""
    validate.model(model)
    layers, heads = model.cfg.n_layers, model.cfg.n_heads
    with torch.no_grad():
        eigen = torch.tensor([[eigenvalue_copying_score(full_ov_circuit(model, la, h)) for h in range(heads)]
                              for la in range(layers)])
        top1 = torch.tensor([[copying_score(full_ov_circuit(model, la, h)) for h in range(heads)] for la in range(layers)])
    return {"eigen": eigen, "top1": top1}


# ---- a causal-scrubbing-style test of the induction circuit ---------------------------------------------


def _scrub_runs(model, tokens: Int[Tensor, "batch pos"], other_tokens: Int[Tensor, "batch pos"]):
    """(clean cache, other cache, part_of): the two runs `scrubbed_loss` mixes, cached at the layer-1
    input and the parts it is made of, and `part_of(cache, part)`, one named part ("embed" or "0.H") of a run."""
    names = ["hook_embed", "blocks.0.attn.hook_z", "blocks.1.hook_resid_pre"]
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        _, other = model.run_with_cache(other_tokens, names_filter=lambda n: n in names)

    def part_of(cache, part):
        if part == "embed":
            return cache["hook_embed"]
        return head_output(cache["blocks.0.attn.hook_z"], model.W_O[0], int(part.split(".")[1]))

    return clean, other, part_of


def scrubbed_loss(model, tokens: Int[Tensor, "batch pos"], other_tokens: Int[Tensor, "batch pos"],
                  keep: dict[str, str]) -> Float[Tensor, "batch predicted_pos"]:
    """Per-token loss [batch, pos - 1] on `tokens` of a two-layer attention-only model whose layer-1
    heads read, in their queries, keys and values, only the parts of the residual stream that `keep`
    names from the run on `tokens`, and every other part from a run on `other_tokens` (resampled).

    keep: {"q": part, "k": part, "v": part}, each part "embed" (the token embedding), "0.H" (head H
    of layer 0's output), "all" (nothing resampled) or "none" (everything resampled). Without
    LayerNorm, q, k and v are linear in the residual stream, so swapping a part of the input swaps its
    image: q + (input_scrubbed - input_clean) W_Q. The layer-1 heads' outputs then reach the logits
    as usual; the direct paths of the embeddings and layer 0 stay clean."""
    validate.model(model)
    if model.cfg.n_layers != 2 or not model.cfg.attn_only:
        raise ValueError(f"model must be a two-layer attention-only model, got n_layers={model.cfg.n_layers}, "
                         f"attn_only={model.cfg.attn_only}")
    validate.tokens(tokens, model.cfg)
    validate.tokens(other_tokens, model.cfg, "other_tokens")
    if other_tokens.shape != tokens.shape:
        raise ValueError(f"other_tokens must have the shape of tokens {tuple(tokens.shape)}, got {tuple(other_tokens.shape)}")
    if not isinstance(keep, dict) or set(keep) != {"q", "k", "v"}:
        raise ValueError(f"keep must be a dict with keys 'q', 'k', 'v', got {keep!r}")
    parts_allowed = ["embed", "all", "none"] + [f"0.{h}" for h in range(model.cfg.n_heads)]
    for which, part in keep.items():
        validate.one_of(part, parts_allowed, f"keep[{which!r}]")
    clean, other, part_of = _scrub_runs(model, tokens, other_tokens)

    def scrubbed_input(part):  # [batch, pos, d_model]: the part from the clean run, the rest from the other run
        if part == "all":
            return clean["blocks.1.hook_resid_pre"]
        if part == "none":
            return other["blocks.1.hook_resid_pre"]
        return other["blocks.1.hook_resid_pre"] - part_of(other, part) + part_of(clean, part)

    shift = {which: scrubbed_input(part) - clean["blocks.1.hook_resid_pre"] for which, part in keep.items()}
    weights = {"q": model.W_Q[1], "k": model.W_K[1], "v": model.W_V[1]}

    def swap(which):
        def hook(act, hook):  # act [batch, pos, head, d_head]: add the image of the swapped part
            return act + torch.einsum("bpm,hmd->bphd", shift[which], weights[which])
        return hook

    hooks = [(f"blocks.1.attn.hook_{which}", swap(which)) for which in keep]
    with torch.no_grad():
        return per_token_loss(model.run_with_hooks(tokens, fwd_hooks=hooks), tokens)


def loss_recovered(scrubbed: float, clean: float, resampled: float) -> float:
    """(resampled - scrubbed) / (resampled - clean): 1 when the scrubbed model does as well as the
    clean one, 0 when it does as badly as with everything resampled. Numbers or one-element tensors."""
    values = {}
    for name, value in (("scrubbed", scrubbed), ("clean", clean), ("resampled", resampled)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            raise TypeError(f"{name} must be a number (a mean loss), got {value!r}")
        values[name] = float(value)
    if values["resampled"] == values["clean"]:
        raise ValueError(f"resampled and clean are equal ({values['clean']}): resampling changed nothing, so no share "
                         f"of the loss can be recovered")
    return (values["resampled"] - values["scrubbed"]) / (values["resampled"] - values["clean"])


# ---- activation patching: the subspace illusion -------------------------------------------------------


def illusion_layer() -> tuple[Float[Tensor, "1 3"], Float[Tensor, "3 2"]]:
    """(W_in, W_out) of a hand-built hidden layer with the three directions of Makelov et al.'s (2023)
    illusion. A feature x (+1 or -1) is written to hidden units 0 and 1 (h = x W_in); the layer's
    output y = h W_out (2 dimensions) copies unit 0 to y[0] and twice unit 2 to y[1], and the
    behaviour is y[0] + y[1] (= x on the data). Unit 0 is the mechanism; unit 1 carries the feature
    but is never read (disconnected); unit 2 is read but the data never activate it (dormant)."""
    return torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])


def subspace_patch(h_clean: Float[Tensor, "batch d_hidden"], h_corrupted: Float[Tensor, "batch d_hidden"],
                   v: Float[Tensor, " d_hidden"]) -> Float[Tensor, "batch d_hidden"]:
    """`h_clean` with its component along the direction `v` (normalised here) replaced by
    `h_corrupted`'s: h_clean + ((h_corrupted - h_clean) . v) v. Every other direction keeps its clean value."""
    validate.tensor(h_clean, "h_clean", "batch d_hidden", dtype="float")
    validate.tensor(h_corrupted, "h_corrupted", "batch d_hidden", dtype="float")
    validate.tensor(v, "v", "d_hidden", dtype="float")
    if h_corrupted.shape != h_clean.shape or v.shape[0] != h_clean.shape[-1]:
        raise ValueError(f"h_clean {tuple(h_clean.shape)}, h_corrupted {tuple(h_corrupted.shape)} and v {tuple(v.shape)} "
                         "must agree: two [batch, d_hidden] activations and a [d_hidden] direction")
    if v.norm() == 0:
        raise ValueError("v is all zeros: a direction to patch along must have a non-zero norm")
    unit = v / v.norm()
    return h_clean + ((h_corrupted - h_clean) @ unit)[:, None] * unit


def _read_part(v: Tensor, W_out: Tensor) -> Tensor:
    """The part of v in the column space of W_out [d_hidden, d_out]: what the next layer reads."""
    U, S, _ = torch.linalg.svd(W_out, full_matrices=False)
    basis = U[:, S > 1e-6 * S.max().clamp_min(1e-30)]
    return basis @ (basis.T @ v)


def variation_split(h: Float[Tensor, "batch d_hidden"], v: Float[Tensor, " d_hidden"],
                    W_out: Float[Tensor, "d_hidden d_out"]) -> Float[Tensor, "2"]:
    """The illusion check: split `v` into the part the next layer reads (in the column space of
    `W_out`) and the part it ignores, and return [the standard deviation of the data `h` along the
    read part, along the ignored part], each part as a unit vector (0 for a part that is zero). A
    patch along `v` whose data vary only along the ignored part, and whose read part never varies,
    works by pushing the read part somewhere the data never go: an illusion."""
    validate.tensor(h, "h", "batch d_hidden", dtype="float")
    validate.tensor(v, "v", "d_hidden", dtype="float")
    validate.tensor(W_out, "W_out", "d_hidden d_out", dtype="float")
    if v.shape[0] != h.shape[-1] or W_out.shape[0] != h.shape[-1]:
        raise ValueError(f"h {tuple(h.shape)}, v {tuple(v.shape)} and W_out {tuple(W_out.shape)} must agree on d_hidden")
    if h.shape[0] < 2:
        raise ValueError(f"h must hold at least 2 examples to have a spread, got {h.shape[0]}")
    read = _read_part(v, W_out)
    parts = [read, v - read]
    return torch.stack([(h @ (p / p.norm())).std() if p.norm() > 1e-6 * v.norm() else h.new_zeros(()) for p in parts])


# ---- the seed study -------------------------------------------------------------------------------------


def induction_heads(model, tokens: Int[Tensor, "batch pos"], period: int, threshold: float = 0.2) -> list[tuple[int, int]]:
    """The heads whose induction score on `tokens` (repeats after `period`) is at least `threshold`."""
    validate.positive_number(threshold=threshold)
    scores = head_scores(model, tokens, induction_score, period=period)
    return [(la, h) for la in range(model.cfg.n_layers) for h in range(model.cfg.n_heads) if scores[la, h] >= threshold]


def prev_token_scores(model, language, batch: int = 64) -> list[float]:
    """The previous-token score of each layer-0 head on repeated random tokens (the study's measure)."""
    validate.model(model)
    validate.instance(language, SyntheticLanguage, "language")
    rep = repeated_tokens(batch, language.n_ctx // 2, language.d_vocab, seed=EVAL_SEED)
    return head_scores(model, rep, prev_token_score)[0].round(decimals=4).tolist()


def study(two_layer, four_layer, language, batch: int = 64) -> dict:
    """Every number notebook 11 asserts about a trained model, for one seed: `two_layer` an
    attn_only_2l-like model, `four_layer` an ln_mlp_4l-like one, `language` their training language."""
    validate.model(two_layer, "two_layer")
    validate.model(four_layer, "four_layer")
    validate.instance(language, SyntheticLanguage, "language")
    if four_layer.cfg.normalization_type != "LN":
        raise ValueError(f"four_layer must have LayerNorm (as ln_mlp_4l), got normalization_type={four_layer.cfg.normalization_type!r}")
    period = language.n_ctx // 2
    rep = repeated_tokens(batch, period, language.d_vocab, seed=EVAL_SEED)
    ref = repeated_tokens(batch, period, language.d_vocab, seed=EVAL_SEED + 1)
    second = slice(period, 2 * period - 1)  # predicted positions of the repeated half
    text = language.sample(batch, seed=EVAL_SEED).tokens
    out = {}
    # ablation verdicts for every head of the four-layer model, on repeated tokens (second half)
    n_layers, n_heads = four_layer.cfg.n_layers, four_layer.cfg.n_heads
    verdicts = torch.stack([torch.stack([ablation_verdicts(four_layer, rep, (la, h), second, ref) for h in range(n_heads)])
                            for la in range(n_layers)])  # [layer, head, method]
    out["ablation"] = {m: verdicts[..., i].round(decimals=4).tolist() for i, m in enumerate(METHODS)}
    # redundancy: each induction head alone against all of them together (mean ablation)
    heads = induction_heads(four_layer, rep, period)
    clean = loss_with_hooks(four_layer, rep, [])[:, second].mean()
    out["induction_heads"] = [list(lh) for lh in heads]
    out["induction_singles"] = [round(float(ablated_loss(four_layer, rep, lh, "mean", ref)[:, second].mean() - clean), 4)
                                for lh in heads]
    out["induction_all"] = round(float(ablated_loss(four_layer, rep, heads, "mean", ref)[:, second].mean() - clean), 4)
    # LayerNorm: DLA against removal on the four-layer model, on the language
    found = _dla_against_removal(four_layer, text)
    out["dla"] = found["dla"].round(decimals=4).tolist()
    out["removal"] = found["removal"].round(decimals=4).tolist()
    # composition (two-layer model): scores, baseline, K-path effects, bias shares
    prev = head_scores(two_layer, rep, prev_token_score)[0]
    out["prev_head"] = int(prev.argmax())
    out["prev_scores"] = prev_token_scores(two_layer, language, batch)
    out["k_composition"] = composition_scores(two_layer, "K")[0, :, 1, :].round(decimals=4).tolist()
    out["k_baseline"] = round(random_composition_baseline(two_layer, "K"), 4)
    out["k_path_effects"] = k_path_effects(two_layer, rep, period).round(decimals=4).tolist()
    with torch.no_grad():
        _, cache = two_layer.run_with_cache(text)
    out["bias_share"] = [bias_share(two_layer, cache, la).round(decimals=4).tolist() for la in range(2)]
    table = copying_table(two_layer)
    out["eigen"] = table["eigen"].round(decimals=4).tolist()
    out["top1"] = table["top1"].round(decimals=4).tolist()
    # causal scrubbing of "keys read the previous token from the previous-token head, queries and values the token"
    clean2 = loss_with_hooks(two_layer, rep, [])[:, second].mean()
    least = int(prev.argmin())
    hypotheses = {"hypothesis": {"q": "embed", "k": f"0.{out['prev_head']}", "v": "embed"},
                  "wrong_key_head": {"q": "embed", "k": f"0.{least}", "v": "embed"},
                  "none": {"q": "none", "k": "none", "v": "none"}}
    losses = {name: scrubbed_loss(two_layer, rep, ref, keep)[:, second].mean() for name, keep in hypotheses.items()}
    out["scrub_clean"] = round(float(clean2), 4)
    for name, value in losses.items():
        out[f"scrub_{name}"] = round(float(value), 4)
    out["scrub_recovered"] = round(loss_recovered(losses["hypothesis"], clean2, losses["none"]), 4)
    out["scrub_recovered_wrong"] = round(loss_recovered(losses["wrong_key_head"], clean2, losses["none"]), 4)
    return out
