"""The course's transformer: the one you build in notebook 01, read top to bottom.

1. `Config`, the shape of a model.
2. The functions of notebook 01: `embed`, `pos_embed`, `attention_pattern`, `multi_head_attention`,
   `unembed`. The checks of notebook 01 compare your versions with these.
3. The same pieces as modules with hooks (`Embed`, `PosEmbed`, `LayerNorm`, `Attention`, `MLP`,
   `TransformerBlock`, `Unembed`), and the model that stacks them (`Transformer`).
4. Notebook 01's last part, using the model: `sample` (greedy and temperature), and two hooks,
   `record_patterns` (reads) and `logits_with_positions` (edits). Its training loop is in `train`.
   `generate` (notebook 03) is `sample` with hooks on.

Every activation passes through a `HookPoint` with its TransformerLens name
(`blocks.0.attn.hook_pattern`, ...) and every weight has its TransformerLens name and shape (`W_Q` is
[head_index, d_model, d_head]), so `run_with_cache`, `run_with_hooks`, `ActivationCache` and
`FactoredMatrix` work on it as they do on a `TransformerBridge` (`course_utils.bridge` converts
between the two). Argument checks live in `course_utils.validate`.

A model can read vectors instead of token ids (notebook 13): `Config(d_input=...)` makes `W_E` a
linear read-in [d_input, d_model] (a token id is the one-hot vector that picks a row of W_E, so
it is the same layer), and `d_vocab=1` an output of one number per position.

Where the modules differ from notebook 01, it is for speed, and the numbers are the same: queries,
keys and values come from one matrix product instead of three einsums, and attention runs fused
(`F.scaled_dot_product_attention`) unless a hook wants to see the scores or the pattern.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import einops
import torch
import torch.nn as nn
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, FactoredMatrix, HookedRootModule
from transformer_lens.hook_points import HookPoint

from . import validate

NORMALIZATION_TYPES = (None, "LN")
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


@dataclass
class Config:
    """The shape of a model. `d_head` is derived: d_model // n_heads."""

    d_vocab: int = 64
    n_ctx: int = 64
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    attn_only: bool = True
    d_mlp: int | None = None  # defaults to 4 * d_model when the model has MLPs
    normalization_type: str | None = None  # None or "LN"
    act_fn: str = "gelu"
    eps: float = 1e-5
    init_range: float | None = None  # std of the initial weights; None: 0.8 / sqrt(d_model)
    seed: int = 0  # seeds the initial weights
    # Notebook 13: a model that reads vectors, not tokens. With d_input set, its input is
    # [batch, pos, d_input] floats, W_E is a linear read-in [d_input, d_model] (a token id is the
    # one-hot vector that picks a row of W_E, so this is the same layer), and d_vocab is the number
    # of outputs (1: one real number per position).
    d_input: int | None = None
    d_head: int = field(init=False)

    def __post_init__(self):
        validate.positive(**{f"Config.{name}": getattr(self, name)
                             for name in ("d_vocab", "n_ctx", "d_model", "n_heads", "n_layers")})
        validate.integer(**{"Config.seed": self.seed})
        if self.d_input is not None:
            validate.positive(**{"Config.d_input": self.d_input})
        validate.boolean(**{"Config.attn_only": self.attn_only})
        validate.positive_number(**{"Config.eps": self.eps})
        if self.init_range is not None:
            validate.positive_number(**{"Config.init_range": self.init_range})
        if self.d_model % self.n_heads:
            raise ValueError(f"Config.d_model={self.d_model} is not divisible by n_heads={self.n_heads}: each head "
                             f"gets d_model // n_heads dimensions, so choose n_heads among the divisors of {self.d_model}.")
        validate.one_of(self.normalization_type, NORMALIZATION_TYPES, "Config.normalization_type")
        validate.one_of(self.act_fn, sorted(ACTIVATIONS), "Config.act_fn")
        if not self.attn_only and self.d_mlp is not None:
            validate.positive(**{"Config.d_mlp": self.d_mlp})
        if self.attn_only:
            self.d_mlp = None
        elif self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        if self.init_range is None:
            self.init_range = 0.8 / math.sqrt(self.d_model)
        self.d_head = self.d_model // self.n_heads

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["d_head"]
        if d["d_input"] is None:  # a token model's dict (and card) is the same as before d_input existed
            del d["d_input"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {f.name for f in fields(cls) if f.init}
        unknown = set(d) - known - {"d_head"}
        if unknown:
            raise ValueError(f"unknown Config fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- The functions you write in notebook 01 -------------------------------------------------------


def embed(tokens: Int[Tensor, "batch pos"], W_E: Float[Tensor, "d_vocab d_model"]) -> Float[Tensor, "batch pos d_model"]:
    """Each token's vector is row `token` of W_E (notebook 01)."""
    validate.tensor(tokens, "tokens", "batch pos", dtype="int")
    validate.tensor(W_E, "W_E", "d_vocab d_model", dtype="float")
    validate.finite(W_E, "W_E")
    try:
        return F.embedding(tokens, W_E)  # W_E[tokens], but a negative id is an error, not a row from the end
    except IndexError:  # checked only when it fails, so that the check costs nothing
        raise IndexError(f"tokens must be ids in [0, {len(W_E)}) (the rows of W_E), got ids from "
                         f"{int(tokens.min())} to {int(tokens.max())}") from None


def pos_embed(tokens: Int[Tensor, "batch pos"], W_pos: Float[Tensor, "n_ctx d_model"]) -> Float[Tensor, "batch pos d_model"]:
    """Rows 0, 1, ..., pos - 1 of W_pos, for every sequence of the batch (notebook 01)."""
    validate.tensor(tokens, "tokens", "batch pos", dtype="int")
    validate.tensor(W_pos, "W_pos", "n_ctx d_model", dtype="float")
    validate.finite(W_pos, "W_pos")
    batch, seq_len = tokens.shape
    if seq_len > len(W_pos):
        raise ValueError(f"tokens has {seq_len} positions but W_pos has only n_ctx={len(W_pos)} rows")
    return W_pos[:seq_len].expand(batch, seq_len, -1)


def attention_pattern(q: Float[Tensor, "... pos d_head"], k: Float[Tensor, "... pos d_head"]
                      ) -> Float[Tensor, "... query_pos key_pos"]:
    """Where each query position looks (notebook 01): scores q.k / sqrt(d_head), the future masked
    to -inf so that a query never sees a later key, softmax over the keys (each row sums to 1)."""
    validate.tensor(q, "q", "... pos d_head", dtype="float")
    validate.tensor(k, "k", "... pos d_head", dtype="float")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    validate.finite(q, "q")
    validate.finite(k, "k")
    seq_len, d_head = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / d_head**0.5
    future = torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool, device=q.device), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def multi_head_attention(
    x: Float[Tensor, "batch pos d_model"],
    W_Q: Float[Tensor, "head_index d_model d_head"], b_Q: Float[Tensor, "head_index d_head"],
    W_K: Float[Tensor, "head_index d_model d_head"], b_K: Float[Tensor, "head_index d_head"],
    W_V: Float[Tensor, "head_index d_model d_head"], b_V: Float[Tensor, "head_index d_head"],
    W_O: Float[Tensor, "head_index d_head d_model"], b_O: Float[Tensor, " d_model"],
) -> Float[Tensor, "batch pos d_model"]:
    """Causal multi-head attention (notebook 01): each head attends on its own, and the heads'
    outputs add up in the residual stream."""
    validate.tensor(x, "x", "batch pos d_model", dtype="float")
    for name, W in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V)):
        validate.tensor(W, name, "head_index d_model d_head", dtype="float")
    validate.tensor(W_O, "W_O", "head_index d_head d_model", dtype="float")
    if W_Q.shape[1] != x.shape[-1]:
        raise ValueError(f"x has d_model={x.shape[-1]} but W_Q expects d_model={W_Q.shape[1]}")
    n_heads, d_model, d_head = W_Q.shape
    for name, b in (("b_Q", b_Q), ("b_K", b_K), ("b_V", b_V)):  # a [1, d_head] bias would broadcast silently
        validate.shape_is(b, name, (n_heads, d_head), "[head_index, d_head]")
    validate.shape_is(b_O, "b_O", (d_model,), "[d_model]")
    for name, t in (("x", x), ("W_Q", W_Q), ("b_Q", b_Q), ("W_K", W_K), ("b_K", b_K), ("W_V", W_V), ("b_V", b_V),
                    ("W_O", W_O), ("b_O", b_O)):
        validate.finite(t, name)
    project = "batch pos d_model, head_index d_model d_head -> batch head_index pos d_head"
    q = einops.einsum(x, W_Q, project) + b_Q[:, None]
    k = einops.einsum(x, W_K, project) + b_K[:, None]
    v = einops.einsum(x, W_V, project) + b_V[:, None]
    z = attention_pattern(q, k) @ v
    return einops.einsum(z, W_O, "batch head_index pos d_head, head_index d_head d_model -> batch pos d_model") + b_O


