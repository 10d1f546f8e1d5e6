"""The course's transformer, the one you build in notebook 01.

A decoder-only transformer small enough to hold in your head: token and position embeddings, a stack
of blocks (causal multi-head attention, optionally an MLP, optionally LayerNorm), and an unembedding.
Every intermediate activation passes through a `HookPoint` with the TransformerLens name
(`blocks.0.attn.hook_pattern`, ...), and the weights have TransformerLens names and shapes
(`W_Q` is [n_heads, d_model, d_head]), so `run_with_cache`, `run_with_hooks`, `ActivationCache` and
`FactoredMatrix` work on it exactly as they do on a `TransformerBridge`.

With no hook attached to the attention scores or pattern, attention runs through the fused
`F.scaled_dot_product_attention`; when one is attached (by `run_with_cache`, say), it computes the
scores and pattern explicitly so the hooks can read or change them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import einops
import torch
import torch.nn as nn
import torch.nn.functional as F
from transformer_lens import ActivationCache, FactoredMatrix, HookedRootModule
from transformer_lens.hook_points import HookPoint

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
    d_head: int = field(init=False)

    def __post_init__(self):
        for name in ("d_vocab", "n_ctx", "d_model", "n_heads", "n_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Config.{name} must be a positive int, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"Config.seed must be an int, got {self.seed!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"Config.d_model={self.d_model} is not divisible by n_heads={self.n_heads}: "
                f"each head gets d_model // n_heads dimensions, so choose n_heads among the "
                f"divisors of {self.d_model}."
            )
        if self.normalization_type not in NORMALIZATION_TYPES:
            raise ValueError(
                f"Config.normalization_type must be one of {NORMALIZATION_TYPES}, "
                f"got {self.normalization_type!r}"
            )
        if self.act_fn not in ACTIVATIONS:
            raise ValueError(f"Config.act_fn must be one of {sorted(ACTIVATIONS)}, got {self.act_fn!r}")
        if not self.attn_only and self.d_mlp is not None and (
                not isinstance(self.d_mlp, int) or isinstance(self.d_mlp, bool) or self.d_mlp < 1):
            raise ValueError(f"Config.d_mlp must be a positive int or None, got {self.d_mlp!r}")
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
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {f.name for f in fields(cls) if f.init}
        unknown = set(d) - known - {"d_head"}
        if unknown:
            raise ValueError(f"unknown Config fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- Clear errors for bad input: short checks the functions below call first. ----


def _check_tensor(name: str, value, shape: str, dtype: str | None = None) -> None:
    """Raise a clear error unless `value` is a tensor of `shape` (e.g. "[batch, pos]"; a leading
    "..." allows extra leading axes), of dtype "float" or "int" if given, holding data (not on "meta")."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {shape}, got {type(value).__name__}")
    axes = shape.strip("[]").split(", ")
    if value.ndim < len(axes) - 1 if axes[0] == "..." else value.ndim != len(axes):
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(value.shape)}")
    if dtype == "float" and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if dtype == "int" and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer tensor (torch.long), got dtype {value.dtype}")
    if value.is_meta:
        raise ValueError(f"{name} must hold data (a CPU or GPU tensor), got a tensor on device 'meta'")


def _check_tokens(tokens, cfg, name: str = "tokens") -> None:
    """Raise a clear error unless `tokens` is an int tensor [batch, pos] of ids the model `cfg` can read."""
    if isinstance(tokens, torch.Tensor) and tokens.ndim == 1:
        raise ValueError(f"{name} must have shape [batch, pos], got shape {tuple(tokens.shape)} "
                         f"(add a batch dimension: {name}[None])")
    _check_tensor(name, tokens, "[batch, pos]", dtype="int")
    if tokens.shape[0] == 0 or tokens.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(tokens.shape)}, expected at least one sequence and position")
    if tokens.shape[1] > cfg.n_ctx:
        raise ValueError(f"{name} has {tokens.shape[1]} positions but the model's context is n_ctx={cfg.n_ctx}")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= cfg.d_vocab:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name} contains id {bad}, outside the vocabulary [0, {cfg.d_vocab})")


