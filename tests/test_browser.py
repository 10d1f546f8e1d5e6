"""Every solution notebook as a reader sees it: executed, exported to HTML with nbconvert, opened in
headless Chromium. Every circuitsvis view must have drawn, every matplotlib figure the notebook made
must be on the page, and the console must hold no JavaScript error. One screenshot per notebook goes
to build/browser/ (git-ignored), beside the page and the executed notebook.

The notebooks are executed here (in parallel), which also checks that every cell runs, as nbval
would: `make test` therefore runs nbval over the exercise twins only, and each solution notebook is
executed once per run. A notebook whose cell raises fails its own test, with the cell and the error.
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "browser"
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
import browser_check  # noqa: E402

pytestmark = pytest.mark.browser

# Run before and after the notebook's own cells, then removed: counts every matplotlib Figure made.
COUNT_FIGURES = """import matplotlib.figure as _mf
_course_figure_count = [0]
_course_figure_init = _mf.Figure.__init__
def _course_counting_init(self, *args, **kwargs):
    _course_figure_count[0] += 1
    _course_figure_init(self, *args, **kwargs)
_mf.Figure.__init__ = _course_counting_init"""
REPORT_FIGURES = 'print("figures made:", _course_figure_count[0])'


def execute_and_export(path: Path) -> dict:
    """Execute one notebook (from its own folder), export it to HTML; what the page must show."""
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(COUNT_FIGURES))
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_FIGURES))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    figures = int(nb.cells[-1].outputs[0]["text"].split()[-1])
    nb.cells = nb.cells[1:-1]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html_outputs = [o.get("data", {}).get("text/html", "") for o in outputs]
    OUT.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_notebook_node(nb)
    page = OUT / f"{path.stem}.html"
    page.write_text(body)
    nbformat.write(nb, OUT / f"{path.stem}.ipynb")  # executed, with each cell's timing, for a look
    return {
        "page": page,
        "figures": figures,
        "png_outputs": sum("image/png" in o.get("data", {}) for o in outputs),
        "views": sum(h.count('class="course-circuitsvis"') + h.count('id="circuits-vis-') for h in html_outputs),
    }


@pytest.fixture(scope="module")
def executed():
    if browser_check.find_chromium() is None:
        pytest.fail("headless Chromium is missing: run `make chromium` (installs Debian's `chromium`)")
    workers = max(1, min(len(SOLUTIONS), os.cpu_count() or 1, 3))
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip([p.name for p in SOLUTIONS], pool.map(_execute_or_error, SOLUTIONS)))


def _execute_or_error(path: Path) -> dict:
    """execute_and_export, or {"error": what went wrong}: one failing notebook fails only its own test."""
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    try:
        return execute_and_export(path)
    except (CellExecutionError, DeadKernelError, TimeoutError) as error:
        return {"error": f"{type(error).__name__}: {error}"}


def test_the_screenshots_folder_is_ignored_by_git():
    proc = subprocess.run(["git", "check-ignore", "-q", str(OUT / "x.png")], cwd=ROOT)
    assert proc.returncode == 0, "build/browser/ must be git-ignored"


@pytest.mark.parametrize("name", [p.name for p in SOLUTIONS])
def test_notebook_renders_in_chromium(executed, name):
    expected = executed[name]
    if "error" in expected:
        pytest.fail(f"solutions/{name} does not run from top to bottom:\n{expected['error']}", pytrace=False)
    report = browser_check.check_page(expected["page"], OUT / f"{Path(name).stem}.png")
    summary = json.dumps({k: v for k, v in report.__dict__.items() if k != "screenshot"}, indent=1)
    assert expected["png_outputs"] == expected["figures"], \
        f"{name}: made {expected['figures']} matplotlib figures but showed {expected['png_outputs']}"
    assert len(report.views) == expected["views"], f"{name}: {expected['views']} circuitsvis views expected\n{summary}"
    assert not report.empty_views, f"{name}: circuitsvis views that did not draw\n{summary}"
    assert report.images == report.images_decoded == expected["figures"], \
        f"{name}: {expected['figures']} figures expected on the page\n{summary}"
    assert not report.errors, f"{name}: JavaScript errors in the console\n{summary}"
    assert report.screenshot.stat().st_size > 10_000


def test_a_cell_that_raises_fails_that_notebook_with_the_error(tmp_path):
    """The browser test is where each solution notebook runs (make test runs no nbval over
    solutions/): a raising cell must fail, naming the error; a `raises-exception` cell must not."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("raise KeyError('expected here')", metadata={"tags": ["raises-exception"]}),
        nbformat.v4.new_code_cell("1 / 0"),
    ])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result = _execute_or_error(path)
    assert set(result) == {"error"} and "ZeroDivisionError" in result["error"] and "KeyError" not in result["error"]
