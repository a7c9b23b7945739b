"""scripts/audit.py: what it audits and when it fails CI (the network calls are replaced)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).parents[3]


@pytest.fixture
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vcredit_audit", ROOT / "scripts" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_audited_set_is_the_projects_closure_without_itself(audit: ModuleType) -> None:
    roots = audit.project_requirements(ROOT / "pyproject.toml")
    names = {r.name for r in roots}
    # dependencies, the test extra, and the extras it names (vcredit[sim,redis]).
    assert {"fastapi", "limits", "pytest", "schemathesis", "pip-audit", "matplotlib", "redis"} <= names
    assert "vcredit" not in names
    pins = audit.installed_closure(roots)
    assert {"starlette", "pydantic-core", "sqlalchemy"} <= set(pins), "transitive dependencies are audited too"
    assert "vcredit" not in pins and "awscli" not in pins


def _run(audit: ModuleType, monkeypatch: pytest.MonkeyPatch, report: list[dict[str, Any]], newest: Any) -> int:
    monkeypatch.setattr(audit, "installed_closure", lambda _roots: {"a": "1.0", "b": "2.0"})
    monkeypatch.setattr(audit, "pip_audit", lambda _pins, _out: {"dependencies": report})
    monkeypatch.setattr(audit, "newest_release_vulnerabilities", newest)
    monkeypatch.setattr(sys, "argv", ["audit.py", "--output", "/dev/null"])
    code: int = audit.main()
    return code


CLEAN = {"name": "a", "version": "1.0", "vulns": []}
SKIPPED = {"name": "b", "skip_reason": "Dependency not found on PyPI and could not be audited: b (2.0)"}


def test_a_known_vulnerability_fails_either_way(audit: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    vulnerable = {"name": "a", "version": "1.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["1.1"]}]}
    assert _run(audit, monkeypatch, [vulnerable], lambda n, v: []) == 1
    assert _run(audit, monkeypatch, [CLEAN, SKIPPED], lambda n, v: ["GHSA-x"]) == 1


def test_unaudited_dependencies_are_listed_and_fail_only_a_strict_run(
    audit: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = lambda n, v: "no per-release data from PyPI here, and the newest release is 2.1"  # noqa: E731
    assert _run(audit, monkeypatch, [CLEAN, SKIPPED], newer) == 0
    out = capsys.readouterr().out
    assert "1 audited" in out and "1 not audited" in out and "not audited b 2.0" in out
    monkeypatch.setenv("VCREDIT_AUDIT_STRICT", "1")
    assert _run(audit, monkeypatch, [CLEAN, SKIPPED], newer) == 1
    # Audited from the newest release's data: counted as audited, strict or not.
    assert _run(audit, monkeypatch, [CLEAN, SKIPPED], lambda n, v: []) == 0
