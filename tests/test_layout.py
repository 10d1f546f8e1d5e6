"""Two tiers: `course_utils` is what learners import and read; `maintainer` builds the zoo, its
studies and the Colab cell. The learner tier never imports the maintainer tier, so a learner's
installed package (which holds course_utils alone) works without it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_learner_tier_never_imports_the_maintainer_tier():
    learner = sorted(ROOT.glob("course_utils/**/*.py"))
    assert len(learner) >= 10
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[0] in ("maintainer", "tools"))
                 for p in learner}
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_the_scan_sees_an_import_of_the_maintainer_tier(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import json\nfrom maintainer.zoo_build import build\ndef f():\n    import maintainer.colab_cell\n")
    assert {"maintainer.zoo_build", "maintainer.colab_cell"} <= imported_modules(bad)


def test_the_maintainer_tier_is_where_building_lives():
    assert (ROOT / "maintainer" / "zoo_build.py").is_file() and (ROOT / "maintainer" / "colab_cell.py").is_file()
    assert not (ROOT / "course_utils" / "colab.py").exists()
    zoo_source = (ROOT / "course_utils" / "zoo.py").read_text()
    assert "def build(" not in zoo_source and "__main__" not in zoo_source


def test_the_package_docstring_lists_every_module_once():
    import course_utils

    package = ROOT / "course_utils"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"} | {
        p.parent.name for p in package.glob("*/__init__.py")}
    listed = [line.split("`")[1] for line in course_utils.__doc__.splitlines() if line.startswith("- `")]
    assert sorted(listed) == sorted(modules), f"listed {sorted(listed)}, modules {sorted(modules)}"
