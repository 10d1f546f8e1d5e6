"""Reading the residual stream (notebook 05): its decomposition, the logit lens, direct logit
attribution, and a tuned lens.

Every function takes a course `Transformer` or a TransformerLens `TransformerBridge` with a cache
from `model.run_with_cache(tokens)`, and gives the same numbers on both. The cache's own helpers
(`decompose_resid`, `accumulated_resid`, `stack_head_results`, `apply_ln_to_stack`) do the work:
they only need the TransformerLens hook names, which both models have.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from . import validate


def _validate_cache(model, cache) -> None:
    validate.cache(cache, model)


def _validate_tokens(tokens, model, cache) -> torch.Tensor:
    validate.tokens(tokens, model.cfg)
    expected = tuple(cache["hook_embed"].shape[:2])
    if tuple(tokens.shape) != expected:
        raise ValueError(f"tokens has shape {tuple(tokens.shape)} but the cache was made from tokens of shape {expected}")
    return tokens


def ln_final_params(model) -> tuple[Float[Tensor, " d_model"], Float[Tensor, " d_model"], float]:
    """(w, b, eps) of the final LayerNorm, for the course model and a bridge alike."""
    validate.model(model)
    ln = model.ln_final
    if model.cfg.normalization_type != "LN":
        raise ValueError(f"the model has normalization_type={model.cfg.normalization_type!r}, not 'LN'")
    w = getattr(ln, "w", None)
    if w is None:  # TransformerBridge: an nn.LayerNorm-style component
        w, b = ln.weight, ln.bias
    else:
        b = ln.b
    return w, b, model.cfg.eps


# ---- decomposing the residual stream ---------------------------------------------------------------


def decompose_resid(cache, n_layers: int) -> Float[Tensor, "component batch pos d_model"]:
    """[component, batch, pos, d_model]: the embedding, the positional embedding, then each layer's
    attention output and MLP output, in order. They add up to the final residual stream."""
    _validate_cache(getattr(cache, "model", None), cache)
    if n_layers != cache.model.cfg.n_layers:
        raise ValueError(f"n_layers must be the model's number of layers ({cache.model.cfg.n_layers}, from the cache), "
                         f"got {n_layers!r}")
    stack = cache.decompose_resid(layer=n_layers)
    if stack.shape[0] != 2 + 2 * n_layers:
        raise ValueError(f"expected {2 + 2 * n_layers} components for n_layers={n_layers}, got {stack.shape[0]}"
                         " (decompose_resid by layer needs a model with MLPs)")
    return stack


def decompose_labels(n_layers: int) -> list[str]:
    """Labels for `decompose_resid`'s components."""
    validate.positive(n_layers=n_layers)
    return ["embed", "pos_embed"] + [f"{kind} {layer}" for layer in range(n_layers) for kind in ("attn", "mlp")]


def resid_components(model, cache) -> tuple[Float[Tensor, "component batch pos d_model"], list[str]]:
    """The final residual stream split finer: embed, pos_embed, then per layer each head's output,
    the attention bias b_O, and the MLP output. ([component, batch, pos, d_model], labels)."""
    _validate_cache(model, cache)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    heads = cache.stack_head_results(layer=n_layers)  # [layer * head, batch, pos, d_model]
    parts, labels = [cache["hook_embed"], cache["hook_pos_embed"]], ["embed", "pos_embed"]
    for layer in range(n_layers):
        parts += list(heads[layer * n_heads:(layer + 1) * n_heads])
        labels += [f"L{layer}H{h}" for h in range(n_heads)]
        parts.append(model.b_O[layer].expand_as(cache["hook_embed"]))
        labels.append(f"b_O {layer}")
        if not model.cfg.attn_only:
            parts.append(cache[f"blocks.{layer}.hook_mlp_out"])
            labels.append(f"mlp {layer}")
    return torch.stack(parts), labels


# ---- the logit lens ------------------------------------------------------------------------------------


