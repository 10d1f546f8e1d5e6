import pytest
import torch

from course_utils import model as M
from course_utils.bridge import from_bridge, to_bridge
from course_utils.model import Config, Transformer

CONFIGS = {
    "attn_only": Config(d_vocab=50, n_ctx=24, d_model=32, n_heads=4, n_layers=2),
    "mlp_ln": Config(d_vocab=50, n_ctx=24, d_model=32, n_heads=2, n_layers=3, attn_only=False,
                     normalization_type="LN", seed=3),
}


def tokens_for(cfg, batch=3, seq=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.d_vocab, (batch, seq or cfg.n_ctx), generator=g)


@pytest.mark.parametrize("name", CONFIGS)
def test_bridge_logits_match_both_ways(name):
    cfg = CONFIGS[name]
    model = Transformer(cfg)
    tokens = tokens_for(cfg)
    bridge = to_bridge(model)
    with torch.no_grad():
        ours, theirs = model(tokens), bridge(tokens)
        assert (ours - theirs).abs().max() < 1e-5
        back = from_bridge(bridge)
        assert back.cfg.to_dict() == {**cfg.to_dict(), "seed": 0, "init_range": back.cfg.init_range}
        assert (back(tokens) - theirs).abs().max() < 1e-5


@pytest.mark.parametrize("name", CONFIGS)
def test_cache_names_and_values_match_the_bridge(name):
    cfg = CONFIGS[name]
    model = Transformer(cfg)
    tokens = tokens_for(cfg, seq=10)
    _, cache = model.run_with_cache(tokens)
    _, bcache = to_bridge(model).run_with_cache(tokens)
    assert set(cache.keys()) <= set(bcache.keys())
    for key in cache.keys():
        if key.endswith("hook_attn_scores"):
            continue  # the 4.3 native bridge stores the softmaxed pattern under this name
        assert cache[key].shape == bcache[key].shape, key
        assert torch.allclose(cache[key], bcache[key], atol=1e-5), key


def test_hook_names_are_transformerlens_names():
    model = Transformer(CONFIGS["mlp_ln"])
    names = set(model.hook_dict)
    for expected in ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q",
                     "blocks.0.attn.hook_k", "blocks.0.attn.hook_v", "blocks.0.attn.hook_attn_scores",
                     "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.hook_attn_out",
                     "blocks.0.hook_resid_mid", "blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post",
                     "blocks.0.hook_mlp_out", "blocks.2.hook_resid_post", "ln_final.hook_scale"]:
        assert expected in names, expected


def test_weight_properties_have_transformerlens_shapes():
    cfg = CONFIGS["attn_only"]
    model = Transformer(cfg)
    L, H, D, E = cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head
    assert model.W_Q.shape == model.W_K.shape == model.W_V.shape == (L, H, D, E)
    assert model.W_O.shape == (L, H, E, D)
    assert model.W_E.shape == (cfg.d_vocab, D) and model.W_U.shape == (D, cfg.d_vocab)
    assert model.W_pos.shape == (cfg.n_ctx, D)
    assert model.OV.shape == (L, H, D, D) and model.QK.shape == (L, H, D, D)
    bridge = to_bridge(model)
    for name in ["W_Q", "W_K", "W_V", "W_O", "W_E", "W_U", "W_pos"]:
        assert torch.allclose(getattr(model, name), getattr(bridge, name), atol=1e-6), name


def test_fused_and_explicit_attention_agree():
    cfg = CONFIGS["mlp_ln"]
    model = Transformer(cfg)
    tokens = tokens_for(cfg)
    fused = model(tokens)
    seen = []
    explicit = model.run_with_hooks(
        tokens, fwd_hooks=[(lambda n: n.endswith("hook_pattern"), lambda p, hook: seen.append(hook.name))]
    )
    assert len(seen) == cfg.n_layers  # the hooks ran, so the explicit path was taken
    assert torch.allclose(fused, explicit, atol=1e-5)
    hookpoints = [hp for b in model.blocks for hp in (b.attn.hook_attn_scores, b.attn.hook_pattern)]
    assert not any(hp.has_hooks() for hp in hookpoints)  # hooks are gone afterwards: back to the fused path


def test_a_pattern_hook_changes_the_output():
    cfg = CONFIGS["attn_only"]
    model = Transformer(cfg)
    tokens = tokens_for(cfg)

    def attend_to_first(pattern, hook):
        out = torch.zeros_like(pattern)
        out[..., 0] = 1.0
        return out

    clean = model(tokens)
    hooked = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_pattern", attend_to_first)])
    assert not torch.allclose(clean, hooked, atol=1e-4)


