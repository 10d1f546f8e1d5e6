"""Ablation hooks (course_utils.ablation): what they change, what they leave alone, bad input,
and the same numbers on a TransformerBridge. Plus the notebook-04 checks on ablation."""

import pytest
import torch

from course_utils import ablation, checks, zoo
from course_utils.checks import ExerciseError
from course_utils.data import repeated_tokens
from course_utils.bridge import to_bridge
from course_utils.model import Config, Transformer

PERIOD = 8


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(Config(d_vocab=20, n_ctx=16, d_model=16, n_heads=2, n_layers=2, seed=3)).eval()


@pytest.fixture(scope="module")
def tokens():
    return repeated_tokens(4, PERIOD, 20, seed=1)


@pytest.fixture(scope="module")
def reference():
    return repeated_tokens(4, PERIOD, 20, seed=2)


def z_of(model, tokens, hooks, layer):
    name = f"blocks.{layer}.attn.hook_z"
    store = {}
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks + [(name, lambda z, hook: store.update(z=z.clone()))])
    return store["z"]


@pytest.mark.parametrize("method", ablation.METHODS)
def test_ablation_changes_only_the_chosen_head(model, tokens, reference, method):
    clean = z_of(model, tokens, [], 0)
    hooks = ablation.ablation_hooks(model, (0, 1), method, reference)
    ablated = z_of(model, tokens, hooks, 0)
    assert torch.equal(ablated[:, :, 0], clean[:, :, 0])
    reference_z = z_of(model, reference, [], 0)[:, :, 1]  # head 0.1's output on the reference tokens
    expected = {"zero": torch.zeros_like(clean[:, :, 1]),
                "mean": reference_z.mean(0).expand_as(clean[:, :, 1]),
                "resample": reference_z}[method]
    assert torch.allclose(ablated[:, :, 1], expected)
    assert not torch.allclose(ablated[:, :, 1], clean[:, :, 1])


def test_ablate_head_leaves_its_input_alone():
    z = torch.randn(2, 3, 4, 5)
    before = z.clone()
    out = ablation.ablate_head(z, 2, 0.0)
    assert torch.equal(z, before) and (out[:, :, 2] == 0).all() and torch.equal(out[:, :, 3], z[:, :, 3])


def test_ablation_effects_agree_on_the_bridge(model, tokens, reference):
    bridge = to_bridge(model)
    for method in ablation.METHODS:
        ours = ablation.ablation_effects(model, tokens, slice(PERIOD, None), method, reference)
        theirs = ablation.ablation_effects(bridge, tokens, slice(PERIOD, None), method, reference)
        assert torch.allclose(ours, theirs, atol=1e-4), method
        assert ours.abs().max() > 1e-3  # the ablations did something


def test_k_path_ablation_is_the_keys_of_a_model_without_the_writer(model, tokens):
    # Removing head 0.0's output from every layer-1 head's keys == running layer 1's keys on a residual
    # stream without head 0.0's output. Check against a direct computation from the cache.
    _, cache = model.run_with_cache(tokens)
    resid = cache["blocks.1.hook_resid_pre"]
    out = cache["blocks.0.attn.hook_z"][:, :, 0] @ model.W_O[0, 0]
    expected = torch.einsum("bpd,hde->bphe", resid - out, model.W_K[1]) + model.b_K[1]
    store = {}
    hooks = ablation.k_path_ablation_hooks(model, (0, 0), [(1, 0), (1, 1)])
    hooks.append(("blocks.1.attn.hook_k", lambda k, hook: store.update(k=k.clone())))
    hooks.append(("blocks.1.attn.hook_q", lambda q, hook: store.update(q=q.clone())))
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    assert torch.allclose(store["k"], expected, atol=1e-5)
    assert torch.allclose(store["q"], cache["blocks.1.attn.hook_q"])  # queries untouched


def test_k_path_ablation_of_one_reader_leaves_the_others(model, tokens):
    _, cache = model.run_with_cache(tokens)
    store = {}
    hooks = ablation.k_path_ablation_hooks(model, (0, 0), (1, 1))
    hooks.append(("blocks.1.attn.hook_k", lambda k, hook: store.update(k=k.clone())))
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    assert torch.allclose(store["k"][:, :, 0], cache["blocks.1.attn.hook_k"][:, :, 0])
    assert not torch.allclose(store["k"][:, :, 1], cache["blocks.1.attn.hook_k"][:, :, 1])


