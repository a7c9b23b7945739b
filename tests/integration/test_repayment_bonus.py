"""Issue 19, defect 6, end to end: registry, scoring and loans on both backends. A household
draws on its line and repays through loans' API; scoring hears loans.loan.repaid (with the
loan's ``first_due_on``) and raises the rating only for a loan that ran a full instalment
period with no day past due (DOMAIN.md §2, rule set hubin-2017-r2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Infra
from tests.support.system import System, resident_id
from tests.support.waiting import wait_until

TOWNSHIP, VILLAGE = "410102005", "410102005002"
# Certified 7 days on, 31 January: loans drawn that day are first due on 28 February (one
# calendar month, clamped to the month's end).
START = date(2026, 1, 24)
DRAWN, FIRST_DUE = date(2026, 1, 31), date(2026, 2, 28)


@pytest.fixture
async def system(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["registry", "scoring", "loans"], start_date=START) as s:
        registry = s["registry"]
        assert (await registry.post("/v1/townships", json={"code": TOWNSHIP, "name": "东湖乡"})).status_code == 201
        r = await registry.post("/v1/villages", json={"code": VILLAGE, "name": "柳树村", "township_code": TOWNSHIP})
        assert r.status_code == 201
        yield s


async def _rating(client: httpx.AsyncClient, household_id: str, **expected: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def matches() -> bool:
        r = await client.get(f"/v1/households/{household_id}/rating")
        if r.status_code != 200:
            return False
        found.update(r.json())
        return all(found.get(k) == v for k, v in expected.items())

    await wait_until(matches, seconds=30, what=f"rating {expected}")
    return found


async def _cob(loans: httpx.AsyncClient, day: date) -> None:
    r = await loans.post("/v1/cob", json={"date": str(day)})
    assert r.status_code == 200, r.text


async def _draw(loans: httpx.AsyncClient, line: str) -> str:
    body = {"credit_line_id": line, "amount": "1000.00", "term_months": 3, "repayment_method": "equal_instalment"}
    r = await loans.post("/v1/loans", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["schedule"][0]["due_on"] == str(FIRST_DUE)
    return str(r.json()["loan_id"])


async def _pay_off(loans: httpx.AsyncClient, loan_id: str) -> None:
    state = (await loans.get(f"/v1/loans/{loan_id}")).json()
    payoff = Decimal(state["principal_outstanding"]) + Decimal(state["interest_outstanding"])
    r = await loans.post(f"/v1/loans/{loan_id}/repayments", json={"amount": str(payoff)})
    assert r.status_code == 201, r.text
    assert (await loans.get(f"/v1/loans/{loan_id}")).json()["status"] == "repaid"


async def test_only_a_loan_that_ran_a_full_period_raises_the_rating(system: System) -> None:
    scoring, loans = system["scoring"], system["loans"]
    body = {
        "id_number": resident_id(7),
        "name": "农户7",
        "village_code": VILLAGE,
        "poor_household": True,
        "profile": {"income_project": True},  # 80 + 3 (project) + 3 (poor) = 86
    }
    r = await system["registry"].post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    household = str(r.json()["household_id"])
    rating = await _rating(scoring, household, status="pending_notice")
    assert (rating["score"], rating["grade"], rating["credit_limit"]) == (86, "A", "50000.00")
    await _cob(loans, DRAWN)
    await _rating(scoring, household, status="certified")

    line: dict[str, Any] = {}

    async def line_opens() -> bool:
        r = await loans.post("/v1/credit-lines", json={"household_id": household})
        line.update(r.json())
        return r.status_code == 201

    await wait_until(line_opens, seconds=30, what="the certified rating to reach loans")
    assert line["limit"] == "50000.00"

    # 1. The reported gaming: 1,000 drawn and repaid the same day.
    same_day = await _draw(loans, line["credit_line_id"])
    await _pay_off(loans, same_day)
    # 2. Repaid in full the day before its first due date. 3. Repaid on its first due date.
    early, full_period = await _draw(loans, line["credit_line_id"]), await _draw(loans, line["credit_line_id"])
    await _cob(loans, FIRST_DUE - timedelta(days=1))
    await _pay_off(loans, early)
    await _cob(loans, FIRST_DUE)
    await _pay_off(loans, full_period)

    # Only the third counts: 86 + 1 = 87, AA, 100,000 (in notice). The first two came before
    # it on the village's partition and made no rating: the history is 86 then 87, not 87, 88.
    rating = await _rating(scoring, household, score=87)
    assert (rating["grade"], rating["credit_limit"], rating["status"]) == ("AA", "100000.00", "pending_notice")
    assert {r["rule"]: r["points"] for r in rating["reasons"]}["R1.repaid_on_time"] == 1
    assert rating["rule_set"].startswith("hubin-2017-r2@")
    assert [(h["score"], h["grade"]) for h in rating["history"]] == [(87, "AA"), (86, "A")]
