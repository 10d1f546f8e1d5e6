"""The pinned set is the same for pip (pyproject.toml) and conda (environment.yml); CI runs make test."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ]", req, maxsplit=1)[0].lower()


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def environment_pins() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    reqs = [line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")]
    return {_name(r): r.replace(" ", "") for r in reqs if not r.startswith("-e")}


def test_pip_and_conda_pin_the_same_versions():
    assert pyproject_pins() == environment_pins()


def test_the_required_pins():
    pins = pyproject_pins()
    assert pins["torch"] == "torch==2.13.0"
    assert pins["transformer-lens"] == "transformer-lens>=4.3,<4.4"
    assert pins["circuitsvis"] == "circuitsvis>=1.43,<1.44"
    assert pins["nbval"] == "nbval>=0.11,<0.12"
    assert pins["jupyterlab"] == "jupyterlab>=4,<5"
    assert pins["matplotlib"] == "matplotlib>=3,<4"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "make test" in (ROOT / "README.md").read_text()


def test_nothing_unpickles():
    """Weights load from safetensors; any torch.load must pass weights_only=True. The grader is the one
    exception: it pickles a learner's functions in the learner's kernel and unpickles them in the
    process that runs the learner's code anyway (tools/grade.py says why)."""
    offenders = []
    for path in [*ROOT.glob("course_utils/**/*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("benchmarks/*.py")]:
        if path == ROOT / "tools" / "grade.py":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bpickle\b|\bdill\b", line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.name}:{lineno}")
            if "torch.load(" in line and "weights_only=True" not in line:
                offenders.append(f"{path.name}:{lineno}")
    assert not offenders, offenders


FORBIDDEN_IN_CODE = {
    r"(?<![.\w])(eval|exec|compile|__import__)\(": "executes a string",  # model.eval() is not eval()
    r"\burllib\b|\brequests\b|\bhttpx\b|http\.client|\burlopen\b|\bsocket\b": "can fetch a URL",
    r"from_pretrained|hf_hub_download|snapshot_download|load_dataset|boot_transformers": "can download weights or data",
    r"\bsubprocess\b|os\.system|os\.popen|^\s*[!%]": "runs a shell command",
}


def _code_cells():
    import nbformat

    from maintainer.colab_cell import SETUP_MARKER

    for path in sorted([*ROOT.glob("solutions/*.ipynb"), *ROOT.glob("notebooks/*.ipynb")]):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            # The Colab set-up cell (tests/test_colab.py pins its exact text) installs with pip, in Colab only.
            if cell.cell_type == "code" and not cell.source.startswith(SETUP_MARKER):
                yield f"{path.parent.name}/{path.name} cell {i}", cell.source


# The one module that may reach the network: it downloads GPT-2 small for the optional "On a real model"
# sections of notebooks 03-07, only when a learner runs them online (issue 23); offline it says so and
# returns None. Notebook cells reach it only through `real_model.gpt2`.
MAY_DOWNLOAD = {"course_utils/real_model.py"}


def test_notebooks_and_package_neither_execute_strings_nor_fetch():
    """No notebook cell and no course_utils module but `real_model` executes a string, reaches the
    network, downloads weights or data, or runs a shell command."""
    sources = list(_code_cells()) + [(f"course_utils/{p.name}", p.read_text())
                                     for p in sorted(ROOT.glob("course_utils/*.py"))
                                     if f"course_utils/{p.name}" not in MAY_DOWNLOAD]
    assert len(sources) > 50
    offenders = []
    for where, source in sources:
        for lineno, line in enumerate(source.splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, why in FORBIDDEN_IN_CODE.items():
                if re.search(pattern, code):
                    offenders.append(f"{where}, line {lineno} ({why}): {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_module_that_may_download_does_only_that():
    """real_model may probe the hub and boot GPT-2; it still executes no string and runs no shell command."""
    for name in MAY_DOWNLOAD:
        source = (ROOT / name).read_text()
        for pattern, why in FORBIDDEN_IN_CODE.items():
            if why in ("executes a string", "runs a shell command"):
                assert not re.search(pattern, source, re.M), f"{name}: {why}"
        assert "boot_transformers(\"gpt2\"" in source


def test_the_scan_finds_what_it_looks_for():
    assert not any(re.search(p, "model.eval(); re.compile('x')") for p in FORBIDDEN_IN_CODE)
    for bad in ["eval('1+1')", "exec(code)", "import urllib.request", "requests.get(url)",
                "AutoModel.from_pretrained('gpt2')", "subprocess.run(['ls'])", "!pip install x", "%pip install x"]:
        assert any(re.search(p, bad) for p in FORBIDDEN_IN_CODE), bad
