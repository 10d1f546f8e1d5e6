"""Put the zoo's CPU numerics in force before anything imports torch (pytest reads this file first).

torch reads these variables once, when it is imported; set later they do nothing. A variable the
caller set already (`ATEN_CPU_CAPABILITY=avx512 make test`) is kept, and the retrain tests then
compare with the seed spread instead of bit for bit, and say so (see course_utils/numerics.py).
"""

import os
import sys

from course_utils import numerics

if numerics.applies_here() and "torch" not in sys.modules:
    for key, value in numerics.zoo_environment().items():
        os.environ.setdefault(key, value)


def pytest_report_header(config):
    """Say, before any test runs, how the retrain tests will compare with the shipped zoo."""
    from course_utils import zoo

    now = numerics.current()
    lines = [f"zoo numerics here: torch {now['torch_version']}, {now['cpu_capability']} kernels, "
             f"{now['threads']} threads, " + ", ".join(f"{k}={now[k]}" for k in numerics.zoo_environment())]
    why = {name: numerics.why_not_bitwise(zoo.card(name).get("numerics")) for name in zoo.names()}
    if not any(why.values()):
        lines.append("retrain tests: bit-for-bit comparison with the shipped weights")
    for name, reason in why.items():
        if reason:
            lines.append(f"retrain tests of {name}: seed-spread comparison, not bit for bit, because {reason}")
    return lines
