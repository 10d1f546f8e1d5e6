"""Time and memory of the optional "On a real model" sections (notebooks 03-07), on GPT-2 small's
architecture with random weights (`CIRCUITS_GPT2=random`): the same matrices and the same calls as
the real GPT-2 small, so the same compute, without the download (about 0.5 GB, which a machine with
a network adds once) and with a word-level stand-in tokenizer (prompts of the same length in words
are a little shorter in tokens than GPT-2's).

Each solution notebook runs top to bottom in a fresh kernel, as `tests/test_real_model.py` runs it.
Two cells are added around its section: one reads the kernel's resident memory and the clock where
the section starts, one where it ends. Printed per notebook: the section's wall time, the memory the
kernel held when the section started, the kernel's peak by its end (what a learner's runtime needs
for the whole notebook up to there), and the peak's growth over the starting memory (what the
section itself adds, at most). The budget the issue sets: Colab's free CPU runtime, 12 GB and under
two minutes a section.

Usage: python benchmarks/real_model_sections.py [NOTEBOOK ...]   (default: the solutions with a section)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME_TARGET_S, MEMORY_TARGET_GB = 120, 12
TAG = "real-model"
PROBE = """import time as _t
def _kb(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))
"""
START = PROBE + "_section_start = (_t.perf_counter(), _kb('VmRSS'))"
END = PROBE + """import json as _json
print("SECTION " + _json.dumps({"seconds": _t.perf_counter() - _section_start[0], "start_gb": _section_start[1] / 2**20,
                                "peak_gb": _kb("VmHWM") / 2**20}))"""


def run_one(path: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if TAG in c.metadata.get("tags", [])]
    if not tagged:
        raise SystemExit(f"{path} has no cell tagged {TAG!r}")
    nb.cells.insert(tagged[-1] + 1, nbformat.v4.new_code_cell(END))
    nb.cells.insert(tagged[0], nbformat.v4.new_code_cell(START))
    os.environ["CIRCUITS_GPT2"] = "random"  # the kernel inherits this process's environment
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    end = nb.cells[tagged[-1] + 2]
    line = next(o["text"] for o in end.outputs if o.get("output_type") == "stream" and "SECTION " in o.get("text", ""))
    print(line.split("SECTION ", 1)[1].strip())


def measure(path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one)
        return 0
    notebooks = args.notebooks or [p for p in sorted((ROOT / "solutions").glob("*.ipynb")) if f'"{TAG}"' in p.read_text()]
    print(f"{'notebook':40s} {'section s':>9s} {'start GB':>9s} {'peak GB':>8s} {'added GB':>9s}  "
          f"targets <= {TIME_TARGET_S} s, <= {MEMORY_TARGET_GB} GB")
    missed = 0
    for path in notebooks:
        m = measure(path)
        ok = m["seconds"] <= TIME_TARGET_S and m["peak_gb"] <= MEMORY_TARGET_GB
        missed += not ok
        print(f"{path.name:40s} {m['seconds']:9.1f} {m['start_gb']:9.2f} {m['peak_gb']:8.2f} "
              f"{m['peak_gb'] - m['start_gb']:9.2f}  {'met' if ok else 'MISSED'}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