def test_k_path_and_pattern_preserving_agree_on_the_bridge(model, tokens):
    bridge = to_bridge(model)
    for build in (lambda m: ablation.k_path_ablation_hooks(m, (0, 0), [(1, 0), (1, 1)]),
                  lambda m: ablation.pattern_preserving_ablation_hooks(m, tokens, (0, 0))):
        ours = ablation.loss_with_hooks(model, tokens, build(model))
        theirs = ablation.loss_with_hooks(bridge, tokens, build(bridge))
        assert torch.allclose(ours, theirs, atol=1e-4)


def test_pattern_preserving_ablation_freezes_later_patterns(model, tokens):
    clean = ablation.clean_patterns(model, tokens)
    store = {}
    hooks = ablation.pattern_preserving_ablation_hooks(model, tokens, (0, 0))
    hooks.append(("blocks.1.attn.hook_pattern", lambda p, hook: store.update(p=p.clone())))
    hooks.append(("blocks.0.attn.hook_z", lambda z, hook: store.update(z=z.clone())))
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    assert torch.allclose(store["p"], clean[1])
    assert (store["z"][:, :, 0] == 0).all()
    # Without the freeze, layer 1's patterns move.
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=ablation.ablation_hooks(model, (0, 0)) + [hooks[-2]])
    assert not torch.allclose(store["p"], clean[1])


def test_the_zoo_model_needs_its_previous_token_and_induction_heads():
    model = zoo.load("attn_only_2l")
    tokens = repeated_tokens(32, 16, 64, seed=5)
    effects = ablation.ablation_effects(model, tokens, slice(16, None))
    assert effects[0, 0] > 1.0 and (effects[1] > 0.3).all()
    assert effects[0, 1:].abs().max() < 0.05


@pytest.mark.parametrize("call,message", [
    (lambda m, t: ablation.ablation_hooks(m, (2, 0)), r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
    (lambda m, t: ablation.ablation_hooks(m, (0, 5)), r"heads: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 5"),
    (lambda m, t: ablation.ablation_hooks(m, (0, -1)), r"heads: head must be an int in \[0, 1\].*got -1"),
    (lambda m, t: ablation.ablation_hooks(m, "0.1"), "must be"),
    (lambda m, t: ablation.ablation_hooks(m, (0, 0), "average"), "method must be one of"),
    (lambda m, t: ablation.ablation_hooks(m, (0, 0), "mean"), "needs reference_tokens"),
    (lambda m, t: m.run_with_hooks(t, fwd_hooks=ablation.ablation_hooks(m, (0, 0), "resample", t[:2])),
     "reference tokens of the same shape"),
    (lambda m, t: ablation.k_path_ablation_hooks(m, (1, 0), [(1, 1)]), "not in a later layer"),
    (lambda m, t: ablation.k_path_ablation_hooks(m, (0, 0), [(3, 1)]), r"readers: layer must be an int in \[0, 1\].*got 3"),
    (lambda m, t: ablation.k_path_ablation_hooks(m, (0, 9), [(1, 1)]), r"writer: head must be an int in \[0, 1\].*got 9"),
    (lambda m, t: ablation.ablate_head(torch.zeros(2, 3, 4), 0, 0.0), r"z must have shape \[batch, pos, head_index, d_head\]"),
    (lambda m, t: ablation.ablate_head(torch.zeros(2, 3, 4, 5), 4, 0.0), r"head must be an int in \[0, 3\] \(z has 4 heads\), got 4"),
    (lambda m, t: ablation.ablate_head(torch.zeros(2, 3, 4, 5), 0, torch.zeros(7, 5)), "does not broadcast"),
    (lambda m, t: ablation.keys_without(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3), torch.zeros(4, 8, 5), 0),
     r"removed must be \[batch, pos, d_model\]"),
    (lambda m, t: ablation.keys_without(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 8), torch.zeros(4, 5, 8), 0),
     r"W_K must be \[head, d_model, d_head\]"),
    (lambda m, t: m.run_with_hooks(t, fwd_hooks=ablation.freeze_pattern_hooks(
        m, ablation.clean_patterns(m, t[:1]), (1, 0))), "same tokens"),
    (lambda m, t: ablation.freeze_pattern_hooks(m, {0: None}, (1, 0)), "no entry for layer 1"),
])
def test_bad_input_gets_a_clear_error(model, tokens, call, message):
    with pytest.raises(ValueError, match=message):
        call(model, tokens)


def test_k_path_ablation_refuses_layernorm():
    ln = Transformer(Config(d_vocab=20, n_ctx=16, d_model=16, n_heads=2, n_layers=2, normalization_type="LN"))
    with pytest.raises(ValueError, match="without LayerNorm"):
        ablation.k_path_ablation_hooks(ln, (0, 0), [(1, 0)])


