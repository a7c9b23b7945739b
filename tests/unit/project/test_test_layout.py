"""The tests' own layout (issue 20 part 5): shared helpers live in tests/support/, so no
module under tests/ imports a name from a test module (``test_*.py``), whether a private
helper, a constant or the module itself."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]


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
