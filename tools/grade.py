"""Grade learners' exercise notebooks: run each one, then check each exercise with the course's own check.

    make grade NOTEBOOK=path/to/their_notebook.ipynb
    python tools/grade.py a.ipynb b.ipynb ... [--out build/grade] [--budget 600] [--check-timeout 120]

How a notebook is graded:
1. The exercises it must answer are those of the course notebook it is a copy of, read from the
   course's own `notebooks/` (found from the exercise functions it defines, so a renamed copy is
   graded too, and a deleted check cell does not delete an exercise).
2. A fresh Jupyter kernel runs it top to bottom, every cell even after an error, within one time
   budget for the whole notebook: a cell still running when the budget is spent stops the run there.
3. After every cell the kernel hands the grader each exercise function the notebook defined itself
   (`def induction_score(...)` in a cell; not the course's reference that `checks.carry_on` gives
   back after a failed check), pickled by value with dill, with the check's other arguments.
4. The grader runs `checks.check_NAME(fn, ...)` on it in a separate process, which imported
   course_utils from a copy of its code taken when the grader started, before any notebook ran.
   What the notebook did to its own `checks` (commenting a check out, wrapping it in try/except,
   deleting it, monkeypatching it, rewriting it on disk) never reaches that process, and nothing a
   notebook printed counts. A function that calls the course's reference of its own name fails.
5. A notebook that changed course_utils's code on disk gets it put back, and the report says so.

PASS means step 4 passed. The report lists, per notebook, PASS or FAIL with the check's message
for each exercise, the errors of other cells, and why a run stopped early; it is printed, and
written to OUT/report.txt and, machine-readable, OUT/report.json. Every notebook of a batch is
graded whatever another one does. The exit status is 0 only when every exercise of every notebook
passed. This runs the learner's code: it is a feedback tool, not an exam sandbox (README, "In a
classroom", says what it defends against and what not).
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import hashlib
import importlib.util
import inspect
import io
import json
import multiprocessing
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
STUB = re.compile(r"""raise NotImplementedError\("Exercise '(\w+)': (.*)"\)""")  # tools/make_exercises.py's stub
NOT_THEIRS = ("ExerciseError", "NotImplementedError")  # a check cell failing as meant: reported per exercise
STATUSES = ("pass", "fail", "not done", "error")  # what the check process answers


@dataclass
class Exercise:
    name: str
    args: list[str]  # the check's other arguments, named as in the course notebook: check_forward(forward, model)
    hint: str = ""


@dataclass
class Result:
    exercise: str
    status: str  # "pass", "fail", "not done", "missing" (no function of its own) or "error" (could not check)
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class Graded:
    path: str
    course_notebook: str | None = None
    run: str = "complete"  # or why the run stopped early, or why the notebook was not run
    results: list[Result] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


# ---- the course: its exercises, and a copy of its code taken before any notebook runs ---------------


def course_exercises(notebooks_dir: Path = ROOT / "notebooks") -> dict[str, dict[str, Exercise]]:
    """{course notebook: {exercise: Exercise}}: each `checks.check_NAME(NAME, other, ...)` call of the
    course's exercise notebooks, whose arguments are all names."""
    course = {}
    for path in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        hints = dict(STUB.findall("\n".join(cells)))
        course[path.stem] = {}
        for call in (node for source in cells for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)):
            func, args = call.func, call.args
            if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "checks"
                    and func.attr.startswith("check_") and args and all(isinstance(a, ast.Name) for a in args)
                    and not call.keywords):
                name = func.attr[len("check_"):]
                course[path.stem][name] = Exercise(name, [a.id for a in args[1:]], hints.get(name, ""))
    return course


def package_dir() -> Path:
    """The installed course_utils (found without importing it)."""
    return Path(importlib.util.find_spec("course_utils").submodule_search_locations[0])


def code_files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*.py"))}


def put_back(directory: Path, snapshot: dict[str, bytes]) -> list[str]:
    """Restore course_utils's code files as they were when the grader started; the files changed."""
    now = code_files(directory)
    changed = sorted(k for k in snapshot.keys() | now.keys() if snapshot.get(k) != now.get(k))
    for name in changed:
        if name in snapshot:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(snapshot[name])
        else:
            (directory / name).unlink()
    return changed


# ---- the check process: the course's code as it was at the start, one forked child per check --------


