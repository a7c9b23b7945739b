"""Query audit (征信业管理条例 §18, §22) across registry, scoring and loans on both backends,
scoring and loans on real uvicorn servers so the registry gathers their logs over HTTP: every
read of a household's credit data needs X-Query-Purpose and leaves one row saying who, when,
what and why; the subject's log lists them newest first, page by page; a refused or
not-found read and listing the log leave none; an unreachable service is a 503, never a
partial log."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from shared.auth import add_credential
from tests.conftest import Infra
from tests.support.http_server import serve
from tests.support.system import System, resident_id
from tests.support.waiting import wait_until

TOWNSHIP, VILLAGE = "410102006", "410102006001"
START = date(2026, 4, 1)
PURPOSE = "贷前审查"
AA_PROFILE = {"head_party_member": True, "head_healthy": True, "income_project": True, "family_harmony": True}

Keys = dict[str, dict[str, str]]


@pytest.fixture
async def system(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[System, Keys]]:
    keys: Keys = {}
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    for name, roles, village in (
        ("hubin-bank", ("bank",), None),
        ("district-finance", ("government",), None),
        ("liushu-collector", ("collector",), VILLAGE),
        ("passer-by", ("public",), None),
    ):
        token, _ = add_credential(credentials, name, "api_key", roles, village)  # type: ignore[arg-type]
        keys[name] = {"Authorization": f"Bearer {token}", "X-Query-Purpose": quote(PURPOSE)}
    async with (
        System(infra, ["registry", "scoring", "loans"], credentials_file=credentials, start_date=START) as s,
        AsyncExitStack() as stack,
    ):
        monkeypatch.setenv("VCREDIT_REGISTRY_SCORING_URL", await stack.enter_async_context(serve(s.apps["scoring"])))
        monkeypatch.setenv("VCREDIT_REGISTRY_LOANS_URL", await stack.enter_async_context(serve(s.apps["loans"])))
        registry = s["registry"]
        assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "东岭乡"})).status_code == 201
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "柳树村", "township_code": TOWNSHIP})
        assert r.status_code == 201
        yield s, keys


async def _borrower(s: System, keys: Keys) -> tuple[str, str, str]:
    """A certified household with a credit line and a loan; nothing here is an audited read
    (the public notice list is published by design)."""
    body = {"id_number": resident_id(1), "name": "农户1", "village_code": VILLAGE, "profile": AA_PROFILE}
    r = await s["registry"].post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    household = r.json()["household_id"]

    async def noticed() -> bool:
        notices = (await s["scoring"].get(f"/v1/villages/{VILLAGE}/notices")).json()
        return any(n["subject_id"] == household for n in notices)

    await wait_until(noticed, what="the rating's public notice")
    r = await s["loans"].post("/v1/cob", json={"date": str(START + timedelta(days=7))})
    assert r.status_code == 200, r.text
    line: dict[str, Any] = {}

    async def line_opens() -> bool:
        r = await s["loans"].post("/v1/credit-lines", json={"household_id": household}, headers=keys["hubin-bank"])
        line.update(r.json())
        return r.status_code == 201

    await wait_until(line_opens, what="the certification to reach loans")
    r = await s["loans"].post(
        "/v1/loans",
        json={"credit_line_id": line["credit_line_id"], "amount": "10000.00", "term_months": 12},
        headers=keys["hubin-bank"],
    )
    assert r.status_code == 201, r.text
    return household, line["credit_line_id"], r.json()["loan_id"]


def _reads(household: str, line: str, loan: str) -> list[tuple[str, str, str, str]]:
    """Every audited read of this household: (service, path, endpoint template, resource id)."""
    return [
        ("registry", f"/v1/households/{household}", "GET /v1/households/{household_id}", household),
        ("registry", f"/v1/households/{household}/facts", "GET /v1/households/{household_id}/facts", household),
        ("registry", f"/v1/households?village_code={VILLAGE}", "GET /v1/households", household),
        ("scoring", f"/v1/households/{household}/rating", "GET /v1/households/{household_id}/rating", household),
        ("loans", f"/v1/credit-lines/{line}", "GET /v1/credit-lines/{credit_line_id}", line),
        ("loans", f"/v1/loans/{loan}", "GET /v1/loans/{loan_id}", loan),
    ]


async def _without_purpose(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    request = client.build_request("GET", path, headers=headers)
    del request.headers["X-Query-Purpose"]
    return await client.send(request)


async def _log(client: httpx.AsyncClient, household: str, headers: dict[str, str], **params: Any) -> Any:
    r = await client.get(f"/v1/households/{household}/queries", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_every_read_is_recorded_and_the_subject_sees_who_read_it(system: tuple[System, Keys]) -> None:
    s, keys = system
    registry, bank, government = s["registry"], keys["hubin-bank"], keys["district-finance"]
    household, line, loan = await _borrower(s, keys)
    reads = _reads(household, line, loan)
    assert (await _log(registry, household, government))["items"] == [], "registering and lending are no reads"

    for service, path, _, _ in reads:
        # Who may read at all is decided first: no scope, 403 whatever the purpose.
        r = await _without_purpose(s[service], path, keys["passer-by"])
        assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN"), path
        r = await _without_purpose(s[service], path, bank)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            422,
            "QUERY_PURPOSE_REQUIRED",
            "X-Query-Purpose",
        ), path
        assert r.headers["content-type"] == "application/problem+json"
        r = await s[service].get(path, headers={**bank, "X-Query-Purpose": "review%0Aforged%20line"})
        assert (r.status_code, r.json()["code"]) == (422, "QUERY_PURPOSE_INVALID"), path
    for service, path in (
        ("registry", "/v1/households/no-such-household"),
        ("scoring", "/v1/households/no-such-household/rating"),
        ("loans", "/v1/loans/no-such-loan"),
        ("loans", "/v1/credit-lines/no-such-line"),
    ):
        assert (await s[service].get(path, headers=bank)).status_code == 404, path
    r = await s["registry"].get(f"/v1/households/{household}", headers={**bank, "Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert (await _log(registry, household, government))["items"] == [], "refused and not-found reads disclose nothing"

    for service, path, _, _ in reads:
        r = await s[service].get(path, headers=bank)
        assert r.status_code == 200, (path, r.text)

    log = await _log(registry, household, government)
    assert log["next_after"] is None
    newest_first = list(reversed(reads))
    assert [(q["service"], q["endpoint"], q["resource_id"]) for q in log["items"]] == [
        (service, endpoint, resource) for service, _, endpoint, resource in newest_first
    ]
    assert {(q["principal"], tuple(q["roles"]), q["purpose"]) for q in log["items"]} == {
        ("hubin-bank", ("bank",), PURPOSE)
    }
    times = [q["queried_at"] for q in log["items"]]
    assert times == sorted(times, reverse=True)

    # Listing the log is no read of credit data; the same list again.
    assert (await _log(registry, household, government))["items"] == log["items"]
    # Each service lists its own rows.
    own = await _log(s["loans"], household, government)
    assert [q["resource_id"] for q in own["items"]] == [loan, line]
    assert (await _log(s["scoring"], household, government))["items"] == [
        q for q in log["items"] if q["service"] == "scoring"
    ]

    # Pages of 4, then 2, then 1 at a time: the same rows, each once, in the same order.
    for limit in (4, 2, 1):
        pages, after = [], None
        while True:
            page = await _log(registry, household, government, limit=limit, **({"after": after} if after else {}))
            assert len(page["items"]) <= limit
            pages.extend(page["items"])
            after = page["next_after"]
            if after is None:
                break
        assert pages == log["items"], limit
    r = await registry.get(f"/v1/households/{household}/queries", params={"after": "garbage"}, headers=government)
    assert (r.status_code, r.json()["code"]) == (422, "VALIDATION_FAILED")


async def test_who_may_list_the_log_and_an_unreachable_service(
    system: tuple[System, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, keys = system
    registry = s["registry"]
    body = {"id_number": resident_id(2), "name": "农户2", "village_code": VILLAGE, "profile": AA_PROFILE}
    household = (await registry.post("/v1/households", json=body)).json()["household_id"]
    r = await registry.get(f"/v1/households/{household}", headers=keys["liushu-collector"])
    assert r.status_code == 200

    for who in ("hubin-bank", "liushu-collector"):
        for client in (registry, s["scoring"], s["loans"]):
            r = await client.get(f"/v1/households/{household}/queries", headers=keys[who])
            assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN"), who
    r = await registry.get("/v1/households/no-such-household/queries", headers=keys["district-finance"])
    assert (r.status_code, r.json()["code"]) == (404, "HOUSEHOLD_NOT_FOUND")
    (row,) = (await _log(registry, household, keys["district-finance"]))["items"]
    assert (row["principal"], row["roles"], row["service"]) == ("liushu-collector", ["collector"], "registry")

    # The household itself (征信业管理条例 §17) asks who read its data, and only its own.
    token, _ = add_credential(s.common.credentials_path, "household-2", "api_key", ("subject",), household=household)
    subject = {"Authorization": f"Bearer {token}"}

    async def subject_admitted() -> bool:
        r = await registry.get(f"/v1/households/{household}/queries", headers=subject)
        return r.status_code == 200

    await wait_until(subject_admitted, what="the new credential to be read")
    log = await _log(registry, household, subject)
    assert [q["principal"] for q in log["items"]] == ["liushu-collector"]
    other = (await registry.post("/v1/households", json={**body, "id_number": resident_id(4)})).json()["household_id"]
    # Registry, which knows the households, answers another's as a missing one (issue 21);
    # scoring and loans refuse any household but the credential's own, existing or not.
    r = await registry.get(f"/v1/households/{other}/queries", headers=subject)
    assert (r.status_code, r.json()["code"]) == (404, "HOUSEHOLD_NOT_FOUND")
    for client in (s["scoring"], s["loans"]):
        r = await client.get(f"/v1/households/{other}/queries", headers=subject)
        assert (r.status_code, r.json()["code"]) == (403, "NOT_YOUR_HOUSEHOLD")

    # Nothing listens on a port just released: loans is unreachable.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("VCREDIT_REGISTRY_LOANS_URL", closed)
    r = await registry.get(f"/v1/households/{household}/queries", headers=keys["district-finance"])
    assert (r.status_code, r.json()["code"], r.json()["unavailable"]) == (503, "QUERY_LOG_UNAVAILABLE", ["loans"])
    assert r.headers["content-type"] == "application/problem+json"


async def test_business_reads_are_recorded_too(system: tuple[System, Keys]) -> None:
    s, keys = system
    registry = s["registry"]
    r = await registry.post(
        "/v1/businesses",
        json={
            "credit_code": "91350100M000100Y43",
            "name": "柳树村食用菌合作社",
            "kind": "cooperative",
            "village_code": VILLAGE,
        },
    )
    assert r.status_code == 201, r.text
    business = r.json()["business_id"]
    for path in (
        f"/v1/businesses/{business}",
        f"/v1/businesses/{business}/facts",
        f"/v1/businesses?village_code={VILLAGE}",
    ):
        r = await _without_purpose(registry, path, keys["hubin-bank"])
        assert (r.status_code, r.json()["code"]) == (422, "QUERY_PURPOSE_REQUIRED"), path
        assert (await registry.get(path, headers=keys["hubin-bank"])).status_code == 200, path
    r = await registry.get(f"/v1/businesses/{business}/queries", headers=keys["district-finance"])
    assert r.status_code == 200, r.text
    assert [q["endpoint"] for q in r.json()["items"]] == [
        "GET /v1/businesses",
        "GET /v1/businesses/{business_id}/facts",
        "GET /v1/businesses/{business_id}",
    ]


async def test_a_read_whose_audit_cannot_be_written_discloses_nothing(system: tuple[System, Keys]) -> None:
    s, keys = system
    body = {"id_number": resident_id(3), "name": "农户3", "village_code": VILLAGE, "profile": AA_PROFILE}
    household = (await s["registry"].post("/v1/households", json=body)).json()["household_id"]
    async with s.runtimes["registry"].engine.begin() as conn:
        await conn.execute(text("DROP TABLE query_log"))
    # As a real server answers: the error handler's 500, not the exception re-raised.
    transport = httpx.ASGITransport(app=s.apps["registry"], raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        r = await client.get(f"/v1/households/{household}", headers=keys["hubin-bank"])
    assert (r.status_code, r.json()["code"]) == (500, "INTERNAL_ERROR")
    assert "profile" not in r.json() and "农户3" not in r.text