def unembed(resid: Float[Tensor, "batch pos d_model"], W_U: Float[Tensor, "d_model d_vocab"],
            b_U: Float[Tensor, " d_vocab"]) -> Float[Tensor, "batch pos d_vocab"]:
    """Logits: one score per token of the vocabulary, at every position (notebook 01)."""
    validate.tensor(resid, "resid", "batch pos d_model", dtype="float")
    validate.tensor(W_U, "W_U", "d_model d_vocab", dtype="float")
    validate.tensor(b_U, "b_U", "d_vocab", dtype="float")
    if resid.shape[-1] != W_U.shape[0] or W_U.shape[1] != b_U.shape[0]:
        raise ValueError(f"resid [.., d_model], W_U [d_model, d_vocab] and b_U [d_vocab] must agree, got "
                         f"shapes {tuple(resid.shape)}, {tuple(W_U.shape)} and {tuple(b_U.shape)}")
    for name, t in (("resid", resid), ("W_U", W_U), ("b_U", b_U)):
        validate.finite(t, name)
    return resid @ W_U + b_U


# ---- The same pieces as modules with hooks --------------------------------------------------------
# A module's forward skips its function's checks: Transformer.forward has checked the tokens once.


class Embed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        self.W_E = nn.Parameter(torch.empty(cfg.d_input or cfg.d_vocab, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"] | Float[Tensor, "batch pos d_input"]) -> Float[Tensor, "batch pos d_model"]:
        if tokens.is_floating_point():  # vectors (notebook 13): a linear read-in, one_hot(token) @ W_E generalised
            return tokens @ self.W_E
        return F.embedding(tokens, self.W_E)  # W_E[tokens], with a faster backward pass


class PosEmbed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        batch, seq_len = tokens.shape[:2]  # tokens [batch, pos], or vectors [batch, pos, d_input]
        return self.W_pos[:seq_len].expand(batch, seq_len, -1)


class LayerNorm(nn.Module):
    """Centre each position's vector, divide by its RMS, then scale by w and shift by b (notebook 05)."""

    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        self.eps = cfg.eps
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale) * self.w + self.b


class Attention(nn.Module):
    """`multi_head_attention` of notebook 01, with a hook at every step."""

    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        self.n_heads = cfg.n_heads
        self.W_Q = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        self.W_K = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        self.W_V = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        self.W_O = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_head, cfg.d_model))
        self.b_Q = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head))
        # b_K adds q . b_K to every key's score for a query alike, which the softmax ignores: its gradient
        # is rounding noise, which AdamW scales into full-sized steps. Kept, as TransformerLens keeps it;
        # it is why b_K is the first weight to differ when training runs on other CPU kernels (numerics.py).
        self.b_K = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head))
        self.b_V = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head))
        self.b_O = nn.Parameter(torch.zeros(cfg.d_model))
        # notebook 01's causal mask, made once for the longest context: True above the diagonal (the future)
        future = torch.triu(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool), diagonal=1)
        self.register_buffer("future", future, persistent=False)
        self.d_head = cfg.d_head
        self.hook_q = HookPoint()  # [batch, pos, head_index, d_head]
        self.hook_k = HookPoint()  # [batch, pos, head_index, d_head]
        self.hook_v = HookPoint()  # [batch, pos, head_index, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, head_index, query_pos, key_pos], masked: -inf in the future
        self.hook_pattern = HookPoint()  # [batch, head_index, query_pos, key_pos]
        self.hook_z = HookPoint()  # [batch, pos, head_index, d_head]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        # Notebook 01's three einsums (q = x W_Q + b_Q, and k and v alike) as one matrix product over
        # the three weights side by side: the same numbers, and a faster training step.
        W_QKV = einops.rearrange([self.W_Q, self.W_K, self.W_V],
                                 "qkv head_index d_model d_head -> (qkv head_index d_head) d_model")
        b_QKV = einops.rearrange([self.b_Q, self.b_K, self.b_V], "qkv head_index d_head -> (qkv head_index d_head)")
        # The activations' axes move with view and transpose, as in nanoGPT (einops costs ~25 us a call,
        # a few percent of a training step): batch pos (qkv head_index d_head) -> qkv x [batch pos head_index d_head]
        batch, pos, _ = x.shape
        q, k, v = F.linear(x, W_QKV, b_QKV).view(batch, pos, 3, self.n_heads, self.d_head).unbind(dim=2)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)  # hooks see TransformerLens's layout
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # -> [batch, head_index, pos, d_head]
        if self.hook_attn_scores.has_hooks() or self.hook_pattern.has_hooks():
            # Explicit, as notebook 01's attention_pattern, so that hooks can read or change the scores and the pattern.
            scores = (q @ k.transpose(-2, -1) / self.d_head**0.5).masked_fill(self.future[:pos, :pos], float("-inf"))
            pattern = self.hook_pattern(self.hook_attn_scores(scores).softmax(dim=-1))
            z = pattern @ v  # [batch, head_index, pos, d_head]
        else:
            # Fused: the same causal softmax(q k^T / sqrt(d_head)) v in one kernel that never stores the pattern.
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [batch, head_index, pos, d_head]
        z = self.hook_z(z.transpose(1, 2))  # -> [batch, pos, head_index, d_head]
        # Each head writes through its own W_O and the heads' outputs add up, as notebook 01's
        # einsum(z, W_O, "... head_index d_head, head_index d_head d_model -> ... d_model"): one matrix product does both.
        z = z.reshape(batch, pos, self.n_heads * self.d_head)  # batch pos (head_index d_head)
        W_O = einops.rearrange(self.W_O, "head_index d_head d_model -> (head_index d_head) d_model")
        return F.linear(z, W_O.T, self.b_O)  # z @ W_O + b_O


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        if cfg.attn_only:
            raise ValueError("cfg.attn_only must be False for an MLP (an attention-only config has no d_mlp), got True")
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.act = ACTIVATIONS[cfg.act_fn]
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        return self.hook_post(self.act(pre)) @ self.W_out + self.b_out


