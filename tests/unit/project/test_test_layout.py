"""The tests' own layout (issue 20 part 5).

- Unit tests mirror the code: ``tests/unit/<area>/test_<module>.py``, an area being a code
  area (a service under ``services/``, or ``shared``, ``vcredit``, ``bench``, ``simulator``),
  or ``project`` for checks of the repository as a whole (the import rules, this layout,
  deploy/, scripts/). Nothing else sits in tests/unit/.
- Every folder of tests/ with Python files is a package, so two areas' ``test_money.py``
  never collide under pytest's default import mode.
- Shared helpers live in tests/support/, so no module under tests/ imports a name from a
  test module (``test_*.py``), whether a private helper, a constant or the module itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
ROOT = TESTS.parent
UNIT = TESTS / "unit"
SERVICES = ("registry", "scoring", "loans", "risk", "notify")
AREAS = {*SERVICES, "shared", "vcredit", "bench", "simulator", "project"}


def _is_test_module(dotted: str) -> bool:
    return dotted.split(".", 1)[0] == "tests" and dotted.rsplit(".", 1)[-1].startswith("test_")


def _imports_from_test_modules(tree: ast.Module, package: str) -> list[str]:
    """The imports in ``tree``, a module of ``package``, that reach into a test module, as
    ``line: module.name``; relative imports are resolved against ``package``."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: {a.name}" for a in node.names if _is_test_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found += [
                f"{node.lineno}: {base}.{a.name}"
                for a in node.names
                if _is_test_module(base) or _is_test_module(f"{base}.{a.name}")
            ]
    return found


def test_no_module_under_tests_imports_from_a_test_module() -> None:
    offences: list[str] = []
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(("tests", *path.relative_to(TESTS).parent.parts))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offences += [f"{path.relative_to(TESTS.parent)}:{o}" for o in _imports_from_test_modules(tree, package)]
    assert not offences, "move shared helpers into tests/support/ with a public name:\n" + "\n".join(offences)


def test_the_check_sees_every_form_of_import_from_a_test_module() -> None:
    source = (
        "from tests.integration.test_notify import _serve\n"
        "from tests.integration import test_risk\n"
        "import tests.unit.test_money\n"
        "from .test_loans import START\n"
        "from . import test_credit_lists\n"
        "from ..unit.test_pii import X\n"
        "from tests.support.system import System\n"
        "from tests.support import pii_flow\n"
        "from tests.conftest import Infra\n"
        "from . import conftest\n"
        "import pytest\n"
    )
    found = _imports_from_test_modules(ast.parse(source), "tests.integration")
    assert found == [
        "1: tests.integration.test_notify._serve",
        "2: tests.integration.test_risk",
        "3: tests.unit.test_money",
        "4: tests.integration.test_loans.START",
        "5: tests.integration.test_credit_lists",
        "6: tests.unit.test_pii.X",
    ]


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_unit_tests_sit_in_the_folder_of_the_area_they_test() -> None:
    misplaced = [
        str(p.relative_to(ROOT))
        for p in _python_files(UNIT)
        if p.parent != UNIT and not (p.parent.parent == UNIT and p.parent.name in AREAS)
    ]
    assert not misplaced, f"tests/unit/<area>/ with <area> one of {sorted(AREAS)}:\n" + "\n".join(misplaced)
    loose = [p.name for p in UNIT.glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"tests/unit/ holds only area folders; move {loose} into the area of the code tested"


def test_every_area_is_a_folder_of_the_code() -> None:
    areas = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert areas <= AREAS
    for area in AREAS - {"project"}:
        assert (ROOT / "services" / area if area in SERVICES else ROOT / area).is_dir(), area


def test_every_folder_of_tests_is_a_package() -> None:
    folders = {p.parent for p in _python_files(TESTS)}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []
