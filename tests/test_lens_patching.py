"""course_utils.lens and course_utils.patching (notebooks 05 and 06), and their exercises' checks."""

import pytest
import torch

from course_utils import checks, lens, patching
from course_utils.checks import ExerciseError
from course_utils.bridge import to_bridge
from course_utils.model import Config, Transformer


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    cfg = Config(d_vocab=16, n_ctx=12, d_model=16, n_heads=2, n_layers=3, attn_only=False, d_mlp=32,
                 normalization_type="LN", seed=1)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # no zero biases, no unit LayerNorm weights: every term matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model, to_bridge(model).eval()


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 16, (3, 12), generator=torch.Generator().manual_seed(0))


def run(model, tokens):
    with torch.no_grad():
        return model.run_with_cache(tokens)


# ---- lens ---------------------------------------------------------------------------------------


def test_components_add_up_to_the_final_residual_stream(models, tokens):
    model, _ = models
    _, cache = run(model, tokens)
    final = cache["blocks.2.hook_resid_post"]
    assert torch.allclose(lens.decompose_resid(cache, 3).sum(0), final, atol=1e-5)
    stack, labels = lens.resid_components(model, cache)
    assert len(labels) == stack.shape[0] == 2 + 3 * (2 + 2)
    assert torch.allclose(stack.sum(0), final, atol=1e-5)
    assert labels[:4] == ["embed", "pos_embed", "L0H0", "L0H1"] and labels[-1] == "mlp 2"


def test_logit_lens_ends_at_the_model_logits_and_matches_unembed_resid(models, tokens):
    model, _ = models
    logits, cache = run(model, tokens)
    ll = lens.logit_lens(model, cache)
    assert ll.shape == (4, 3, 12, 16)
    assert torch.allclose(ll[-1], logits, atol=1e-5)
    w, b, eps = lens.ln_final_params(model)
    assert torch.allclose(lens.unembed_resid(cache.accumulated_resid(), w, b, model.W_U, model.b_U, eps), ll, atol=1e-5)
    kl = lens.kl_to_final(ll, logits)
    assert kl.shape == (4,) and kl[-1].abs() < 1e-5 and (kl[:-1] > 0).all()


def test_direct_logit_attribution_adds_up_to_the_correct_logit(models, tokens):
    model, _ = models
    logits, cache = run(model, tokens)
    dla, labels = lens.direct_logit_attribution(model, cache, tokens)
    assert dla.shape == (len(labels), 3, 11)
    _, b, _ = lens.ln_final_params(model)
    constant = (b @ model.W_U + model.b_U)[tokens[:, 1:]]
    correct = logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    assert torch.allclose(dla.sum(0) + constant, correct, atol=1e-4)
    by_layer, _ = lens.layer_attribution(model, cache, tokens)
    assert torch.allclose(by_layer.sum(0), dla.sum(0), atol=1e-4)
    heads = lens.head_attribution(model, cache, tokens)
    assert heads.shape == (3, 2, 3, 11) and torch.equal(heads[1, 0], dla[labels.index("L1H0")])


def test_lens_functions_give_the_same_numbers_on_a_bridge(models, tokens):
    model, bridge = models
    (logits_m, cache_m), (logits_b, cache_b) = run(model, tokens), run(bridge, tokens)
    pairs = [
        (lens.decompose_resid(cache_m, 3), lens.decompose_resid(cache_b, 3)),
        (lens.resid_components(model, cache_m)[0], lens.resid_components(bridge, cache_b)[0]),
        (lens.logit_lens(model, cache_m), lens.logit_lens(bridge, cache_b)),
        (lens.direct_logit_attribution(model, cache_m, tokens)[0], lens.direct_logit_attribution(bridge, cache_b, tokens)[0]),
        (lens.layer_attribution(model, cache_m, tokens)[0], lens.layer_attribution(bridge, cache_b, tokens)[0]),
        (lens.kl_to_final(lens.logit_lens(model, cache_m), logits_m), lens.kl_to_final(lens.logit_lens(bridge, cache_b), logits_b)),
    ]
    for a, b in pairs:
        assert torch.allclose(a, b, atol=1e-5)