def unembed_resid(resid: Float[Tensor, "... d_model"], w: Float[Tensor, " d_model"], b: Float[Tensor, " d_model"],
                  W_U: Float[Tensor, "d_model d_vocab"], b_U: Float[Tensor, " d_vocab"],
                  eps: float = 1e-5) -> Float[Tensor, "... d_vocab"]:
    """What the model would predict if its residual stream ended here: the final LayerNorm (centre,
    divide by the RMS, scale by w, add b), then the unembedding. resid [..., d_model] -> [..., d_vocab]."""
    validate.tensor(resid, "resid", "... d_model", dtype="float")
    if not resid.shape[-1] == w.shape[-1] == b.shape[-1] == W_U.shape[0]:
        raise ValueError(f"resid [..., d_model], w and b [d_model] and W_U [d_model, d_vocab] must agree on d_model, "
                         f"got shapes {tuple(resid.shape)}, {tuple(w.shape)}, {tuple(b.shape)} and {tuple(W_U.shape)}")
    validate.tensor(W_U, "W_U", "d_model d_vocab", dtype="float")
    d_model, d_vocab = W_U.shape
    for name, t, shape, axes in (("w", w, d_model, "[d_model]"), ("b", b, d_model, "[d_model]"), ("b_U", b_U, d_vocab, "[d_vocab]")):
        validate.shape_is(t, name, (shape,), axes)  # a [batch, d_model] or [1] bias would broadcast silently
    for name, t in (("resid", resid), ("w", w), ("b", b), ("W_U", W_U), ("b_U", b_U)):
        validate.finite(t, name)
    x = resid - resid.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return (x * w + b) @ W_U + b_U


def lens_labels(n_layers: int) -> list[str]:
    """Labels of the logit lens's rows: the embeddings, then the residual stream after each layer."""
    validate.positive(n_layers=n_layers)
    return ["embed"] + [f"after {layer}" for layer in range(n_layers)]


def logit_lens(model, cache) -> Float[Tensor, "layer batch pos d_vocab"]:
    """[n_layers + 1, batch, pos, d_vocab]: the final LayerNorm and unembedding applied to the
    residual stream before layer 0 (the embeddings) and after each layer. The last row is the
    model's own logits."""
    _validate_cache(model, cache)
    resid = cache.accumulated_resid(apply_ln=True)  # each row normalised by model.ln_final
    return resid @ model.W_U + model.b_U


def kl_to_final(lens_logits: Float[Tensor, "layer ... d_vocab"], final_logits: Float[Tensor, "... d_vocab"]) -> Float[Tensor, " layer"]:
    """KL(final || lens) in nats for each row of a lens: lens_logits [layer, ..., d_vocab],
    final_logits [..., d_vocab] -> [layer], averaged over every other axis."""
    validate.tensor(lens_logits, "lens_logits", "... d_vocab", dtype="float")
    validate.tensor(final_logits, "final_logits", "... d_vocab", dtype="float")
    if lens_logits.shape[1:] != final_logits.shape:
        raise ValueError(f"lens_logits {tuple(lens_logits.shape)} must be [layer, *final_logits.shape]; "
                         f"final_logits is {tuple(final_logits.shape)}")
    if lens_logits.shape[0] == 0:  # an empty lens would give an empty answer, read later as "no layer is far"
        raise ValueError(f"lens_logits has no layer (shape {tuple(lens_logits.shape)}): expected at least one row")
    validate.finite(lens_logits, "lens_logits")
    validate.finite(final_logits, "final_logits")
    final = final_logits.log_softmax(-1)
    lens = lens_logits.log_softmax(-1)
    return (final.exp() * (final - lens)).sum(-1).flatten(1).mean(-1)


def lens_top_tokens(model, cache, seq: int, positions) -> Int[Tensor, "layer position"]:
    """The logit lens's top token at chosen positions of one sequence: [n_layers + 1, len(positions)]
    token ids, row 0 from the embeddings alone, the last row the model's own prediction."""
    _validate_cache(model, cache)
    n_batch, n_pos = cache["hook_embed"].shape[:2]
    validate.int_in(seq, 0, n_batch - 1, "seq", "a sequence of the cache's batch")
    if isinstance(positions, torch.Tensor):
        positions = positions.tolist()
    if not isinstance(positions, (list, tuple)) or not positions:
        raise ValueError(f"positions must be a non-empty list of positions, got {positions!r}")
    for pos in positions:
        validate.int_in(pos, 0, n_pos - 1, "positions", "a position of the cache's sequences")
    resid = cache.accumulated_resid()[:, seq, list(positions)]  # [layer, len(positions), d_model]
    w, b, eps = ln_final_params(model)
    return unembed_resid(resid, w, b, model.W_U, model.b_U, eps).argmax(-1)


def settle_layer(lens_logits: Float[Tensor, "layer ... d_vocab"]) -> Int[Tensor, "..."]:
    """Where the lens's prediction settles: lens_logits [layer, ..., d_vocab] -> [...] (torch.long),
    the first row from which the top token is the last row's top token in every later row. 0: the
    embeddings already predict it; layer - 1: only the last row does."""
    validate.tensor(lens_logits, "lens_logits", "... d_vocab", dtype="float")
    if lens_logits.ndim < 2:
        raise ValueError(f"lens_logits must have shape [layer, ..., d_vocab], got shape {tuple(lens_logits.shape)}")
    if lens_logits.shape[0] == 0:
        raise ValueError(f"lens_logits has no layer (shape {tuple(lens_logits.shape)}): expected at least one row")
    validate.finite(lens_logits, "lens_logits")
    top = lens_logits.argmax(-1)  # [layer, ...]
    agrees = top == top[-1]
    from_here_on = agrees.flip(0).long().cumprod(0).flip(0)  # 1 where this row and every later one agree
    return lens_logits.shape[0] - from_here_on.sum(0)


