"""The one-source pipeline: notebooks/ is generated from solutions/, and nothing carries outputs."""

import json
import subprocess
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_exercises  # noqa: E402

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_there_are_notebooks_and_each_has_a_twin():
    assert SOLUTIONS, "no solution notebooks"
    assert sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) == [p.name for p in SOLUTIONS]


def test_exercise_notebooks_are_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "make_exercises.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", sorted(ROOT.glob("*/*.ipynb")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebooks_have_no_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"


@pytest.mark.parametrize("path", sorted(ROOT.glob("*/*.ipynb")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebooks_are_valid(path):
    """nbformat's schema: e.g. cell ids need nbformat 4.5, and Jupyter warns on every open otherwise."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_exercise_becomes_a_stub_and_every_check_may_raise(path):
    solution = nbformat.read(path, as_version=4)
    exercise = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)
    names = [line.split()[3].rstrip(":") for c in solution.cells for line in c.source.splitlines()
             if "# BEGIN SOLUTION" in line]
    assert names, "a solution notebook without exercises"
    text = "\n".join(c.source for c in exercise.cells if c.cell_type == "code")
    for name in names:
        assert f"raise NotImplementedError(\"Exercise '{name}'" in text
    assert "# BEGIN SOLUTION" not in text and "# END SOLUTION" not in text
    for cell in exercise.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "check" in tags:
            assert "raises-exception" in tags


def test_stubbing_keeps_indentation_and_gives_nothing_away():
    source = "def f(x):\n    # BEGIN SOLUTION f: doubling? || multiply x by 2.\n    return 2 * x\n    # END SOLUTION\n"
    stubbed, names, hints = make_exercises.stub_source(source, "test")
    assert names == ["f"] and hints == {"f": ["doubling?", "multiply x by 2."]}
    assert "    raise NotImplementedError(\"Exercise 'f': yours to write; its hints are folded below it.\")" in stubbed
    assert "2 * x" not in stubbed and "multiply" not in stubbed and "doubling" not in stubbed
    namespace = {}
    exec(compile(stubbed, "stub", "exec"), namespace)  # the stub is valid Python that raises
    with pytest.raises(NotImplementedError, match="Exercise 'f': yours to write"):
        namespace["f"](1)


def test_hints_unfold_in_steps_before_the_solution():
    solution = nbformat.v4.new_notebook()
    solution.cells.append(nbformat.v4.new_code_cell(
        "def f(x):\n    # BEGIN SOLUTION f: an idea || a closer hint\n    return 2 * x\n    # END SOLUTION\n"))
    cells = [c.source for c in make_exercises.exercise_notebook(solution, "x.ipynb").cells[1:]]
    assert "raise NotImplementedError" in cells[0]
    assert cells[1].startswith("<details><summary>Hint 1 for 'f'</summary>") and "an idea" in cells[1]
    assert cells[2].startswith("<details><summary>Hint 2 for 'f'</summary>") and "a closer hint" in cells[2]
    assert cells[3].startswith("<details><summary>Solution</summary>") and "return 2 * x" in cells[3]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_no_stub_message_gives_the_answer_away(path):
    """Every stub says the same short pointer: the hint text lives in the folded cells only."""
    text = "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / path.name, as_version=4).cells
                     if c.cell_type == "code")
    messages = re.findall(r'raise NotImplementedError\("(.*)"\)', text)
    assert messages and all(m == make_exercises.stub_message(m.split("'")[1]) for m in messages), messages
    assert all(len(m) <= 90 for m in messages), [m for m in messages if len(m) > 90]  # a pointer, not an explanation


@pytest.mark.parametrize("source,message", [
    ("# BEGIN SOLUTION a: h\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "without BEGIN"),
    ("# BEGIN SOLUTION a: h\n# BEGIN SOLUTION b: h\n# END SOLUTION\n", "inside another"),
])
def test_unbalanced_markers_are_reported(source, message):
    with pytest.raises(make_exercises.MarkerError, match=message):
        make_exercises.stub_source(source, "nb.ipynb, cell 3")
