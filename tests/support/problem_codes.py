"""The problem codes a route can answer, found in its code: every ``Problem(status, "CODE",
...)`` written in the endpoint, its dependencies and every function of the project they
name, transitively (a static reading, so an under-estimate: a method called on an object is
not followed). tests/unit/project/test_openapi_contract.py checks that each operation's
OpenAPI declares at least these."""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "shared")
# Constructors of refusals besides Problem itself: name -> the status they are answered with
# (None: the first argument is the status).
_REFUSALS: dict[str, int | None] = {
    "Problem": None,
    "problem_response": None,
    "problem_body": None,
    "_oauth_error": None,
    "CobRefused": 422,  # services/loans/cob_api.py answers it as a 422
    "Refusal": 409,  # services/loans/domain/opening.py's, answered as 409s (credit_lines.refused)
    "CorrectionRefused": 422,  # services/loans/domain/periods.py's, answered as 422s (corrections.correct)
    "ClaimRefused": None,  # services/loans/domain/subsidy_claims.py's, answered with its status
}

Codes = dict[int, set[str]]


def _constants(node: ast.expr) -> list[Any]:
    """The literal values an argument can take: a constant, or either side of a conditional."""
    if isinstance(node, ast.Constant):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _constants(node.body) + _constants(node.orelse)
    return []


def refusals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(status, code) of every refusal written with literal arguments in ``tree``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if name not in _REFUSALS or not node.args:
            continue
        fixed = _REFUSALS[name]
        args = node.args if fixed is None else [ast.Constant(fixed), *node.args]
        if len(args) < 2:
            continue
        for status in _constants(args[0]):
            for code in _constants(args[1]):
                if isinstance(status, int) and isinstance(code, str):
                    yield status, code.upper() if name == "_oauth_error" else code


def _ours(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in PACKAGES


def _resolve(node: ast.expr, scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, scope)
        return getattr(base, node.attr, None) if isinstance(base, types.ModuleType | type) else None
    return None


def _scope_of(func: types.FunctionType) -> dict[str, Any]:
    names = dict(func.__globals__)
    if func.__closure__:
        names.update(inspect.getclosurevars(func).nonlocals)
    return names


def function_codes(func: Callable[..., Any], seen: set[Any] | None = None) -> Codes:
    """The refusals of ``func`` and of every project function it names, transitively."""
    seen = set() if seen is None else seen
    found: Codes = defaultdict(set)
    func = inspect.unwrap(func)
    if func in seen or not isinstance(func, types.FunctionType) or not _ours(func):
        return found
    seen.add(func)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError):
        return found
    for status, code in refusals(tree):
        found[status].add(code)
    scope = _scope_of(func)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            target = _resolve(node, scope)
            if isinstance(target, type) and _ours(target):
                targets = [m for m in vars(target).values() if isinstance(m, types.FunctionType)]
            else:
                targets = [target]
            for t in targets:
                if isinstance(t, types.FunctionType) and _ours(t):
                    for status, codes in function_codes(t, seen).items():
                        found[status] |= codes
    return found


def dependant_codes(dependant: Dependant, seen: set[Any] | None = None) -> Codes:
    """The refusals of an endpoint and of its dependencies (scope, audit, sessions, ...)."""
    seen = set() if seen is None else seen
    found: Codes = defaultdict(set)
    if dependant.call is not None:
        for status, codes in function_codes(dependant.call, seen).items():
            found[status] |= codes
    for sub in dependant.dependencies:
        for status, codes in dependant_codes(sub, seen).items():
            found[status] |= codes
    return found


def function_names(func: Callable[..., Any], seen: set[Any] | None = None) -> set[Any]:
    """Every project function ``func`` names, transitively (``func`` included)."""
    seen = set() if seen is None else seen
    func = inspect.unwrap(func)
    if func in seen or not isinstance(func, types.FunctionType) or not _ours(func):
        return seen
    seen.add(func)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError):
        return seen
    scope = _scope_of(func)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            target = _resolve(node, scope)
            if isinstance(target, types.FunctionType):
                function_names(target, seen)
    return seen
