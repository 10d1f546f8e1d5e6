"""The zoo's numerics: defined in one file, in force in the tests, and compared honestly."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import numerics, zoo

ROOT = Path(__file__).resolve().parent.parent


def test_one_file_defines_the_numerics_and_the_makefile_reads_it():
    env = numerics.zoo_environment()
    assert env == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    makefile = (ROOT / "Makefile").read_text()
    assert "course_utils/zoo_numerics.env" in makefile
    assert not any(value in makefile for value in env.values()), "the Makefile must read the values, not repeat them"


@pytest.mark.skipif(not numerics.applies_here(), reason="the settings name x86-64 kernels")
def test_make_exports_the_numerics_to_what_it_runs():
    env = {k: v for k, v in os.environ.items() if k not in numerics.zoo_environment()}
    out = subprocess.run(["make", "-s", "--eval=show-numerics: ; @env", "show-numerics"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    for key, value in numerics.zoo_environment().items():
        assert f"{key}={value}" in out.splitlines()
    # a value the caller chose wins, so a machine can be tested with other kernels on purpose
    out = subprocess.run(["make", "-s", "--eval=show-numerics: ; @env", "show-numerics"], cwd=ROOT,
                         env={**env, "ATEN_CPU_CAPABILITY": "default"}, capture_output=True, text=True, check=True).stdout
    assert "ATEN_CPU_CAPABILITY=default" in out.splitlines()


@pytest.mark.skipif(not numerics.applies_here(), reason="the settings name x86-64 kernels")
def test_the_numerics_are_in_force_in_the_tests_before_torch_is_imported():
    """conftest.py sets them before anything imports torch; torch then reports AVX2 kernels even on
    an AVX512 machine (unless the caller chose other kernels on purpose)."""
    import torch

    chosen = os.environ.get("ATEN_CPU_CAPABILITY")
    if chosen == "avx2":
        assert torch.backends.cpu.get_cpu_capability() == "AVX2"
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") is not None


def test_every_card_records_what_its_weights_were_built_with():
    for name in zoo.names():
        built = zoo.card(name)["numerics"]
        assert {"torch_version", "cpu_capability", "threads", *numerics.zoo_environment()} <= set(built), name
        assert built["cpu_capability"] == "AVX2" and built["torch_version"].startswith("2.13.0"), (name, built)


def test_why_not_bitwise_names_the_difference():
    here = numerics.current()
    assert numerics.why_not_bitwise(None) == "the card does not record the numerics its weights were built with"
    assert re.match(r"torch_version is '.*' here but '1.0' where the weights were built",
                    numerics.why_not_bitwise({**here, "torch_version": "1.0"}))
    other = "AVX512" if here["cpu_capability"] != "AVX512" else "AVX2"
    assert "cpu_capability" in numerics.why_not_bitwise({**here, "cpu_capability": other})
    assert "ONEDNN_MAX_CPU_ISA" in numerics.why_not_bitwise({**here, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
    assert numerics.why_not_bitwise(here) is None


@pytest.mark.slow
@pytest.mark.skipif(not numerics.applies_here(), reason="forces other x86-64 kernels")
def test_without_the_zoo_numerics_the_retrain_tests_say_so_and_check_the_seed_spread():
    """The fallback is real code that must pass where the zoo's numerics cannot be had: force other
    kernels (the scalar 'default' ones) and run a retrain test in a fresh process."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    out = subprocess.run([sys.executable, "-m", "pytest", "tests/test_zoo.py", "-rA", "-p", "no:cacheprovider",
                          "-k", "part_way and attn_only_2l"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "PASSED tests/test_zoo.py::test_retraining_part_way_reproduces_the_shipped_history[attn_only_2l-seed-spread]" in out.stdout
    assert re.search(r"retrain tests of attn_only_2l: seed-spread comparison, not bit for bit, because cpu_capability is "
                     r"'DEFAULT' here but 'AVX2'", out.stdout), out.stdout[:2000]
