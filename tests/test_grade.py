"""`make grade`: a learner's notebook, some exercises right, some wrong, one not done, graded."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import make_exercises  # noqa: E402

SOLUTION = ROOT / "solutions" / "03_finding_induction_heads.ipynb"
# Plausible wrong answers, each one a mistake the check recognises.
WRONG = {
    "induction_score": "    return pattern.diagonal(offset=-period, dim1=-2, dim2=-1).mean(-1).mean(0)",
    "composition_score": "    return (W_A @ W_B).norm()",
}
NOT_DONE = {"duplicate_token_score"}


def learner_notebook(path: Path) -> Path:
    """Notebook 03 as a learner fills it in: the solution where they got it right, a wrong answer
    for WRONG, the stub for NOT_DONE; the rest as the exercise twin has it."""
    nb = make_exercises.normalise_solution(nbformat.read(SOLUTION, as_version=4))
    for cell in nb.cells:
        if cell.cell_type != "code" or "# BEGIN SOLUTION" not in cell.source:
            continue
        name = next(m["name"] for line in cell.source.splitlines() if (m := make_exercises.BEGIN.match(line)))
        if name in NOT_DONE:
            cell.source = make_exercises.stub_source(cell.source, name)[0]
        else:
            lines, inside = [], False
            for line in cell.source.splitlines():
                if make_exercises.BEGIN.match(line):
                    inside = True
                    lines.append(WRONG[name]) if name in WRONG else None
                elif make_exercises.END.match(line):
                    inside = False
                elif not inside or name not in WRONG:
                    lines.append(line)
            cell.source = "\n".join(lines)
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_grade_reports_each_exercise_and_a_summary(tmp_path):
    path = learner_notebook(tmp_path / "learner.ipynb")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), str(path)],
                          capture_output=True, text=True, timeout=900)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert lines[-1] == "1 passed, 3 failed", proc.stdout
    by_name = {line.split()[1].rstrip(":"): line for line in lines[:-1]}
    assert by_name["prev_token_score"] == "PASS  prev_token_score"
    assert by_name["induction_score"].startswith("FAIL  induction_score: [induction_score]")
    assert by_name["duplicate_token_score"].startswith("FAIL  duplicate_token_score: not done yet")
    assert "Unfold its hints below the exercise." in by_name["duplicate_token_score"]
    assert by_name["composition_score"].startswith("FAIL  composition_score: [composition_score]")
    # The notebook carried on with the references: no other cell failed.
    assert not [line for line in lines if line.startswith("ERROR")], proc.stdout


def test_grade_counts_passes_failures_and_other_errors(tmp_path):
    """A tiny notebook with stand-in checks: the grading logic, without the course's models."""
    cells = [
        nbformat.v4.new_code_cell("class checks:\n"
                                  "    def check_a(f): assert f() == 1, '[a] should return 1'\n"
                                  "    def check_b(f): assert f() == 2, '[b] should return 2'"),
        nbformat.v4.new_code_cell("checks.check_a(lambda: 1)", metadata={"tags": ["check"]}),
        nbformat.v4.new_code_cell("checks.check_b(lambda: 3)", metadata={"tags": ["check", "raises-exception"]}),
        nbformat.v4.new_code_cell("1 / 0"),
    ]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    results, others = grade.grade(path)
    assert [(r.exercise, r.passed) for r in results] == [("a", True), ("b", False)]
    assert "should return 2" in results[1].message
    assert others == ["cell 3: ZeroDivisionError: division by zero"]
    assert grade.report(results, others).splitlines()[-1] == "1 passed, 1 failed"


def test_grade_refuses_what_is_not_a_notebook(tmp_path, capsys):
    assert grade.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "NOTEBOOK must be a .ipynb file" in capsys.readouterr().err
