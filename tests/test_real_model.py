"""The optional "On a real model" sections of notebooks 03-07 (GPT-2 small): skipped with one line where
GPT-2 cannot be had, and every call in them exercised offline on GPT-2 small's architecture with random
weights (CIRCUITS_GPT2=random), by running the solution notebooks top to bottom that way."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from course_utils import real_model

ROOT = Path(__file__).resolve().parents[1]
WITH_SECTION = sorted(p for p in (ROOT / "solutions").glob("0[3-7]_*.ipynb"))


def _section(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if "real-model" in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("path", WITH_SECTION, ids=[p.stem for p in WITH_SECTION])
def test_notebooks_03_to_07_end_with_a_tagged_section_that_needs_nothing_before_the_summary(path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [i for i, c in enumerate(cells) if "real-model" in c.get("metadata", {}).get("tags", [])]
    summary = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Summary"))
    assert tagged and tagged == list(range(tagged[0], summary)), "one block of tagged cells, just before the summary"
    first = "".join(cells[tagged[0]]["source"])
    assert first.startswith("## On a real model"), "the section is found by name as well as by tag"
    code = ["".join(c["source"]) for c in _section(path) if c["cell_type"] == "code"]
    assert "real_model.gpt2(device)" in code[0]
    assert all(src.startswith("if gpt2 is not None:") for src in code[1:]), "every later cell does nothing offline"
    # nothing outside the section uses what the section makes
    rest = "".join("".join(c["source"]) for i, c in enumerate(cells) if i not in tagged and c["cell_type"] == "code")
    assert "gpt2" not in rest


def test_offline_the_section_is_skipped_with_one_line(monkeypatch, capsys):
    monkeypatch.delenv(real_model.ENV, raising=False)
    monkeypatch.setattr(real_model, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(real_model, "_cached", lambda: False)
    assert real_model.gpt2() is None
    out = capsys.readouterr().out
    assert out.strip() == real_model.OFFLINE_MESSAGE and out.count("\n") == 1


def test_the_hub_check_fails_fast_and_quietly_without_a_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert real_model._hub_reachable() is False


def test_a_bad_mode_is_named(monkeypatch):
    monkeypatch.setenv(real_model.ENV, "gpt2-xl")
    with pytest.raises(ValueError, match=r"CIRCUITS_GPT2 must be unset or 'random', got 'gpt2-xl'"):
        real_model.gpt2()


def test_the_stand_in_is_gpt2_smalls_architecture_with_one_token_per_word(monkeypatch):
    monkeypatch.setenv(real_model.ENV, "random")
    model = real_model.gpt2()
    cfg = model.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_vocab, cfg.n_ctx) == (12, 12, 768, 50257, 1024)
    assert not real_model.is_pretrained(model)
    clean = model.to_tokens("When Mary and John went to the store, John gave a drink to Mary")
    corrupted = model.to_tokens("When Mary and John went to the store, Mary gave a drink to Mary")
    assert clean.shape == corrupted.shape == (1, 15) and int(clean[0, 0]) == model.tokenizer.bos_token_id
    assert (clean != corrupted).sum() == 1


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_SECTION, ids=[p.stem for p in WITH_SECTION])
def test_the_section_runs_on_a_random_gpt2(path, tmp_path):
    """The whole solution notebook, top to bottom, with the section on: its code runs, draws its figures
    and prints, and asserts nothing about the (meaningless) numbers of random weights."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, real_model.ENV: "random", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    section = [c for c in nb.cells if "real-model" in c.metadata.get("tags", []) and c.cell_type == "code"]
    text = "".join(o.get("text", "") for c in section for o in c.outputs if o.output_type == "stream")
    assert "RANDOM weights" in text, "the section booted the stand-in"
    assert len(text.splitlines()) >= 2, "and printed its results"
    assert not [o for c in section for o in c.outputs if o.output_type == "error"]