# ---- the checks of notebook 04's ablation exercises --------------------------------------------------


def test_check_ablate_head():
    checks.check_ablate_head(ablation.ablate_head)

    def in_place(z, head, replacement):
        z[:, :, head] = replacement
        return z

    def every_head(z, head, replacement):
        z = z.clone()
        z[:] = torch.as_tensor(replacement).expand(z.shape[0], z.shape[1], z.shape[3])[:, :, None]
        return z

    def added(z, head, replacement):
        z = z.clone()
        z[:, :, head] += replacement
        return z

    def zeroed(z, head, replacement):
        z = z.clone()
        z[:, :, head] = 0
        return z

    for fn, hint in [(in_place, "in place"), (every_head, "every head"), (added, "REPLACES"), (zeroed, "whatever the replacement")]:
        with pytest.raises(ExerciseError, match=hint):
            checks.check_ablate_head(fn)


def test_check_keys_without():
    checks.check_keys_without(ablation.keys_without)

    def in_place(k, removed, W_K, head):
        k[:, :, head] -= removed @ W_K[head]
        return k

    def added(k, removed, W_K, head):
        k = k.clone()
        k[:, :, head] += removed @ W_K[head]
        return k

    def every(k, removed, W_K, head):
        return k - torch.einsum("bpd,hde->bphe", removed, W_K)

    for fn, hint in [(in_place, "in place"), (added, "subtract"), (every, "every head")]:
        with pytest.raises(ExerciseError, match=hint):
            checks.check_keys_without(fn)


def test_carry_on_finds_the_ablation_references():
    checks._passed.pop("keys_without", None)
    assert checks.carry_on("keys_without", lambda *a: None) is ablation.keys_without


# ---- the references of notebook 04's newer exercises ----------------------------------------------


def test_ablated_loss_is_the_loss_with_the_ablation_hooks(model, tokens, reference):
    for method in ablation.METHODS:
        heads = [(0, 1), (1, 0)]
        hooks = ablation.ablation_hooks(model, heads, method, reference)
        assert torch.equal(ablation.ablated_loss(model, tokens, heads, method, reference),
                           ablation.loss_with_hooks(model, tokens, hooks))
    assert torch.equal(ablation.ablated_loss(model, tokens, []), ablation.loss_with_hooks(model, tokens, []))


def test_combination_costs_of_single_heads_are_the_sweep(model, tokens, reference):
    repeat = slice(PERIOD, None)
    heads = [(0, 1), (1, 0), (1, 1)]
    costs = ablation.combination_costs(model, tokens, heads, repeat, "resample", reference)
    effects = ablation.ablation_effects(model, tokens, repeat, "resample", reference)
    assert costs.shape == (8,) and costs[0] == 0
    for i, (layer, head) in enumerate(heads):
        assert torch.allclose(costs[1 << i], effects[layer, head], atol=1e-5)
    clean = ablation.loss_with_hooks(model, tokens, [])[:, repeat].mean()
    both = ablation.ablated_loss(model, tokens, heads[1:], "resample", reference)[:, repeat].mean() - clean
    assert torch.allclose(costs[0b110], both, atol=1e-5)  # bits 1 and 2: heads[1] and heads[2] together
    bridge = ablation.combination_costs(to_bridge(model), tokens, heads, repeat, "resample", reference)
    assert torch.allclose(bridge, costs, atol=1e-4)


def test_pattern_preserving_loss_is_its_hooks(model, tokens):
    expected = ablation.loss_with_hooks(model, tokens, ablation.pattern_preserving_ablation_hooks(model, tokens, (0, 0)))
    assert torch.equal(ablation.pattern_preserving_loss(model, tokens, [(0, 0)]), expected)
    assert not torch.allclose(expected, ablation.ablated_loss(model, tokens, [(0, 0)]))


def test_clamp_head_pattern_cuts_the_target_to_the_run():
    pattern, target = torch.rand(2, 3, 4, 4), torch.rand(6, 6)
    before = pattern.clone()
    out = ablation.clamp_head_pattern(pattern, 1, target)
    assert torch.equal(pattern, before), "the input is left unchanged"
    assert torch.equal(out[:, 1], target[:4, :4].expand(2, 4, 4))
    assert torch.equal(out[:, 0], pattern[:, 0]) and torch.equal(out[:, 2], pattern[:, 2])
    assert ablation.clamp_head_pattern(pattern.double(), 0, target).dtype == torch.float64
    with pytest.raises(ValueError, match="at least as long as the run"):
        ablation.clamp_head_pattern(pattern, 0, torch.rand(3, 3))
