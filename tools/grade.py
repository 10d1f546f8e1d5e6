"""Grade a learner's exercise notebook: run it top to bottom and report each exercise's check.

    make grade NOTEBOOK=path/to/their_notebook.ipynb
    python tools/grade.py path/to/their_notebook.ipynb [more.ipynb ...]

Every cell runs, even after an error (as the notebook itself carries on with the reference
implementation after a failed check). Each cell tagged `check` calls `checks.check_NAME(...)`; its
exercise passed if the cell ran without error, and otherwise the check's own message is printed:
what is wrong, or that the exercise is not done yet. Errors in other cells are listed too. The last
line is a summary such as `7 passed, 1 failed`; the exit status is 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

CHECK_CALL = re.compile(r"\bcheck_(\w+)\s*\(")
STUB = re.compile(r"""raise NotImplementedError\("Exercise '(\w+)': (.*)"\)""")  # tools/make_exercises.py's stub


@dataclass
class Result:
    exercise: str
    passed: bool
    message: str = ""


def _error(cell) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output["ename"], output["evalue"]
    return None


def grade(path: Path, timeout: int = 600) -> tuple[list[Result], list[str]]:
    """Execute the notebook; (one Result per checked exercise, messages for other failing cells)."""
    from nbclient import NotebookClient

    if not path.is_file() or path.suffix != ".ipynb":
        raise FileNotFoundError(f"NOTEBOOK must be a .ipynb file, got {str(path)!r}")
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # nbval's tag would make a failed check pass silently under nbclient
        tags = cell.get("metadata", {}).get("tags", [])
        if "raises-exception" in tags:
            tags.remove("raises-exception")
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    results, others = [], []
    hints = dict(STUB.findall("\n".join(c.source for c in nb.cells if c.cell_type == "code")))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = _error(cell)
        names = CHECK_CALL.findall(cell.source) if "check" in cell.get("metadata", {}).get("tags", []) else []
        if names:
            message = "" if error is None else (error[1] if error[0] in ("ExerciseError", "NotImplementedError")
                                                else f"{error[0]}: {error[1]}")
            for name in names:
                if error is not None and error[0] == "NotImplementedError":  # the stub: say so, with its hint
                    message = "not done yet (the stub still raises NotImplementedError)." + \
                        (f" Hint: {hints[name]}" if name in hints else "")
                results.append(Result(name, error is None, message))
        elif error is not None:
            others.append(f"cell {index}: {error[0]}: {error[1]}")
    return results, others


def report(results: list[Result], others: list[str]) -> str:
    lines = []
    for r in results:
        lines.append(f"PASS  {r.exercise}" if r.passed else f"FAIL  {r.exercise}: {r.message.strip()}")
    for message in others:
        lines.append(f"ERROR {message.strip()}")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    ok = True
    for path in args.notebooks:
        try:
            results, others = grade(path)
        except FileNotFoundError as err:
            print(err, file=sys.stderr)
            return 2
        if len(args.notebooks) > 1:
            print(f"== {path}")
        print(report(results, others))
        ok = ok and bool(results) and all(r.passed for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
