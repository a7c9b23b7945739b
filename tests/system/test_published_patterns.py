"""Every pattern a service publishes in its OpenAPI is what it enforces, in ASCII (issue 19,
defect 5): ``\\d`` matches every script's digits in Python's re and in pydantic's Rust regex,
so a published ``^\\d+$`` let ``١٢٣`` through while the reader of the contract expects 0-9."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.bus.embedded import EmbeddedBus
from shared.money import MONEY_PATTERN
from shared.runtime import ServiceRuntime, create_app
from shared.settings import SERVICE_NAMES, CommonSettings
from vcredit.services import load_spec


def _patterns(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield path, value
            else:
                yield from _patterns(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _patterns(value, f"{path}/{i}")


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_no_published_pattern_uses_unicode_aware_classes(service: str, tmp_path: Path) -> None:
    runtime = ServiceRuntime(
        load_spec(service), f"sqlite+aiosqlite:///{tmp_path}/x.db", EmbeddedBus(tmp_path / "bus.db"), CommonSettings()
    )
    patterns = list(_patterns(create_app(runtime, "t", manage_runtime=False).openapi()))
    loose = [(where, p) for where, p in patterns if any(c in p for c in ("\\d", "\\w", "\\s", "\\D", "\\W"))]
    assert loose == []
    if service in ("registry", "scoring", "loans", "risk"):  # the services with money fields
        assert any(p == MONEY_PATTERN for _, p in patterns)
    assert MONEY_PATTERN == "^[0-9]+(\\.[0-9]{1,2})?$"
