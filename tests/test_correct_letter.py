"""The analyses of notebook 08 (course_utils.correct_letter), on hand-made patterns and a tiny model."""

from __future__ import annotations

import torch

from course_utils import correct_letter as cl
from course_utils.model import Config, Transformer
from course_utils.multiple_choice import MultipleChoice, label_positions, option_positions


def mc_and_model():
    mc = MultipleChoice(n_questions=8, max_options=5)
    model = Transformer(Config(d_vocab=mc.d_vocab, n_ctx=mc.n_ctx, d_model=16, n_heads=2, n_layers=2,
                               attn_only=False, d_mlp=32, normalization_type="LN"))
    return mc, model.eval()


def test_scores_read_the_last_row_at_the_correct_label_and_option():
    batch, heads, n = 3, 2, 4
    pos = 2 * n + 3
    pattern = torch.zeros(batch, heads, pos, pos)
    correct = torch.tensor([0, 2, 3])
    for b in range(batch):
        pattern[b, 0, -1, label_positions(n)[correct[b]]] = 1.0  # head 0: the correct label
        pattern[b, 1, -1, option_positions(n)[correct[b]]] = 0.5  # head 1: half on the correct option
        pattern[b, 1, -2, label_positions(n)[correct[b]]] = 1.0  # not the last row: ignored
    assert torch.allclose(cl.correct_letter_score(pattern, correct), torch.tensor([1.0, 0.0]))
    assert torch.allclose(cl.correct_option_score(pattern, correct), torch.tensor([0.0, 0.5]))


def test_top_directions_and_projection():
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(8, 2)).Q.T  # [2, 8] orthonormal rows
    vectors = torch.randn(50, 2) @ basis
    found = cl.top_directions(vectors, 2)
    assert torch.allclose(cl.project(vectors, found), vectors, atol=1e-5)
    assert torch.allclose(found @ found.T, torch.eye(2), atol=1e-5)
    assert torch.allclose(cl.project(vectors, cl.top_directions(vectors, 1)).norm(dim=-1) <= vectors.norm(dim=-1) + 1e-5,
                          torch.tensor(True))


def test_swapped_positions_and_labels():
    mc, _ = mc_and_model()
    q = mc.questions(6, seed=1)
    other = (q.correct + 1) % 4
    tokens, positions = cl.swapped(q, other, "positions")
    assert torch.equal(tokens, q.tokens)
    for b in range(6):
        c, o = int(q.correct[b]), int(other[b])
        assert positions[b, 2 + 2 * c] == 2 + 2 * o and positions[b, 3 + 2 * c] == 3 + 2 * o
        assert sorted(positions[b].tolist()) == list(range(q.tokens.shape[1]))
    tokens, positions = cl.swapped(q, other, "labels")
    assert torch.equal(positions[0], torch.arange(q.tokens.shape[1]))
    rows = torch.arange(6)
    assert torch.equal(tokens[rows, 3 + 2 * q.correct], q.labels[rows, other])


def test_the_analyses_run_on_a_tiny_model():
    mc, model = mc_and_model()
    q = mc.questions(32)
    scores = cl.head_scores(model, q)
    assert scores["label"].shape == (2, 2) and ((scores["label"] >= 0) & (scores["label"] <= 1)).all()
    assert 0 <= cl.ablated_accuracy(model, q, [(1, 0)])["accuracy"] <= 1
    assert 0 <= cl.ov_label_accuracy(model, q, 1, 0) <= 1
    assert set(cl.compressed_qk_accuracy(model, q, [(1, 0), (1, 1)], 2)) == {"accuracy", "loss"}
    for what in ("positions", "labels"):
        r = cl.position_or_label(model, q, what)
        assert abs(r["follows_label"] + r["follows_position"] + r["other"] - 1) < 1e-6
    pref = cl.letter_preference(model, mc, size=32)
    assert pref.shape == (2, 2, 26) and (pref[..., 4:] == 0).all()  # a fixed-label model is shown A-D only
    proto = cl.proto_heads({0: model, 10: model}, mc, size=16)
    assert proto["steps"] == [0, 10] and len(proto["letter_peak"][0]) == 2


def test_study_records_plain_numbers():
    import json

    mc, model = mc_and_model()
    result = cl.study(model, mc, size=32, k=2)
    json.dumps(result)
    assert set(result["compressed"]["by_k"]) == {"1", "2"}
    assert "own format" in result["mutations"]
