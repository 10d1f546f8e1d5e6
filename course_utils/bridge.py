"""The course's Transformer to and from TransformerLens 4's `TransformerBridge`, exactly (notebook 01
converts its model; notebooks 03-07 check that their tools give the same numbers on both).

Our weights have TransformerLens's classic names and shapes (`blocks.0.attn.W_Q`,
[head_index, d_model, d_head]); the bridge keeps `nn.Linear` layouts (`blocks.0.attn.q.weight`,
[head_index * d_head, d_model]). TransformerLens converts ours into the bridge's
(`convert_tl_checkpoint`); `FROM_BRIDGE` is the table back.
"""

from __future__ import annotations

import einops
from transformer_lens import TransformerBridge, TransformerBridgeConfig
from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

from . import validate
from .model import NORMALIZATION_TYPES, Config, Transformer


def bridge_config(cfg: Config) -> TransformerBridgeConfig:
    """The TransformerBridgeConfig that `TransformerBridge.boot_native` needs for a model like ours."""
    validate.instance(cfg, Config, "cfg")
    return TransformerBridgeConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_ctx=cfg.n_ctx, d_head=cfg.d_head,
        n_heads=cfg.n_heads, d_vocab=cfg.d_vocab, attn_only=cfg.attn_only, d_mlp=cfg.d_mlp,
        act_fn=None if cfg.attn_only else cfg.act_fn, normalization_type=cfg.normalization_type,
        eps=cfg.eps, seed=cfg.seed,
    )


def to_bridge(model: Transformer) -> TransformerBridge:
    """A TransformerBridge computing exactly what `model` computes (same weights, same logits)."""
    validate.instance(model, Transformer, "model")
    if model.cfg.d_input is not None:
        raise ValueError(f"model reads vectors (Config.d_input={model.cfg.d_input}, notebook 13): a TransformerBridge "
                         f"reads token ids, so there is no bridge computing the same; expected a token model (d_input None)")
    bcfg = bridge_config(model.cfg)
    bridge = TransformerBridge.boot_native(bcfg, device=model.W_E.device)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bridge.load_state_dict(convert_tl_checkpoint(state, bcfg), strict=True)
    return bridge.train(model.training)  # in eval mode when the model is (zoo models are)


# The bridge's parameter name ends in the first column -> ours ends in the second, and the tensor
# is rearranged from the bridge's layout into ours. Most specific first: ".weight" matches last.
FROM_BRIDGE = [
    ("attn.q.weight", "attn.W_Q", "(head_index d_head) d_model -> head_index d_model d_head"),
    ("attn.k.weight", "attn.W_K", "(head_index d_head) d_model -> head_index d_model d_head"),
    ("attn.v.weight", "attn.W_V", "(head_index d_head) d_model -> head_index d_model d_head"),
    ("attn.o.weight", "attn.W_O", "d_model (head_index d_head) -> head_index d_head d_model"),
    ("attn.q.bias", "attn.b_Q", "(head_index d_head) -> head_index d_head"),
    ("attn.k.bias", "attn.b_K", "(head_index d_head) -> head_index d_head"),
    ("attn.v.bias", "attn.b_V", "(head_index d_head) -> head_index d_head"),
    ("attn.o.bias", "attn.b_O", "d_model -> d_model"),
    ("mlp.in.weight", "mlp.W_in", "d_mlp d_model -> d_model d_mlp"),
    ("mlp.in.bias", "mlp.b_in", "d_mlp -> d_mlp"),
    ("mlp.out.weight", "mlp.W_out", "d_model d_mlp -> d_mlp d_model"),
    ("mlp.out.bias", "mlp.b_out", "d_model -> d_model"),
    ("unembed.weight", "unembed.W_U", "d_vocab d_model -> d_model d_vocab"),
    ("unembed.bias", "unembed.b_U", "d_vocab -> d_vocab"),
    ("pos_embed.weight", "pos_embed.W_pos", "n_ctx d_model -> n_ctx d_model"),
    ("embed.weight", "embed.W_E", "d_vocab d_model -> d_vocab d_model"),
    (".weight", ".w", "d_model -> d_model"),  # LayerNorms
    (".bias", ".b", "d_model -> d_model"),
]


def from_bridge(bridge: TransformerBridge) -> Transformer:
    """A course Transformer with the weights of a TL-native `TransformerBridge` (boot_native)."""
    validate.instance(bridge, TransformerBridge, "bridge")
    bcfg = bridge.cfg
    norm = bcfg.normalization_type
    if norm not in NORMALIZATION_TYPES or bcfg.positional_embedding_type != "standard":
        raise ValueError(f"bridge must have standard positional embeddings and normalization_type None or 'LN', "
                         f"got {bcfg.positional_embedding_type!r} and {norm!r}")
    cfg = Config(
        d_vocab=bcfg.d_vocab, n_ctx=bcfg.n_ctx, d_model=bcfg.d_model, n_heads=bcfg.n_heads,
        n_layers=bcfg.n_layers, attn_only=bool(bcfg.attn_only), d_mlp=bcfg.d_mlp,
        normalization_type=norm, act_fn=bcfg.act_fn or "gelu", eps=bcfg.eps,
    )
    model = Transformer(cfg)
    state = {}
    for key, tensor in bridge.state_dict().items():
        for theirs, ours, layouts in FROM_BRIDGE:
            if key.endswith(theirs):
                sizes = {"head_index": cfg.n_heads} if "head_index" in layouts else {}
                converted = einops.rearrange(tensor.detach(), layouts, **sizes)
                state[key[: len(key) - len(theirs)] + ours] = converted.contiguous()
                break
        else:
            raise ValueError(f"bridge has a parameter {key!r} that no rule of FROM_BRIDGE converts")
    model.load_state_dict(state, strict=True)
    return model.to(next(bridge.parameters()).device)
