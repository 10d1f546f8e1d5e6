"""The README's first command: `make lab` opens the course in JupyterLab, for root (containers,
cloud machines, CI) and other users alike. Started headless on a free loopback port, asked for the
notebooks it serves, and stopped, whatever happens."""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def stop(server: subprocess.Popen) -> None:
    """Stop a server started in its own session, and everything it started (kernels included)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.mark.notebook
def test_make_lab_serves_the_exercise_notebooks(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token}")
    log = (tmp_path / "lab.log").open("w")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    lab = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if lab.poll() is not None:
                pytest.fail(f"make lab exited with {lab.returncode}:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            try:
                status, body = get(f"{base}/api/contents?token={token}")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the lab did not answer within 120 s:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        served = {item["name"] for item in json.loads(body)["content"]}
        shipped = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
        assert status == 200 and len(shipped) >= 7 and shipped <= served, (served, shipped)
        assert get(f"{base}/lab?token={token}")[0] == 200
        # a token is required: the lab is not open to anyone on the machine
        with pytest.raises(urllib.error.HTTPError):
            get(f"{base}/api/contents")
    finally:
        stop(lab)
        log.close()
    assert lab.returncode is not None
