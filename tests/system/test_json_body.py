"""Duplicate keys in JSON request bodies (issue 19, defect 5): refused once, in the shared
web layer, on every route of a real service app, before the idempotency key is looked at."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.bus.embedded import EmbeddedBus
from shared.jsonbody import duplicate_key_path
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.services import load_spec

TOKEN = "unit-token"
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"amount": "1.00", "amount": "99999.00"}', "amount"),
        ('{"a": 1, "b": 2, "a": 1}', "a"),  # the same value twice is refused too
        ('{"amount": "1.00", "am\\u006funt": "99999.00"}', "amount"),  # the same key, escaped
        ('{"profile": {"equipment": [{"value": "1"}, {"value": "1", "value": "2"}]}}', "profile.equipment.1.value"),
        ('[{"x": 1}, {"y": 1, "y": 2}]', "1.y"),
        ('{"outer": {"k": 1, "k": 2}, "outer": 3}', "outer"),
    ],
)
def test_a_key_twice_in_one_object_is_found_with_its_path(body: str, path: str) -> None:
    assert duplicate_key_path(body) == path
    assert duplicate_key_path(body.encode()) == path


@pytest.mark.parametrize(
    "body",
    [
        '{"amount": "1.00"}',
        '{"a": {"k": 1}, "b": {"k": 1}}',  # the same key in two objects is fine
        '{"Amount": 1, "amount": 2}',  # keys are case-sensitive
        '{"amount": "1.00", "amount": ',  # not JSON: FastAPI's to refuse
        "[1, 2, 3]",
        "\xff\xfe not utf",
    ],
)
def test_no_duplicate_or_not_json_is_none(body: str) -> None:
    assert duplicate_key_path(body) is None


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


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["code"], body["field"]) == ("VALIDATION_FAILED", field)
    assert [e["field"] for e in body["errors"]] == [field]
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "content_type",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "Application/JSON"},
        {"Content-Type": "application/merge-patch+json"},
        {},  # FastAPI parses a body without a Content-Type as JSON
    ],
)
async def test_duplicate_keys_are_422_and_nothing_is_created(
    registry: httpx.AsyncClient, content_type: dict[str, str]
) -> None:
    body = b'{"code": "T1", "name": "\xe6\xb9\x96\xe6\xbb\xa8\xe9\x95\x87", "code": "T2"}'
    r = await registry.post("/v1/townships", content=body, headers=content_type)
    _refused(r, "code")
    assert (await registry.get("/v1/townships")).json() == []


async def test_a_nested_duplicate_is_named_by_its_path(registry: httpx.AsyncClient) -> None:
    assert (await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})).status_code == 201
    assert (await registry.post("/v1/villages", json={"code": "V1", "name": "东村", "township_code": "T1"})).is_success
    body = (
        '{"id_number": "11010519491231002X", "name": "张三", "village_code": "V1",'
        ' "profile": {"homestead_house_value": "1.00", "homestead_house_value": "900000.00"}}'
    )
    _refused(await registry.post("/v1/households", content=body, headers=JSON), "profile.homestead_house_value")
    # Nothing was written: the same person registers now, once, and a second time is a 409.
    valid = {"id_number": "11010519491231002X", "name": "张三", "village_code": "V1"}
    assert (await registry.post("/v1/households", json=valid)).status_code == 201
    assert (await registry.post("/v1/households", json=valid)).json()["code"] == "ID_NUMBER_REGISTERED"


async def test_a_duplicate_key_is_refused_before_the_idempotency_key_replays(registry: httpx.AsyncClient) -> None:
    assert (await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})).status_code == 201
    key = {"Idempotency-Key": "dup-1", **JSON}
    first = await registry.post(
        "/v1/villages", content=json.dumps({"code": "V1", "name": "东村", "township_code": "T1"}), headers=key
    )
    assert first.status_code == 201
    # Parsed last-wins this is the first body exactly, so its hash matches: it must not replay.
    again = '{"code": "V9", "name": "东村", "township_code": "T1", "code": "V1"}'
    _refused(await registry.post("/v1/villages", content=again, headers=key), "code")
    # Nor may a new key create anything with it.
    _refused(await registry.post("/v1/villages", content=again, headers={"Idempotency-Key": "dup-2", **JSON}), "code")
    assert [v["code"] for v in (await registry.get("/v1/villages")).json()] == ["V1"]


async def test_bodies_without_duplicates_and_uploads_pass_untouched(registry: httpx.AsyncClient) -> None:
    assert (await registry.post("/v1/townships", json={"code": "T1", "name": "湖滨镇"})).status_code == 201
    # Invalid JSON is still FastAPI's usual 422, not swallowed.
    r = await registry.post("/v1/townships", content=b'{"code": ', headers=JSON)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_FAILED")
    assert (await registry.post("/v1/villages", json={"code": "V1", "name": "东村", "township_code": "T1"})).is_success
    sheet = "身份证号,姓名\n11010519491231002X,张三\n".encode()
    r = await registry.post("/v1/villages/V1/households/import", files={"file": ("s.csv", sheet, "text/csv")})
    assert r.status_code in (200, 201), r.text
    assert r.json()["registered"] == 1
