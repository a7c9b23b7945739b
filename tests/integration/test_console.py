"""The government console's data (issue 26 items 1-3) on both backends: a small district made
through the services' APIs (a village over 3% frozen by risk, a loss written off and split, a
village frozen by hand with a reason, two households registered and rated), then notify's
/v1/console endpoints read with a government key, each figure compared with its source
service's API read directly with the same key. The drill-down's colours follow the band rule;
the village page shows its decisions with reason and principal, its borrowers masked (an
audited read); the public reads the published figures and the drill-down but not the rest; a
source that is down is a 503 naming it; a role without the scope is a 403."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from decimal import Decimal as D

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.notify.domain.console import band
from shared.auth import add_credential
from tests.conftest import Infra
from tests.support.console import BY_HAND, CALM, REASON, RED, START, TOWNSHIP, Keys, build_district, direct_figures
from tests.support.http_server import serve
from tests.support.system import System


@pytest.fixture
async def system(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[System, Keys]]:
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    keys: Keys = {}
    for role in ("government", "insurer", "public"):
        token, _ = add_credential(credentials, f"as-{role}", "api_key", (role,))
        keys[role] = {"Authorization": f"Bearer {token}"}
    services = ["registry", "scoring", "loans", "risk", "notify"]
    async with System(infra, services, credentials_file=credentials, start_date=START) as s, AsyncExitStack() as stack:
        for name in ("registry", "scoring", "loans", "risk"):
            url = await stack.enter_async_context(serve(s.apps[name]))
            monkeypatch.setenv(f"VCREDIT_NOTIFY_{name.upper()}_URL", url)
        yield s, keys


@pytest.mark.integration
async def test_console_figures_equal_their_sources(
    system: tuple[System, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, keys = system
    gov = keys["government"]
    risk_url = os.environ["VCREDIT_NOTIFY_RISK_URL"]
    await build_district(s, keys)
    notify = s["notify"]

    # --- the overview: every figure is its source's --------------------------------------
    r = await notify.get("/v1/console/overview", headers=gov)
    assert r.status_code == 200, r.text
    overview = r.json()
    direct = await direct_figures(s, gov)
    assert overview["business_date"] == direct["business_date"]
    assert {k: f["value"] for k, f in overview["figures"].items()} == direct["figures"]
    assert all(f["link"].startswith("#") and f["source"] for f in overview["figures"].values())
    figures = direct["figures"]
    # The district as built: 2 households registered and rated; 东村 and 南村 frozen, the
    # township halted (2 of 3 villages frozen... by the ratio: 1 of 3 over, 33% >= 30%); one
    # loan of 12,000.00 lost, 30% of it the government's (the fund's).
    assert (figures["households_registered"], figures["households_rated"]) == (2, 2)
    assert (figures["villages_frozen"], figures["townships_halted"], figures["loans_outstanding"]) == (2, 1, 1)
    assert figures["losses_loans"] == 1 and D(figures["losses_total"]) >= D("12000.00")
    assert D(figures["losses_government"]) > 0 and D(figures["losses_insurer"]) > D(figures["losses_bank"]) > 0
    assert figures["npl_threshold"] == "0.0300"

    # --- the township drill-down: the bands follow the rule -------------------------------
    r = await notify.get(f"/v1/console/townships/{TOWNSHIP}", headers=gov)
    assert r.status_code == 200, r.text
    township = r.json()
    assert township["bands"] == {"threshold": "0.0300", "green_at_most": "0.0150"}
    rows = {v["code"]: v for v in township["villages"]}
    risk_villages = {
        v["code"]: v
        for v in (await s["risk"].get("/v1/villages", params={"township_code": TOWNSHIP}, headers=gov)).json()
    }
    assert set(rows) == set(risk_villages) == {RED, CALM, BY_HAND}
    for code, row in rows.items():
        assert (row["npl_ratio"], row["frozen"]) == (risk_villages[code]["npl_ratio"], risk_villages[code]["frozen"])
        assert row["band"] == band(D(row["npl_ratio"]), D("0.03"), D("0.5"))
        assert row["township_halted"] is True
    assert (rows[RED]["band"], rows[CALM]["band"], rows[BY_HAND]["band"]) == ("red", "green", "green")
    assert rows[BY_HAND]["frozen"] and rows[BY_HAND]["override_reason"] == REASON
    # The bands are configuration: with green up to the whole threshold nothing changes here
    # but the published bound.
    monkeypatch.setenv("VCREDIT_NOTIFY_CONSOLE_GREEN_FRACTION", "1")
    r = await notify.get(f"/v1/console/townships/{TOWNSHIP}", headers=gov)
    assert r.json()["bands"]["green_at_most"] == "0.0300"
    monkeypatch.delenv("VCREDIT_NOTIFY_CONSOLE_GREEN_FRACTION")

    # --- the village pages: trend with the line, decisions with reason and principal, masked borrowers
    r = await notify.get(f"/v1/console/villages/{RED}", headers=gov)
    assert r.status_code == 200, r.text
    red = r.json()
    assert red["village"]["band"] == "red" and red["trend"]["threshold"] == "0.0300"
    history = (await s["risk"].get(f"/v1/villages/{RED}/history", headers=gov)).json()
    assert red["trend"]["days"] == history
    decisions = (await s["risk"].get("/v1/decisions", params={"code": RED}, headers=gov)).json()
    assert [(d["kind"], d["manual"], d["reason"], d["decided_by"]) for d in red["decisions"]] == [
        (d["kind"], d["manual"], d["reason"], d["decided_by"]) for d in decisions
    ]
    assert red["decisions"][-1]["kind"] == "village_frozen" and red["decisions"][-1]["manual"] is False
    assert red["township"] == {"code": TOWNSHIP, "name": "柳镇", "halted": True}
    r = await notify.get(f"/v1/console/villages/{RED}/borrowers", headers=gov)
    assert r.status_code == 200, r.text
    borrowers = r.json()
    assert sorted(b["status"] for b in borrowers) == ["active", "written_off"]
    assert all("****" in b["subject"] and b["subject_kind"] == "household" for b in borrowers)
    active = next(b for b in borrowers if b["status"] == "active")
    assert active["non_performing"] is True and active["classification"] != "normal"
    assert red["figures"]["loans_outstanding"] == 1
    assert "subject_id" not in str(borrowers) and "borrowers" not in red
    # The borrowers are an audited read: no purpose, no list.
    r = await notify.get(f"/v1/console/villages/{RED}/borrowers", headers=gov | {"X-Query-Purpose": " "})
    assert (r.status_code, r.json()["code"]) == (422, "QUERY_PURPOSE_REQUIRED"), r.text

    r = await notify.get(f"/v1/console/villages/{BY_HAND}", headers=gov)
    assert r.status_code == 200, r.text
    (manual,) = r.json()["decisions"]
    assert (manual["kind"], manual["manual"], manual["reason"], manual["decided_by"]) == (
        "village_frozen",
        True,
        REASON,
        "as-government",
    )
    calm = (await notify.get(f"/v1/console/villages/{CALM}", headers=gov)).json()
    assert calm["figures"]["households_registered"] == 2
    assert (await notify.get(f"/v1/console/villages/{CALM}/borrowers", headers=gov)).json() == []

    # --- the decision log and the year's titles -------------------------------------------
    r = await notify.get("/v1/console/decisions", headers=gov)
    assert r.status_code == 200, r.text
    log = r.json()
    assert log == [
        {k: d[k] for k in ("kind", "code", "manual", "reason", "decided_by", "business_date", "decided_at", "figures")}
        for d in (await s["risk"].get("/v1/decisions", params={"limit": 500}, headers=gov)).json()
    ]
    assert {(d["code"], d["manual"]) for d in log if d["kind"] == "village_frozen"} >= {(RED, False), (BY_HAND, True)}
    # Paged as risk pages it: the newest alone, then the rest.
    first = (await notify.get("/v1/console/decisions", params={"limit": 1}, headers=gov)).json()
    rest = (await notify.get("/v1/console/decisions", params={"offset": 1}, headers=gov)).json()
    assert first + rest == log and len(first) == 1
    r = await notify.get("/v1/console/titles", params={"year": 2026}, headers=gov)
    assert r.status_code == 200, r.text
    assert r.json()["year"] == 2026 and set(r.json()["titles"]) == {
        "credit_village",
        "credit_township",
        "credit_household",
        "credit_community",
    }

    # --- scopes: the public reads the aggregates, not the overview or the borrowers --------
    for path in ("/v1/console/overview", f"/v1/console/villages/{RED}/borrowers"):
        for role in ("public", "insurer"):
            r = await notify.get(path, headers=keys[role])
            assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN"), (role, path, r.text)
    for path in (
        f"/v1/console/townships/{TOWNSHIP}",
        f"/v1/console/villages/{RED}",
        "/v1/console/decisions",
        "/v1/console/titles",
    ):
        assert (await notify.get(path, headers=keys["public"])).status_code == 200, path
    # The public view's overview: the published figures, each the government's same figure,
    # and nothing of losses or subsidies.
    r = await notify.get("/v1/console/public", headers=keys["public"])
    assert r.status_code == 200, r.text
    published = r.json()["figures"]
    assert published == {k: f for k, f in overview["figures"].items() if k in published}
    assert len(published) == 17 and not any(k.startswith(("losses", "subsidy")) for k in published)
    r = await notify.get("/v1/console/me", headers=keys["public"])
    assert r.json()["roles"] == ["public"] and "events:read" not in r.json()["scopes"]
    assert "ledger:read" in (await notify.get("/v1/console/me", headers=gov)).json()["scopes"]

    # --- a source that refuses the caller: the caller's 403, not an outage -----------------
    refusing = FastAPI()

    @refusing.get("/v1/indicators")
    async def refuse() -> JSONResponse:
        return JSONResponse({"code": "FORBIDDEN"}, status_code=403)

    async with serve(refusing) as url:
        monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", url)
        r = await notify.get(f"/v1/console/townships/{TOWNSHIP}", headers=gov)
        assert (r.status_code, r.json()["code"]) == (403, "UPSTREAM_FORBIDDEN"), r.text
    monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", risk_url)

    # --- a source down: 503 naming it ------------------------------------------------------
    monkeypatch.setenv("VCREDIT_NOTIFY_LOANS_URL", "http://127.0.0.1:9")
    r = await notify.get("/v1/console/overview", headers=gov)
    assert (r.status_code, r.json()["code"]) == (503, "LOANS_UNAVAILABLE"), r.text
    r = await notify.get(f"/v1/console/villages/{RED}/borrowers", headers=gov)
    assert (r.status_code, r.json()["code"]) == (503, "LOANS_UNAVAILABLE"), r.text
    monkeypatch.setenv("VCREDIT_NOTIFY_RISK_URL", "http://127.0.0.1:9")
    r = await notify.get(f"/v1/console/townships/{TOWNSHIP}", headers=gov)
    assert (r.status_code, r.json()["code"]) == (503, "RISK_UNAVAILABLE"), r.text