def test_tuned_lens_starts_as_the_logit_lens_and_training_lowers_its_kl(models, tokens):
    model, bridge = models
    logits, cache = run(model, tokens)
    untrained = lens.TunedLens(3, 16)
    assert torch.allclose(lens.tuned_lens_logits(untrained, model, cache), lens.logit_lens(model, cache), atol=1e-5)
    batches = lambda step: torch.randint(0, 16, (8, 12), generator=torch.Generator().manual_seed(step))  # noqa: E731
    tuned, losses = lens.train_tuned_lens(model, batches, steps=60, progress=False)
    assert losses[-1] < 0.7 * losses[0]
    kl_tuned = lens.kl_to_final(lens.tuned_lens_logits(tuned, model, cache), logits)
    kl_logit = lens.kl_to_final(lens.logit_lens(model, cache), logits)
    assert (kl_tuned[:-1] < kl_logit[:-1]).all()
    # the same lens reads a bridge's cache the same way
    _, cache_b = run(bridge, tokens)
    assert torch.allclose(lens.tuned_lens_logits(tuned, bridge, cache_b), lens.tuned_lens_logits(tuned, model, cache), atol=1e-5)
    again, losses_again = lens.train_tuned_lens(model, batches, steps=60, progress=False)
    assert losses_again == losses  # reproducible


def test_lens_bad_input(models, tokens):
    model, _ = models
    logits, cache = run(model, tokens)
    with pytest.raises(TypeError, match="cache must be the ActivationCache"):
        lens.logit_lens(model, {"hook_embed": 1})
    with pytest.raises(TypeError, match="model must be"):
        lens.logit_lens("gpt2", cache)
    with pytest.raises(ValueError, match="tokens has shape"):
        lens.direct_logit_attribution(model, cache, tokens[:, :5])
    with pytest.raises(TypeError, match=r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"):
        lens.direct_logit_attribution(model, cache, tokens.float())
    with pytest.raises(ValueError, match="must be \\[layer, \\*final_logits.shape\\]"):
        lens.kl_to_final(logits, logits)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        lens.train_tuned_lens(model, lambda s: tokens, steps=0)
    with pytest.raises(ValueError, match="has 2 rows; this lens has 4"):
        lens.TunedLens(3, 16)(torch.zeros(2, 1, 1, 16), model)
    with pytest.raises(ValueError, match="not 'LN'"):
        lens.ln_final_params(Transformer(Config(n_layers=1)))
    with pytest.raises(ValueError, match="lacks"):
        _, partial_cache = model.run_with_cache(tokens, names_filter=lambda n: "hook_embed" in n)
        lens.logit_lens(model, partial_cache)


# ---- patching -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patch_inputs():
    return patching.clean_and_corrupted(4, 6, 16, seed=0)


def test_clean_and_corrupted_differ_exactly_in_the_first_half(patch_inputs):
    clean, corrupted = patch_inputs
    assert clean.shape == corrupted.shape == (4, 12)
    assert torch.equal(clean[:, :6], clean[:, 6:])
    assert (clean[:, :6] != corrupted[:, :6]).all() and torch.equal(clean[:, 6:], corrupted[:, 6:])


def test_metric_is_one_on_clean_and_zero_on_corrupted(models, patch_inputs):
    model, _ = models
    clean, corrupted = patch_inputs
    metric = patching.patching_metric(model, clean, corrupted, slice(6, 11))
    with torch.no_grad():
        assert metric(model(clean)).item() == pytest.approx(1.0, abs=1e-5)
        assert metric(model(corrupted)).item() == pytest.approx(0.0, abs=1e-5)


def test_one_patch_agrees_with_the_transformer_lens_sweeps(models, patch_inputs):
    model, _ = models
    clean, corrupted = patch_inputs
    metric = patching.patching_metric(model, clean, corrupted, slice(6, 11))
    _, cache = run(model, clean)
    sweep = patching.resid_patching(model, corrupted, cache, metric)
    assert sweep.shape == (3, 12)
    assert sweep[2, 7].item() == pytest.approx(patching.patch_resid_pre(model, corrupted, cache, metric, 2, 7).item(), abs=1e-5)
    # patching every position of layer 0's input is the clean run
    assert sweep[0, :6].sum() != 0
    for activation in patching.HEAD_ACTIVATIONS:
        heads = patching.head_patching(model, corrupted, cache, metric, activation)
        assert heads.shape == (3, 2)
        one = patching.patch_head(model, corrupted, cache, metric, 1, 1, activation)
        assert heads[1, 1].item() == pytest.approx(one.item(), abs=1e-5), activation


def test_patching_gives_the_same_numbers_on_a_bridge(models, patch_inputs):
    model, bridge = models
    clean, corrupted = patch_inputs
    results = []
    for m in (model, bridge):
        metric = patching.patching_metric(m, clean, corrupted, slice(6, 11))
        _, cache = run(m, clean)
        results.append([patching.resid_patching(m, corrupted, cache, metric),
                        patching.head_patching(m, corrupted, cache, metric, "z"),
                        patching.head_patching(m, corrupted, cache, metric, "pattern"),
                        patching.patch_resid_pre(m, corrupted, cache, metric, 1, 3),
                        patching.causal_trace(m, clean, _noise(m, clean), range(6), slice(6, 11))])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-4)