def _check_config(cfg, name: str = "cfg") -> None:
    if not isinstance(cfg, Config):
        raise TypeError(f"{name} must be a course_utils.model.Config, got {type(cfg).__name__}")


def _check_model(model, name: str = "model") -> None:
    """Raise a clear error unless `model` looks like a course Transformer or a TransformerBridge."""
    if not (isinstance(model, nn.Module) and hasattr(model, "cfg") and hasattr(model, "run_with_cache")):
        raise TypeError(f"{name} must be a course_utils Transformer or a TransformerBridge, got {type(model).__name__}")


# ---- The pieces you write in notebook 01, as functions. The modules below are built from them. ----


def embed(tokens: torch.Tensor, W_E: torch.Tensor) -> torch.Tensor:
    """tokens [batch, pos], W_E [d_vocab, d_model] -> [batch, pos, d_model]: row `token` of W_E."""
    _check_tensor("tokens", tokens, "[batch, pos]", dtype="int")
    _check_tensor("W_E", W_E, "[d_vocab, d_model]", dtype="float")
    try:
        return F.embedding(tokens, W_E)  # W_E[tokens], with a faster backward pass
    except IndexError:  # checked only when it fails, so that the check costs nothing
        raise IndexError(f"tokens must be ids in [0, {len(W_E)}) (the rows of W_E), got ids from "
                         f"{int(tokens.min())} to {int(tokens.max())}") from None


def pos_embed(tokens: torch.Tensor, W_pos: torch.Tensor) -> torch.Tensor:
    """tokens [batch, pos], W_pos [n_ctx, d_model] -> [batch, pos, d_model]: row `position` of W_pos."""
    _check_tensor("tokens", tokens, "[batch, pos]", dtype="int")
    _check_tensor("W_pos", W_pos, "[n_ctx, d_model]", dtype="float")
    batch, seq_len = tokens.shape
    if seq_len > len(W_pos):
        raise ValueError(f"tokens has {seq_len} positions but W_pos has only n_ctx={len(W_pos)} rows")
    return W_pos[:seq_len].expand(batch, seq_len, -1)


def attention_pattern(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """q, k [..., pos, d_head] -> pattern [..., query_pos, key_pos].

    Scores q.k / sqrt(d_head); a query may not look at later keys (causal mask, applied as -inf
    before the softmax); softmax over the keys, so each query's row sums to 1.
    """
    _check_tensor("q", q, "[..., pos, d_head]", dtype="float")
    _check_tensor("k", k, "[..., pos, d_head]", dtype="float")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    seq_len, d_head = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)
    future = torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool, device=q.device), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def multi_head_attention(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O) -> torch.Tensor:
    """Causal multi-head attention. x [batch, pos, d_model] -> [batch, pos, d_model].

    W_Q, W_K, W_V [head, d_model, d_head]; b_Q, b_K, b_V [head, d_head]; W_O [head, d_head, d_model];
    b_O [d_model]. Each head attends on its own; their outputs add up in the residual stream.
    """
    _check_tensor("x", x, "[batch, pos, d_model]", dtype="float")
    for name, W in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V)):
        _check_tensor(name, W, "[head, d_model, d_head]", dtype="float")
    _check_tensor("W_O", W_O, "[head, d_head, d_model]", dtype="float")
    if W_Q.shape[1] != x.shape[-1]:
        raise ValueError(f"x has d_model={x.shape[-1]} but W_Q expects d_model={W_Q.shape[1]}")
    q = einops.einsum(x, W_Q, "b p d, h d e -> b h p e") + b_Q[:, None]
    k = einops.einsum(x, W_K, "b p d, h d e -> b h p e") + b_K[:, None]
    v = einops.einsum(x, W_V, "b p d, h d e -> b h p e") + b_V[:, None]
    z = attention_pattern(q, k) @ v  # [batch, head, pos, d_head]
    return einops.einsum(z, W_O, "b h p e, h e d -> b p d") + b_O


