"""A Python client generated from a service's OpenAPI with openapi-python-client reads that
service's real error answers (issue 22: before, every error crashed it with
``ValueError: dictionary update sequence element #0 ...``, FastAPI's HTTPValidationError
being declared where a problem with a string ``detail`` was sent), and its timestamps as
aware UTC datetimes."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from shared.bus.embedded import EmbeddedBus
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, create_app
from shared.settings import CommonSettings
from vcredit.openapi_documents import DOCS_DIR
from vcredit.services import load_spec

TOKEN = "client-token"
PACKAGE = "vcredit_registry_client"


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client generated from the committed registry document (kept equal to the served
    one by tests/unit/project/test_openapi_contract.py)."""
    generator = shutil.which("openapi-python-client")
    if generator is None:
        pytest.fail("openapi-python-client is not installed: pip install 'vcredit[test]'")
    out = tmp_path_factory.mktemp("client")
    config = out / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\nproject_name_override: vcredit-registry-client\n")
    result = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(DOCS_DIR / "registry.json"),
            "--output-path",
            str(out / PACKAGE),
            "--config",
            str(config),
            "--meta",
            "none",
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The sheet import (text/csv, xlsx bodies) is the one operation it cannot generate.
    warnings = result.stdout.split("Warning(s) encountered", 1)[-1]
    assert "problem" not in warnings.lower() and warnings.count("Endpoint will not be generated") <= 1, warnings
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


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
    ) as http:
        yield http
    await runtime.stop()


def _client(package: ModuleType, http: httpx.AsyncClient) -> Any:
    client = package.AuthenticatedClient(base_url="http://registry", token=TOKEN)
    client.set_async_httpx_client(http)
    return client


def _operation(package: ModuleType, name: str) -> Any:
    for module in ("hierarchy", "households", "default"):
        try:
            return importlib.import_module(f"{PACKAGE}.api.{module}.{name}")
        except ModuleNotFoundError:
            continue
    raise AssertionError(f"no generated operation {name}")


async def test_the_generated_client_reads_real_problems_and_timestamps(
    client_package: ModuleType, registry: httpx.AsyncClient
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    client = _client(client_package, registry)
    create = _operation(client_package, "create_township_v1_townships_post")
    body = models.TownshipIn(code="410100001", name="湖滨镇")

    first = await create.asyncio_detailed(client=client, body=body, idempotency_key="first-try")
    assert first.status_code == 201, first.content
    assert first.parsed.code == "410100001"

    # 409 DUPLICATE_CODE, sent as application/problem+json: parsed as a Problem.
    again = await create.asyncio_detailed(client=client, body=body)
    assert again.status_code == 409
    assert isinstance(again.parsed, models.Problem)
    assert again.parsed.code == "DUPLICATE_CODE" and again.parsed.status == 409
    assert isinstance(again.parsed.detail, str) and again.parsed.instance == "/v1/townships"

    # 422 VALIDATION_FAILED with its extension member ``errors``.
    invalid = await create.asyncio_detailed(client=client, body=models.TownshipIn(code="no spaces", name="x"))
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.Problem)
    assert invalid.parsed.code == "VALIDATION_FAILED"
    assert [e.field for e in invalid.parsed.errors] == ["code"]

    # An Idempotency-Key over the documented maximum: the same Problem, naming the header.
    too_long = await create.asyncio_detailed(client=client, body=body, idempotency_key="k" * 256)
    assert too_long.status_code == 422 and too_long.parsed.field == "Idempotency-Key"

    # A household's created_at reads as an aware UTC datetime (it was naive: no zone at all).
    village = models.VillageIn(code="410100001001", name="东村", township_code="410100001")
    assert (
        await _operation(client_package, "create_village_v1_villages_post").asyncio_detailed(
            client=client, body=village
        )
    ).status_code == 201
    head = "410102199001011234"
    household = models.HouseholdIn(id_number=head, name="张三", village_code="410100001001")
    registered = await _operation(client_package, "create_household_v1_households_post").asyncio_detailed(
        client=client, body=household
    )
    assert registered.status_code == 201, registered.content
    assert registered.parsed.created_at.tzinfo is not None
    assert registered.parsed.created_at.utcoffset() == UTC.utcoffset(None)
    assert registered.content.decode().count('Z"') >= 1

    # 409 ID_NUMBER_REGISTERED (API.md), parsed as a Problem too.
    twice = await _operation(client_package, "create_household_v1_households_post").asyncio_detailed(
        client=client, body=household
    )
    assert twice.status_code == 409 and twice.parsed.code == "ID_NUMBER_REGISTERED"