def _norm(cfg: Config) -> nn.Module:
    return LayerNorm(cfg) if cfg.normalization_type == "LN" else nn.Identity()


class TransformerBlock(nn.Module):
    """resid + attention(resid), then, in a model with MLPs, + mlp(resid): each adds to the stream."""

    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        self.attn_only = cfg.attn_only
        self.ln1 = _norm(cfg)
        self.attn = Attention(cfg)
        self.hook_resid_pre = HookPoint()  # [batch, pos, d_model]
        self.hook_attn_out = HookPoint()  # [batch, pos, d_model]
        if not cfg.attn_only:
            self.ln2 = _norm(cfg)
            self.mlp = MLP(cfg)
            self.hook_resid_mid = HookPoint()  # [batch, pos, d_model]
            self.hook_mlp_out = HookPoint()  # [batch, pos, d_model]
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model]

    def forward(self, resid: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        resid = self.hook_resid_pre(resid)
        resid = resid + self.hook_attn_out(self.attn(self.ln1(resid)))
        if not self.attn_only:
            resid = self.hook_resid_mid(resid)
            resid = resid + self.hook_mlp_out(self.mlp(self.ln2(resid)))
        return self.hook_resid_post(resid)


class Unembed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))

    def forward(self, resid: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab"]:
        return resid @ self.W_U + self.b_U


class Transformer(HookedRootModule):
    """The course's transformer. `model(tokens)` returns logits [batch, pos, d_vocab]."""

    def __init__(self, cfg: Config):
        super().__init__()
        validate.instance(cfg, Config, "cfg")
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.pos_embed = PosEmbed(cfg)
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = _norm(cfg)
        self.unembed = Unembed(cfg)
        self.init_weights()
        self.setup()  # names every HookPoint, e.g. "blocks.0.attn.hook_pattern"

    def init_weights(self):
        """Normal(0, init_range) weights, zero biases, unit LayerNorm scales; seeded by cfg.seed."""
        gen = torch.Generator().manual_seed(self.cfg.seed)
        for name, p in self.named_parameters():
            if name.split(".")[-1].startswith("W_"):
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=gen) * self.cfg.init_range)

    def forward(self, tokens: Int[Tensor, "batch pos"], return_type: str | None = "logits", loss_per_token: bool = False):
        """tokens -> logits [batch, pos, d_vocab], or the next-token loss.

        return_type: "logits", "loss" (mean next-token cross-entropy; [batch, pos - 1] if
        loss_per_token), "both" (logits, loss) or None.
        """
        if return_type not in ("logits", "loss", "both", None):
            raise ValueError(f"return_type must be 'logits', 'loss', 'both' or None, got {return_type!r}")
        if self.cfg.d_input is not None:  # vectors in, numbers out (notebook 13): there is no next token
            validate.vectors(tokens, self.cfg)
            if return_type not in ("logits", None):
                raise ValueError(f"return_type must be 'logits' or None for a model that reads vectors (its "
                                 f"loss is in_context_regression.prediction_loss), got {return_type!r}")
        else:
            validate.tokens(tokens, self.cfg)
        validate.boolean(loss_per_token=loss_per_token)
        tokens = tokens.to(self.W_E.device)
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            resid = block(resid)
        logits = self.unembed(self.ln_final(resid))
        # Say so here, not three cells later. One sum is NaN or inf when any logit is (a fast check on
        # the training path); a sum that overflowed to inf from finite logits is looked at entry by entry.
        if not torch.isfinite(logits.detach().sum()) and not torch.isfinite(logits).all():
            raise ValueError(f"the model's logits contain NaN or inf: {_where_not_finite(self)}")
        if return_type == "logits":
            return logits
        if return_type is None:
            return None
        loss = next_token_loss(logits, tokens, per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)

    def run_with_cache(self, *args, **kwargs) -> tuple[Tensor, ActivationCache]:
        """Like HookedRootModule.run_with_cache, but the cache is an ActivationCache."""
        out, cache_dict = super().run_with_cache(*args, **kwargs)
        return out, ActivationCache(cache_dict, self, has_batch_dim=not kwargs.get("remove_batch_dim"))

    # Weights stacked over layers, in TransformerLens's names and shapes.
    def _stack(self, name: str) -> Tensor:
        return torch.stack([getattr(block.attn, name) for block in self.blocks])

    W_Q = property(lambda self: self._stack("W_Q"))  # [layer, head_index, d_model, d_head]
    W_K = property(lambda self: self._stack("W_K"))  # [layer, head_index, d_model, d_head]
    W_V = property(lambda self: self._stack("W_V"))  # [layer, head_index, d_model, d_head]
    W_O = property(lambda self: self._stack("W_O"))  # [layer, head_index, d_head, d_model]
    b_Q = property(lambda self: self._stack("b_Q"))  # [layer, head_index, d_head]
    b_K = property(lambda self: self._stack("b_K"))  # [layer, head_index, d_head]
    b_V = property(lambda self: self._stack("b_V"))  # [layer, head_index, d_head]
    b_O = property(lambda self: self._stack("b_O"))  # [layer, d_model]
    W_E = property(lambda self: self.embed.W_E)  # [d_vocab, d_model]
    W_pos = property(lambda self: self.pos_embed.W_pos)  # [n_ctx, d_model]
    W_U = property(lambda self: self.unembed.W_U)  # [d_model, d_vocab]
    b_U = property(lambda self: self.unembed.b_U)  # [d_vocab]

    @property
    def QK(self) -> FactoredMatrix:  # [layer, head_index, d_model, d_model]
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    @property
    def OV(self) -> FactoredMatrix:  # [layer, head_index, d_model, d_model]
        return FactoredMatrix(self.W_V, self.W_O)