def unembed(resid: torch.Tensor, W_U: torch.Tensor, b_U: torch.Tensor) -> torch.Tensor:
    """resid [batch, pos, d_model] -> logits [batch, pos, d_vocab]."""
    _check_tensor("resid", resid, "[batch, pos, d_model]", dtype="float")
    _check_tensor("W_U", W_U, "[d_model, d_vocab]", dtype="float")
    _check_tensor("b_U", b_U, "[d_vocab]", dtype="float")
    if resid.shape[-1] != W_U.shape[0] or W_U.shape[1] != b_U.shape[0]:
        raise ValueError(f"resid [.., d_model], W_U [d_model, d_vocab] and b_U [d_vocab] must agree, got "
                         f"shapes {tuple(resid.shape)}, {tuple(W_U.shape)} and {tuple(b_U.shape)}")
    return F.linear(resid, W_U.T, b_U)  # resid @ W_U + b_U, fused into one operation


class Embed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))

    def forward(self, tokens):  # [batch, pos] -> [batch, pos, d_model]
        # embed(tokens, W_E) without its input checks: Transformer.forward has checked the tokens.
        return F.embedding(tokens, self.W_E)


class PosEmbed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))

    def forward(self, tokens):  # [batch, pos] -> [batch, pos, d_model]
        # pos_embed(tokens, W_pos) without its input checks: Transformer.forward has checked the tokens.
        return self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1)


class LayerNorm(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
        self.eps = cfg.eps
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x):
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale) * self.w + self.b


