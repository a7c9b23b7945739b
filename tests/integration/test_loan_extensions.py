"""Extension (展期, issue 24) through the HTTP API on both backends: the bank proposes, another
principal approves (four eyes), the remaining principal is re-planned and billed as worked
out by hand, the loan stays special mention at best, no money moves (the ledger balanced at
every due date); the limits of 贷款通则 art. 12 and the programme's 36 months refuse and
change nothing. And a prepayment that lowers the instalment instead of shortening the term."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.loans.models import LoanExtension
from shared.auth import add_credential
from shared.messaging import outbox
from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans, open_certified_line
from tests.support.system import System

START = date(2026, 1, 15)
D = Decimal

Keys = dict[str, dict[str, str]]


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[tuple[System, Keys]]:
    credentials = infra.tmp / f"credentials-{uuid.uuid4().hex}.json"
    keys: Keys = {}
    # Two bank officers: one proposes, the other approves (four eyes).
    for name in ("proposer", "approver"):
        token, _ = add_credential(credentials, f"as-{name}", "api_key", ("bank",))
        keys[name] = {"Authorization": f"Bearer {token}", "X-Query-Purpose": "extension test"}
    async with System(infra, ["loans"], credentials_file=credentials, start_date=START) as system:
        yield system, keys


async def _cob(client: httpx.AsyncClient, day: date) -> None:
    r = await client.post("/v1/cob", json={"date": str(day)})
    assert r.status_code == 200, r.text


async def _draw(system: System, infra: Infra, amount: str, term: int, method: str = "equal_principal") -> str:
    line = await open_certified_line(system, infra)
    r = await system["loans"].post(
        "/v1/loans",
        json={"credit_line_id": line, "amount": amount, "term_months": term, "repayment_method": method},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["loan_id"])


async def _loan(client: httpx.AsyncClient, loan_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/loans/{loan_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _state(system: System, loan_id: str) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    """What a refusal must leave as it was: the loan, the trial balance, its extensions, the outbox."""
    client = system["loans"]
    async with system.runtimes["loans"].read_sessions() as session:
        extensions = await session.scalar(select(func.count()).where(LoanExtension.loan_id == loan_id))
        events = await session.scalar(select(func.count()).select_from(outbox))
    trial = (await client.get("/v1/ledger/trial-balance")).json()
    return await _loan(client, loan_id), trial, int(extensions or 0), int(events or 0)


async def _events(system: System, event_type: str) -> list[dict[str, Any]]:
    async with system.runtimes["loans"].read_sessions() as session:
        envelopes = await session.scalars(select(outbox.c.envelope).where(outbox.c.type == event_type))
        return [json.loads(e)["payload"] for e in envelopes]


async def test_a_12_month_loan_extended_by_6_months_after_month_4_by_hand(
    loans: tuple[System, Keys], infra: Infra
) -> None:
    """12,000.00 at 4.35%, equal principal, drawn 2026-01-15: 1,000.00 of principal a month,
    instalment 1's interest 12,000.00 × 0.0435 / 12 = 43.50, then 39.875 → 39.88, 36.25,
    32.625 → 32.63. Each paid on its due date. On the fourth due date, 2026-05-15, the bank
    proposes 6 more months and a second officer approves: 12,000.00 − 4 × 1,000.00 = 8,000.00
    over (12 − 4) + 6 = 14 months, instalments 5..18 due on the 15th to 2027-07-15; principal
    8,000.00 / 14 = 571.428… → 571.43, the last 8,000.00 − 13 × 571.43 = 571.41; interest =
    the opening principal × 0.003625 (written out below)."""
    system, keys = loans
    client = system["loans"]
    loan_id = await _draw(system, infra, "12000.00", 12)
    first = [("2026-02-15", "1043.50"), ("2026-03-15", "1039.88"), ("2026-04-15", "1036.25"), ("2026-05-15", "1032.63")]
    for due, bill in first:
        await _cob(client, date.fromisoformat(due))
        state = await _loan(client, loan_id)
        assert state["amount_due"] == bill, due
        r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": bill})
        assert r.status_code == 201, r.text
        await ledger_matches_loans(system)
    assert (await _loan(client, loan_id))["principal_outstanding"] == "8000.00"

    r = await client.post(
        f"/v1/loans/{loan_id}/extensions",
        json={"months": 6, "reason": "旱灾减产, 无法按期还款"},
        headers=keys["proposer"],
    )
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert (proposal["status"], proposal["proposed_by"], proposal["proposed_on"]) == (
        "proposed",
        "as-proposer",
        "2026-05-15",
    )
    before = await _state(system, loan_id)
    approval = f"/v1/loans/{loan_id}/extensions/{proposal['extension_id']}/approval"
    r = await client.post(approval, headers=keys["proposer"])
    assert (r.status_code, r.json()["code"]) == (409, "FOUR_EYES_REQUIRED")
    assert await _state(system, loan_id) == before, "a refused approval changes nothing"

    r = await client.post(approval, headers=keys["approver"] | {"Idempotency-Key": f"approve-{loan_id}"})
    assert r.status_code == 200, r.text
    approved = r.json()
    assert (approved["status"], approved["decided_by"], approved["maturity_before"], approved["maturity_after"]) == (
        "approved",
        "as-approver",
        "2027-01-15",
        "2027-07-15",
    )
    replay = await client.post(approval, headers=keys["approver"] | {"Idempotency-Key": f"approve-{loan_id}"})
    assert (replay.status_code, replay.json()) == (200, approved)
    loan = approved["loan"]
    assert (loan["term_months"], loan["extended_months"], loan["maturity_on"]) == (18, 6, "2027-07-15")
    # 贷款风险分类指引, DOMAIN.md §7: no better than special mention, though nothing is past due.
    assert (loan["days_past_due"], loan["classification"], loan["non_performing"]) == (0, "special_mention", False)
    # Instalments 1-4 as they were; 5-18 re-planned. Interest, opening × 0.0435 / 12:
    # 8000.00 → 29.00; 7428.57 → 26.9285… → 26.93; 6857.14 → 24.8571… → 24.86;
    # 6285.71 → 22.7857… → 22.79; 5714.28 → 20.7142… → 20.71; 5142.85 → 18.6428… → 18.64;
    # 4571.42 → 16.5714… → 16.57; 3999.99 → 14.4999… → 14.50; 3428.56 → 12.4285… → 12.43;
    # 2857.13 → 10.3571… → 10.36; 2285.70 → 8.2856… → 8.29; 1714.27 → 6.2142… → 6.21;
    # 1142.84 → 4.1427… → 4.14; 571.41 → 2.0713… → 2.07.
    interest = ["29.00", "26.93", "24.86", "22.79", "20.71", "18.64", "16.57", "14.50", "12.43", "10.36"]
    interest += ["8.29", "6.21", "4.14", "2.07"]
    principal = ["571.43"] * 13 + ["571.41"]
    due = [f"{2026 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}-15" for m in range(6, 20)]  # 2026-06 .. 2027-07
    assert [(x["number"], x["due_on"], x["principal"], x["interest"]) for x in loan["schedule"][4:]] == list(
        zip(range(5, 19), due, principal, interest, strict=True)
    )
    assert [(x["principal"], x["state"]) for x in loan["schedule"][:4]] == [("1000.00", "paid")] * 4
    # No money moved: the trial balance is what it was before the approval.
    assert (await client.get("/v1/ledger/trial-balance")).json() == before[1]
    [event] = await _events(system, "loans.loan.extended")
    assert (event["months"], event["term_months"], event["rescheduled_principal"], event["first_net_due"]) == (
        6,
        18,
        "8000.00",
        "600.43",
    )
    assert (event["first_instalment"], event["maturity_on"], event["proposed_by"], event["approved_by"]) == (
        5,
        "2027-07-15",
        "as-proposer",
        "as-approver",
    )

    # Billed as re-planned: instalment 5 is 571.43 + 29.00 = 600.43, …, 18 is 571.41 + 2.07.
    for number, (day, p, i) in enumerate(zip(due, principal, interest, strict=True), start=5):
        await _cob(client, date.fromisoformat(day))
        state = await _loan(client, loan_id)
        assert state["amount_due"] == f"{D(p) + D(i):.2f}", number
        assert state["classification"] == "special_mention"
        r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": state["amount_due"]})
        assert r.status_code == 201, r.text
        await ledger_matches_loans(system)
    final = await _loan(client, loan_id)
    assert (final["status"], final["principal_outstanding"], final["interest_outstanding"]) == (
        "repaid",
        "0.00",
        "0.00",
    )
    trial = (await client.get("/v1/ledger/trial-balance")).json()
    assert trial["debits_equal_credits"] is True
    # Interest earned: instalments 1-4 (43.50 + 39.88 + 36.25 + 32.63 = 152.26) and 5-18 (217.50).
    assert sum(D(x) for x in interest) == D("217.50")
    assert D(trial["accounts"]["interest_income"]) == D("152.26") + D("217.50")


async def test_the_limits_refuse_and_change_nothing(loans: tuple[System, Keys], infra: Infra) -> None:
    """贷款通则 art. 12: a 12-month loan by at most 12 months, a 24-month one by at most 12
    (half); the programme's 36 months in all; one extension per loan. Each refusal is 409 and
    records nothing; bad input is 422."""
    system, keys = loans
    client = system["loans"]
    bank = keys["proposer"]

    async def propose(loan_id: str, months: Any, reason: Any = "生病住院") -> httpx.Response:
        return await client.post(
            f"/v1/loans/{loan_id}/extensions", json={"months": months, "reason": reason}, headers=bank
        )

    cases = [(12, 13, "cumulative", 12), (24, 13, "cumulative", 12), (30, 7, "programme_term", 6)]
    for term, months, rule, most in cases:
        loan_id = await _draw(system, infra, "6000.00", term)
        before = await _state(system, loan_id)
        r = await propose(loan_id, months)
        assert (r.status_code, r.json()["code"], r.json()["rule"], r.json()["max_months"]) == (
            409,
            "EXTENSION_LIMIT",
            rule,
            most,
        ), (term, months)
        assert await _state(system, loan_id) == before
        assert (await propose(loan_id, most)).status_code == 201, (term, most)  # the most allowed is proposed

    for bad in (
        {"months": 0, "reason": "x"},
        {"months": 37, "reason": "x"},
        {"months": 1, "reason": ""},
        {"months": 1},
    ):
        loan_id = await _draw(system, infra, "1000.00", 12)
        before = await _state(system, loan_id)
        r = await client.post(f"/v1/loans/{loan_id}/extensions", json=bad, headers=bank)
        assert r.status_code == 422, (bad, r.text)
        assert await _state(system, loan_id) == before

    # One at a time, one in all: a second proposal waits for the first; after its approval a
    # second extension is over the count.
    loan_id = await _draw(system, infra, "6000.00", 12)
    first = (await propose(loan_id, 3)).json()
    r = await propose(loan_id, 3)
    assert (r.status_code, r.json()["code"], r.json()["extension_id"]) == (
        409,
        "EXTENSION_PENDING",
        first["extension_id"],
    )
    approval = f"/v1/loans/{loan_id}/extensions/{first['extension_id']}/approval"
    assert (await client.post(approval, headers=keys["approver"])).status_code == 200
    r = await client.post(approval, headers=keys["approver"])
    assert (r.status_code, r.json()["code"]) == (409, "EXTENSION_DECIDED")
    before = await _state(system, loan_id)
    r = await propose(loan_id, 3)
    assert (r.status_code, r.json()["code"], r.json()["rule"]) == (409, "EXTENSION_LIMIT", "count")
    assert await _state(system, loan_id) == before

    # A repaid loan is not extended.
    loan_id = await _draw(system, infra, "1000.00", 12)
    assert (await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": "1000.00"})).status_code == 201
    r = await propose(loan_id, 1)
    assert (r.status_code, r.json()["code"]) == (409, "EXTENSION_NOT_ALLOWED")

    # A rejection, by another officer, changes no loan.
    loan_id = await _draw(system, infra, "6000.00", 12)
    proposal = (await propose(loan_id, 2)).json()
    before = (await _state(system, loan_id))[0]
    rejection = f"/v1/loans/{loan_id}/extensions/{proposal['extension_id']}/rejection"
    r = await client.post(rejection, json={"reasons": "own"}, headers=bank)
    assert (r.status_code, r.json()["code"]) == (409, "FOUR_EYES_REQUIRED")
    r = await client.post(rejection, json={"reasons": "还款来源不足"}, headers=keys["approver"])
    assert (r.status_code, r.json()["status"]) == (200, "rejected")
    assert (await _state(system, loan_id))[0] == before
    listed = (await client.get(f"/v1/loans/{loan_id}/extensions")).json()
    assert [(e["status"], e["decision_reasons"]) for e in listed] == [("rejected", "还款来源不足")]
    await ledger_matches_loans(system)


async def test_a_prepayment_may_lower_the_instalment_instead(loans: tuple[System, Keys], infra: Infra) -> None:
    """1,200.00 at 4.35%, equal principal over 4 months from 2026-01-15: 300.00 a month,
    instalment 1's interest 1,200.00 × 0.0435 / 12 = 4.35. On its due date the borrower pays
    304.35 and 300.00 ahead, asking for a lower instalment: the 300.00 is billed with
    instalment 2 (paid already) and 1,200.00 − 600.00 = 600.00 re-planned over instalments
    2-4, 200.00 each; instalment 2's interest is on the 600.00 outstanding at its start,
    600.00 × 0.003625 = 2.175 → 2.18, so 202.18 is due on 2026-03-15 (by default the 300.00
    would have covered instalment 2 whole: 0.00 due)."""
    system, _ = loans
    client = system["loans"]
    loan_id = await _draw(system, infra, "1200.00", 4)
    await _cob(client, date(2026, 2, 15))
    assert (await _loan(client, loan_id))["amount_due"] == "304.35"
    r = await client.post(
        f"/v1/loans/{loan_id}/repayments", json={"amount": "604.35", "prepayment": "lower_instalment"}
    )
    assert r.status_code == 201, r.text
    schedule = (await _loan(client, loan_id))["schedule"]
    assert [(x["number"], x["principal"]) for x in schedule] == [
        (1, "300.00"),
        (2, "500.00"),
        (3, "200.00"),
        (4, "200.00"),
    ]
    assert [x["interest"] for x in schedule[1:]] == ["2.18", "1.45", "0.73"]  # 400.00 → 1.45, 200.00 → 0.725 → 0.73
    await _cob(client, date(2026, 3, 15))
    assert (await _loan(client, loan_id))["amount_due"] == "202.18"
    r = await client.post(f"/v1/loans/{loan_id}/repayments", json={"amount": "1", "prepayment": "sooner"})
    assert r.status_code == 422
    await ledger_matches_loans(system)