def _where_not_finite(model: Transformer) -> str:
    """Which weights hold NaN or inf, or else that an activation (a hook's edit) did."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        return f"the weights {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} hold NaN or inf (a diverged training run, or edited weights)"
    return "the weights are finite, so an activation became NaN or inf on the way (a hook that returned NaN or inf?)"


def next_token_loss(logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"],
                    per_token: bool = False) -> Float[Tensor, ""] | Float[Tensor, "batch predicted_pos"]:
    """Cross-entropy of predicting tokens[:, 1:] from logits[:, :-1]: the mean, or [batch, pos - 1] if per_token."""
    validate.tensor(logits, "logits", "batch pos d_vocab", dtype="float")
    validate.tensor(tokens, "tokens", "batch pos", dtype="int")
    if logits.shape[:2] != tokens.shape:
        raise ValueError(f"logits [batch, pos, d_vocab] and tokens [batch, pos] must agree, got shapes "
                         f"{tuple(logits.shape)} and {tuple(tokens.shape)}")
    validate.positions_at_least(tokens, 2, "tokens", "a next-token loss (one to predict from, one to predict)")
    validate.ids(tokens, logits.shape[-1], "tokens")
    validate.boolean(per_token=per_token)
    validate.finite(logits, "logits")
    predictions, targets = logits[:, :-1], tokens[:, 1:]
    loss = F.cross_entropy(predictions.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           reduction="none" if per_token else "mean")
    return loss.view(targets.shape) if per_token else loss


def last_position_loss(logits: Float[Tensor, "batch pos d_vocab"], answers: Int[Tensor, " batch"]) -> Float[Tensor, ""]:
    """Mean cross-entropy of each sequence's answer, predicted at its last position: a task with one
    answer per sequence (modular addition `a b =`, notebook 10), where the rest of the sequence is
    given, not predicted."""
    validate.tensor(logits, "logits", "batch pos d_vocab", dtype="float")
    validate.answers(answers, logits, "answers", logits.shape[-1])
    validate.finite(logits, "logits")
    return F.cross_entropy(logits[:, -1], answers)


# ---- Notebook 01, last part: using the model ------------------------------------------------------


def sample(model: Transformer, prompt: Int[Tensor, "batch pos"], n_new: int, temperature: float,
           generator: torch.Generator) -> Int[Tensor, "batch pos_plus_new"]:
    """The prompt followed by `n_new` tokens, each predicted from the sequence so far (notebook 01):
    greedy (the most likely token) when temperature == 0, else drawn from softmax(logits / temperature)
    with one torch.multinomial call per new token, for the whole batch, using `generator`."""
    validate.model(model)
    validate.tokens(prompt, model.cfg, "prompt")
    validate.at_least(n_new, 0, "n_new")
    validate.non_negative(temperature=temperature)
    validate.instance(generator, torch.Generator, "generator")
    if prompt.shape[1] + n_new > model.cfg.n_ctx:
        raise ValueError(f"prompt has {prompt.shape[1]} positions and n_new={n_new} more would make "
                         f"{prompt.shape[1] + n_new}, beyond the model's context n_ctx={model.cfg.n_ctx}")
    tokens = prompt
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(tokens)[:, -1]  # [batch, d_vocab]: the last position predicts the next token
            if temperature == 0:
                next_token = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = (logits / temperature).softmax(dim=-1)
                # on the CPU, where the generator is: the same seed gives the same tokens on any device
                next_token = torch.multinomial(probs.cpu(), num_samples=1, generator=generator).to(tokens.device)
            tokens = torch.cat([tokens, next_token], dim=1)
    return tokens


def record_patterns(model: Transformer, tokens: Int[Tensor, "batch pos"]
                    ) -> Float[Tensor, "layer batch head_index query_pos key_pos"]:
    """Every layer's attention pattern, read by hooks during one run (notebook 01)."""
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    patterns = []

    def record(pattern, hook):
        patterns.append(pattern.detach())  # returns None: the model carries on with the pattern unchanged

    hooks = [(f"blocks.{layer}.attn.hook_pattern", record) for layer in range(model.cfg.n_layers)]
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    return torch.stack(patterns)


