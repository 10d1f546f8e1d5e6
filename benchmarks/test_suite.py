"""Wall time of the whole test suite (`make test`, with .venv/ already installed), against the
target of 10 minutes on the course's 2-core reference machine (issue 8). The baseline, measured in
the same run, is pytest collecting the same suite without running it.

Usage: python benchmarks/test_suite.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 600
SUITE = ["tests", "solutions", "notebooks", "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600"]


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def main() -> int:
    collect_s, _ = timed([sys.executable, "-m", "pytest", *SUITE, "-q", "--collect-only"])
    run_s, proc = timed(["make", "-s", "test"])
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    print(f"collect only (baseline): {collect_s:6.1f} s")
    print(f"whole suite:             {run_s:6.1f} s  ({run_s / collect_s:.0f}x collect; {summary})")
    print(f"target <= {TARGET_S} s: {'met' if run_s <= TARGET_S else 'MISSED'}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
