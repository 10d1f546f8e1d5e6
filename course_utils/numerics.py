"""The CPU numerics the zoo's weights are built and reproduced with.

When torch is imported it picks its CPU kernels: AVX512 on newer x86-64 processors, AVX2 on older
ones. They round differently in the last bit, and training turns a last-bit difference into a
different model within a few hundred steps (the first tensor to differ is always `b_K`, see
`model.py`). The zoo was built with the settings in `zoo_numerics.env`; with them in force before
torch is imported, retraining a zoo model on any x86-64 machine with AVX2 gives the shipped weights
bit for bit. `make lab`, `make test` and `make zoo` set them; so does the tests' `conftest.py`.

Elsewhere (an ARM laptop, another torch, a GPU) retraining gives another model of the same recipe,
as another seed would: its metrics fall inside the seed-to-seed spread that each card records.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent / "zoo_numerics.env"


def zoo_environment() -> dict[str, str]:
    """{variable: value} that the zoo is built with, read from `zoo_numerics.env`."""
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def applies_here() -> bool:
    """The settings name x86-64 kernels: they mean something on x86-64 machines only."""
    return platform.machine().lower() in ("x86_64", "amd64")


def current() -> dict:
    """The numerics this process trains with: torch version, CPU kernels, threads, the settings."""
    import torch

    return {
        "torch_version": torch.__version__,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        **{key: os.environ.get(key) for key in zoo_environment()},
    }


def why_not_bitwise(built_with: dict | None) -> str | None:
    """None when this process retrains a model built with `built_with` (a card's `numerics`) bit for
    bit; otherwise the reason it cannot, in words."""
    if built_with is not None and not isinstance(built_with, dict):
        raise TypeError(f"built_with must be a card's 'numerics' (a dict) or None, got {type(built_with).__name__}")
    if not built_with:
        return "the card does not record the numerics its weights were built with"
    now = current()
    for key in ("torch_version", "cpu_capability", *zoo_environment()):
        if now.get(key) != built_with.get(key):
            return (f"{key} is {now.get(key)!r} here but {built_with.get(key)!r} where the weights were built"
                    + ("" if key != "cpu_capability" else
                       " (set the variables of course_utils/zoo_numerics.env before torch is imported)"))
    return None
