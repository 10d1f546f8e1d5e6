"""Open an HTML page in headless Chromium and report what a reader would see.

A small client for Chromium's DevTools protocol (over `websocket-client`): it loads the page,
waits until every circuitsvis view has drawn (or a timeout), counts the images that decoded,
collects JavaScript errors from the console, and saves a full-page screenshot. The browser test
(tests/test_browser.py) runs it on every solution notebook exported to HTML.

Usage: python tools/browser_check.py page.html [screenshot.png]
Needs Debian's `chromium` (`make chromium` installs it). Requests leaving the machine are blocked:
the page must render from what it carries.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1200,900", "--remote-debugging-port=0"]

# Elements that circuitsvis draws into: the course's wrapper (course_utils.viz) and plain circuitsvis.
VIEWS = ".course-circuitsvis, [id^='circuits-vis-']"
STATE = """(() => {
  const views = [...document.querySelectorAll("%s")];
  const images = [...document.querySelectorAll("img")].filter(i => i.src.startsWith("data:image/png"));
  return JSON.stringify({
    views: views.map(v => ({id: v.id, children: v.querySelectorAll("*").length,
                            text: v.textContent.slice(0, 200)})),
    images: images.length,
    images_decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    height: document.documentElement.scrollHeight,
  });
})()""" % VIEWS


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class ChromiumMissing(RuntimeError):
    pass


@dataclass
class PageReport:
    views: list[dict] = field(default_factory=list)  # one per circuitsvis element: id, children, text
    images: int = 0
    images_decoded: int = 0
    errors: list[str] = field(default_factory=list)  # JavaScript errors and console.error messages
    blocked: list[str] = field(default_factory=list)  # requests to other machines, refused
    screenshot: Path | None = None

    @property
    def empty_views(self):
        return [v for v in self.views if v["children"] == 0]


class Chromium:
    """One headless Chromium with a fresh profile, driven over the DevTools protocol."""

    def __init__(self):
        import websocket  # websocket-client

        binary = find_chromium()
        if binary is None:
            raise ChromiumMissing("headless Chromium is needed: install Debian's `chromium` "
                                  "(`make chromium`, or `apt-get install -y chromium`)")
        self.profile = tempfile.mkdtemp(prefix="course-chromium-")
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium ({binary}) did not start")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:  # our own browser
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True, timeout=60)
        self.ids, self.events = itertools.count(1), []

    def send(self, method: str, **params):
        """Send one command and return its result; events that arrive meanwhile are kept."""
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def check(self, page: Path, screenshot: Path | None = None, timeout: float = 30) -> PageReport:
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Network.setBlockedURLs", urls=["http://*", "https://*", "ws://*", "wss://*"])
        self.send("Page.navigate", url=Path(page).resolve().as_uri())
        deadline = time.monotonic() + timeout
        while True:  # until loaded, every view drawn and every image decoded, or the timeout
            state = json.loads(self.evaluate(STATE) or "{}") if self.evaluate("document.readyState") == "complete" \
                else None
            done = state and all(v["children"] for v in state["views"]) and state["images"] == state["images_decoded"]
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(0.3)  # let late console messages arrive
        self.evaluate("1")
        state = dict(state or {})
        height = min(int(state.pop("height", 900)), 16000)
        report = PageReport(**state)
        report.errors, report.blocked = self._errors()
        if screenshot is not None:
            self.send("Emulation.setDeviceMetricsOverride", width=1200, height=height, deviceScaleFactor=1,
                      mobile=False)
            shot = self.send("Page.captureScreenshot", format="png")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        return report

    def _errors(self):
        errors, blocked = [], []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(details.get("exception", {}).get("description") or details.get("text"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                if entry.get("source") == "network" and entry.get("url", "").startswith(("http:", "https:")):
                    blocked.append(entry["url"])  # the exported page's optional extras (MathJax, require.js)
                else:
                    errors.append(entry["text"])
        return errors, blocked

    def close(self):
        if getattr(self, "ws", None):
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_page(page: Path, screenshot: Path | None = None, timeout: float = 30) -> PageReport:
    with Chromium() as browser:
        return browser.check(page, screenshot, timeout)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    result = check_page(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else None)
    print(json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in result.__dict__.items()}, indent=1))