def _noise(model, tokens, scale=3.0, seed=0):
    """Gaussian noise [batch, pos, d_model], `scale` times the token embeddings' standard deviation."""
    g = torch.Generator().manual_seed(seed)
    return scale * model.W_E.detach().std() * torch.randn(*tokens.shape, model.cfg.d_model, generator=g)


def test_causal_trace_restoring_everything_at_layer_0_restores_the_clean_run(models, patch_inputs):
    model, _ = models
    clean, _ = patch_inputs
    noise = _noise(model, clean)
    trace = patching.causal_trace(model, clean, noise, [0, 1, 2], slice(6, 11))
    assert trace.shape == (3, 12)
    # restoring a position that was not noised changes nothing
    assert trace[0, 8].abs() < 1e-5
    # the same noise gives the same trace; other noise another
    assert torch.equal(trace, patching.causal_trace(model, clean, noise.clone(), [0, 1, 2], slice(6, 11)))
    assert not torch.allclose(trace, patching.causal_trace(model, clean, _noise(model, clean, seed=1), [0, 1, 2], slice(6, 11)))
    # the noised run's metric is what noised_logprob gives, and the rows of noise at other positions are unused
    other = noise.clone()
    other[:, 3:] = 0
    assert torch.equal(patching.noised_logprob(model, clean, noise, [0, 1, 2], slice(6, 11)),
                       patching.noised_logprob(model, clean, other, [0, 1, 2], slice(6, 11)))
    assert torch.equal(trace, patching.causal_trace(model, clean, other, [0, 1, 2], slice(6, 11)))


def test_patching_bad_input(models, patch_inputs):
    model, _ = models
    clean, corrupted = patch_inputs
    metric = patching.patching_metric(model, clean, corrupted, slice(6, 11))
    _, cache = run(model, clean)
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 2\] \(the model has 3 layers\), got 3"):
        patching.patch_resid_pre(model, corrupted, cache, metric, 3, 0)
    with pytest.raises(ValueError, match=r"pos must be an int in \[0, 11\] \(the tokens have 12 positions\), got 12"):
        patching.patch_resid_pre(model, corrupted, cache, metric, 0, 12)
    with pytest.raises(ValueError, match=r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got 2"):
        patching.patch_head(model, corrupted, cache, metric, 0, 2)
    with pytest.raises(ValueError, match="activation must be one of"):
        patching.head_patching(model, corrupted, cache, metric, "result")
    with pytest.raises(ValueError, match="same shape"):
        patching.resid_patching(model, corrupted[:, :5], cache, metric)
    with pytest.raises(ValueError, match="are equal"):
        patching.normalized_metric(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(2.0))
    with pytest.raises(ValueError, match="selects none"):
        patching.correct_logprob(model(clean), clean, slice(20, 30))
    with pytest.raises(ValueError, match="noise_positions"):
        patching.causal_trace(model, clean, _noise(model, clean), [40], slice(6, 11))
    with pytest.raises(TypeError, match="model must be"):
        patching.resid_patching(None, corrupted, cache, metric)


# ---- checks of the exercises -------------------------------------------------------------------


def test_check_decompose_resid():
    checks.check_decompose_resid(lens.decompose_resid)
    checks.check_decompose_resid(lambda cache, n: torch.stack(
        [cache["hook_embed"], cache["hook_pos_embed"]]
        + [cache[f"blocks.{l}.hook_{k}_out"] for l in range(n) for k in ("attn", "mlp")]))
    with pytest.raises(ExerciseError, match="positional embedding"):
        checks.check_decompose_resid(lambda cache, n: torch.stack(
            [cache["hook_embed"]] + [cache[f"blocks.{l}.hook_{k}_out"] for l in range(n) for k in ("attn", "mlp")]))
    with pytest.raises(ExerciseError, match="MLP outputs"):
        checks.check_decompose_resid(lambda cache, n: torch.stack(
            [cache["hook_embed"], cache["hook_pos_embed"]] + [cache[f"blocks.{l}.hook_attn_out"] for l in range(n)]))
    with pytest.raises(ExerciseError, match="accumulates"):
        checks.check_decompose_resid(lambda cache, n: torch.stack(
            [cache["hook_embed"], cache["hook_pos_embed"]]
            + [cache[f"blocks.{l}.hook_{k}"] for l in range(n) for k in ("resid_mid", "resid_post")]))


def _ln(x, w, b, eps=1e-5, centre=True):
    if centre:
        x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w + b


def test_check_unembed_resid():
    checks.check_unembed_resid(lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, eps) @ W_U + b_U)
    checks.check_unembed_resid(lambda r, w, b, W_U, b_U, eps: torch.nn.functional.layer_norm(r, r.shape[-1:], w, b, eps) @ W_U + b_U)
    with pytest.raises(ExerciseError, match="skipped the final LayerNorm"):
        checks.check_unembed_resid(lambda r, w, b, W_U, b_U, eps: r @ W_U + b_U)
    with pytest.raises(ExerciseError, match="subtract the mean"):
        checks.check_unembed_resid(lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, eps, centre=False) @ W_U + b_U)
    with pytest.raises(ExerciseError, match="own weight w and bias b"):
        checks.check_unembed_resid(lambda r, w, b, W_U, b_U, eps: _ln(r, 1, 0, eps) @ W_U + b_U)
    with pytest.raises(ExerciseError, match="left out b_U"):
        checks.check_unembed_resid(lambda r, w, b, W_U, b_U, eps: _ln(r, w, b, eps) @ W_U)


