"""The course in Colab: the repository's address, the set-up cell and the "Open in Colab" badge.

`REPO_URL` is the one place the repository's address is written. A fork changes it here (and in
pyproject.toml's `[project.urls]`, which a test keeps equal to it), then runs `make exercises`,
which rewrites the first code cell and the badge of every notebook from this module.

The set-up cell has to run *before* `course_utils` can be imported in Colab, so it cannot import
this module: `make exercises` writes its text, with the address and the pins spelled out, into
every notebook, and a test checks that every notebook carries exactly `setup_cell_source()`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_URL = "https://github.com/circuits-from-scratch/circuits-from-scratch"
BRANCH = "main"
PACKAGE = "circuits-from-scratch"

# First line of the set-up cell: how tools/make_exercises.py recognises (and replaces) it.
SETUP_MARKER = "# Set-up: in Colab this installs the course (about a minute); elsewhere it does nothing."
BADGE_MARKER = "<!-- open-in-colab -->"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _dependencies(pyproject) -> list[str]:
    path = Path(pyproject)
    if not path.is_file():
        raise FileNotFoundError(f"pyproject must be the course's pyproject.toml, got {str(pyproject)!r} (no such file)")
    try:
        return tomllib.loads(path.read_text())["project"]["dependencies"]
    except (tomllib.TOMLDecodeError, KeyError) as err:
        raise ValueError(f"pyproject must be a pyproject.toml with [project] dependencies, got {path} ({err})") from None


def colab_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The course's pinned packages, less torch (Colab ships its own torch, with CUDA)."""
    deps = _dependencies(pyproject)
    return [d.replace(" ", "") for d in deps if re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower() != "torch"]


def install_commands(pyproject: Path = PYPROJECT) -> list[list[str]]:
    """The two pip commands the set-up cell runs in Colab (without the leading `python -m pip`).

    The course itself is installed with --no-deps, so pip never replaces Colab's torch with ours.
    """
    return [
        ["install", "--quiet", *colab_requirements(pyproject)],
        ["install", "--quiet", "--no-deps", f"{PACKAGE} @ git+{REPO_URL}@{BRANCH}"],
    ]


def setup_cell_source(pyproject: Path = PYPROJECT) -> str:
    """The text of every notebook's first code cell."""
    commands = ",\n".join(f"        {cmd!r}" for cmd in install_commands(pyproject))
    return (
        f"{SETUP_MARKER}\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    for command in [\n"
        f"{commands},\n"
        "    ]:\n"
        '        subprocess.check_call([sys.executable, "-m", "pip", *command])'
    )


def badge_markdown(notebook_path: str) -> str:
    """The "Open in Colab" link for `notebook_path` (relative to the repository root)."""
    if not isinstance(notebook_path, str) or not notebook_path.endswith(".ipynb") or notebook_path.startswith("/"):
        raise ValueError(f"notebook_path must be a notebook's path relative to the repository root, such as "
                         f"'notebooks/01_x.ipynb', got {notebook_path!r}")
    repo = REPO_URL.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/{notebook_path}"
    image = "https://colab.research.google.com/assets/colab-badge.svg"
    return f"{BADGE_MARKER}\n[![Open in Colab]({image})]({url})"
