"""Every list endpoint of every service has a bounded page size (shared/paging.py): found
from the services' own OpenAPI, so a new list endpoint without ``limit`` fails here."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.paging import MAX_OFFSET, MAX_PAGE
from shared.runtime import ServiceRuntime, create_app
from shared.settings import SERVICE_NAMES, CommonSettings
from vcredit.services import load_spec

TOKEN = "paging-token"
# The dashboard page's own aggregates, one point per business day (services/notify/dashboard.py).
NOT_PAGED = ("/v1/dashboard/",)


def _app(service: str, tmp: Path) -> FastAPI:
    runtime = ServiceRuntime(
        load_spec(service), f"sqlite+aiosqlite:///{tmp}/{service}.db", EmbeddedBus(tmp / "bus.db"), CommonSettings()
    )
    return create_app(runtime, TOKEN, manage_runtime=False)


def _is_list(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("type") == "array":
        return True
    # registry's household pages: {"items": [...], "next_after": ...}
    return "items" in schema.get("properties", {})


def list_endpoints(app: FastAPI) -> dict[str, dict[str, Any]]:
    """GET path -> its query parameters by name, for every operation answering a list."""
    spec = app.openapi()
    components = spec.get("components", {}).get("schemas", {})
    found = {}
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if get is None or path.startswith(NOT_PAGED):
            continue
        content = get["responses"].get("200", {}).get("content", {}).get("application/json")
        if content and _is_list(content.get("schema", {}), components):
            found[path] = {p["name"]: p["schema"] for p in get.get("parameters", []) if p["in"] == "query"}
    return found


def test_every_list_endpoint_takes_a_bounded_limit_and_an_offset_or_cursor(tmp_path: Path) -> None:
    endpoints = {s: list_endpoints(_app(s, tmp_path)) for s in SERVICE_NAMES}
    assert sum(len(e) for e in endpoints.values()) >= 24, endpoints
    unbounded = []
    for service, paths in endpoints.items():
        for path, query in paths.items():
            limit = query.get("limit", {})
            offset = query.get("offset", {})
            ok = (
                (limit.get("minimum"), limit.get("maximum")) == (1, MAX_PAGE)
                and 1 <= limit.get("default", 0) <= MAX_PAGE
                and ((offset.get("minimum"), offset.get("maximum")) == (0, MAX_OFFSET) or "after" in query)
            )
            if not ok:
                unbounded.append(f"{service} GET {path}: limit={limit} offset={offset}")
    assert unbounded == []


def _concrete(path: str) -> str:
    # Digits: a code (registry's codes are digits) and any other path segment accept them.
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_a_limit_over_the_maximum_is_422_naming_the_parameter_everywhere(tmp_path: Path) -> None:
    checked = 0
    for service in SERVICE_NAMES:
        app = _app(service, tmp_path)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://x",
            # Audited lists ask for a purpose first; stated, the limit is what is judged.
            headers={"Authorization": f"Bearer {TOKEN}", "X-Query-Purpose": "paging test"},
        ) as client:
            for path, query in list_endpoints(app).items():
                for bad in ({"limit": MAX_PAGE + 1}, {"limit": 0}, {"offset": -1}, {"offset": MAX_OFFSET + 1}):
                    if next(iter(bad)) not in query:
                        continue
                    r = await client.get(_concrete(path), params=bad)
                    assert r.status_code == 422, (service, path, bad, r.text)
                    assert r.headers["content-type"] == "application/problem+json"
                    assert [e["field"] for e in r.json()["errors"]] == [f"query.{next(iter(bad))}"], r.text
                    checked += 1
    assert checked >= 94


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    spec = load_spec("registry")
    url = f"sqlite+aiosqlite:///{tmp_path}/registry.db"
    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    runtime = ServiceRuntime(spec, url, EmbeddedBus(tmp_path / "bus.db"), CommonSettings(data_dir=tmp_path))
    app = create_app(runtime, TOKEN, manage_runtime=False)
    await runtime.start()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client
    await runtime.stop()


async def test_pages_follow_each_other_without_gaps_or_repeats(registry: httpx.AsyncClient) -> None:
    codes = [f"T{i}" for i in range(7)]
    for code in codes:
        assert (await registry.post("/v1/townships", json={"code": code, "name": f"镇{code}"})).status_code == 201
    read: list[str] = []
    while True:
        page = (await registry.get("/v1/townships", params={"limit": 3, "offset": len(read)})).json()
        assert len(page) <= 3
        read += [t["code"] for t in page]
        if len(page) < 3:
            break
    assert read == codes
    # Without limit, a previously unpaged list still answers everything up to MAX_PAGE.
    assert [t["code"] for t in (await registry.get("/v1/townships")).json()] == codes