def test_check_kl_to_final():
    def kl(lens_logits, final):
        p, q = final.log_softmax(-1), lens_logits.log_softmax(-1)
        return (p.exp() * (p - q)).sum(-1).flatten(1).mean(-1)

    checks.check_kl_to_final(kl)
    with pytest.raises(ExerciseError, match="KL\\(lens \\|\\| final\\)"):
        checks.check_kl_to_final(lambda l, f: ((l.log_softmax(-1).exp()) * (l.log_softmax(-1) - f.log_softmax(-1))).sum(-1).flatten(1).mean(-1))
    with pytest.raises(ExerciseError, match="summed over positions"):
        checks.check_kl_to_final(lambda l, f: kl(l, f) * f[..., 0].numel())
    with pytest.raises(ExerciseError, match="probabilities"):
        checks.check_kl_to_final(lambda l, f: (f.softmax(-1) * (f.softmax(-1) - l.softmax(-1))).sum(-1).flatten(1).mean(-1))


def test_check_logit_attribution():
    checks.check_logit_attribution(lambda s, W_U, t: (s[:, :, :-1] @ W_U).gather(-1, t[None, :, 1:, None].expand(s.shape[0], -1, -1, 1))[..., 0])
    with pytest.raises(ExerciseError, match="same position"):
        checks.check_logit_attribution(lambda s, W_U, t: (s[:, :, :-1] @ W_U).gather(-1, t[None, :, :-1, None].expand(s.shape[0], -1, -1, 1))[..., 0])
    with pytest.raises(ExerciseError, match="every logit"):
        checks.check_logit_attribution(lambda s, W_U, t: s[:, :, :-1] @ W_U)
    with pytest.raises(ExerciseError, match="last position|shape"):
        checks.check_logit_attribution(lambda s, W_U, t: (s @ W_U)[..., 0])


def test_check_normalized_metric():
    checks.check_normalized_metric(lambda v, c, x: (v - x) / (c - x))
    with pytest.raises(ExerciseError, match="upside down"):
        checks.check_normalized_metric(lambda v, c, x: (c - v) / (c - x))
    with pytest.raises(ExerciseError, match="clean value alone"):
        checks.check_normalized_metric(lambda v, c, x: (v - x) / c)
    with pytest.raises(ExerciseError, match="subtract the corrupted"):
        checks.check_normalized_metric(lambda v, c, x: v / (c - x))


def test_check_patch_resid_pre():
    def by_hand(model, corrupted, cache, metric, layer, pos, name="hook_resid_pre", index=None):
        def hook(act, hook):
            i = (slice(None), pos) if index is None else index
            act[i] = cache[hook.name][i]
            return act
        with torch.no_grad():
            return metric(model.run_with_hooks(corrupted, fwd_hooks=[(f"blocks.{layer}.{name}", hook)]))

    checks.check_patch_resid_pre(by_hand)
    with pytest.raises(ExerciseError, match="every position"):
        checks.check_patch_resid_pre(lambda *a: by_hand(*a, index=(slice(None), slice(None))))
    with pytest.raises(ExerciseError, match="hook_resid_post"):
        checks.check_patch_resid_pre(lambda *a: by_hand(*a, name="hook_resid_post"))
    with pytest.raises(ExerciseError, match="indexed the batch axis"):
        checks.check_patch_resid_pre(lambda m, c, cache, metric, l, p: by_hand(m, c, cache, metric, l, p, index=(p,)))