def test_functional_pieces_match_the_modules():
    cfg = CONFIGS["attn_only"]
    model = Transformer(cfg)
    x = torch.randn(2, 9, cfg.d_model)
    a = model.blocks[0].attn
    expected = a(x)
    got = M.multi_head_attention(x, a.W_Q, a.b_Q, a.W_K, a.b_K, a.W_V, a.b_V, a.W_O, a.b_O)
    assert torch.allclose(got, expected, atol=1e-5)


def test_loss_is_next_token_cross_entropy():
    cfg = CONFIGS["attn_only"]
    model = Transformer(cfg)
    tokens = tokens_for(cfg)
    logits = model(tokens)
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, cfg.d_vocab), tokens[:, 1:].reshape(-1))
    assert torch.allclose(model(tokens, return_type="loss"), expected, atol=1e-6)
    assert model(tokens, return_type="loss", loss_per_token=True).shape == (3, cfg.n_ctx - 1)


def test_same_seed_same_weights_other_seed_other_weights():
    a, b = Transformer(Config(seed=1)), Transformer(Config(seed=1))
    c = Transformer(Config(seed=2))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.W_E, c.W_E)


# ---- bad input -----------------------------------------------------------------------------------

BAD_TOKENS = [
    (torch.zeros(5, dtype=torch.long), ValueError, r"shape \[batch, pos\].*tokens\[None\]"),
    (torch.zeros(1, 2, 3, dtype=torch.long), ValueError, r"shape \[batch, pos\], got shape \(1, 2, 3\)"),
    (torch.zeros(2, 4), TypeError, r"integer tensor.*float32"),
    (torch.full((2, 4), 50), ValueError, r"id 50, outside the vocabulary \[0, 50\)"),
    (torch.full((2, 4), -1), ValueError, r"id -1"),
    (torch.zeros(2, 25, dtype=torch.long), ValueError, r"25 positions.*n_ctx=24"),
    (torch.zeros(0, 4, dtype=torch.long), ValueError, r"empty"),
    ([[1, 2]], TypeError, r"torch.Tensor"),
]


@pytest.mark.parametrize("tokens,error,message", BAD_TOKENS)
def test_bad_tokens_get_clear_errors(tokens, error, message):
    model = Transformer(CONFIGS["attn_only"])
    with pytest.raises(error, match=message):
        model(tokens)


@pytest.mark.parametrize("kwargs,message", [
    (dict(d_model=30, n_heads=4), r"d_model=30 is not divisible by n_heads=4"),
    (dict(n_layers=0), r"n_layers must be a positive int, got 0"),
    (dict(normalization_type="RMS"), r"normalization_type must be one of"),
    (dict(act_fn="swish"), r"act_fn must be one of"),
])
def test_bad_configs_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Config(**kwargs)


def test_other_bad_arguments():
    model = Transformer(CONFIGS["attn_only"])
    with pytest.raises(ValueError, match="return_type"):
        model(tokens_for(model.cfg), return_type="probs")
    with pytest.raises(TypeError, match="Config"):
        Transformer({"d_model": 64})
    with pytest.raises(TypeError, match=r"model must be a course_utils\.model\.Transformer, got Linear"):
        to_bridge(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"bridge must be a .*TransformerBridge, got Transformer"):
        from_bridge(model)
    with pytest.raises(ValueError, match="unknown Config fields"):
        Config.from_dict({"d_modle": 3})


def test_the_finite_check_sees_every_nan_and_inf_and_no_overflowing_sum():
    """The checks look at one sum first: NaN and inf anywhere must still be caught, and finite values
    whose sum overflows float32 must not be taken for NaN."""
    from course_utils import validate

    huge = torch.full((4, 8), 3e38)  # every entry finite; their sum is inf
    validate.finite(huge, "x")
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.zeros(4, 8)
        x[2, 5] = bad
        with pytest.raises(ValueError, match="x contains NaN or inf \\(1 of 32 entries\\)"):
            validate.finite(x, "x")
    both = torch.zeros(3)
    both[0], both[1] = float("inf"), -float("inf")  # the sum is NaN: caught too
    with pytest.raises(ValueError, match="2 of 3"):
        validate.finite(both, "x")
    model = Transformer(Config(d_vocab=16, n_ctx=8, d_model=16, n_heads=2, n_layers=1, attn_only=True, seed=0))
    with torch.no_grad():
        model.W_U.fill_(3e37)  # logits of about 3e38 at every entry: finite, with a sum that overflows
        model.b_U.zero_()
    tokens = torch.zeros(1, 4, dtype=torch.long)
    logits = model(tokens)
    assert torch.isfinite(logits).all() and not torch.isfinite(logits.sum())
    with torch.no_grad():
        model.W_U[0, 0] = float("nan")
    with pytest.raises(ValueError, match="logits contain NaN or inf"):
        model(tokens)
