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
from datetime import date, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.notify.domain.console import band, losses_of_year
from shared.auth import add_credential
from tests.conftest import Infra
from tests.support.credit_lists import register_household
from tests.support.http_server import serve
from tests.support.system import System, certified_line
from tests.support.waiting import wait_until

TOWNSHIP = "410102021"
RED, CALM, BY_HAND = "410102021001", "410102021002", "410102021003"
START = date(2026, 1, 15)
REASON = "巡查发现集中逾期, 暂停新增"

Keys = dict[str, dict[str, str]]


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


async def _district(s: System, keys: Keys) -> None:
    registry, risk, loans = s["registry"], s["risk"], s["loans"]
    assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "柳镇"})).status_code == 201
    for code, name in ((RED, "东村"), (CALM, "西村"), (BY_HAND, "南村")):
        body = {"code": code, "name": name, "township_code": TOWNSHIP}
        assert (await registry.post("/v1/villages", json=body)).status_code == 201

    async def known() -> bool:
        return bool((await risk.get(f"/v1/townships/{TOWNSHIP}")).json().get("villages") == 3)

    await wait_until(known, what="the hierarchy to reach risk")
    for n, name in ((31, "赵一"), (32, "钱二")):
        await register_household(s, n, name, CALM)

    # Two borrowers in 东村 who never pay: both non-performing past day 90 (100% > 3%).
    drawn = []
    for _ in range(2):
        _, line = await certified_line(s, RED, TOWNSHIP)
        r = await loans.post(
            "/v1/loans",
            json={
                "credit_line_id": line,
                "amount": "12000.00",
                "term_months": 12,
                "repayment_method": "equal_principal",
            },
        )
        assert r.status_code == 201, r.text
        drawn.append(r.json())
    await certified_line(s, CALM, TOWNSHIP)  # a line, no loan
    first_due = date.fromisoformat(drawn[0]["schedule"][0]["due_on"])
    r = await loans.post("/v1/cob", json={"date": str(first_due + timedelta(days=91))})
    assert r.status_code == 200, r.text

    # 南村 frozen by hand at 0.00%, with the government's reason.
    r = await risk.post(
        f"/v1/villages/{BY_HAND}/freeze",
        json={"reason": REASON},
        headers=keys["government"] | {"Idempotency-Key": "console-freeze"},
    )
    assert r.status_code == 200, r.text

    # A year on, one of the two is written off: split 30/20/50; 东村 stays over 3% (the other).
    r = await loans.post("/v1/cob", json={"date": str(first_due + timedelta(days=361))})
    assert r.status_code == 200, r.text
    r = await loans.post(f"/v1/loans/{drawn[0]['loan_id']}/write-off")
    assert r.status_code == 201, r.text

    async def settled() -> bool:
        split = (await risk.get("/v1/losses")).json()
        village = (await risk.get(f"/v1/villages/{RED}")).json()
        rated = (await s["scoring"].get("/v1/statistics")).json()["households_rated"]
        return len(split) == 1 and village["frozen"] and rated == 2

    await wait_until(settled, what="the loss, the freeze and the ratings to reach risk and scoring")


async def _direct(s: System, gov: dict[str, str]) -> dict[str, Any]:
    """Each overview figure as its source answers it, read directly with the caller's key."""

    async def get(service: str, path: str, **params: Any) -> Any:
        r = await s[service].get(path, params=params, headers=gov)
        assert r.status_code == 200, r.text
        return r.json()

    today = date.fromisoformat((await get("loans", "/v1/business-date"))["business_date"])
    indicators = await get("risk", "/v1/indicators")
    portfolio = await get("loans", "/v1/portfolio")
    fund = await get("risk", "/v1/fund")
    losses = losses_of_year(await get("risk", "/v1/losses", limit=500), today.year)
    accounts = (await get("loans", "/v1/ledger/trial-balance"))["accounts"]
    claims = [
        c for c in await get("loans", "/v1/subsidy-claims") if date.fromisoformat(c["period_end"]).year == today.year
    ]
    scoring = await get("scoring", "/v1/statistics")
    figures: dict[str, Any] = {
        "households_registered": (await get("registry", "/v1/statistics"))["households"],
        "households_rated": scoring["households_rated"],
        "households_certified": scoring["households_certified"],
        "credit_household_coverage": indicators["district"]["coverage"],
        "coverage_points": indicators["district"]["coverage_points"],
        "credit_lines": portfolio["credit_lines"],
        "credit_limit": portfolio["credit_limit"],
        "loans_outstanding": portfolio["loans_outstanding"],
        "principal_outstanding": portfolio["principal_outstanding"],
        "district_npl_ratio": indicators["district"]["npl_ratio"],
        "npl_threshold": indicators["village_npl_threshold"],
        "villages_frozen": len(await get("risk", "/v1/villages", frozen="true")),
        "townships_halted": sum(t["halted"] for t in await get("risk", "/v1/townships")),
        "fund_balance": fund["balance"],
        "fund_capacity": fund["capacity"],
        "fund_used": fund["outstanding"],
        "fund_used_share": f"{(D(fund['outstanding']) / D(fund['capacity'])).quantize(D('0.0001')):.4f}",
        "losses_loans": losses.loans,
        "losses_total": f"{losses.loss:.2f}",
        "subsidy_accrued_unclaimed": accounts.get("subsidy_receivable", "0.00"),
        "subsidy_claimed_unpaid": accounts.get("subsidy_claimed", "0.00"),
        "subsidy_claims": len(claims),
        "subsidy_claims_claimed": f"{sum((D(c['claimed']) for c in claims), D('0')):.2f}",
        "subsidy_claims_paid": f"{sum((D(c['paid']) for c in claims), D('0')):.2f}",
    }
    for party in ("mutual_guarantee", "government", "bank", "insurer"):
        figures[f"losses_{party}"] = f"{losses.shares[party]:.2f}"
        figures[f"losses_{party}_recovered"] = f"{losses.recovered[party]:.2f}"
        figures[f"losses_{party}_net"] = f"{losses.net(party):.2f}"
    return {"business_date": str(today), "figures": figures}


@pytest.mark.integration
async def test_console_figures_equal_their_sources(
    system: tuple[System, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, keys = system
    gov = keys["government"]
    risk_url = os.environ["VCREDIT_NOTIFY_RISK_URL"]
    await _district(s, keys)
    notify = s["notify"]

    # --- the overview: every figure is its source's --------------------------------------
    r = await notify.get("/v1/console/overview", headers=gov)
    assert r.status_code == 200, r.text
    overview = r.json()
    direct = await _direct(s, gov)
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
