"""The notebooks as a learner meets them: in JupyterLab, in a browser. A lab started from the course's
environment (loopback, a token, a temporary copy of notebooks 01–03, a fresh settings folder as on a
first start) is opened in headless Chromium; each notebook is opened and run through the lab's own
commands (those the Run menu calls); what the page then shows is checked: every circuitsvis view
drawn, every figure shown, tqdm's progress bars drawn as widgets, no error in any cell or in the
console, no prompt over the page, nothing fetched from off this machine. Screenshots go to
build/lab/. The server and the browser are stopped whatever happens.

The solution notebooks are the ones opened: an exercise notebook's Run All stops, as it should,
at the first stub the learner has not filled in.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "lab"
sys.path.insert(0, str(ROOT / "tools"))
import browser_check  # noqa: E402
import lab_check  # noqa: E402
from test_lab import free_port, get, stop  # noqa: E402

pytestmark = pytest.mark.browser

NOTEBOOKS = ["01_build_a_two_layer_transformer.ipynb", "02_training_and_the_induction_bump.ipynb",
             "03_finding_induction_heads.ipynb"]
DEFAULTS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free loopback port, serving a copy of the notebooks; stopped after."""
    if browser_check.find_chromium() is None:
        pytest.fail("headless Chromium is missing: run `make chromium` (installs Debian's `chromium`)")
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "course"
    root.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "solutions" / name, root / name)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, **{var: str(tmp / folder) for var, folder in [
        ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTERLAB_SETTINGS_DIR", "user-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")]}}
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = tmp / "lab.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    get(f"{base}/api/status?token={token}")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"the lab did not answer within 120 s:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.5)
            yield {"base": base, "token": token, "log": log_path}
        finally:
            stop(server)


@pytest.fixture(scope="module")
def reports(lab):
    """Every notebook opened and run in one browser page, in order, as a learner would."""
    OUT.mkdir(parents=True, exist_ok=True)
    with lab_check.Lab(lab["base"], lab["token"]) as page:
        return {name: page.run_notebook(name, OUT / f"{Path(name).stem}.png") for name in NOTEBOOKS}


def test_the_lab_asks_nothing_on_first_start(lab):
    """JupyterLab asks on first start whether to fetch Jupyter news (a toast over the page), and
    checks for updates online; the course's defaults (make lab installs them) turn both off."""
    assert DEFAULTS.exists(), f"{DEFAULTS} is missing: `make lab` and `make test` install it from tools/"
    url = f"{lab['base']}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={lab['token']}"
    answer = json.loads(get(url)[1])  # the course's defaults, as the lab serves them (a learner's own win)
    defaults = {key: prop.get("default") for key, prop in answer["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults
    assert "fetchNews" not in answer["settings"], "a fresh settings folder was expected"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_renders_in_jupyterlab(reports, name):
    r = reports[name]
    summary = json.dumps({k: v for k, v in r.__dict__.items() if k not in ("cells", "screenshot")}, indent=1)
    assert not r.cell_errors, f"{name}: cells failed in the lab: {r.cell_errors}"
    assert r.kernel != "dead", f"{name}: the kernel died"
    assert not r.timed_out and not r.unexecuted, f"{name}: cells never ran: {r.unexecuted}\n{summary}"
    assert len(r.views) == r.view_outputs, f"{name}: {r.view_outputs} circuitsvis views made\n{summary}"
    assert not r.empty_views, f"{name}: circuitsvis views that did not draw\n{summary}"
    assert not [v for v in r.views if "needs circuitsvis's script" in v["text"]], summary
    assert r.png_outputs > 0 and r.images >= r.png_outputs and r.images_decoded == r.images, \
        f"{name}: {r.png_outputs} figures made, {r.images_decoded} of {r.images} images shown\n{summary}"
    assert all(w == "drawn" for w in r.widget_outputs), f"{name}: widgets shown as text\n{summary}"
    assert not r.dialogs and not r.toasts, f"{name}: something over the page\n{summary}"
    assert not r.errors, f"{name}: JavaScript errors in the console\n{summary}"
    assert not r.remote_requests, f"{name}: the page fetched from off this machine\n{summary}"
    assert r.screenshot.stat().st_size > 10_000


def test_views_and_progress_bars_were_there_to_check(reports):
    """The checks above mean something only if the notebooks showed what they check."""
    assert sum(len(r.views) for r in reports.values()) >= 2, {n: len(r.views) for n, r in reports.items()}
    assert reports["02_training_and_the_induction_bump.ipynb"].progress_widgets >= 1
