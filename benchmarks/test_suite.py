"""Wall time of `make test` and `make test-slow` (with .venv/ already installed), and where it goes,
against the target of 10 minutes for `make test` on the course's 2-core reference machine
(issue 24). The baseline, measured in the same run, is pytest collecting the same suite.

The split by part comes from pytest's JUnit report (each test's setup, call and teardown; a module
fixture's work, such as the browser test executing every solution notebook, counts in the first
test that uses it). `make test` runs in TEST_WORKERS processes (2), so its parts add up to more than
its wall time: each part's share is of the processes' time together. Parts: the browser test, nbval over the exercise notebooks, the tests that run
notebooks (grade, lab), the early-checkpoint retrain tests, and every other unit test.

Usage: python benchmarks/test_suite.py [--no-slow]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 600
OUT = ROOT / "build" / "bench"


def timed(command: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, proc


def part(case: ET.Element) -> str:
    """Which part of the suite a JUnit test case belongs to, from its file and name."""
    where = f"{case.get('classname', '')}::{case.get('name', '')}"
    if where.startswith("notebooks"):
        return "nbval over notebooks/ (exercise twins)"
    if "test_browser" in where:
        return "browser test (executes every solution notebook)"
    if "test_grade" in where or "test_lab" in where:
        return "tests that run notebooks (grade, lab)"
    if "retrain" in where:
        return "retrain tests"
    return "unit tests"


def run_part(target: str, junit: Path) -> tuple[float, str, dict, int]:
    env = {**os.environ, "PYTEST_ADDOPTS": f"--junitxml={junit}"}
    seconds, proc = timed(["make", "-s", target], env)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    split = defaultdict(float)
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            split[part(case)] += float(case.get("time", 0))
    return seconds, summary, dict(split), proc.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-slow", action="store_true", help="skip make test-slow")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    collect_s, _ = timed([sys.executable, "-m", "pytest", "tests", "notebooks", "--nbval-lax", "-q", "--collect-only"])
    print(f"collect only (baseline): {collect_s:6.1f} s")
    code = 0
    for target in ["test"] + ([] if args.no_slow else ["test-slow"]):
        seconds, summary, split, rc = run_part(target, OUT / f"{target}.xml")
        code = code or rc
        print(f"make {target}: {seconds:6.1f} s ({seconds / 60:.1f} min, {seconds / collect_s:.0f}x collect; {summary})")
        busy = sum(split.values()) or 1.0
        for name, s in sorted(split.items(), key=lambda kv: -kv[1]):
            print(f"  {name:50s} {s:6.1f} s  {s / busy:4.0%} of the tests' time")
        if target == "test":
            print(f"  target <= {TARGET_S} s: {'met' if seconds <= TARGET_S else 'MISSED'}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
