"""Notify's credit-list endpoint (issue 11) against a stand-in risk on a real port: what it
passes to risk's public endpoints, whose token it sends, what it refuses before asking, and
what it answers when risk is down. Against the real risk: tests/integration/test_credit_lists_public.py."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from tests.support.http_server import serve
from vcredit.services import load_spec

TOKEN = "lists-token"
ENTRY = {"entry_id": 7, "list": "black", "name": "张三", "identifier_masked": "410***********0012"}
REPAIR = {"repair_id": 3, "entry_id": 7, "name": "张三", "decision": "granted"}


def _fake_risk(seen: list[tuple[str, dict[str, str], str]]) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/public/credit-lists")
    async def credit_lists(request: Request) -> list[dict[str, Any]]:
        seen.append((request.url.path, dict(request.query_params), request.headers.get("authorization", "")))
        return [ENTRY]

    @app.get("/v1/public/credit-repairs")
    async def repairs(request: Request) -> list[dict[str, Any]]:
        seen.append((request.url.path, dict(request.query_params), request.headers.get("authorization", "")))
        return [REPAIR]

    return app


@pytest.fixture
async def notify(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    spec = load_spec("notify")
    url = f"sqlite+aiosqlite:///{tmp_path}/notify.db"
    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    runtime = ServiceRuntime(spec, url, EmbeddedBus(tmp_path / "bus.db"), CommonSettings(data_dir=tmp_path))
    app = create_app(runtime, TOKEN, manage_runtime=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://notify", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


async def test_the_search_reaches_both_public_endpoints_with_the_callers_token(
    notify: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, dict[str, str], str]] = []
    async with serve(_fake_risk(seen)) as risk_url:
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", risk_url)
        r = await notify.get("/v1/dashboard/credit-lists", params={"name": "张", "village_code": "410102003001"})
        assert r.status_code == 200, r.text
        assert r.json() == {"lists": [ENTRY], "repairs": [REPAIR]}
        search = {"name": "张", "village_code": "410102003001", "limit": "100", "offset": "0"}
        assert seen == [
            ("/v1/public/credit-lists", search, f"Bearer {TOKEN}"),
            ("/v1/public/credit-repairs", search, f"Bearer {TOKEN}"),
        ]

        # No search: nothing but the page goes to risk (an empty name is no filter).
        seen.clear()
        r = await notify.get("/v1/dashboard/credit-lists", params={"name": "", "limit": 5, "offset": 10})
        assert r.status_code == 200, r.text
        assert [q for _, q, _ in seen] == [{"limit": "5", "offset": "10"}] * 2

        # The list filter is risk's; repair is of black-list entries only, so the red list has none.
        seen.clear()
        r = await notify.get("/v1/dashboard/credit-lists", params={"list": "black"})
        assert [(p, q.get("list")) for p, q, _ in seen] == [
            ("/v1/public/credit-lists", "black"),
            ("/v1/public/credit-repairs", None),
        ]
        seen.clear()
        r = await notify.get("/v1/dashboard/credit-lists", params={"list": "red"})
        assert r.json() == {"lists": [ENTRY], "repairs": []}
        assert [(p, q["list"]) for p, q, _ in seen] == [("/v1/public/credit-lists", "red")]

        # Bad searches are refused here, never forwarded.
        seen.clear()
        for bad in (
            {"name": "张" * 51},
            {"village_code": "41010200300a"},
            {"village_code": "4101020030011"},
            {"village_code": "410102 003"},
            {"village_code": "４１０"},  # full-width digits are digits to \\d, not to risk
            {"list": "grey"},
            {"limit": 1001},
            {"limit": 0},
            {"offset": -1},
        ):
            r = await notify.get("/v1/dashboard/credit-lists", params=bad)
            assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_FAILED"), (bad, r.text)
        assert seen == []


async def test_a_risk_that_is_down_is_503(notify: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", f"http://127.0.0.1:{port}")
    r = await notify.get("/v1/dashboard/credit-lists")
    assert (r.status_code, r.json()["code"]) == (503, "RISK_UNAVAILABLE"), r.text
    assert r.headers["content-type"] == "application/problem+json"
