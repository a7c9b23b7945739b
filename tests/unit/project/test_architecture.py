"""Who may import whom (issue 20), read from the source with ``ast``, so nothing is imported.

- ``shared/`` is common code: it imports no service, nor ``bench``, ``simulator``, ``tests``
  or ``vcredit`` (the composition root). Imports inside functions count, and so do
  ``importlib.import_module`` calls on a string literal (of an f-string: its fixed start).
- ``bench/`` and ``simulator/`` import nothing from ``tests/``.
- The modules of ``shared/`` import one another without a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Top-level packages shared/ must not reach.
NOT_FROM_SHARED = {"services", "bench", "simulator", "tests", "vcredit"}


def modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of a top-level package of the checkout."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "migrations" in parts and "versions" in parts:
            continue  # Alembic revisions: never imported as modules
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _literal_start(node: ast.expr) -> str | None:
    """A string literal, or the fixed start of an f-string (f"services.{name}.app" -> "services.")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def imports(module: str, path: Path, *, runtime_only: bool = False) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file: at module level or inside a
    function, absolute or relative, and ``import_module``/``__import__`` of a literal.
    ``from a import b`` yields ``a.b`` (b may be a module) as well as ``a``. With
    runtime_only, imports under ``if TYPE_CHECKING:`` are left out."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def visit(node: ast.AST) -> Iterator[tuple[int, str]]:
        if runtime_only and isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in ("import_module", "__import__"):
                target = _literal_start(node.args[0])
                if target:
                    yield node.lineno, target
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def forbidden(packages: list[str], banned: set[str]) -> list[str]:
    found = set()
    for package in packages:
        for module, path in modules(package).items():
            lines: dict[int, str] = {}
            for line, target in imports(module, path):
                if target.split(".")[0] in banned and (line not in lines or len(target) < len(lines[line])):
                    lines[line] = target  # of ``from a import b``, a alone
            found |= {f"{path.relative_to(ROOT)}:{line} imports {target}" for line, target in lines.items()}
    return sorted(found)


def shared_graph() -> dict[str, set[str]]:
    """Module of shared/ -> the modules of shared/ it imports when it runs."""
    names = modules("shared")
    graph: dict[str, set[str]] = {m: set() for m in names}
    for module, path in names.items():
        for _, target in imports(module, path, runtime_only=True):
            if target in names and target != module:
                graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def test_the_checks_see_imports_of_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    import typed.only\n"
        "def f(name):\n"
        "    from services.risk import rebuild\n"
        "    importlib.import_module(f'services.{name}.app')\n"
        "    return __import__('bench.suite')\n"
    )
    seen = {target for _, target in imports("shared.m", path)}
    assert {"shared", "shared.sibling", "typed.only", "services.risk", "services.risk.rebuild"} <= seen
    assert {"services.", "bench.suite"} <= seen
    assert "typed.only" not in {target for _, target in imports("shared.m", path, runtime_only=True)}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_shared_imports_no_service_bench_simulator_tests_or_vcredit() -> None:
    assert forbidden(["shared"], NOT_FROM_SHARED) == []


def test_bench_and_simulator_import_nothing_from_tests() -> None:
    assert forbidden(["bench", "simulator"], {"tests"}) == []


def test_shared_modules_import_one_another_without_a_cycle() -> None:
    assert cycles(shared_graph()) == []