def rank_of(logits: Float[Tensor, "... d_vocab"], token: Int[Tensor, "..."]) -> Int[Tensor, "..."]:
    """The rank (0 = top) of `token` [...] under logits [..., d_vocab] -> [...]."""
    validate.tensor(token, "token", "...", dtype="int")
    if logits.shape[:-1] != token.shape:
        raise ValueError(f"logits [..., d_vocab] and token [...] must agree, got shapes {tuple(logits.shape)} "
                         f"and {tuple(token.shape)}")
    validate.ids(token, logits.shape[-1], "token")
    validate.finite(logits, "logits")
    chosen = logits.gather(-1, token[..., None])
    return (logits > chosen).sum(-1)


# ---- direct logit attribution ------------------------------------------------------------------------


def logit_attribution(stack: Float[Tensor, "component batch pos d_model"], W_U: Float[Tensor, "d_model d_vocab"],
                      tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "component batch predicted_pos"]:
    """What each component adds to the logit of the correct next token.

    stack [component, batch, pos, d_model] (already through the final LayerNorm's scaling),
    W_U [d_model, d_vocab], tokens [batch, pos] -> [component, batch, pos - 1]: entry t is the
    component's contribution, at position t, to the logit of tokens[:, t + 1].
    """
    validate.tensor(stack, "stack", "component batch pos d_model", dtype="float")
    validate.tensor(W_U, "W_U", "d_model d_vocab", dtype="float")
    validate.tensor(tokens, "tokens", "batch pos", dtype="int")
    if stack.shape[1:3] != tokens.shape or stack.shape[3] != W_U.shape[0]:
        raise ValueError(f"stack [component, batch, pos, d_model], W_U [d_model, d_vocab] and tokens [batch, pos] must "
                         f"agree, got shapes {tuple(stack.shape)}, {tuple(W_U.shape)} and {tuple(tokens.shape)}")
    validate.ids(tokens, W_U.shape[1], "tokens")
    validate.finite(stack, "stack")
    validate.finite(W_U, "W_U")
    directions = W_U.T[tokens[:, 1:]]  # [batch, pos - 1, d_model]: the unembedding of each next token
    return (stack[:, :, :-1] * directions).sum(-1)


def direct_logit_attribution(model, cache, tokens: Int[Tensor, "batch pos"]
                             ) -> tuple[Float[Tensor, "component batch predicted_pos"], list[str]]:
    """Direct logit attribution of every component of `resid_components` to the correct next token:
    ([component, batch, pos - 1], labels).

    The final LayerNorm is linear once its scale is fixed, so each component is centred, divided by
    the cached `ln_final.hook_scale` (`cache.apply_ln_to_stack`) and multiplied by w. The components'
    attributions plus the constant `b @ W_U + b_U` add up to the model's logit of the correct token.
    """
    _validate_cache(model, cache)
    tokens = _validate_tokens(tokens, model, cache)
    stack, labels = resid_components(model, cache)
    normed = cache.apply_ln_to_stack(stack, layer=model.cfg.n_layers)
    w, _, _ = ln_final_params(model)
    return logit_attribution(normed * w, model.W_U, tokens), labels


