"""Every outbound call has an explicit, configurable timeout: a source scan for the clients
that would otherwise wait on their library's default (or forever), and the settings seen
at work against a peer that accepts connections and never answers."""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from shared.bus.embedded import EmbeddedBus
from shared.db import DbTimeouts, create_engine
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.cli import kafka_bus
from vcredit.services import load_spec

ROOT = Path(__file__).parents[2]
SCANNED = ("shared", "services", "simulator", "bench", "vcredit")

# Constructor -> the keyword that bounds its calls.
REQUIRED = {
    "AsyncClient": "timeout",  # httpx
    "Client": "timeout",  # httpx
    "AIOKafkaProducer": "request_timeout_ms",
    "AIOKafkaConsumer": "request_timeout_ms",
    "AIOKafkaAdminClient": "request_timeout_ms",
    "connect": "timeout",  # asyncpg
}
# Who the bare names belong to; `Client` and `connect` are too common to match alone.
OWNERS = {"AsyncClient": "httpx", "Client": "httpx", "connect": "asyncpg"}


def unbounded_calls(source: str, filename: str) -> list[str]:
    """``file:line Name(...)`` for each outbound client made without its timeout keyword."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner, name = func.value.id, func.attr
        elif isinstance(func, ast.Name):
            owner, name = None, func.id
        else:
            continue
        if name not in REQUIRED or (name in OWNERS and owner != OWNERS[name]):
            continue
        # **kwargs could carry it; none of the project's calls rely on that, so it counts as missing.
        if REQUIRED[name] not in {k.arg for k in node.keywords}:
            found.append(f"{filename}:{node.lineno} {name}(...) without {REQUIRED[name]}=")
    return found


def test_the_scan_finds_a_client_without_a_timeout() -> None:
    source = """
import httpx, asyncpg
from aiokafka import AIOKafkaConsumer
a = httpx.AsyncClient(base_url="http://x")
b = httpx.AsyncClient(base_url="http://x", timeout=5)
c = AIOKafkaConsumer("t", bootstrap_servers="k")
d = asyncpg.connect("postgresql://")
e = something.connect("unrelated")
"""
    assert [f.split(" ", 1)[1] for f in unbounded_calls(source, "x.py")] == [
        "AsyncClient(...) without timeout=",
        "AIOKafkaConsumer(...) without request_timeout_ms=",
        "connect(...) without timeout=",
    ]


def test_every_outbound_client_in_the_code_has_an_explicit_timeout() -> None:
    found: list[str] = []
    scanned = 0
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            scanned += 1
            found += unbounded_calls(path.read_text(), str(path.relative_to(ROOT)))
    assert scanned > 50
    assert found == []


def test_only_shared_db_makes_database_engines() -> None:
    # create_engine there applies the connect, statement, pool and busy timeouts.
    makers = [
        str(path.relative_to(ROOT))
        for package in SCANNED
        for path in (ROOT / package).rglob("*.py")
        if "create_async_engine(" in path.read_text()
    ]
    assert makers == ["shared/db.py"]


# --- a peer that never answers -------------------------------------------------------------


@asynccontextmanager
async def silent_peer() -> AsyncIterator[int]:
    """A TCP port on loopback that accepts connections and never sends a byte."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


GUARD_SECONDS = 30


async def _seconds_until_failure(call: Awaitable[object]) -> float:
    """How long the call took to fail on its own (the guard only keeps a broken test short)."""
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - each client fails in its own way
        await asyncio.wait_for(call, GUARD_SECONDS)
    elapsed = time.monotonic() - started
    assert elapsed < GUARD_SECONDS - 1, "the call did not give up by itself"
    return elapsed


async def test_kafka_request_timeout_bounds_producer_admin_and_consumer() -> None:
    async with silent_peer() as port:
        common = CommonSettings(kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_request_timeout_ms=1000)
        bus = kafka_bus(common, "timeout-test")
        assert (bus.request_timeout_ms, bus.session_timeout_ms) == (1000, 10_000)
        assert 0.9 <= await _seconds_until_failure(bus.start()) < 5
        assert 0.9 <= await _seconds_until_failure(bus.ensure_topics(["t"])) < 5
        consumer = bus.consumer("g", ["t"])
        assert 0.9 <= await _seconds_until_failure(consumer.start()) < 5
        await consumer.stop()

        slower = kafka_bus(common.model_copy(update={"kafka_request_timeout_ms": 2500}), "timeout-test")
        assert 2.4 <= await _seconds_until_failure(slower.start()) < 7


async def test_notify_dashboard_gives_up_on_a_silent_risk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec("notify")
    url = f"sqlite+aiosqlite:///{tmp_path}/notify.db"
    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    runtime = ServiceRuntime(spec, url, EmbeddedBus(tmp_path / "bus.db"), CommonSettings(data_dir=tmp_path))
    app = create_app(runtime, "t", manage_runtime=False)
    async with silent_peer() as port:
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_TIMEOUT_SECONDS", "0.5")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notify", headers={"Authorization": "Bearer t"}
        ) as client:
            started = time.monotonic()
            r = await client.get("/v1/dashboard/overview")
            assert time.monotonic() - started < 3
    assert (r.status_code, r.json()["code"]) == (503, "RISK_UNAVAILABLE"), r.text
    assert "ReadTimeout" in r.json()["detail"]


# --- databases -----------------------------------------------------------------------------


async def test_sqlite_busy_timeout_comes_from_the_settings(tmp_path: Path) -> None:
    common = CommonSettings(sqlite_busy_timeout_seconds=2.5)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db", timeouts=DbTimeouts.of(common))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 2500
    finally:
        await engine.dispose()


async def test_postgres_connect_timeout_and_pool_timeout_come_from_the_settings() -> None:
    common = CommonSettings(db_connect_timeout_seconds=1, db_statement_timeout_seconds=7.5, db_pool_timeout_seconds=4)
    async with silent_peer() as port:
        engine = create_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{port}/x", timeouts=DbTimeouts.of(common))
        try:
            assert engine.pool.timeout() == 4  # type: ignore[attr-defined]
            assert 0.9 <= await _seconds_until_failure(engine.connect().start()) < 4
        finally:
            await engine.dispose()
    # The statement timeout at work on a real server: tests/integration/test_db_timeouts.py.
    assert DbTimeouts.of(common).asyncpg_connect_args()["server_settings"] == {"statement_timeout": "7500"}
