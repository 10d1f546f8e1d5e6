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
    with pytest.raises(ValueError, match=r"no head 2\.0: layers are 0\.\.1, heads 0\.\.3"):
        metrics.full_ov_circuit(bridge, 2, 0)