def _check_server(conn, snapshot: dict[str, bytes]) -> None:
    """Import course_utils from the snapshot (every module, so nothing is read from disk later), then
    answer (name, payload, timeout) requests with (status, message) until sent None."""
    import importlib
    import pkgutil

    copy = Path(tempfile.mkdtemp(prefix="course_utils_pristine_"))
    for name, data in snapshot.items():
        (copy / "course_utils" / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / "course_utils" / name).write_bytes(data)
    sys.path.insert(0, str(copy))
    import course_utils

    for info in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        importlib.import_module(info.name)
    from course_utils import checks

    here = Path(checks.__file__).resolve().is_relative_to(copy.resolve())
    shutil.rmtree(copy)
    _send(conn, ["pass", ""] if here else ["error", f"course_utils.checks came from {checks.__file__}, not a copy"])
    fork = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    while (request := conn.recv()) is not None:
        name, payload, timeout = request
        if fork is None:  # no fork (Windows): checks run one after another in this process
            _send(conn, _run_check(checks, str(copy), name, payload))
            continue
        receive, send = fork.Pipe(duplex=False)
        child = fork.Process(target=_check_child, args=(checks, str(copy), name, payload, send, conn), daemon=True)
        child.start()
        send.close()
        try:
            answer = _receive(receive) if receive.poll(timeout) else [
                "error", f"the check took over {timeout:.0f} s (does your function loop forever?)"]
        except EOFError:
            answer = ["error", "the check's process ended without an answer (did your function exit the interpreter?)"]
        child.kill()
        child.join()
        _send(conn, answer)


def _check_child(checks, copy: str, name: str, payload: bytes, answer, server) -> None:
    server.close()  # the learner's code runs here: it must not reach the grader's connection
    _send(answer, _run_check(checks, copy, name, payload))


# Answers travel as JSON, never pickled: whatever the learner's code sends, it cannot run in the grader.
def _send(conn, answer) -> None:
    conn.send_bytes(json.dumps(answer).encode())


def _receive(conn) -> list:
    answer = json.loads(conn.recv_bytes())
    if not (isinstance(answer, list) and len(answer) == 2 and answer[0] in STATUSES and isinstance(answer[1], str)):
        return ["error", f"the check's process sent a malformed answer: {str(answer)[:100]}"]
    return answer


def _run_check(checks, copy: str, name: str, payload: bytes) -> list[str]:
    """[status, message] of the course's check on the learner's function (runs the learner's code)."""
    import dill  # only here, where the learner's code runs anyway

    # The course's own answer, wrapped to notice when the learner's code (anything outside the course's
    # code, the libraries and the standard library) is on the stack that calls it.
    known = (copy, _run_check.__code__.co_filename, sys.prefix, sys.base_prefix, *site.getsitepackages(),
             site.getusersitepackages(), "<")
    called_reference = []

    def tripwire(reference):
        def wrapper(*args, **kwargs):
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(known):
                frame = frame.f_back
            if frame is not None:
                called_reference.append(frame.f_code.co_filename)
            return reference(*args, **kwargs)
        return wrapper

    for module in list(sys.modules.values()):
        module_name = getattr(module, "__name__", "")
        reference = getattr(module, name, None)
        if (module_name.startswith("course_utils.") and not module_name.startswith("course_utils.checks")
                and inspect.isfunction(reference) and reference.__module__ == module_name):
            setattr(module, name, tripwire(reference))
    try:
        fn, *args = dill.loads(payload)
    except Exception as err:
        return ["error", f"the grader could not load your function: {type(err).__name__}: {err}"]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            getattr(checks, f"check_{name}")(fn, *args)
        answer = ["pass", ""]
    except NotImplementedError:
        answer = ["not done", ""]
    except checks.ExerciseError as err:
        answer = ["fail", str(err)]
    except BaseException as err:  # noqa: BLE001 (whatever the learner's code raises, the check failed)
        answer = ["fail", f"{type(err).__name__}: {err}"]
    if called_reference:
        answer = ["fail", f"your function calls the course's own `{name}`: write it yourself"]
    return answer


class CheckServer:
    """The check process: started at the first check, from the snapshot of the course's code taken
    before any notebook ran; started again if a learner's function kills it."""

    def __init__(self, snapshot: dict[str, bytes]):
        self.snapshot, self.conn, self.process = snapshot, None, None

    def _start(self):
        spawn = multiprocessing.get_context("spawn")
        self.conn, theirs = spawn.Pipe()
        self.process = spawn.Process(target=_check_server, args=(theirs, self.snapshot))
        self.process.start()
        status, message = _receive(self.conn)
        if status != "pass":
            raise RuntimeError(f"the grader could not isolate the course's checks: {message}")

    def check(self, name: str, payload: bytes, timeout: float) -> tuple[str, str]:
        for _ in range(2):
            if self.process is None or not self.process.is_alive():
                self._start()
            try:
                self.conn.send((name, payload, timeout))
                return tuple(_receive(self.conn))
            except (EOFError, OSError):
                self.process = None
        return "error", "the grader's check process died twice on this function"

    def close(self):
        if self.process is not None and self.process.is_alive():
            self.conn.send(None)
            self.process.join(5)
            self.process.kill()


