"""A running system's first loans, made through the services' APIs as a township would: a
village, households registered and rated, the public notice's week closed, a credit line and
a loan for each household. The setup of tests/e2e/test_replication.py.

(tests/e2e/test_faults.py has its own, larger setup with a household counter it checks
registrations against.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.support.running_system import RunningSystem
from tests.support.system import resident_id
from vcredit.cluster import eventually

PRINCIPAL = "50000.00"
PROFILE = {
    "head_party_member": True,
    "head_healthy": True,
    "income_project": True,
    "certificates": ["land_contract", "homestead"],
    "family_harmony": True,
    "commercial_insurance": True,
}
NOTICE_DAYS = 7  # the public notice's week (DOMAIN.md) before a rating becomes a credit line


async def until_answered(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], *, seconds: float
) -> httpx.Response:
    """POST with one Idempotency-Key, retried while the service answers 5xx or not at all."""
    key = str(uuid.uuid4())
    deadline = time.monotonic() + seconds
    while True:
        try:
            r = await client.post(path, json=body, headers={"Idempotency-Key": key}, timeout=120)
            if r.status_code < 500:
                return r
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"POST {path} unanswered for {seconds:g}s"
        await asyncio.sleep(0.5)


async def lend(
    cluster: RunningSystem,
    start: date,
    *,
    township: str,
    village: str,
    households: int,
    seconds: float,
    first: int = 1,
) -> list[str]:
    """``households`` households of one village rated, noticed and lent to; the loans' ids.
    Their identity numbers are the ``first`` and the following of ``resident_id``."""
    registry, scoring, loans = cluster.client("registry"), cluster.client("scoring"), cluster.client("loans")
    r = await registry.post("/v1/townships", json={"code": township, "name": "河口镇"})
    assert r.status_code == 201, r.text
    r = await registry.post("/v1/villages", json={"code": village, "name": "上河村", "township_code": township})
    assert r.status_code == 201, r.text
    ids = []
    for n in range(first, first + households):
        body = {
            "id_number": resident_id(n),
            "name": f"农户{n}",
            "village_code": village,
            "poor_household": n % 2 == 0,
            "profile": PROFILE,
        }
        r = await until_answered(registry, "/v1/households", body, seconds=seconds)
        assert r.status_code == 201, r.text
        ids.append(str(r.json()["household_id"]))
    for household in ids:
        await eventually(
            lambda h=household: scoring.get(f"/v1/households/{h}/rating"),  # type: ignore[misc]
            lambda r: r.status_code == 200 and r.json()["status"] == "pending_notice",
            what=f"{household}'s rating",
            seconds=seconds,
        )
    r = await until_answered(loans, "/v1/cob", {"date": str(start + timedelta(days=NOTICE_DAYS))}, seconds=seconds)
    assert r.status_code == 200, r.text
    made = []
    for household in ids:
        r = await eventually(
            lambda h=household: loans.post("/v1/credit-lines", json={"household_id": h}),  # type: ignore[misc]
            lambda r: r.status_code == 201,
            what=f"a credit line for {household}",
            seconds=seconds,
        )
        body = {"credit_line_id": r.json()["credit_line_id"], "amount": PRINCIPAL, "term_months": 12}
        r = await until_answered(loans, "/v1/loans", body, seconds=seconds)
        assert r.status_code == 201, r.text
        made.append(str(r.json()["loan_id"]))
    return made
