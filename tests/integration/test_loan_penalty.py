"""Penalty (罚息) and compound interest (复利) through the HTTP API on both backends (issue 24,
DOMAIN.md §7, 银发〔2003〕251号 art. 3; services/loans/domain/penalty.py): a missed instalment
aged 40 days by ``POST /v1/cob`` one business day at a time, the amounts computed by hand, the
ledger balanced (debits = credits, each receivable = the loans' balances) at every business
date, then the repayment split penalty first, the penalty income reversed at a write-off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans, open_certified_line
from tests.support.system import System

START = date(2026, 1, 15)
DUE = date(2026, 2, 15)
D = Decimal


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans"], start_date=START) as system:
        yield system


async def _draw(system: System, infra: Infra, term: int) -> str:
    line = await open_certified_line(system, infra)
    r = await system["loans"].post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": "12000.00", "term_months": term, "repayment_method": "equal_principal"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["schedule"][0]["due_on"] == str(DUE)
    return str(r.json()["loan_id"])


async def _close_each_day(system: System, start: date, target: date) -> None:
    """Close ``start`` .. ``target`` - 1 one business date at a time, the ledger checked after each."""
    day = start
    while day < target:
        day += timedelta(days=1)
        r = await system["loans"].post("/v1/cob", json={"date": str(day)})
        assert r.status_code == 200, r.text
        await ledger_matches_loans(system)  # debits = credits; penalty_receivable = the loans' penalty


async def test_a_40_day_arrear_pays_penalty_and_compound_interest_first(loans: System, infra: Infra) -> None:
    client = loans["loans"]
    loan_id = await _draw(loans, infra, 1)
    # 12,000.00 at 4.35% for 1 month: interest 12000 × 0.0435 / 12 = 43.50, due 2026-02-15: 12,043.50. Missed.
    # Penalty rate 4.35% × 1.5 = 6.525% a year, a day / 360:
    #   on the principal: 12000 × 0.06525 / 360 = 2.175 -> 2.18; on the interest: 43.50 × 0.06525 / 360 =
    #   0.00788… -> 0.01; the closes of 02-15 .. 03-26 are 40 days: 87.20 + 0.40 = 87.60.
    paid_on = DUE + timedelta(days=40)
    assert paid_on == date(2026, 3, 27)
    await _close_each_day(loans, START, paid_on)
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    assert state["days_past_due"] == 40
    assert (state["penalty_accrued"], state["compound_accrued"], state["penalty_outstanding"]) == (
        "87.20",
        "0.40",
        "87.60",
    )
    assert (state["interest_outstanding"], state["amount_due"]) == ("43.50", "12131.10")  # 12,043.50 + 87.60
    balances = (await client.get("/v1/ledger/trial-balance")).json()["accounts"]
    assert (balances["penalty_receivable"], balances["penalty_income"]) == ("87.60", "87.60")
    # 100.00 pays the penalty 87.60, then 12.40 of the interest.
    r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": "100.00"})
    assert r.status_code == 201, r.text
    assert (r.json()["penalty"], r.json()["interest"], r.json()["principal"]) == ("87.60", "12.40", "0.00")
    assert r.json()["penalty_outstanding"] == "0.00"
    r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": "12031.10"})  # 31.10 + 12,000.00
    assert r.status_code == 201, r.text
    assert (r.json()["penalty"], r.json()["interest"], r.json()["principal"]) == ("0.00", "31.10", "12000.00")
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    assert (state["status"], state["penalty_paid"]) == ("repaid", "87.60")
    entries = (await client.get(f"/v1/loans/{loan_id}/repayments")).json()
    assert [e["penalty"] for e in entries] == ["87.60", "0.00"]
    statement = (await client.get(f"/v1/loans/{loan_id}/statement")).json()
    assert statement["totals"]["paid_penalty"] == "87.60" and statement["totals"]["paid"] == "12043.50"
    assert statement["closing_balance"]["total"] == "0.00"
    await ledger_matches_loans(loans)
    balances = (await client.get("/v1/ledger/trial-balance")).json()["accounts"]
    assert (balances["penalty_receivable"], balances["penalty_income"]) == ("0.00", "87.60")


async def test_a_written_off_loans_penalty_is_reversed_out_of_income(loans: System, infra: Infra) -> None:
    client = loans["loans"]
    loan_id = await _draw(loans, infra, 1)
    # Substandard at 91 days past due (DOMAIN §4): 91 days of 2.18 + 0.01 = 199.29 of penalty.
    await _close_each_day(loans, START, DUE + timedelta(days=91))
    state = (await client.get(f"/v1/loans/{loan_id}")).json()
    assert (state["classification"], state["penalty_outstanding"]) == ("substandard", "199.29")
    r = await client.post(f"/v1/loans/{loan_id}/write-off")
    assert r.status_code == 201, r.text
    assert r.json()["loss"] == "12043.50"  # the shared loss (004 §6(1)): principal and contract interest only
    await ledger_matches_loans(loans)
    balances = (await client.get("/v1/ledger/trial-balance")).json()["accounts"]
    assert (balances["penalty_receivable"], balances["penalty_income"]) == ("0.00", "0.00")
