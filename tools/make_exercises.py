"""Generate the exercise notebooks (notebooks/) from the solution notebooks (solutions/).

In a solution notebook, a code cell marks each exercise's answer like this:

    def embed(tokens, W_E):
        # BEGIN SOLUTION embed: each token's embedding is a row of W_E; index W_E with the tokens.
        return W_E[tokens]
        # END SOLUTION

In the exercise notebook the marked lines become a stub that raises NotImplementedError naming the
exercise and pointing to its hints (never the answer); folded cells follow: the hints, one step at a
time (the marker's text, steps separated by ` || `: an idea, then a closer hint), then the solution. Cells tagged
`check` (they call a check on the learner's function) get nbval's `raises-exception` tag there, so
nbval runs the exercise notebooks end to end while the stubs are still stubs. Outputs are dropped.

It also normalises the solutions themselves (outputs stripped; the Colab set-up cell from
`maintainer/colab_cell.py` as the first code cell, inserted or updated) and puts an "Open in Colab" badge
at the top of every exercise notebook, so a new or merged notebook needs nothing by hand.

Usage: python tools/make_exercises.py [--check]   (--check: fail if solutions/ or notebooks/ is stale)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from maintainer import colab_cell as colab  # noqa: E402  (only nbformat and the standard library)

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION (?P<name>\w+):\s*(?P<hint>.+?)\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")


class MarkerError(ValueError):
    pass


def stub_message(name: str) -> str:
    """What a stub raises: the exercise's name and where its hints are, never the answer."""
    return f"Exercise '{name}': yours to write; its hints are folded below it."


def hint_steps(hint: str) -> list[str]:
    """The marker's hint, one step per ` || `: an idea first, then closer hints."""
    return [step.strip() for step in hint.split("||") if step.strip()]


def stub_source(source: str, where: str) -> tuple[str, list[str], dict[str, list[str]]]:
    """(the source with each marked solution replaced by a stub, the names of the exercises, their hints)."""
    out, solutions, hints, inside = [], [], {}, None
    for lineno, line in enumerate(source.splitlines(), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise MarkerError(f"{where}, line {lineno}: BEGIN SOLUTION inside another one")
            inside = begin
            solutions.append(begin["name"])
            indent, name = begin["indent"], begin["name"]
            hints[name] = hint_steps(begin["hint"])
            out.append(f"{indent}# YOUR CODE HERE (exercise '{name}')")
            out.append(f'{indent}raise NotImplementedError("{stub_message(name)}")')
        elif END.match(line):
            if not inside:
                raise MarkerError(f"{where}, line {lineno}: END SOLUTION without BEGIN SOLUTION")
            inside = None
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: BEGIN SOLUTION {inside['name']} is never closed by END SOLUTION")
    return "\n".join(out), solutions, hints


def normalise_solution(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The solution without outputs, with the Colab set-up cell as its first code cell."""
    nb = nbformat.from_dict(solution)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    setup = nbformat.v4.new_code_cell(colab.setup_cell_source())
    setup.pop("id", None)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if code and nb.cells[code[0]].source.startswith(colab.SETUP_MARKER):
        nb.cells[code[0]].source = setup.source
    else:
        nb.cells.insert(code[0] if code else len(nb.cells), setup)
    return nb


def exercise_notebook(solution: nbformat.NotebookNode, where: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata=solution.metadata)
    nb.cells.append(nbformat.v4.new_markdown_cell(colab.badge_markdown(f"notebooks/{where}")))
    for index, cell in enumerate(solution.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type != "code":
            nb.cells.append(nbformat.v4.new_markdown_cell(cell.source, metadata={"tags": tags} if tags else {}))
            continue
        source, answers, hints = stub_source(cell.source, f"{where}, cell {index}")
        if "check" in tags and "raises-exception" not in tags:
            tags.append("raises-exception")
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {}))
        for name in answers:  # the hints, one folded step each, before the solution
            for step, text in enumerate(hints[name], 1):
                nb.cells.append(nbformat.v4.new_markdown_cell(
                    f"<details><summary>Hint {step} for '{name}'</summary>\n\n{text}\n</details>"))
        if answers:  # the whole solution cell, without its markers, folded away under the exercise
            answer = "\n".join(line for line in cell.source.splitlines() if not (BEGIN.match(line) or END.match(line)))
            nb.cells.append(nbformat.v4.new_markdown_cell(
                f"<details><summary>Solution</summary>\n\n```python\n{answer}\n```\n</details>"
            ))
    for cell in nb.cells:
        cell.pop("id", None)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    nb.nbformat, nb.nbformat_minor = 4, 4  # cells without ids
    return nbformat.writes(nb) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if notebooks/ is stale")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        solution = normalise_solution(nbformat.read(path, as_version=4))
        for target, text in [(path, render(solution)),
                             (ROOT / "notebooks" / path.name, render(exercise_notebook(solution, path.name)))]:
            if not target.exists() or target.read_text() != text:
                stale.append(f"{target.parent.name}/{target.name}")
                if not args.check:
                    target.write_text(text)
    if args.check and stale:
        print(f"stale: {stale}: run `make exercises`", file=sys.stderr)
        return 1
    print(("stale: " if args.check else "wrote: ") + (", ".join(stale) or "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
