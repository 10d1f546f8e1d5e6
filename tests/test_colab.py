"""The Colab set-up cell: what it installs in Colab, that it does nothing elsewhere, and that every
notebook carries it (and notebooks/ the "Open in Colab" badge) built from the one REPO_URL."""

import subprocess
import sys
import time
import tomllib
import types
from pathlib import Path

import nbformat
import pytest

from maintainer import colab_cell as colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*ROOT.glob("solutions/*.ipynb"), *ROOT.glob("notebooks/*.ipynb")])


def first_code_cell(path):
    return next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def run_setup_cell(monkeypatch, in_colab: bool):
    """Run the set-up cell as a notebook would, with pip replaced by a recorder."""
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda args, **kw: calls.append(list(args)) or 0)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    source = first_code_cell(NOTEBOOKS[0]).source
    exec(compile(source, "setup-cell", "exec"), {})  # the cell's own text, as a notebook runs it
    return calls


def test_in_colab_the_cell_installs_the_pins_without_torch_and_the_course_from_the_repo(monkeypatch):
    calls = run_setup_cell(monkeypatch, in_colab=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    assert calls == [
        pip + ["transformer-lens>=4.3,<4.4", "circuitsvis>=1.43,<1.44", "matplotlib>=3,<4",
               "safetensors>=0.4", "einops>=0.7", "tqdm>=4.60"],
        pip + ["--no-deps",
               "circuits-from-scratch @ git+https://github.com/circuits-from-scratch/circuits-from-scratch@main"],
    ]


def test_the_cell_installs_every_pin_of_pyproject_but_torch(monkeypatch):
    calls = run_setup_cell(monkeypatch, in_colab=True)
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    installed = calls[0][5:]
    assert sorted(installed) == sorted(d.replace(" ", "") for d in deps if not d.startswith("torch"))
    assert not any(arg.startswith("torch") for call in calls for arg in call)


def test_outside_colab_the_cell_installs_nothing_and_is_quick(monkeypatch):
    start = time.perf_counter()
    assert run_setup_cell(monkeypatch, in_colab=False) == []
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_starts_with_the_same_setup_cell(path):
    assert first_code_cell(path).source == colab.setup_cell_source(), \
        f"{path.name}: the first code cell is not the set-up cell: run `make exercises`"


@pytest.mark.parametrize("path", sorted(ROOT.glob("notebooks/*.ipynb")), ids=lambda p: p.name)
def test_every_exercise_notebook_has_an_open_in_colab_link_to_itself(path):
    first = nbformat.read(path, as_version=4).cells[0]
    url = f"https://colab.research.google.com/github/circuits-from-scratch/circuits-from-scratch/blob/main/notebooks/{path.name}"
    assert first.cell_type == "markdown" and "[![Open in Colab]" in first.source and f"]({url})" in first.source


def test_the_repository_url_is_written_once_and_pyproject_agrees():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == colab.REPO_URL
    # No other source file spells the address out (notebooks get it from `make exercises`).
    elsewhere = [p for p in [*ROOT.glob("course_utils/**/*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("maintainer/*.py")]
                 if colab.REPO_URL in p.read_text() and p.name != "colab_cell.py"]
    assert not elsewhere


def test_a_fork_changes_one_constant_and_every_cell_follows(monkeypatch):
    monkeypatch.setattr(colab, "REPO_URL", "https://github.com/someone/fork")
    assert "git+https://github.com/someone/fork@main" in colab.setup_cell_source()
    assert "/github/someone/fork/blob/main/notebooks/x.ipynb" in colab.badge_markdown("notebooks/x.ipynb")


def test_make_exercises_inserts_the_setup_cell_once_and_updates_an_old_one():
    sys.path.insert(0, str(ROOT / "tools"))
    import make_exercises

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title"),
                                         nbformat.v4.new_code_cell("x = 1", outputs=[], execution_count=3)])
    once = make_exercises.normalise_solution(nb)
    twice = make_exercises.normalise_solution(once)
    assert [c.source for c in once.cells] == ["# title", colab.setup_cell_source(), "x = 1"]
    assert [c.source for c in twice.cells] == [c.source for c in once.cells]
    assert once.cells[2].execution_count is None
    old = nbformat.from_dict(once)
    old.cells[1].source = colab.SETUP_MARKER + "\nprint('an older set-up cell')"
    assert [c.source for c in make_exercises.normalise_solution(old).cells] == [c.source for c in once.cells]
