"""`make grade`: a learner's notebook, some exercises right, some wrong, one not done, graded; and
notebooks that try to pass without the right answer, by accident or on purpose."""

import json
import os
import shutil
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


def run_grader(*args, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.notebook
def test_grade_reports_each_exercise_and_a_summary(tmp_path):
    path = learner_notebook(tmp_path / "learner.ipynb")
    proc = run_grader(path, "--out", tmp_path / "report")
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The four exercises the learner got wrong, skipped or right; notebook 03's other exercises are the solution's.
    others = ["qk_circuit", "composition_excess", "key_scores_by_source", "ov_eigenvalue_score", "full_ov_top1_accuracy",
              "repetition_rate"]
    assert lines[-1] == f"{1 + len(others)} passed, 3 failed", proc.stdout
    by_name = {line.split()[1].rstrip(":"): line for line in lines[:-1]}
    assert by_name["prev_token_score"] == "PASS  prev_token_score"
    assert all(by_name[name] == f"PASS  {name}" for name in others), proc.stdout
    assert by_name["induction_score"].startswith("FAIL  induction_score: [induction_score]")
    assert by_name["duplicate_token_score"].startswith("FAIL  duplicate_token_score: not done yet")
    assert "its hints are folded below it." in by_name["duplicate_token_score"]
    assert by_name["composition_score"].startswith("FAIL  composition_score: [composition_score]")
    # The notebook carried on with the references: no other cell failed.
    assert not [line for line in lines if line.startswith(("ERROR", "NOTE"))], proc.stdout
    # The same, machine-readable, beside the human report.
    assert (tmp_path / "report" / "report.txt").read_text().strip() == proc.stdout.strip()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (notebook,) = report["notebooks"]
    assert notebook["course_notebook"] == "03_finding_induction_heads" and notebook["run"] == "complete"
    assert {r["exercise"]: r["status"] for r in notebook["results"]} == {
        "prev_token_score": "pass", "induction_score": "fail", "duplicate_token_score": "not done",
        "composition_score": "fail", **{name: "pass" for name in others}}
    assert (report["passed"], report["failed"]) == (1 + len(others), 3)


# ---- notebooks that try to pass without the right answer ----------------------------------------------
# Tiny notebooks answering notebook 03's four exercises, graded in one batch. RIGHT are the solutions;
# MISTAKE, answers each check rejects.

RIGHT = {
    "prev_token_score": "def prev_token_score(pattern):\n    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1).mean(0)",
    "induction_score": "def induction_score(pattern, period):\n"
                       "    return pattern.diagonal(offset=-(period - 1), dim1=-2, dim2=-1)[..., 1:].mean(-1).mean(0)",
    "duplicate_token_score": "def duplicate_token_score(pattern, period):\n"
                             "    return pattern.diagonal(offset=-period, dim1=-2, dim2=-1).mean(-1).mean(0)",
    "composition_score": "def composition_score(W_A, W_B):\n    return (W_A @ W_B).norm() / (W_A.norm() * W_B.norm())",
}
MISTAKE = {
    "prev_token_score": "def prev_token_score(pattern):\n    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean()",
    "induction_score": "def induction_score(pattern, period):\n"
                       "    return pattern.diagonal(offset=-period, dim1=-2, dim2=-1).mean(-1).mean(0)",
    "duplicate_token_score": "def duplicate_token_score(pattern, period):\n"
                             "    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1).mean(0)",
    "composition_score": "def composition_score(W_A, W_B):\n    return (W_A @ W_B).norm()",
}
IMPORTS = "from course_utils import checks, metrics"
CHECK_PASSES_ANYTHING = "def __getattr__(name):\n    return lambda *args, **kwargs: print('✓ correct')\n"

HOSTILE = {
    "all_right": [*RIGHT.values()],
    # One trick per exercise, each with a wrong answer.
    "tricks": [IMPORTS,
               MISTAKE["prev_token_score"], "# checks.check_prev_token_score(prev_token_score)",
               MISTAKE["induction_score"], "try:\n    checks.check_induction_score(induction_score)\nexcept Exception:\n    pass",
               MISTAKE["duplicate_token_score"],
               "checks.check_duplicate_token_score = lambda fn: print('✓ correct')\n"
               "checks.check_duplicate_token_score(duplicate_token_score)",
               MISTAKE["composition_score"]],  # its check cell deleted
    # One cell answers all four, another checks them all; then the wrong ones are swapped for references.
    "one_cell": [IMPORTS,
                 "\n".join([RIGHT["prev_token_score"], MISTAKE["induction_score"], RIGHT["duplicate_token_score"],
                            MISTAKE["composition_score"]]),
                 "\n".join(f"checks.check_{name}({name})" for name in RIGHT),
                 "\n".join(f"{name} = checks.carry_on({name!r}, {name})" for name in RIGHT)],
    # The course's own answers, as a name or called from a function of theirs.
    "references": [IMPORTS, "from course_utils.metrics import prev_token_score",
                   "def induction_score(pattern, period):\n    return metrics.induction_score(pattern, period)",
                   "def duplicate_token_score(pattern, period):\n"
                   "    from course_utils.metrics import duplicate_token_score as theirs\n"
                   "    return theirs(pattern, period)",
                   RIGHT["composition_score"]],
    # Rewrites the installed checks so that everything passes, for itself and for the next learner.
    "rewrites_checks": [IMPORTS, f"open(checks.__file__, 'w').write({CHECK_PASSES_ANYTHING!r})",
                        *MISTAKE.values()],
    "next_learner": [IMPORTS, MISTAKE["prev_token_score"], "checks.check_prev_token_score(prev_token_score)"],
    # Functions that attack the check's process: kill it, loop, exit.
    "attacks_the_check": [
        "def prev_token_score(pattern):\n    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)",
        "def induction_score(pattern, period):\n    while True:\n        pass",
        "def duplicate_token_score(pattern, period):\n    import os\n    os._exit(0)",
        RIGHT["composition_score"]],
}


def write_notebook(path: Path, sources: list[str]) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def course_utils_copy(tmp_path: Path) -> dict:
    """An environment whose course_utils is a copy (weights linked), so a notebook may rewrite it."""
    copy = tmp_path / "site" / "course_utils"
    shutil.copytree(ROOT / "course_utils", copy, ignore=shutil.ignore_patterns("zoo_weights", "__pycache__"))
    (copy / "zoo_weights").symlink_to(ROOT / "course_utils" / "zoo_weights")
    return {**os.environ, "PYTHONPATH": str(copy.parent), "OMP_NUM_THREADS": "1"}


@pytest.mark.notebook
def test_grade_resists_notebooks_that_pass_without_the_right_answer(tmp_path):
    env = course_utils_copy(tmp_path)
    checks_file = next(tmp_path.glob("site/course_utils/checks*"))  # checks.py, or the checks/ package
    before = {p: p.read_bytes() for p in tmp_path.glob("site/course_utils/**/*.py")}
    paths = [write_notebook(tmp_path / f"{name}.ipynb", sources) for name, sources in HOSTILE.items()]
    (tmp_path / "not_json.ipynb").write_text("{ this is not a notebook")
    (tmp_path / "no_cells.ipynb").write_text('{"cells": 5}')
    paths += [tmp_path / "not_json.ipynb", tmp_path / "no_cells.ipynb",
              write_notebook(tmp_path / "unrelated.ipynb", ["print('hello')"])]
    proc = run_grader(*paths, "--out", tmp_path / "report", "--check-timeout", "20", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    graded = {Path(n["path"]).stem: n for n in report["notebooks"]}
    assert list(graded) == [p.stem for p in paths], proc.stdout  # every notebook, whatever the others did
    # These notebooks answer notebook 03's first four exercises; its later ones are reported as not answered.
    everything = {stem: {r["exercise"]: r["status"] for r in n["results"]} for stem, n in graded.items()}
    status = {stem: {ex: st for ex, st in results.items() if ex in RIGHT} for stem, results in everything.items()}
    message = {stem: {r["exercise"]: r["message"] for r in n["results"]} for stem, n in graded.items()}
    later = set(everything["all_right"]) - set(RIGHT)
    assert len(later) >= 5 and all(everything["all_right"][ex] != "pass" for ex in later), proc.stdout
    assert all("does not define" in message["all_right"][ex] for ex in later), proc.stdout

    assert set(status["all_right"].values()) == {"pass"}, proc.stdout
    assert set(status["tricks"].values()) == {"fail"}, proc.stdout
    assert message["tricks"]["prev_token_score"].startswith("[prev_token_score]")
    assert status["one_cell"] == {"prev_token_score": "pass", "induction_score": "fail",
                                  "duplicate_token_score": "pass", "composition_score": "fail"}, proc.stdout
    assert status["references"]["prev_token_score"] == "missing"
    assert "calls the course's own `induction_score`" in message["references"]["induction_score"]
    assert "calls the course's own `duplicate_token_score`" in message["references"]["duplicate_token_score"]
    assert status["references"]["composition_score"] == "pass"
    assert set(status["rewrites_checks"].values()) == {"fail"}, proc.stdout
    assert checks_file.name in " ".join(graded["rewrites_checks"]["warnings"]) and "put the files back" in \
        " ".join(graded["rewrites_checks"]["warnings"])
    assert status["next_learner"]["prev_token_score"] == "fail"
    assert {p: p.read_bytes() for p in tmp_path.glob("site/course_utils/**/*.py")} == before
    assert "died twice" in message["attacks_the_check"]["prev_token_score"]
    assert "took over 20 s" in message["attacks_the_check"]["induction_score"]
    assert "without an answer" in message["attacks_the_check"]["duplicate_token_score"]
    assert status["attacks_the_check"]["composition_score"] == "pass"
    assert graded["not_json"]["run"].startswith("not run") and graded["no_cells"]["run"].startswith("not run")
    assert "none of the course's exercises" in graded["unrelated"]["run"]
    four = [st for results in status.values() for st in results.values()]
    assert (four.count("pass"), len(four) - four.count("pass")) == (8, 20), proc.stdout
    assert report["passed"] == 8 and report["failed"] >= 20, proc.stdout


@pytest.mark.notebook
def test_grade_survives_a_dead_kernel_and_a_cell_that_never_ends(tmp_path):
    dies = write_notebook(tmp_path / "dies.ipynb", [RIGHT["prev_token_score"], "import os\nos._exit(1)",
                                                    RIGHT["induction_score"]])
    loops = write_notebook(tmp_path / "loops.ipynb", [RIGHT["prev_token_score"], "while True:\n    pass",
                                                      RIGHT["induction_score"]])
    proc = run_grader(dies, loops, "--out", tmp_path, "--budget", "15", timeout=300)
    report = json.loads((tmp_path / "report.json").read_text())
    dead, looped = report["notebooks"]
    assert dead["run"].startswith("stopped: the kernel died in cell 1"), proc.stdout + proc.stderr
    assert looped["run"].startswith("stopped: cell 1 was running when the notebook's time budget (15 s)")
    for graded in (dead, looped):  # what was defined before the stop is graded; what came after is missing
        status = {r["exercise"]: r["status"] for r in graded["results"]}
        assert status["prev_token_score"] == "pass" and status["induction_score"] == "missing"
    assert looped["seconds"] < 60
    assert "NOTE  stopped: the kernel died in cell 1" in proc.stdout


def test_grade_finds_the_course_notebook_and_its_exercises(tmp_path):
    course = grade.course_exercises()
    # Every exercise of the course (a stub in notebooks/) is graded: its check call is understood.
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        stubs = [name for name, _ in grade.STUB.findall(code)]
        assert stubs and sorted(course[path.stem]) == sorted(stubs), path.name
    assert set(RIGHT) <= set(course["03_finding_induction_heads"])
    assert course["01_build_a_two_layer_transformer"]["forward"].args == ["model"]  # check_forward(forward, model)
    assert course["03_finding_induction_heads"]["induction_score"].hint.startswith("yours to write")
    renamed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(RIGHT["induction_score"])])
    assert grade.identify(renamed, course, Path("Copy of my homework.ipynb")) == "03_finding_induction_heads"
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    assert grade.identify(empty, course, Path("03_finding_induction_heads.ipynb")) is None


def test_put_back_restores_the_course_code(tmp_path):
    (tmp_path / "checks.py").write_text("good")
    snapshot = grade.code_files(tmp_path)
    (tmp_path / "checks.py").write_text("bad")
    (tmp_path / "extra.py").write_text("planted")
    assert grade.put_back(tmp_path, snapshot) == ["checks.py", "extra.py"]
    assert grade.code_files(tmp_path) == snapshot
    assert grade.put_back(tmp_path, snapshot) == []


def test_grade_refuses_what_is_not_a_notebook(tmp_path, capsys):
    assert grade.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "NOTEBOOK must be a .ipynb file" in capsys.readouterr().err


def test_a_notebook_that_cannot_be_run_is_reported_and_the_batch_goes_on(tmp_path, capsys):
    (tmp_path / "broken.ipynb").write_text("not json")
    unrelated = write_notebook(tmp_path / "unrelated.ipynb", ["print('hello')"])
    assert grade.main([str(tmp_path / "broken.ipynb"), str(unrelated), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "NOTE  not run: " in out and "is not a readable notebook" in out
    assert "NOTE  not run: it defines none of the course's exercises" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [n["results"] for n in report["notebooks"]] == [[], []]
