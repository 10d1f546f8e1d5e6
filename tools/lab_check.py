"""Open notebooks in a running JupyterLab, in headless Chromium, run all their cells through the lab's
own UI commands, and report what a learner sees.

JupyterLab draws outputs through its own machinery (trusted HTML whose scripts it runs, ipywidgets
for tqdm's progress bars, its image renderer), which nbconvert's HTML export does not exercise.
The lab must be started with `--LabApp.expose_app_in_browser=True`, so that the page holds
`window.jupyterapp` (as JupyterLab's own UI tests do); the driver then calls the commands the menus
call (`docmanager:open`, `notebook:run-all-cells`) and reads the notebook's cells and page.

Used by tests/test_lab_ui.py. Needs Debian's `chromium` (`make chromium`).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from browser_check import Chromium

# What the open notebook shows: its code cells (executed or not, with their outputs' types and any
# error), the kernel's state, and, in the page, the circuitsvis views, images and progress widgets.
STATE = """(() => {
  const panel = window.courseLabPanel;  // the notebook OPEN opened (the shell's currentWidget follows focus)
  if (!panel || !panel.content || !panel.sessionContext) { return JSON.stringify({ready: false}); }
  const code = panel.content.widgets.filter(c => c.model.type === "code");
  const outputs = code.map(c => c.model.outputs.toJSON());  // each code cell's outputs, read once
  const all = outputs.flat();
  const cells = code.map((c, i) => {
    const error = outputs[i].find(o => o.output_type === "error");
    return {count: c.model.executionCount, outputs: outputs[i].map(o => o.output_type),
            error: error ? error.ename + ": " + error.evalue : null};
  });
  const node = panel.node;
  const views = [...node.querySelectorAll(".course-circuitsvis")];
  const images = [...node.querySelectorAll(".jp-OutputArea-output img")];
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return JSON.stringify({
    ready: true,
    path: panel.context.path,
    kernel: kernel ? kernel.status : "none",
    cells: cells,
    views: views.map(v => ({children: v.querySelectorAll("*").length, text: v.textContent.slice(0, 200)})),
    images: images.length,
    images_decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    view_outputs: all.map(o => String((o.data && o.data["text/html"]) || "")
      .split('class="course-circuitsvis"').length - 1).reduce((a, b) => a + b, 0),
    png_outputs: all.filter(o => o.data && o.data["image/png"]).length,
    progress_widgets: node.querySelectorAll(".widget-hprogress").length,
    widget_outputs: [...node.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.widget-view+json"]')]
      .map(o => o.querySelector(".jupyter-widgets") ? "drawn" : o.textContent.slice(0, 200)),
    dialogs: [...document.querySelectorAll(".jp-Dialog")].map(d => d.textContent.slice(0, 200)),
    toasts: [...document.querySelectorAll(".Toastify__toast")].map(t => t.textContent.slice(0, 200)),
  });
})()"""

OPEN = """(async () => {
  await window.jupyterapp.started;
  await window.jupyterapp.restored;
  const panel = await window.jupyterapp.commands.execute("docmanager:open",
                                                         {path: %s, factory: "Notebook", kernel: {name: "python3"}});
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.jupyterapp.shell.activateById(panel.id);
  window.courseLabPanel = panel;
  return panel.context.path;
})()"""


@dataclass
class LabReport:
    name: str
    cells: list[dict] = field(default_factory=list)
    kernel: str = ""
    views: list[dict] = field(default_factory=list)
    images: int = 0
    images_decoded: int = 0
    view_outputs: int = 0  # circuitsvis views in the notebook's outputs
    png_outputs: int = 0  # figures in the notebook's outputs
    progress_widgets: int = 0  # progress bars drawn as ipywidgets
    widget_outputs: list[str] = field(default_factory=list)  # "drawn", or the text shown instead
    dialogs: list[str] = field(default_factory=list)  # modal dialogs over the page (a first-start prompt)
    toasts: list[str] = field(default_factory=list)  # notifications in the corner
    errors: list[str] = field(default_factory=list)  # JavaScript errors in the console
    remote_requests: list[str] = field(default_factory=list)  # requests the page made off this machine
    timed_out: bool = False
    screenshot: Path | None = None

    @property
    def unexecuted(self):
        return [i for i, c in enumerate(self.cells) if c["count"] is None]

    @property
    def cell_errors(self):
        return [(i, c["error"]) for i, c in enumerate(self.cells) if c["error"]]

    @property
    def empty_views(self):
        return [v for v in self.views if v["children"] == 0]


class Lab(Chromium):
    """Headless Chromium on one JupyterLab page."""

    def __init__(self, base_url: str, token: str):
        super().__init__()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        self.send("Page.navigate", url=f"{base_url}/lab?reset&token={token}")
        self.wait_for("window.jupyterapp !== undefined && document.querySelector('#jp-main-dock-panel') !== null",
                      120, "JupyterLab's page did not start")

    def wait_for(self, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            time.sleep(0.25)

    def evaluate_async(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("exception", {}).get("description", str(result)))
        return result["result"].get("value")

    def state(self) -> dict:
        return json.loads(self.evaluate(STATE) or '{"ready": false}')

    def run_notebook(self, name: str, screenshot: Path | None, timeout: float = 300) -> LabReport:
        """Open NAME (a path relative to the lab's root), run all cells from the Run menu's command,
        wait until every code cell has run (or one failed, or the timeout), and report."""
        self.events.clear()
        self.evaluate_async(OPEN % json.dumps(name))
        # the Run menu's "Run All Cells", on this notebook (not waited for: it resolves when all have run)
        self.evaluate('window.jupyterapp.commands.execute("notebook:run-all-cells"); 1')
        deadline, report = time.monotonic() + timeout, LabReport(name)
        while True:
            state = self.state()
            cells = state.get("cells", [])
            finished = state.get("ready") and state["kernel"] == "idle" and cells and all(c["count"] for c in cells)
            failed = any(c["error"] for c in cells) or state.get("kernel") == "dead"
            if finished or failed or time.monotonic() > deadline:
                report.timed_out = not (finished or failed)
                break
            time.sleep(1)
        # let views draw and images decode (each view's script waits for the bundle)
        settle = time.monotonic() + 20
        while time.monotonic() < settle:
            state = self.state()
            if all(v["children"] for v in state["views"]) and state["images"] == state["images_decoded"]:
                break
            time.sleep(0.5)
        for key in ("cells", "kernel", "views", "images", "images_decoded", "view_outputs", "png_outputs", "progress_widgets", "widget_outputs",
                    "dialogs", "toasts"):
            setattr(report, key, state.get(key, getattr(report, key)))
        report.errors, _ = self._errors()
        report.remote_requests = self._remote_requests()
        if screenshot is not None:  # at the first circuitsvis view, else the first figure
            self.evaluate("(() => { const n = window.courseLabPanel.node; const e = n.querySelector('.course-circuitsvis')"
                          " || n.querySelector('.jp-OutputArea-output img'); if (e) { e.scrollIntoView(); } })()")
            time.sleep(0.5)
            shot = self.send("Page.captureScreenshot", format="png")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        return report

    def _remote_requests(self) -> list[str]:
        urls = []
        for event in self.events:
            if event.get("method") == "Network.requestWillBeSent":
                url = event["params"]["request"]["url"]
                host = urlparse(url).hostname
                if url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("127.0.0.1", "localhost", "::1"):
                    urls.append(url)
        return urls