# ---- running a notebook ------------------------------------------------------------------------------

# Runs in the learner's kernel: hands over, pickled by value, each exercise function the notebook
# defined itself, with the check's other arguments (when they changed; all of them when final).
CAPTURE_SETUP = '''
def _course_grader_setup():
    import base64, json, sys, types
    import dill
    latest = {}
    def capture(namespace, wanted, final=False):
        changed = []
        for name, args in wanted.items():
            fn = namespace.get(name)
            if callable(fn) and getattr(fn, "__module__", None) == "__main__":
                values = (fn, *(namespace.get(a) for a in args))
                if [id(v) for v in values] != [id(v) for v in latest.get(name, ())]:
                    latest[name] = values
                    changed.append(name)
        out = {}
        for name in (latest if final else changed):
            try:
                out[name] = base64.b64encode(dill.dumps(latest[name], recurse=True)).decode()
            except Exception as err:
                out[name] = "!" + f"{type(err).__name__}: {err}"
        return json.dumps(out)
    sys.modules["_course_grader"] = types.SimpleNamespace(capture=capture)
_course_grader_setup()
del _course_grader_setup
'''


def identify(nb, course: dict[str, dict[str, Exercise]], path: Path) -> str | None:
    """The course notebook this is a copy of: the one whose exercises it defines or checks the most."""
    code = "\n".join(c.get("source", "") for c in nb.cells if c.get("cell_type") == "code")
    found = {stem: sum(bool(re.search(rf"\bdef {n}\s*\(|\bcheck_{n}\s*\(", code)) for n in exercises)
             for stem, exercises in course.items()}
    best = max(found.values(), default=0)
    candidates = [stem for stem, n in found.items() if n == best and best > 0]
    if len(candidates) > 1:  # as many of two notebooks' exercises: the file name decides
        candidates = [stem for stem in candidates if path.name.startswith(stem[:3])] or candidates[:0]
    return candidates[0] if len(candidates) == 1 else None


def _user_expression(client, expression: str, timeout: float) -> str:
    from jupyter_core.utils import run_sync

    reply = run_sync(client.kc.execute_interactive)(
        "", silent=True, store_history=False, user_expressions={"x": expression}, timeout=max(1, timeout))
    value = reply["content"].get("user_expressions", {}).get("x", {})
    if value.get("status") != "ok":
        raise RuntimeError(f"{value.get('ename', 'error')}: {value.get('evalue', '')}")
    return ast.literal_eval(value["data"]["text/plain"])