def project(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [batch, pos, d_model], W [head, d_model, d_head], b [head, d_head] -> [batch, pos, head, d_head].

    The same as einsum("b p d, h d e -> b p h e") + b, done as one fused matrix product over all
    heads at once (W laid out as nn.Linear's [head * d_head, d_model]): this keeps training fast.
    """
    _check_tensor("x", x, "[batch, pos, d_model]", dtype="float")
    _check_tensor("W", W, "[head, d_model, d_head]", dtype="float")
    _check_tensor("b", b, "[head, d_head]", dtype="float")
    return _project(x, W, b)


def _project(x, W, b):  # project() without its input checks, for Attention.forward (called every step)
    head, d_model, d_head = W.shape
    weight = W.permute(0, 2, 1).reshape(head * d_head, d_model)
    return F.linear(x, weight, b.flatten()).unflatten(-1, (head, d_head))


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
        h, d, e = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, d, e))
        self.W_K = nn.Parameter(torch.empty(h, d, e))
        self.W_V = nn.Parameter(torch.empty(h, d, e))
        self.W_O = nn.Parameter(torch.empty(h, e, d))
        self.b_Q = nn.Parameter(torch.zeros(h, e))
        self.b_K = nn.Parameter(torch.zeros(h, e))
        self.b_V = nn.Parameter(torch.zeros(h, e))
        self.b_O = nn.Parameter(torch.zeros(d))
        causal = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool))
        self.register_buffer("mask", causal, persistent=False)
        self.scale = math.sqrt(e)
        self.hook_q = HookPoint()  # [batch, pos, head, d_head]
        self.hook_k = HookPoint()  # [batch, pos, head, d_head]
        self.hook_v = HookPoint()  # [batch, pos, head, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, head, query_pos, key_pos]
        self.hook_pattern = HookPoint()  # [batch, head, query_pos, key_pos]
        self.hook_z = HookPoint()  # [batch, pos, head, d_head]

    def needs_pattern(self) -> bool:
        """True when a hook wants to see (or change) the scores or the pattern."""
        # HookPoint.has_hooks() says the same, but this runs on every forward pass and is cheaper.
        scores, pattern = self.hook_attn_scores, self.hook_pattern
        return bool(scores.fwd_hooks or scores.bwd_hooks or pattern.fwd_hooks or pattern.bwd_hooks)

    def forward(self, x):  # [batch, pos, d_model] -> [batch, pos, d_model]
        # Hooks see TransformerLens's layout [batch, pos, head, d_head]; the math uses [batch, head, pos, d_head].
        # Queries, keys and values of every head in one matrix product, then split into three.
        qkv = _project(x, torch.cat([self.W_Q, self.W_K, self.W_V]), torch.cat([self.b_Q, self.b_K, self.b_V]))
        q, k, v = qkv.chunk(3, dim=2)  # each [batch, pos, head, d_head]
        q, k, v = self.hook_q(q).transpose(1, 2), self.hook_k(k).transpose(1, 2), self.hook_v(v).transpose(1, 2)
        if self.needs_pattern():
            seq_len = x.shape[1]
            scores = q @ k.transpose(-2, -1) / self.scale  # [batch, head, query_pos, key_pos]
            scores = scores.masked_fill(~self.mask[:seq_len, :seq_len], float("-inf"))
            pattern = self.hook_pattern(self.hook_attn_scores(scores).softmax(dim=-1))
            z = pattern @ v
        else:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # the same, fused
        z = self.hook_z(z.transpose(1, 2))  # [batch, pos, head, d_head]
        # Each head writes through its own W_O and the heads' outputs add up: one matmul does both.
        return F.linear(z.flatten(2), self.W_O.flatten(0, 1).T, self.b_O)


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
        if cfg.attn_only:
            raise ValueError("cfg.attn_only must be False for an MLP (an attention-only config has no d_mlp), got True")
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.act = ACTIVATIONS[cfg.act_fn]
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x):
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        return self.hook_post(self.act(pre)) @ self.W_out + self.b_out


def _norm(cfg: Config) -> nn.Module:
    return LayerNorm(cfg) if cfg.normalization_type == "LN" else nn.Identity()


class TransformerBlock(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
        self.attn_only = cfg.attn_only
        self.ln1 = _norm(cfg)
        self.attn = Attention(cfg)
        self.hook_resid_pre = HookPoint()  # [batch, pos, d_model]
        self.hook_attn_out = HookPoint()  # [batch, pos, d_model]
        if not cfg.attn_only:
            self.ln2 = _norm(cfg)
            self.mlp = MLP(cfg)
            self.hook_resid_mid = HookPoint()
            self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model]

    def forward(self, resid):
        resid = self.hook_resid_pre(resid)
        resid = resid + self.hook_attn_out(self.attn(self.ln1(resid)))
        if not self.attn_only:
            resid = self.hook_resid_mid(resid)
            resid = resid + self.hook_mlp_out(self.mlp(self.ln2(resid)))
        return self.hook_resid_post(resid)


class Unembed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))

    def forward(self, x):  # [batch, pos, d_model] -> [batch, pos, d_vocab]
        return x @ self.W_U + self.b_U


class Transformer(HookedRootModule):
    """The course's transformer. `model(tokens)` returns logits [batch, pos, d_vocab]."""

    def __init__(self, cfg: Config):
        super().__init__()
        _check_config(cfg)
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

    def check_tokens(self, tokens) -> torch.Tensor:
        """Raise a clear error unless `tokens` is an int tensor [batch, pos] of valid ids."""
        _check_tokens(tokens, self.cfg)
        return tokens.to(self.W_E.device)

    def forward(self, tokens, return_type: str = "logits", loss_per_token: bool = False):
        """tokens [batch, pos] -> logits [batch, pos, d_vocab], or the next-token loss.

        return_type: "logits", "loss" (mean next-token cross-entropy; [batch, pos-1] if
        loss_per_token), "both" (logits, loss) or None.
        """
        if return_type not in ("logits", "loss", "both", None):
            raise ValueError(f"return_type must be 'logits', 'loss', 'both' or None, got {return_type!r}")
        tokens = self.check_tokens(tokens)
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            resid = block(resid)
        logits = self.unembed(self.ln_final(resid))
        if return_type == "logits":
            return logits
        if return_type is None:
            return None
        loss = _next_token_loss(logits, tokens, per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)

    def run_with_cache(self, *args, **kwargs) -> tuple[torch.Tensor, ActivationCache]:
        """Like HookedRootModule.run_with_cache, but the cache is an ActivationCache."""
        out, cache_dict = super().run_with_cache(*args, **kwargs)
        return out, ActivationCache(cache_dict, self, has_batch_dim=not kwargs.get("remove_batch_dim"))

    # Weights stacked over layers, in TransformerLens shapes.
    def _stack(self, name: str) -> torch.Tensor:
        return torch.stack([getattr(block.attn, name) for block in self.blocks])

    W_Q = property(lambda self: self._stack("W_Q"))  # [layer, head, d_model, d_head]
    W_K = property(lambda self: self._stack("W_K"))  # [layer, head, d_model, d_head]
    W_V = property(lambda self: self._stack("W_V"))  # [layer, head, d_model, d_head]
    W_O = property(lambda self: self._stack("W_O"))  # [layer, head, d_head, d_model]
    b_Q = property(lambda self: self._stack("b_Q"))  # [layer, head, d_head]
    b_K = property(lambda self: self._stack("b_K"))
    b_V = property(lambda self: self._stack("b_V"))
    b_O = property(lambda self: self._stack("b_O"))  # [layer, d_model]
    W_E = property(lambda self: self.embed.W_E)  # [d_vocab, d_model]
    W_pos = property(lambda self: self.pos_embed.W_pos)  # [n_ctx, d_model]
    W_U = property(lambda self: self.unembed.W_U)  # [d_model, d_vocab]
    b_U = property(lambda self: self.unembed.b_U)  # [d_vocab]

    @property
    def QK(self) -> FactoredMatrix:  # [layer, head, d_model, d_model]
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    @property
    def OV(self) -> FactoredMatrix:  # [layer, head, d_model, d_model]
        return FactoredMatrix(self.W_V, self.W_O)


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Cross-entropy of predicting tokens[:, 1:] from logits[:, :-1]; [batch, pos-1] if per_token."""
    _check_tensor("logits", logits, "[batch, pos, d_vocab]", dtype="float")
    _check_tensor("tokens", tokens, "[batch, pos]", dtype="int")
    if logits.shape[:2] != tokens.shape:
        raise ValueError(f"logits [batch, pos, d_vocab] and tokens [batch, pos] must agree, got shapes "
                         f"{tuple(logits.shape)} and {tuple(tokens.shape)}")
    return _next_token_loss(logits, tokens, per_token)


def _next_token_loss(logits, tokens, per_token=False):  # without the checks, for Transformer.forward
    predictions, targets = logits[:, :-1], tokens[:, 1:]
    loss = F.cross_entropy(predictions.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           reduction="none" if per_token else "mean")
    return loss.view(targets.shape) if per_token else loss


# ---------------------------------------------------------------------------------------------
# Conversion to and from TransformerLens 4.x's TransformerBridge.
# Our parameter names and shapes are TransformerLens's classic ones ("blocks.0.attn.W_Q",
# [n_heads, d_model, d_head]); transformer_lens converts those into the bridge's nn.Linear layout.


def bridge_config(cfg: Config):
    """The TransformerBridgeConfig that `TransformerBridge.boot_native` needs for a model like ours."""
    from transformer_lens import TransformerBridgeConfig

    _check_config(cfg)
    return TransformerBridgeConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_ctx=cfg.n_ctx, d_head=cfg.d_head,
        n_heads=cfg.n_heads, d_vocab=cfg.d_vocab, attn_only=cfg.attn_only, d_mlp=cfg.d_mlp,
        act_fn=None if cfg.attn_only else cfg.act_fn, normalization_type=cfg.normalization_type,
        eps=cfg.eps, seed=cfg.seed,
    )


def to_bridge(model: Transformer):
    """A TransformerBridge computing exactly what `model` computes (same weights, same logits)."""
    if not isinstance(model, Transformer):
        raise TypeError(f"to_bridge expects a course_utils Transformer as model, got {type(model).__name__}")
    from transformer_lens import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    bcfg = bridge_config(model.cfg)
    bridge = TransformerBridge.boot_native(bcfg, device=model.W_E.device)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bridge.load_state_dict(convert_tl_checkpoint(state, bcfg), strict=True)
    return bridge.train(model.training)  # in eval mode when the model is (zoo models are)


# Bridge key suffix -> (our suffix, conversion). Most specific first.
def _from_bridge_rules(cfg: Config):
    h = cfg.n_heads
    heads_in = lambda t: einops.rearrange(t, "(h e) d -> h d e", h=h)  # noqa: E731
    return [
        ("attn.q.weight", "attn.W_Q", heads_in),
        ("attn.k.weight", "attn.W_K", heads_in),
        ("attn.v.weight", "attn.W_V", heads_in),
        ("attn.o.weight", "attn.W_O", lambda t: einops.rearrange(t, "d (h e) -> h e d", h=h)),
        ("attn.q.bias", "attn.b_Q", lambda t: t.reshape(h, -1)),
        ("attn.k.bias", "attn.b_K", lambda t: t.reshape(h, -1)),
        ("attn.v.bias", "attn.b_V", lambda t: t.reshape(h, -1)),
        ("attn.o.bias", "attn.b_O", lambda t: t),
        ("mlp.in.weight", "mlp.W_in", lambda t: t.T),
        ("mlp.in.bias", "mlp.b_in", lambda t: t),
        ("mlp.out.weight", "mlp.W_out", lambda t: t.T),
        ("mlp.out.bias", "mlp.b_out", lambda t: t),
        ("unembed.weight", "unembed.W_U", lambda t: t.T),
        ("unembed.bias", "unembed.b_U", lambda t: t),
        ("pos_embed.weight", "pos_embed.W_pos", lambda t: t),
        ("embed.weight", "embed.W_E", lambda t: t),
        (".weight", ".w", lambda t: t),  # LayerNorms
        (".bias", ".b", lambda t: t),
    ]


def from_bridge(bridge) -> Transformer:
    """A course Transformer with the weights of a TL-native `TransformerBridge` (boot_native)."""
    from transformer_lens import TransformerBridge

    if not isinstance(bridge, TransformerBridge):
        raise TypeError(f"from_bridge expects a TransformerBridge as bridge, got {type(bridge).__name__}")
    bcfg = bridge.cfg
    norm = bcfg.normalization_type
    if norm not in NORMALIZATION_TYPES or bcfg.positional_embedding_type != "standard":
        raise ValueError(
            f"from_bridge supports standard positional embeddings and normalization_type None or "
            f"'LN'; this bridge has {bcfg.positional_embedding_type!r} and {norm!r}"
        )
    cfg = Config(
        d_vocab=bcfg.d_vocab, n_ctx=bcfg.n_ctx, d_model=bcfg.d_model, n_heads=bcfg.n_heads,
        n_layers=bcfg.n_layers, attn_only=bool(bcfg.attn_only), d_mlp=bcfg.d_mlp,
        normalization_type=norm, act_fn=bcfg.act_fn or "gelu", eps=bcfg.eps,
    )
    model = Transformer(cfg)
    rules = _from_bridge_rules(cfg)
    state = {}
    for key, tensor in bridge.state_dict().items():
        for theirs, ours, convert in rules:
            if key.endswith(theirs):
                state[key[: len(key) - len(theirs)] + ours] = convert(tensor.detach()).contiguous()
                break
        else:
            raise ValueError(f"from_bridge: no rule for the bridge's parameter {key!r}")
    model.load_state_dict(state, strict=True)
    return model.to(next(bridge.parameters()).device)
