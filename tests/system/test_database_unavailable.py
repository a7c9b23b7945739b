"""A request that finds the database away (a restart, a failover) is answered 503, a
problem the client retries with the same Idempotency-Key, never a 500."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.bus.embedded import EmbeddedBus
from shared.db import unavailable
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.services import load_spec

TOKEN = "unit-token"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_what_counts_as_the_database_being_away() -> None:
    assert unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert unavailable(DBAPIError("SELECT 1", None, _Orig("57P01")))  # admin shutdown
    assert unavailable(DBAPIError("SELECT 1", None, _Orig("08006")))  # connection failure
    assert unavailable(DBAPIError("SELECT 1", None, _Orig("XX000"), connection_invalidated=True))
    assert not unavailable(IntegrityError("INSERT", None, _Orig("23505")))  # a refusal, not an outage
    assert not unavailable(RuntimeError("boom"))


async def test_a_request_without_its_database_gets_a_503_problem(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://vcredit:vcredit@127.0.0.1:{_closed_port()}/vcredit"
    runtime = ServiceRuntime(load_spec("registry"), url, EmbeddedBus(tmp_path / "bus.db"), CommonSettings())
    app = create_app(runtime, TOKEN, manage_runtime=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://registry", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            r = await client.post(
                "/v1/townships", json={"code": "410100001", "name": "湖滨镇"}, headers={"Idempotency-Key": "k1"}
            )
    finally:
        await runtime.engine.dispose()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert (r.json()["code"], r.headers["retry-after"]) == ("DATABASE_UNAVAILABLE", "1")
