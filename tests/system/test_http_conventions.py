"""API.md conventions on a real service app (registry on SQLite): problem+json with stable
codes, bearer token, 422 naming the field with nothing written, idempotency keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.auth import add_credential
from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.services import load_spec

TOKEN = "unit-token"


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


async def test_health_and_openapi_need_no_token(registry: httpx.AsyncClient) -> None:
    bare = {"Authorization": ""}
    assert (await registry.get("/healthz", headers=bare)).json() == {"status": "ok"}
    ready = await registry.get("/readyz", headers=bare)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "bus": "ok"}
    paths = (await registry.get("/openapi.json", headers=bare)).json()["paths"]
    assert "/v1/townships" in paths and "/v1/villages" in paths


async def test_missing_or_wrong_token_is_401_problem(registry: httpx.AsyncClient) -> None:
    r = await registry.get("/v1/villages", headers={"Authorization": ""})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["code"] == "UNAUTHENTICATED"
    r = await registry.get("/v1/villages", headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN")


async def test_bad_input_is_422_naming_the_field_and_writes_nothing(registry: httpx.AsyncClient) -> None:
    r = await registry.post("/v1/townships", json={"code": "bad code!", "name": "x"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "VALIDATION_FAILED" and body["status"] == 422
    assert [e["field"] for e in body["errors"]] == ["code"]

    r = await registry.post("/v1/villages", json={"code": "V1", "name": "东村", "township_code": "NOPE"})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "UNKNOWN_TOWNSHIP", "township_code")
    assert (await registry.get("/v1/villages/V1")).status_code == 404
    assert (await registry.get("/v1/villages")).json() == []


async def test_duplicates_are_409_and_unknown_is_404(registry: httpx.AsyncClient) -> None:
    assert (await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})).status_code == 201
    r = await registry.post("/v1/townships", json={"code": "T1", "name": "别的"})
    assert (r.status_code, r.json()["code"]) == (409, "DUPLICATE_CODE")
    assert (await registry.get("/v1/townships/T1")).json() == {"code": "T1", "name": "湖滨镇", "former_names": []}
    r = await registry.get("/v1/townships/T9")
    assert (r.status_code, r.json()["code"]) == (404, "TOWNSHIP_NOT_FOUND")
    r = await registry.get("/v1/no-such-path")
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")


async def test_idempotency_key_replays_the_first_result_and_refuses_a_different_body(
    registry: httpx.AsyncClient,
) -> None:
    assert (await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})).status_code == 201
    key = {"Idempotency-Key": "abc-1"}
    village = {"code": "V1", "name": "东村", "township_code": "T1"}
    first = await registry.post("/v1/villages", json=village, headers=key)
    again = await registry.post("/v1/villages", json=village, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len((await registry.get("/v1/villages")).json()) == 1

    other = await registry.post("/v1/villages", json=village | {"code": "V2"}, headers=key)
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert [v["code"] for v in (await registry.get("/v1/villages")).json()] == ["V1"]

    # Without a key the same request is a new request (and here a duplicate).
    assert (await registry.post("/v1/villages", json=village)).json()["code"] == "DUPLICATE_CODE"


async def test_idempotency_keys_are_each_principals_own(registry: httpx.AsyncClient, tmp_path: Path) -> None:
    """Issue 21: a key another client already used must not hand this client the other's
    stored answer (nor refuse it as a reused key): each principal has its own keys."""
    credentials = tmp_path / "credentials.json"  # CommonSettings(data_dir=tmp_path)'s default
    key_a, _ = add_credential(credentials, "gov-a", "api_key", ("government",))
    key_b, _ = add_credential(credentials, "gov-b", "api_key", ("government",))
    as_a = {"Authorization": f"Bearer {key_a}", "Idempotency-Key": "shared-key"}
    as_b = {"Authorization": f"Bearer {key_b}", "Idempotency-Key": "shared-key"}

    first = await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"}, headers=as_a)
    assert (first.status_code, first.json()["code"]) == (201, "T1")
    theirs = await registry.post("/v1/townships", json={"code": "T2", "name": "河口镇"}, headers=as_b)
    assert (theirs.status_code, theirs.json()["code"]) == (201, "T2")
    assert "idempotent-replayed" not in theirs.headers
    # B's own key replays B's answer; A's still replays A's.
    b_again = await registry.post("/v1/townships", json={"code": "T2", "name": "河口镇"}, headers=as_b)
    a_again = await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"}, headers=as_a)
    assert (b_again.json(), b_again.headers["idempotent-replayed"]) == (theirs.json(), "true")
    assert (a_again.json(), a_again.headers["idempotent-replayed"]) == (first.json(), "true")
    townships = await registry.get("/v1/townships", headers={"Authorization": f"Bearer {key_a}"})
    assert [t["code"] for t in townships.json()] == ["T1", "T2"]
