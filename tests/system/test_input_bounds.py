"""Integers from the client that reach the database are bounded to what its columns hold:
past that they are 422, not an overflow in the driver (a 500). Found by the OpenAPI fuzzer
(tests/fuzz) on POST /v1/deliveries/{delivery_id}/redeliver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from shared.bus.embedded import EmbeddedBus
from shared.db import BIGINT_MAX
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.services import load_spec

TOKEN = "bounds-token"


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    bus = EmbeddedBus(tmp_path / "bus.db")
    async with AsyncExitStack() as stack:
        out = {}
        for service in ("registry", "risk", "notify"):
            spec = load_spec(service)
            url = f"sqlite+aiosqlite:///{tmp_path}/{service}.db"
            await asyncio.to_thread(upgrade, spec.migrations_dir, url)
            runtime = ServiceRuntime(spec, url, bus, CommonSettings(data_dir=tmp_path))
            await stack.enter_async_context(runtime)
            out[service] = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=create_app(runtime, TOKEN, manage_runtime=False)),
                    base_url=f"http://{service}",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
            )
        yield out


def _code(r: httpx.Response) -> tuple[int, str]:
    assert r.headers["content-type"] == "application/problem+json", r.text
    return r.status_code, r.json()["code"]


async def test_ids_past_bigint_are_422_and_those_within_are_looked_up(clients: dict[str, httpx.AsyncClient]) -> None:
    notify, registry = clients["notify"], clients["registry"]
    assert _code(await notify.post(f"/v1/deliveries/{BIGINT_MAX + 1}/redeliver")) == (422, "VALIDATION_FAILED")
    assert _code(await notify.post(f"/v1/deliveries/{BIGINT_MAX}/redeliver")) == (404, "DELIVERY_NOT_FOUND")

    objection = {"reason": "该事实有误，请核实"}
    r = await registry.post(f"/v1/facts/{BIGINT_MAX + 1}/objections", json=objection)
    assert _code(r) == (422, "VALIDATION_FAILED")
    assert _code(await registry.post(f"/v1/facts/{BIGINT_MAX}/objections", json=objection)) == (404, "FACT_NOT_FOUND")


async def test_stream_resume_points_past_bigint_are_422(clients: dict[str, httpx.AsyncClient]) -> None:
    notify = clients["notify"]
    r = await notify.get("/v1/stream", headers={"Last-Event-ID": str(BIGINT_MAX + 1)})
    assert _code(r) == (422, "VALIDATION_FAILED")
    assert _code(await notify.get("/v1/stream", params={"last_event_id": BIGINT_MAX + 1})) == (422, "VALIDATION_FAILED")


async def test_title_year_filter_is_a_calendar_year(clients: dict[str, httpx.AsyncClient]) -> None:
    risk = clients["risk"]
    # PostgreSQL keeps the year in a 32-bit column: 2**40 would overflow there.
    assert _code(await risk.get("/v1/titles", params={"year": 2**40})) == (422, "VALIDATION_FAILED")
    assert (await risk.get("/v1/titles", params={"year": 2026})).json() == []
