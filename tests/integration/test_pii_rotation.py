"""PII key rotation (issue 9) on both backends: rows written under key A stay readable and
findable once B is current and A retired, `vcredit pii rotate` moves them to B (resumably,
while the services run), and after A is dropped everything still decrypts and matches."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.notify.models import Subscription
from services.registry.models import Person
from shared.db import create_engine, create_sessionmaker
from shared.pii import PiiCipher, key_id_of
from tests.conftest import Infra
from tests.support.system import System, resident_id
from vcredit.pii_rotation import Rotation, encrypted_columns, rotate_column

ROOT = Path(__file__).resolve().parents[2]
TOWNSHIP, VILLAGE = "410102001", "410102001001"
SECRET = "webhook-secret-0123456789"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def head(n: int) -> str:
    return resident_id(n)


def member(n: int) -> str:
    return resident_id(n, birth="19900505")


def household(n: int) -> dict[str, Any]:
    return {
        "id_number": head(n),
        "name": f"户主{n}",
        "village_code": VILLAGE,
        "members": [{"name": f"配偶{n}", "relation": "配偶", "id_number": member(n)}],
    }


def sheet(numbers: list[int]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["身份证号", "姓名", "贫困户"])
    writer.writeheader()
    writer.writerows({"身份证号": head(n), "姓名": f"户主{n}", "贫困户": "否"} for n in numbers)
    return out.getvalue().encode()


async def check_reads(client: httpx.AsyncClient, registered: dict[int, str]) -> None:
    """Every person is found by ID number, and registering any of them again is refused."""
    for n, household_id in registered.items():
        for number in (head(n), member(n)):
            r = await client.get("/v1/households", params={"id_number": number})
            assert [h["household_id"] for h in r.json()["items"]] == [household_id], (n, number)
        again = await client.post("/v1/households", json=household(n))
        assert (again.status_code, again.json()["code"]) == (409, "ID_NUMBER_REGISTERED"), n
        member_as_head = await client.post(
            "/v1/households", json={**household(n), "id_number": member(n), "members": []}
        )
        assert member_as_head.status_code == 409, n
    imported = await client.post(
        f"/v1/villages/{VILLAGE}/households/import", content=sheet(list(registered)), params={"filename": "东村.csv"}
    )
    report = imported.json()
    assert (report["registered"], report["failed"]) == (0, 0), report
    assert report["updated"] + report["unchanged"] == len(registered)


async def persons(url: str) -> list[Person]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(Person)))
    finally:
        await engine.dispose()


async def subscriptions(url: str) -> list[Subscription]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(Subscription)))
    finally:
        await engine.dispose()


async def key_ids(urls: dict[str, str]) -> tuple[list[str], list[str]]:
    """The key id of each stored person's ID number and each webhook secret."""
    people, subs = await persons(urls["registry"]), await subscriptions(urls["notify"])
    return [p.id_encrypted.partition(":")[0] for p in people], [s.secret_encrypted.partition(":")[0] for s in subs]


