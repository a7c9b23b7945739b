"""Request body size and per-client rate limits on a real service app (registry on SQLite)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from limits.aio.storage import MemoryStorage
from limits.errors import ConfigurationError
from pydantic import ValidationError

from shared.auth import add_credential
from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.ratelimit import open_storage
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from simulator.client import Api
from vcredit.services import load_spec

TOKEN = "unit-token"
PROBLEM = "application/problem+json"

Registry = Callable[..., Any]


@pytest.fixture
def registry(tmp_path: Path) -> Callable[..., Any]:
    """``async with registry(**settings) as client``: a registry app with those settings."""

    @asynccontextmanager
    async def start(token: str = TOKEN, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
        spec = load_spec("registry")
        url = f"sqlite+aiosqlite:///{tmp_path}/registry.db"
        await asyncio.to_thread(upgrade, spec.migrations_dir, url)
        common = CommonSettings(data_dir=tmp_path, **settings)
        runtime = ServiceRuntime(spec, url, EmbeddedBus(tmp_path / "bus.db"), common)
        app = create_app(runtime, TOKEN, manage_runtime=False)
        await runtime.start()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://registry",
                headers={"Authorization": f"Bearer {token}"},
            ) as client:
                yield client
        finally:
            await runtime.stop()

    return start


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


class Chunks:
    """A request body sent without Content-Length (chunked), counting what was pulled."""

    def __init__(self, data: bytes, size: int) -> None:
        self.parts = [data[i : i + size] for i in range(0, len(data), size)]
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.pulled += 1
            yield part


# --- body size ----------------------------------------------------------------------------


async def test_declared_body_over_the_limit_is_413_and_writes_nothing(registry: Registry) -> None:
    async with registry(max_body_bytes=1000) as client:
        r = await client.post("/v1/townships", json={"code": "T1", "name": "湖" * 400})
        body = assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
        assert "1000 bytes" in body["detail"]
        assert (await client.get("/v1/townships")).json() == []
        # The same request under the limit is an ordinary one.
        assert (await client.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})).status_code == 201


async def test_chunked_body_is_counted_as_it_streams_and_refused_midway(registry: Registry) -> None:
    async with registry(max_body_bytes=1000) as client:
        payload = b'{"code": "T1", "name": "' + b"x" * 20_000 + b'"}'
        chunks = Chunks(payload, 400)
        r = await client.post("/v1/townships", content=chunks, headers={"content-type": "application/json"})
        assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
        assert "content-length" not in r.request.headers
        # Refused on the chunk that crossed 1000 bytes, not after reading all 51.
        assert chunks.pulled == 3
        assert (await client.get("/v1/townships")).json() == []

        small = Chunks(b'{"code": "T2", ' + b" " * 600 + '"name": "湖滨镇"}'.encode(), 100)
        r = await client.post("/v1/townships", content=small, headers={"content-type": "application/json"})
        assert r.status_code == 201, r.text


async def test_the_sheet_import_has_its_own_larger_limit(registry: Registry) -> None:
    async with registry(max_body_bytes=1000, max_upload_bytes=4000) as client:
        url = "/v1/villages/V1/households/import?filename=v.csv"
        sheet = "姓名,身份证号\n".encode() + b"x" * 2000
        r = await client.post(url, content=sheet, headers={"content-type": "text/csv"})
        # Past the body limit, within the upload limit: the import reads it (and finds no village).
        assert r.status_code != 413, r.text
        assert r.json()["code"] != "PAYLOAD_TOO_LARGE"
        r = await client.post(url, content=sheet + b"x" * 3000, headers={"content-type": "text/csv"})
        assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
        chunks = Chunks(sheet + b"x" * 10_000, 1000)
        r = await client.post(url, content=chunks, headers={"content-type": "text/csv"})
        assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
        assert chunks.pulled == 5
        # The larger limit is that route's only: another village path is not an import.
        r = await client.post("/v1/villages", content=sheet, headers={"content-type": "application/json"})
        assert_problem(r, 413, "PAYLOAD_TOO_LARGE")


# --- rate limits --------------------------------------------------------------------------


async def _statuses(call: Callable[[], Awaitable[httpx.Response]], n: int) -> list[int]:
    return [(await call()).status_code for _ in range(n)]


async def test_each_client_is_limited_on_its_own_with_retry_after(registry: Registry, tmp_path: Path) -> None:
    other, _ = add_credential(tmp_path / "credentials.json", "bank-core", "api_key", ("bank",))
    async with registry(rate_limit="3/minute") as client:
        assert await _statuses(lambda: client.get("/v1/townships"), 3) == [200, 200, 200]
        r = await client.get("/v1/townships")
        body = assert_problem(r, 429, "RATE_LIMITED")
        assert "bootstrap" in body["detail"] and "3 per 1 minute" in body["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # Writes count too, and a refused one changes nothing.
        r = await client.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})
        assert_problem(r, 429, "RATE_LIMITED")

        as_bank = {"Authorization": f"Bearer {other}"}
        assert await _statuses(lambda: client.get("/v1/townships", headers=as_bank), 4) == [200, 200, 200, 429]
        assert (await client.get("/v1/townships", headers=as_bank)).json()["code"] == "RATE_LIMITED"

        # Probes are never limited, and a request without a token is refused before counting.
        assert await _statuses(lambda: client.get("/healthz"), 10) == [200] * 10
        assert await _statuses(lambda: client.get("/readyz"), 3) == [200] * 3
        assert (await client.get("/v1/townships", headers={"Authorization": ""})).status_code == 401


async def test_the_window_moves_and_several_limits_apply_together(registry: Registry) -> None:
    async with registry(rate_limit="100/minute;2/second") as client:
        assert await _statuses(lambda: client.get("/v1/townships"), 3) == [200, 200, 429]
        r = await client.get("/v1/townships")
        assert "2 per 1 second" in r.json()["detail"] and r.headers["retry-after"] == "1"
        await asyncio.sleep(1.05)
        assert (await client.get("/v1/townships")).status_code == 200


async def test_the_default_limit_does_not_stop_a_busy_client(registry: Registry) -> None:
    async with registry() as client:
        started = time.monotonic()
        statuses = await _statuses(lambda: client.get("/v1/townships"), 300)
        assert statuses == [200] * 300, f"{statuses.count(429)} refused in {time.monotonic() - started:.1f}s"


def test_rate_limit_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CommonSettings().rate_limit == "1000/second"
    monkeypatch.setenv("VCREDIT_RATE_LIMIT", "lots")
    with pytest.raises(ValidationError, match="rate_limit"):
        CommonSettings()
    monkeypatch.setenv("VCREDIT_RATE_LIMIT", "600/minute;20/second")
    assert CommonSettings().rate_limit == "600/minute;20/second"


def test_storage_is_async_memory_by_default_and_redis_calls_are_bounded() -> None:
    assert isinstance(open_storage("memory://", 1.0), MemoryStorage)
    assert isinstance(open_storage("async+memory://", 1.0), MemoryStorage)
    with pytest.raises(ConfigurationError):
        open_storage("nosuch://host", 1.0)
    with pytest.raises(ConfigurationError):
        open_storage("localhost:6379", 1.0)
    redis = open_storage("redis://127.0.0.1:1/0", 0.25)
    pool = redis.bridge.storage.connection_pool  # type: ignore[attr-defined]
    assert pool.connection_kwargs["socket_timeout"] == 0.25
    assert pool.connection_kwargs["socket_connect_timeout"] == 0.25


async def test_an_unreachable_shared_storage_lets_requests_through(registry: Registry) -> None:
    # Port 1 on loopback refuses at once: the limiter's outage is not the service's outage.
    async with registry(rate_limit="1/minute", rate_limit_storage="redis://127.0.0.1:1/0") as client:
        assert await _statuses(lambda: client.get("/v1/townships"), 3) == [200, 200, 200]


async def test_over_a_real_socket_chunked_and_declared_bodies_are_refused(tmp_path: Path) -> None:
    """The same through uvicorn as `vcredit up` serves it: a chunked body, and a declared
    Content-Length over the limit whose body is never read."""
    spec = load_spec("registry")
    url = f"sqlite+aiosqlite:///{tmp_path}/registry.db"
    await asyncio.to_thread(upgrade, spec.migrations_dir, url)
    runtime = ServiceRuntime(spec, url, EmbeddedBus(tmp_path / "bus.db"), CommonSettings(max_body_bytes=1000))
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime, TOKEN), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as client:
            chunks = Chunks(b'{"code": "T1", "name": "' + b"x" * 50_000 + b'"}', 500)
            r = await client.post("/v1/townships", content=chunks, headers={"content-type": "application/json"})
            assert r.request.headers["transfer-encoding"] == "chunked"
            assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
            r = await client.post("/v1/townships", content=b"{}" * 1000, headers={"content-type": "application/json"})
            assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
            assert (await client.get("/v1/townships")).json() == []
            r = await client.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})
            assert r.status_code == 201, r.text
    finally:
        server.should_exit = True
        await task


async def test_the_simulator_waits_out_a_rate_limit(registry: Registry) -> None:
    async with registry(rate_limit="2/second") as client:
        api = Api({"registry": "http://registry"}, TOKEN)
        await api.aclose()
        api._client = client  # the same Api, over the in-process app
        started = time.monotonic()
        for _ in range(5):
            assert await api.get("registry", "/v1/townships") == []
        assert api.calls.retries >= 1
        # It waited as told (Retry-After: 1) instead of failing or hammering.
        assert time.monotonic() - started >= 1