def run_notebook(nb, path: Path, exercises: dict[str, Exercise], budget: float, graded: Graded) -> dict[str, str]:
    """Execute every cell within the budget; {exercise: payload or "!why"} of the functions captured."""
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    deadline = time.monotonic() + budget
    wanted = repr({name: ex.args for name, ex in exercises.items()})
    captured: dict[str, str] = {}
    client = NotebookClient(nb, kernel_name="python3", allow_errors=True, shutdown_kernel="immediate",
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    index = -1
    try:
        with client.setup_kernel():
            reply = run_sync(client.kc.execute_interactive)(CAPTURE_SETUP, silent=True, store_history=False, timeout=60)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"the grader could not set up the kernel (is dill installed?): "
                                   f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if time.monotonic() >= deadline:
                    raise CellTimeoutError(f"the time budget ran out before cell {index}")
                client.execute_cell(cell, index)
                captured.update(json.loads(_user_expression(
                    client, f"__import__('_course_grader').capture(globals(), {wanted})", deadline - time.monotonic())))
            index = len(nb.cells)
            captured.update(json.loads(_user_expression(
                client, f"__import__('_course_grader').capture(globals(), {wanted}, final=True)", 60)))
    except CellTimeoutError:
        graded.run = (f"stopped: cell {index} was running when the notebook's time budget ({budget:.0f} s) ran out; "
                      f"the cells after it did not run")
    except DeadKernelError:
        graded.run = f"stopped: the kernel died in cell {index}; the cells after it did not run"
    except Exception as err:  # the kernel misbehaved in some other way: grade what was captured
        graded.run = f"stopped at cell {index}: {type(err).__name__}: {err}"
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error" and output.get("ename") not in NOT_THEIRS:
                graded.cell_errors.append(f"cell {i}: {output.get('ename')}: {output.get('evalue')}")
    return captured


def grade(path: Path, course: dict[str, dict[str, Exercise]], server: CheckServer,
          budget: float = 600, check_timeout: float = 120) -> Graded:
    """Run one notebook and check each of its exercises with the course's own check."""
    start = time.monotonic()
    graded = Graded(str(path))
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not a file, not JSON, not a notebook
        graded.run = f"not run: {path} is not a readable notebook ({type(err).__name__}: {str(err)[:200]})"
        return graded
    graded.course_notebook = identify(nb, course, path)
    if graded.course_notebook is None:
        graded.run = "not run: it defines none of the course's exercises (or as many of two notebooks')"
        return graded
    exercises = course[graded.course_notebook]
    captured = run_notebook(nb, path, exercises, budget, graded)
    for name, exercise in exercises.items():
        payload = captured.get(name)
        if payload is None:
            graded.results.append(Result(name, "missing", f"the notebook does not define `{name}` as a function "
                                         f"of its own" + ("" if graded.run == "complete" else " before it stopped")))
        elif payload.startswith("!"):
            graded.results.append(Result(name, "error", f"the grader could not take your function: {payload[1:]}"))
        else:
            status, message = server.check(name, base64.b64decode(payload), check_timeout)
            if status == "not done":
                message = "not done yet (the stub still raises NotImplementedError)." + \
                    (f" Hint: {exercise.hint}" if exercise.hint else "")
            graded.results.append(Result(name, status, message))
    graded.seconds = round(time.monotonic() - start, 1)
    return graded


# ---- reports -------------------------------------------------------------------------------------------


def report(graded: Graded) -> str:
    lines = [f"PASS  {r.exercise}" if r.passed else f"FAIL  {r.exercise}: {r.message.strip()}" for r in graded.results]
    lines += [f"ERROR {message.strip()}" for message in graded.cell_errors]
    lines += [f"NOTE  {message}" for message in ([] if graded.run == "complete" else [graded.run]) + graded.warnings]
    lines.append(f"{graded.passed} passed, {len(graded.results) - graded.passed} failed")
    return "\n".join(lines)


def as_json(batch: list[Graded], budget: float, check_timeout: float, course_code_sha256: str,
            warnings: list[str]) -> dict:
    return {
        "grader": "tools/grade.py", "budget_s": budget, "check_timeout_s": check_timeout,
        "course_code_sha256": course_code_sha256, "warnings": warnings,
        "notebooks": [{**asdict(g), "results": [{**asdict(r), "passed": r.passed} for r in g.results],
                       "passed": g.passed, "failed": len(g.results) - g.passed} for g in batch],
        "passed": sum(g.passed for g in batch), "failed": sum(len(g.results) - g.passed for g in batch),
    }


def _write(path: Path, text: str) -> None:
    """Write atomically: a report is either the old one or the complete new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _modified_in_git(installed: Path) -> list[str]:
    """A warning if course_utils's code differs from the git checkout's (a killed grading run?)."""
    try:
        status = subprocess.run(["git", "-C", str(installed), "status", "--porcelain", "--", "."],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    changed = [line for line in status.stdout.splitlines() if line.endswith(".py")]
    return [f"course_utils's code differs from git ({'; '.join(changed)}): grading with it"] if changed else []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/grade"), help="where report.txt and report.json go")
    parser.add_argument("--budget", type=float, default=600, help="seconds to run each notebook (default 600)")
    parser.add_argument("--check-timeout", type=float, default=120, help="seconds for each check (default 120)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        print(f"NOTEBOOK must be a .ipynb file, got {', '.join(missing)}", file=sys.stderr)
        return 2
    course, installed = course_exercises(), package_dir()
    snapshot = code_files(installed)  # before any notebook runs
    warnings = _modified_in_git(installed)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    server = CheckServer(snapshot)
    batch, text = [], []
    try:
        for path in args.notebooks:
            try:
                graded = grade(path, course, server, args.budget, args.check_timeout)
            except Exception as err:  # a bug of the grader's: say so, and grade the next notebook
                graded = Graded(str(path), run=f"not graded: the grader failed ({type(err).__name__}: {err})")
            changed = put_back(installed, snapshot)
            if changed:
                graded.warnings.append(f"this notebook changed course_utils on disk ({', '.join(changed)}); "
                                       f"the grader put the files back")
            batch.append(graded)
            text.append((f"== {path}\n" if len(args.notebooks) > 1 else "") + report(graded))
            print(text[-1], flush=True)
    finally:
        server.close()
    fingerprint = hashlib.sha256(json.dumps({k: v.hex() for k, v in snapshot.items()}).encode()).hexdigest()
    summary = as_json(batch, args.budget, args.check_timeout, fingerprint, warnings)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "report.txt", "\n".join(text) + "\n")
    _write(args.out / "report.json", json.dumps(summary, indent=1))
    print(f"reports: {args.out / 'report.txt'}, {args.out / 'report.json'}", file=sys.stderr)
    ok = all(g.results and g.passed == len(g.results) for g in batch)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