def test_patching_a_group_of_heads(models, patch_inputs):
    model, bridge = models
    clean, corrupted = patch_inputs
    metric = patching.patching_metric(model, clean, corrupted, slice(6, 11))
    _, cache = run(model, clean)
    one = patching.patch_head(model, corrupted, cache, metric, 2, 1, "k")
    assert one.item() == pytest.approx(patching.patch_heads(model, corrupted, cache, metric, [(2, 1)], "k").item(), abs=1e-6)
    every = [(layer, head) for layer in range(3) for head in range(2)]
    # patching both heads of layer 0 is patching layer 0's whole attention output
    both = patching.patch_heads(model, corrupted, cache, metric, [(0, 0), (0, 1)], "z")

    def attn_out(act, hook):
        return cache[hook.name]

    with torch.no_grad():
        expected = metric(model.run_with_hooks(corrupted, fwd_hooks=[("blocks.0.hook_attn_out", attn_out)]))
    assert both.item() == pytest.approx(expected.item(), abs=1e-5)
    _, b_cache = run(bridge, clean)
    assert patching.patch_heads(bridge, corrupted, b_cache, metric, every, "v").item() == pytest.approx(
        patching.patch_heads(model, corrupted, cache, metric, every, "v").item(), abs=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        patching.patch_heads(model, corrupted, cache, metric, [])
    with pytest.raises(ValueError, match="layer must be an int"):
        patching.patch_heads(model, corrupted, cache, metric, [(0, 0), (5, 0)])


def test_patch_k_path_is_the_keys_of_a_run_with_the_writer_patched(patch_inputs):
    # Without LayerNorm, the layer-1 keys of a run with head 0.0's output patched from the clean run
    # are the corrupted keys with 0.0's clean term in place of its corrupted one: patching those
    # keys alone (taken from that run) is patching the K-path.
    torch.manual_seed(0)
    cfg = Config(d_vocab=16, n_ctx=12, d_model=16, n_heads=2, n_layers=2, attn_only=True, seed=2)
    model = Transformer(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    clean, corrupted = patch_inputs
    metric = patching.patching_metric(model, clean, corrupted, slice(6, 11))
    _, cache = run(model, clean)

    def z_from_clean(z, hook):
        z[:, :, 0] = cache[hook.name][:, :, 0]
        return z

    patched = {}

    def store(k, hook):
        patched[hook.name] = k.clone()

    with torch.no_grad():
        model.run_with_hooks(corrupted, fwd_hooks=[("blocks.0.attn.hook_z", z_from_clean), ("blocks.1.attn.hook_k", store)])

    def keys_from_patched(k, hook):
        k[:, :, 1] = patched[hook.name][:, :, 1]
        return k

    with torch.no_grad():
        expected = metric(model.run_with_hooks(corrupted, fwd_hooks=[("blocks.1.attn.hook_k", keys_from_patched)]))
    got = patching.patch_k_path(model, corrupted, cache, metric, (0, 0), [(1, 1)])
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)
    assert abs(got.item()) > 1e-3  # the path matters in this model, so the test can fail
    bridge = to_bridge(model).eval()
    _, b_cache = run(bridge, clean)
    assert patching.patch_k_path(bridge, corrupted, b_cache, metric, (0, 0), (1, 1)).item() == pytest.approx(got.item(), abs=1e-5)
    with pytest.raises(ValueError, match="not in a later layer"):
        patching.patch_k_path(model, corrupted, cache, metric, (1, 0), [(1, 1)])
    with pytest.raises(ValueError, match=r"writer: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 5"):
        patching.patch_k_path(model, corrupted, cache, metric, (0, 5), [(1, 1)])
    with pytest.raises(ValueError, match="same shape"):
        patching.patch_k_path(model, corrupted[:, :5], cache, metric, (0, 0), [(1, 1)])


def test_patch_k_path_refuses_layernorm(models, patch_inputs):
    model, _ = models
    clean, corrupted = patch_inputs
    metric = patching.patching_metric(model, clean, corrupted, slice(6, 11))
    _, cache = run(model, clean)
    with pytest.raises(ValueError, match="needs a model without LayerNorm"):
        patching.patch_k_path(model, corrupted, cache, metric, (0, 0), [(1, 1)])
