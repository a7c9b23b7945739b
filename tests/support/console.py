"""A small district for the government console's tests (issue 26), made through the services'
APIs: in 柳镇, 东村 over 3% (two loans never paid, one written off a year on and split), 南村
frozen by hand with a reason, 西村 with two households registered and rated and a credit line
but no loan; and each overview figure read from its source directly (the reference the
console's figures and the page's are held against)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D
from typing import Any

from services.notify.domain.console import losses_of_year
from tests.support.credit_lists import register_household
from tests.support.system import System, certified_line
from tests.support.waiting import wait_until

TOWNSHIP = "410102021"
RED, CALM, BY_HAND = "410102021001", "410102021002", "410102021003"
START = date(2026, 1, 15)
REASON = "巡查发现集中逾期, 暂停新增"

Keys = dict[str, dict[str, str]]


async def build_district(s: System, keys: Keys) -> None:
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


async def direct_figures(s: System, gov: dict[str, str]) -> dict[str, Any]:
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