async def vcredit_pii(urls: dict[str, str], tmp: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VCREDIT_")}
    clean |= {
        "VCREDIT_DATA_DIR": str(tmp),
        "VCREDIT_REGISTRY_DATABASE_URL": urls["registry"],
        "VCREDIT_NOTIFY_DATABASE_URL": urls["notify"],
        "PYTHONPATH": str(ROOT),
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vcredit",
        "pii",
        *args,
        env=clean,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


class Crash(Exception):
    pass


async def test_rotate_from_a_to_b_while_reads_and_lookups_keep_working(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The subscription's receiver is on loopback, which webhooks reach only when listed.
    monkeypatch.setenv("VCREDIT_NOTIFY_WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.0/8"]')
    a, b = os.urandom(32), os.urandom(32)
    a_id, b_id = key_id_of(a), key_id_of(b)
    services = ["registry", "notify"]

    # 1. Key A: households with a member each, and a webhook subscription.
    async with System(infra, services, pii_key=b64(a)) as system:
        client = system["registry"]
        assert (await client.post("/v1/townships", json={"code": TOWNSHIP, "name": "城关镇"})).status_code == 201
        village = {"code": VILLAGE, "name": "东村", "township_code": TOWNSHIP}
        assert (await client.post("/v1/villages", json=village)).status_code == 201
        registered = {}
        for n in range(1, 8):
            r = await client.post("/v1/households", json=household(n))
            assert r.status_code == 201, r.text
            registered[n] = r.json()["household_id"]
        r = await system["notify"].post(
            "/v1/subscriptions",
            json={"url": "http://127.0.0.1:9/hook", "events": ["registry.household.registered"], "secret": SECRET},
        )
        assert r.status_code == 201, r.text
        urls = {name: runtime.database_url for name, runtime in system.runtimes.items()}
    assert await key_ids(urls) == ([a_id] * 14, [a_id])
    # The setup the test relies on: B alone does not find A's rows.
    assert PiiCipher(b).lookup_hash(head(1)) not in {p.id_hash for p in await persons(urls["registry"])}

    # 2. B current, A retired: A's rows are read and found; new rows go under B.
    ring = {"VCREDIT_PII_KEY": b64(b), "VCREDIT_PII_RETIRED_KEYS": json.dumps([b64(a)])}
    async with System(infra, services, database_urls=urls, pii_key=b64(b), pii_retired_keys=[b64(a)]) as system:
        client = system["registry"]
        await check_reads(client, registered)
        r = await client.post("/v1/households", json=household(8))
        assert r.status_code == 201, r.text
        registered[8] = r.json()["household_id"]
        persons_ids, _ = await key_ids(urls)
        assert Counter(persons_ids) == {b_id: 2, a_id: 14}

        # A rotation that dies after its first batch of 3 leaves a mix; both halves are read.
        engine = create_engine(urls["registry"])
        try:

            def crash(progress: Rotation) -> None:
                raise Crash(progress.rewritten)

            persons_column = next(c for c in encrypted_columns() if c.table.name == "persons")
            try:
                await rotate_column(
                    create_sessionmaker(engine), PiiCipher(b, [a]), persons_column, batch_size=3, on_batch=crash
                )
            except Crash as stopped:
                assert stopped.args == (3,)
        finally:
            await engine.dispose()
        persons_ids, _ = await key_ids(urls)
        assert Counter(persons_ids) == {b_id: 5, a_id: 11}
        await check_reads(client, registered)

        # `vcredit pii status` counts, `rotate` carries on where the crash stopped, while the
        # services run; a second rotate has nothing left to do.
        code, out = await vcredit_pii(urls, infra.tmp, ring, "status")
        assert code != 0 and f"{a_id} 11" in out and f"{b_id} 5 (current)" in out, out
        code, out = await vcredit_pii(urls, infra.tmp, ring, "rotate", "--batch-size", "4")
        assert code == 0, out
        assert f"registry.persons.id_encrypted: 11 rewritten, 0 unreadable; rows by key: {b_id} 16 (current)" in out
        assert f"notify.subscriptions.secret_encrypted: 1 rewritten, 0 unreadable; rows by key: {b_id} 1" in out
        assert "retired keys may be removed" in out
        code, again = await vcredit_pii(urls, infra.tmp, ring, "rotate")
        assert code == 0 and "registry.persons.id_encrypted: 0 rewritten" in again, again
        await check_reads(client, registered)

    # 3. A dropped: everything decrypts and is found under B alone.
    assert await key_ids(urls) == ([b_id] * 16, [b_id])
    people = await persons(urls["registry"])
    only_b = PiiCipher(b)
    assert {only_b.decrypt(p.id_encrypted) for p in people} == {f(n) for n in registered for f in (head, member)}
    assert all(p.id_hash == only_b.lookup_hash(only_b.decrypt(p.id_encrypted)) for p in people)
    assert [only_b.decrypt(s.secret_encrypted) for s in await subscriptions(urls["notify"])] == [SECRET]
    async with System(infra, services, database_urls=urls, pii_key=b64(b)) as system:
        await check_reads(system["registry"], registered)
    code, out = await vcredit_pii(urls, infra.tmp, {"VCREDIT_PII_KEY": b64(b)}, "status")
    assert code == 0 and "every row is under the current key" in out, out

    # Dropping A before the rotation had finished is what `status` exists to catch.
    code, out = await vcredit_pii(urls, infra.tmp, {"VCREDIT_PII_KEY": b64(a)}, "status")
    assert code != 0 and f"keys {b_id} are not configured" in out, out
