"""Dated rate and subsidy policies through the HTTP API on both backends (issue 24 item 5,
services/loans/domain/policies.py): a change of the loan prime rate between two drawdowns
under the ``lpr_cap`` pricing rule, and a 70% subsidy share starting in the middle of a
period. The amounts are worked out by hand below; the ledger is balanced and matches the
loans at every business date the tests stop at."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans, open_certified_line
from tests.support.settings_env import service_env
from tests.support.system import System


async def _draw(client: httpx.AsyncClient, line: str, amount: str) -> dict[str, Any]:
    body = {"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "interest_only"}
    r = await client.post("/v1/loans", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def _cob(system: System, target: date) -> None:
    r = await system["loans"].post("/v1/cob", json={"date": str(target)})
    assert r.status_code == 200, r.text
    await ledger_matches_loans(system)  # debits = credits, and the accounts match the loans


async def _loan(client: httpx.AsyncClient, loan_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/loans/{loan_id}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


# --- an LPR change between two drawdowns ------------------------------------------------------

LPR_START = date(2019, 9, 19)


@pytest.fixture
async def lpr_capped(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    # The default LPR table: 1-year 4.25% from 2019-08-20, 4.20% from 2019-09-20.
    with service_env(monkeypatch, VCREDIT_LOANS_PRICING_RULE="lpr_cap"):
        async with System(infra, ["loans"], start_date=LPR_START) as system:
            yield system


async def test_loans_drawn_either_side_of_an_lpr_change_keep_their_own_rate(lpr_capped: System, infra: Infra) -> None:
    client = lpr_capped["loans"]
    first_line = await open_certified_line(lpr_capped, infra)
    second_line = await open_certified_line(lpr_capped, infra)

    # 2019-09-19: benchmark (≤ 1 year) 4.35%, capped at the 1-year LPR of 2019-08-20, 4.25%.
    before = await _draw(client, first_line, "12000.00")
    assert before["annual_rate"] == "0.042500"
    assert before["pricing"] == {
        "rule": "lpr_cap",
        "benchmark_from": "2015-10-24",
        "benchmark_rate": "0.043500",
        "lpr_from": "2019-08-20",
        "lpr_rate": "0.042500",
    }
    await _cob(lpr_capped, date(2019, 9, 20))
    # 2019-09-20: the fixing of that day lowers the 1-year LPR to 4.20%.
    after = await _draw(client, second_line, "12000.00")
    assert after["annual_rate"] == "0.042000"
    assert (after["pricing"]["lpr_from"], after["pricing"]["lpr_rate"]) == ("2019-09-20", "0.042000")

    # Period 1 (30/360, one month = 1/12 year), interest only, no subsidy:
    #   first loan  12000.00 × 0.0425 / 12 = 510.00 / 12 = 42.50, due 2019-10-19
    #   second loan 12000.00 × 0.0420 / 12 = 504.00 / 12 = 42.00, due 2019-10-20
    assert (before["schedule"][0]["interest"], after["schedule"][0]["interest"]) == ("42.50", "42.00")
    await _cob(lpr_capped, date(2019, 10, 5))
    await _cob(lpr_capped, date(2019, 10, 19))  # closes 10-18: the first loan's period 1 billed
    first = await _loan(client, before["loan_id"])
    # Its rate stays 4.25% although 4.20% is in force now: fixed at drawdown.
    assert (first["annual_rate"], first["interest_outstanding"]) == ("0.042500", "42.50")
    assert first["schedule"][0]["billed"]["interest"] == "42.50"
    await _cob(lpr_capped, date(2019, 10, 20))  # closes 10-19: the second loan's period 1 billed
    second = await _loan(client, after["loan_id"])
    assert (second["interest_outstanding"], second["schedule"][0]["billed"]["interest"]) == ("42.00", "42.00")
    # The second month of the first loan keeps its rate: 42.50 again, billed on 11-18's close.
    await _cob(lpr_capped, date(2019, 11, 19))
    first = await _loan(client, before["loan_id"])
    assert (first["interest_outstanding"], first["schedule"][1]["billed"]["interest"]) == ("85.00", "42.50")


# --- a 70% subsidy share from the middle of a period -----------------------------------------

SUBSIDY_START = date(2027, 3, 20)
SEVENTY_FROM = date(2027, 4, 1)


@pytest.fixture
async def seventy_percent(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    policy = json.dumps([{"effective_from": str(SEVENTY_FROM), "share": "0.7"}])
    with service_env(monkeypatch, VCREDIT_LOANS_SUBSIDY_POLICY=policy):
        async with System(infra, ["loans"], start_date=SUBSIDY_START) as system:
            yield system


async def test_a_seventy_percent_subsidy_share_applies_from_its_day_within_the_period(
    seventy_percent: System, infra: Infra
) -> None:
    client = seventy_percent["loans"]
    line = await open_certified_line(seventy_percent, infra, poor=True)
    loan = await _draw(client, line, "10000.00")
    # A registered poor household: 4.35%, fully subsidised (subsidy rate = rate, 全额贴息).
    assert (loan["annual_rate"], loan["subsidy_rate"]) == ("0.043500", "0.043500")
    # Period 1: 2027-03-20 to 2027-04-20, 31 days. Interest 10000.00 × 0.0435 / 12 = 36.25, the
    # subsidy at a share of 1 the same 36.25. Days 2027-03-20..03-31 (12 days) at 100%, days
    # 2027-04-01..04-19 (19 days) at 70%:
    #   subsidy = round(36.25 × (12 × 1 + 19 × 0.7) / 31) = round(36.25 × 25.3 / 31)
    #           = round(917.125 / 31) = round(29.5846…) = 29.58
    #   (the 100% days' part 36.25 × 12 / 31 = 14.03…, the 70% days' 36.25 × 0.7 × 19 / 31 = 15.55…)
    #   borrower's net interest 36.25 − 29.58 = 6.67 (nothing before the 70% share).
    assert (loan["schedule"][0]["interest"], loan["schedule"][0]["subsidy"]) == ("36.25", "29.58")
    assert loan["schedule"][0]["net_due"] == "6.67"

    await _cob(seventy_percent, SEVENTY_FROM)  # closes 03-20 .. 03-31, all at 100%
    state = await _loan(client, loan["loan_id"])
    # Through day 12: round(36.25 × 12 / 31) = round(14.032…) = 14.03, all of the interest.
    assert (state["subsidy_accrued"], state["interest_outstanding"]) == ("14.03", "0.00")

    await _cob(seventy_percent, date(2027, 4, 2))  # closes 04-01, the first 70% day
    state = await _loan(client, loan["loan_id"])
    # Through day 13: round(36.25 × 12.7 / 31) = round(14.850…) = 14.85: 0.82 that day (at 100%
    # it would have been round(36.25 × 13 / 31) − 14.03 = 15.20 − 14.03 = 1.17). Interest
    # through day 13: round(36.25 × 13 / 31) = 15.20, so the borrower owes 15.20 − 14.85 = 0.35.
    assert (state["subsidy_accrued"], state["interest_outstanding"]) == ("14.85", "0.35")

    await _cob(seventy_percent, date(2027, 4, 20))  # closes 04-19: period 1 billed, due 04-20
    state = await _loan(client, loan["loan_id"])
    assert (state["subsidy_accrued"], state["interest_outstanding"]) == ("29.58", "6.67")
    first = state["schedule"][0]
    assert first["billed"] == {"principal": "0.00", "interest": "36.25", "subsidy": "29.58", "net_due": "6.67"}
    assert first["subsidy_policy"] == [
        {"first_day": "2027-03-20", "last_day": "2027-03-31", "share": "1"},
        {"first_day": "2027-04-01", "last_day": "2027-04-19", "share": "0.7"},
    ]
    # Period 2 (2027-04-20 to 05-20, 30 days) wholly at 70%: round(36.25 × 0.7 × 30 / 30) = 25.38
    # (25.375 rounds half up), net 36.25 − 25.38 = 10.87.
    assert (state["schedule"][1]["subsidy"], state["schedule"][1]["net_due"]) == ("25.38", "10.87")