def head_attribution(model, cache, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer head_index batch predicted_pos"]:
    """Direct logit attribution of each head to the correct next token, [n_layers, n_heads, batch, pos - 1].

    A head's output is its `hook_z` times its W_O (`cache.stack_head_results`); the final LayerNorm,
    its scale fixed at the cached `ln_final.hook_scale`, centres it, divides it by that scale and
    multiplies it by w; the result is dotted with the next token's unembedding."""
    dla, labels = direct_logit_attribution(model, cache, tokens)
    rows = [i for i, label in enumerate(labels) if label.startswith("L")]
    return dla[rows].unflatten(0, (model.cfg.n_layers, model.cfg.n_heads))


def layer_attribution(model, cache, tokens: Int[Tensor, "batch pos"]
                      ) -> tuple[Float[Tensor, "component batch predicted_pos"], list[str]]:
    """Direct logit attribution of the embeddings and of each layer's attention and MLP outputs:
    ([component, batch, pos - 1], labels as in `decompose_labels`)."""
    _validate_cache(model, cache)
    tokens = _validate_tokens(tokens, model, cache)
    stack = decompose_resid(cache, model.cfg.n_layers)
    normed = cache.apply_ln_to_stack(stack, layer=model.cfg.n_layers)
    w, _, _ = ln_final_params(model)
    return logit_attribution(normed * w, model.W_U, tokens), decompose_labels(model.cfg.n_layers)


# ---- a tuned lens (Belrose et al. 2023) -----------------------------------------------------------------


class TunedLens(nn.Module):
    """One affine translator per layer, resid -> resid @ A + c, applied to the residual stream before
    layer 0 and after each layer but the last, then the model's own final LayerNorm and unembedding.
    The last row is the model's output itself and is left as it is (training a translator there would
    chase float noise: its KL is 0). A starts as the identity and c as zero, so an untrained tuned
    lens is the logit lens."""

    def __init__(self, n_layers: int, d_model: int):
        validate.positive(n_layers=n_layers, d_model=d_model)
        super().__init__()
        self.A = nn.Parameter(torch.eye(d_model).repeat(n_layers, 1, 1))  # [layer, d_model, d_model]
        self.c = nn.Parameter(torch.zeros(n_layers, d_model))

    def forward(self, resid_stack: Float[Tensor, "layer batch pos d_model"], model) -> Float[Tensor, "layer batch pos d_vocab"]:
        """resid_stack [layer + 1, batch, pos, d_model] (unnormalised) -> logits [layer + 1, batch, pos, d_vocab]."""
        if resid_stack.shape[0] != self.A.shape[0] + 1:
            raise ValueError(f"resid_stack has {resid_stack.shape[0]} rows; this lens has {self.A.shape[0] + 1}")
        validate.finite(resid_stack, "resid_stack")
        translated = torch.einsum("l...d,lde->l...e", resid_stack[:-1], self.A) + self.c[:, None, None]
        w, b, eps = ln_final_params(model)
        return unembed_resid(torch.cat([translated, resid_stack[-1:]]), w, b, model.W_U, model.b_U, eps)


def _resid_stack(model, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    names = ["hook_embed"] + [f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)] + \
        [f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    return cache.accumulated_resid().detach(), logits.detach()


def fit_tuned_lens(tuned: TunedLens, model, batches, steps: int, lr: float = 1e-2,
                   progress: bool = True) -> Float[Tensor, " steps"]:
    """Train `tuned` in place on `model` (kept frozen): each step runs the model on `batches(step)`
    [batch, pos], reads its residual stream at every lens row, and takes one Adam step on the KL
    from the model's final output to each row's translated decoding (`kl_to_final`), summed over the
    rows. Returns the loss before each step, [steps]."""
    validate.instance(tuned, TunedLens, "tuned")
    validate.model(model)
    validate.positive(steps=steps)
    validate.positive_number(lr=lr)
    if not callable(batches):
        raise TypeError(f"batches must be a function step -> tokens [batch, pos], got {type(batches).__name__}")
    if tuned.A.shape[0] != model.cfg.n_layers or tuned.A.shape[1] != model.cfg.d_model:
        raise ValueError(f"tuned has translators for {tuned.A.shape[0]} layers of d_model {tuned.A.shape[1]}; the model "
                         f"has {model.cfg.n_layers} layers of d_model {model.cfg.d_model}")
    device = model.W_U.device
    opt = torch.optim.Adam(tuned.parameters(), lr=lr)
    losses = []
    with torch.enable_grad():
        for step in tqdm(range(steps), desc="tuned lens", disable=not progress):
            resid, final = _resid_stack(model, batches(step).to(device))
            loss = kl_to_final(tuned(resid, model), final).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    return torch.stack(losses)


def train_tuned_lens(model, batches, steps: int = 200, lr: float = 1e-2, seed: int = 0,
                     progress: bool = True) -> tuple[TunedLens, list[float]]:
    """A new TunedLens for `model`, trained by `fit_tuned_lens`. Returns (lens, losses)."""
    validate.model(model)
    validate.positive(steps=steps)
    validate.positive_number(lr=lr)
    validate.integer(seed=seed)
    if not callable(batches):
        raise TypeError(f"batches must be a function step -> tokens [batch, pos], got {type(batches).__name__}")
    torch.manual_seed(seed)
    tuned = TunedLens(model.cfg.n_layers, model.cfg.d_model).to(model.W_U.device)
    losses = fit_tuned_lens(tuned, model, batches, steps, lr, progress)
    return tuned.eval(), losses.tolist()


def tuned_lens_logits(lens: TunedLens, model, cache) -> Float[Tensor, "layer batch pos d_vocab"]:
    """[n_layers + 1, batch, pos, d_vocab]: the tuned lens on a cache's residual stream."""
    validate.instance(lens, TunedLens, "lens")
    _validate_cache(model, cache)
    with torch.no_grad():
        return lens(cache.accumulated_resid(), model)