def logits_with_positions(model: Transformer, tokens: Int[Tensor, "batch pos"], positions: Int[Tensor, " pos"]
                          ) -> Float[Tensor, "batch pos d_vocab"]:
    """The logits when the model is told that token i sits at position positions[i] (notebook 01): a
    hook replaces the positional embedding with those rows of W_pos."""
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    validate.tensor(positions, "positions", "pos", dtype="int")
    validate.shape_is(positions, "positions", (tokens.shape[1],), "[pos] (one position per token)")
    validate.ids(positions, model.cfg.n_ctx, "positions", "the model's positions")

    def move(pos_embed, hook):
        return model.W_pos[positions].expand_as(pos_embed)

    return model.run_with_hooks(tokens, fwd_hooks=[("hook_pos_embed", move)])


def generate(model, prompt: Int[Tensor, "batch prompt_pos"], new_tokens: int, generator: torch.Generator | None = None,
             fwd_hooks=()) -> Int[Tensor, "batch pos"]:
    """The prompt followed by `new_tokens` tokens from `model`, one at a time: [batch, prompt_pos + new_tokens].

    Greedy (the most likely next token) when `generator` is None; otherwise sampled from the softmax
    of the logits with that CPU `torch.Generator`, so a seed gives the same text on any device.
    `fwd_hooks` ([(hook name, hook), ...], as for `run_with_hooks`) stay on for every step: generation
    with heads ablated (notebook 03). No key-value cache: each step reruns the whole sequence, which
    the course's short contexts make cheap. Works on a course `Transformer` and a `TransformerBridge`.
    """
    validate.model(model)
    validate.tokens(prompt, model.cfg, "prompt")
    validate.positive(new_tokens=new_tokens)
    if prompt.shape[1] + new_tokens > model.cfg.n_ctx:
        raise ValueError(f"prompt ({prompt.shape[1]} positions) plus new_tokens ({new_tokens}) must fit in the "
                         f"model's context, n_ctx={model.cfg.n_ctx}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None (greedy), got {type(generator).__name__}")
    if not isinstance(fwd_hooks, (list, tuple)):
        raise TypeError(f"fwd_hooks must be a list of (hook name, hook) pairs, got {type(fwd_hooks).__name__}")
    with model.hooks(fwd_hooks=list(fwd_hooks)):  # `sample` at temperature 1, or 0 (greedy) without a generator
        return sample(model, prompt, new_tokens, 0.0 if generator is None else 1.0,
                      torch.Generator() if generator is None else generator)
