"""The course's analysis functions on a model the course did not build: a randomly initialised
Hugging Face GPT-2 (built offline, no download) wrapped in a TransformerBridge. Each result is
compared with the same quantity computed from the Hugging Face model's own outputs or weights."""

import copy

import pytest
import torch

from course_utils import metrics
from course_utils.data import repeated_tokens

D_VOCAB, N_CTX, D_MODEL, N_HEADS, N_LAYERS = 64, 32, 64, 4, 2
D_HEAD = D_MODEL // N_HEADS


@pytest.fixture(scope="module")
def gpt2():
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=N_LAYERS, n_head=N_HEADS, n_embd=D_MODEL, vocab_size=D_VOCAB, n_positions=N_CTX,
                        attn_implementation="eager")
    hf = GPT2LMHeadModel(config).eval()
    wrapped = copy.deepcopy(hf)  # the bridge takes over its modules; `hf` stays the reference
    bridge = build_bridge_from_module(wrapped, "GPT2LMHeadModel", hf_config=config)
    return hf, bridge


def hf_weights(hf, layer, head):
    """W_Q, W_K, W_V [d_model, d_head] and W_O [d_head, d_model] of one head, read off GPT-2's Conv1D weights."""
    attn = hf.transformer.h[layer].attn
    cols = slice(head * D_HEAD, (head + 1) * D_HEAD)
    W = attn.c_attn.weight  # [d_model, 3 d_model]: q, k, v side by side
    W_Q, W_K, W_V = (W[:, i * D_MODEL:(i + 1) * D_MODEL][:, cols] for i in range(3))
    return W_Q, W_K, W_V, attn.c_proj.weight[cols, :]


def test_the_bridge_matches_hugging_face(gpt2):
    hf, bridge = gpt2
    tokens = torch.randint(0, D_VOCAB, (2, N_CTX))
    with torch.no_grad():
        assert torch.allclose(bridge(tokens), hf(tokens).logits, atol=1e-5)


@pytest.mark.parametrize("score, kwargs", [
    (metrics.prev_token_score, {}),
    (metrics.induction_score, {"period": 10}),
    (metrics.duplicate_token_score, {"period": 10}),
])
def test_head_scores_match_hugging_face_attentions(gpt2, score, kwargs):
    hf, bridge = gpt2
    tokens = repeated_tokens(8, 10, D_VOCAB, seed=0)
    with torch.no_grad():
        attentions = hf(tokens, output_attentions=True).attentions
    expected = torch.stack([score(a, **kwargs) for a in attentions])
    measured = metrics.head_scores(bridge, tokens, score, **kwargs)
    assert measured.shape == (N_LAYERS, N_HEADS)
    assert torch.allclose(measured, expected, atol=1e-5)


def test_weight_circuits_match_hugging_face_weights(gpt2):
    hf, bridge = gpt2
    layer, head = 1, 2
    W_Q, W_K, W_V, W_O = hf_weights(hf, layer, head)
    W_E, W_pos = hf.transformer.wte.weight, hf.transformer.wpe.weight
    with torch.no_grad():
        assert torch.allclose(metrics.full_ov_circuit(bridge, layer, head).AB, W_E @ W_V @ W_O @ W_E.T, atol=1e-4)
        assert torch.allclose(metrics.positional_qk_circuit(bridge, layer, head),
                              W_pos @ W_Q @ W_K.T @ W_pos.T / D_HEAD**0.5, atol=1e-4)
        assert torch.allclose(metrics.token_qk_circuit(bridge, layer, head),
                              W_E @ W_Q @ W_K.T @ W_E.T / D_HEAD**0.5, atol=1e-4)


def test_composition_scores_match_hugging_face_weights(gpt2):
    hf, bridge = gpt2
    with torch.no_grad():
        scores = metrics.composition_scores(bridge, "K")
        _, _, W_V, W_O = hf_weights(hf, 0, 1)
        W_Q, W_K, _, _ = hf_weights(hf, 1, 3)
        expected = metrics.composition_score(W_V @ W_O, W_K @ W_Q.T)
    assert scores.shape == (N_LAYERS, N_HEADS, N_LAYERS, N_HEADS)
    assert torch.allclose(scores[0, 1, 1, 3], expected, atol=1e-5)


def test_bad_heads_are_named_on_the_bridge_too(gpt2):
    _, bridge = gpt2
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"):
        metrics.full_ov_circuit(bridge, 2, 0)


# ---- ablation, patching, lenses and function vectors, against hooks on the Hugging Face model -------


