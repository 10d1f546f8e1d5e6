"""Habits: ruff passes on code and notebooks; pre-commit runs ruff and the output-stripping
pipeline; CONTRIBUTING.md and the README say what a contributor and a learner need."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_passes_on_code_and_notebooks():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--show-files", "."], cwd=ROOT,
                            capture_output=True, text=True).stdout
    assert "solutions/03_finding_induction_heads.ipynb" in listed, "ruff should check the notebooks too"


def test_pre_commit_runs_ruff_and_strips_outputs_with_the_pipeline():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert hooks["ruff"]["entry"].startswith("ruff check") and "jupyter" in hooks["ruff"]["types_or"]
    assert hooks["make-exercises"]["entry"] == "python tools/make_exercises.py"


def test_contributing_and_troubleshooting_cover_what_they_promise():
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    for needed in ["# BEGIN SOLUTION", "make exercises", "check_NAME", "zoo.RECIPES", "make test", "pre-commit"]:
        assert needed in contributing, needed
    troubleshooting = (ROOT / "README.md").read_text().split("## Troubleshooting")[1]
    for needed in ["Offline", "HookedTransformer", "Memory"]:
        assert needed in troubleshooting, needed
    assert "make grade NOTEBOOK=" in (ROOT / "README.md").read_text()
