"""Wall time and peak memory of each solution notebook, executed top to bottom as nbval does.

Each notebook runs in its own kernel, started afresh; the peak memory is the kernel's maximum
resident set size. The baseline, measured in the same run, is a notebook that only runs
`course_utils.setup()`: the cost of starting a kernel and importing torch, which every notebook pays. Targets (issue 8): at most 60 s and 1.5 GB per notebook.

Usage: python benchmarks/notebooks.py [NOTEBOOK ...]   (default: solutions/*.ipynb)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME_TARGET_S, MEMORY_TARGET_GB = 60, 1.5


def run_one(path: str) -> None:
    """Execute one notebook in this process's child kernel; print its wall time and peak memory."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    print(json.dumps({"seconds": seconds, "peak_gb": peak_kb / 2**20}))


def measure(path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return run_one(args.one)

    import nbformat

    notebooks = args.notebooks or sorted((ROOT / "solutions").glob("*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        baseline_nb = Path(tmp) / "baseline.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import course_utils\ncourse_utils.setup()")]), baseline_nb)
        base = measure(baseline_nb)
    print(f"{'notebook':45s} {'wall s':>7s} {'x base':>7s} {'peak GB':>8s}  targets <= {TIME_TARGET_S} s, "
          f"<= {MEMORY_TARGET_GB} GB")
    print(f"{'baseline (kernel start + course_utils.setup)':45s} {base['seconds']:7.1f} {1:7.2f} {base['peak_gb']:8.2f}")
    missed = 0
    for path in notebooks:
        m = measure(path)
        ok = m["seconds"] <= TIME_TARGET_S and m["peak_gb"] <= MEMORY_TARGET_GB
        missed += not ok
        print(f"{path.name:45s} {m['seconds']:7.1f} {m['seconds'] / base['seconds']:7.2f} {m['peak_gb']:8.2f}  "
              f"{'met' if ok else 'MISSED'}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