def hf_logits(hf, tokens, layer=None, head_z=None, add_to_resid=None):
    """HF GPT-2's logits, optionally with one head's merged-heads slice (the input of c_proj, i.e.
    TransformerLens's z) replaced by head_z(z_slice) in `layer`, or a vector added to the residual
    stream at the last position just after the attention of block add_to_resid[0] (resid_mid)."""
    handles = []
    if head_z is not None:
        h, fn = head_z
        cols = slice(h * D_HEAD, (h + 1) * D_HEAD)

        def replace_head(module, args):
            merged = args[0].clone()
            merged[..., cols] = fn(merged[..., cols])
            return (merged,)
        handles.append(hf.transformer.h[layer].attn.c_proj.register_forward_pre_hook(replace_head))
    if add_to_resid is not None:  # resid_mid = resid_pre + attention output: add to the attention output
        block, vector = add_to_resid

        def add(module, args, output):
            attn_out = output[0].clone()
            attn_out[:, -1] += vector
            return (attn_out, *output[1:])
        handles.append(hf.transformer.h[block].attn.register_forward_hook(add))
    try:
        with torch.no_grad():
            return hf(tokens).logits
    finally:
        for handle in handles:
            handle.remove()


def hf_head_z(hf, tokens, layer, head):
    """One head's z [batch, pos, d_head] in HF GPT-2: its slice of c_proj's input."""
    seen = {}

    def keep(module, args):  # returns None: the input goes on unchanged
        seen["z"] = args[0][..., head * D_HEAD:(head + 1) * D_HEAD].clone()
    handle = hf.transformer.h[layer].attn.c_proj.register_forward_pre_hook(keep)
    with torch.no_grad():
        hf(tokens)
    handle.remove()
    return seen["z"]


def test_ablation_matches_hugging_face(gpt2):
    from course_utils.ablation import ablation_effects
    from course_utils.metrics import per_token_loss

    hf, bridge = gpt2
    tokens = repeated_tokens(8, 10, D_VOCAB, seed=1)
    effects = ablation_effects(bridge.eval(), tokens, slice(10, None), method="zero")
    assert effects.shape == (N_LAYERS, N_HEADS)
    clean = per_token_loss(hf_logits(hf, tokens), tokens)[:, 10:].mean()
    ablated = per_token_loss(hf_logits(hf, tokens, layer=1, head_z=(2, torch.zeros_like)), tokens)[:, 10:].mean()
    assert effects[1, 2] == pytest.approx(float(ablated - clean), abs=1e-5)


def test_logit_lens_matches_hugging_face(gpt2):
    from course_utils.lens import kl_to_final, logit_lens

    hf, bridge = gpt2
    tokens = torch.randint(0, D_VOCAB, (3, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        _, cache = bridge.eval().run_with_cache(tokens)
        lens = logit_lens(bridge, cache)
        t = hf.transformer
        embeddings = t.wte(tokens) + t.wpe(torch.arange(12))
        first = hf.lm_head(t.ln_f(embeddings))
    assert lens.shape == (N_LAYERS + 1, 3, 12, D_VOCAB)
    assert torch.allclose(lens[-1], hf_logits(hf, tokens), atol=1e-4)
    assert torch.allclose(lens[0], first, atol=1e-4)
    assert kl_to_final(lens, lens[-1])[-1].abs() < 1e-5


def test_head_patching_matches_hugging_face(gpt2):
    from course_utils.patching import clean_and_corrupted, correct_logprob, patch_head, patching_metric

    hf, bridge = gpt2
    clean, corrupted = clean_and_corrupted(6, 10, D_VOCAB, seed=3)
    positions = slice(10, 19)
    metric = patching_metric(bridge.eval(), clean, corrupted, positions)
    with torch.no_grad():
        _, clean_cache = bridge.run_with_cache(clean)
    measured = patch_head(bridge, corrupted, clean_cache, metric, layer=1, head=1)
    z_clean = hf_head_z(hf, clean, 1, 1)
    logits = hf_logits(hf, corrupted, layer=1, head_z=(1, lambda z: z_clean))
    lp = {name: correct_logprob(hf_logits(hf, toks), clean, positions) for name, toks in
          [("clean", clean), ("corrupted", corrupted)]}
    expected = (correct_logprob(logits, clean, positions) - lp["corrupted"]) / (lp["clean"] - lp["corrupted"])
    assert float(measured) == pytest.approx(float(expected), abs=1e-4)


def test_function_vector_tools_match_hugging_face(gpt2):
    from course_utils.function_vectors import logits_with_vector, mean_head_outputs

    hf, bridge = gpt2
    tokens = torch.randint(0, D_VOCAB, (5, 9), generator=torch.Generator().manual_seed(4))
    outputs = mean_head_outputs(bridge.eval(), tokens)
    assert outputs.shape == (N_LAYERS, N_HEADS, D_MODEL)
    layer, head = 1, 3
    W_O = hf.transformer.h[layer].attn.c_proj.weight[head * D_HEAD:(head + 1) * D_HEAD]
    with torch.no_grad():
        expected = hf_head_z(hf, tokens, layer, head)[:, -1].mean(0) @ W_O
    assert torch.allclose(outputs[layer, head], expected, atol=1e-5)
    vector = outputs[layer, head] * 5
    assert torch.allclose(logits_with_vector(bridge, tokens, vector, layer=1),
                          hf_logits(hf, tokens, add_to_resid=(1, vector))[:, -1], atol=1e-4)
