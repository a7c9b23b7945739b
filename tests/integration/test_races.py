"""Refusals and races (issue 19, defect 9), on both backends: concurrent requests over the
test's HTTP client (``asyncio.gather``), end states checked against amounts computed by
hand here, never against what the code under test reports about itself.

On SQLite (embedded) every writing transaction begins IMMEDIATE, so writers queue whole;
the row locks and the claim's primary key are what PostgreSQL (kafka backend) relies on.
Close-of-business concurrency is tested elsewhere (test_cob_*)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.loans.models import CreditLine, FundView, LedgerEntry, Loan, RatingView, Repayment
from services.risk.models import ClaimSettlement
from shared.catalogue import RatingCertified
from shared.events import new_event
from shared.messaging import outbox
from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans
from tests.support.risk import publish_hierarchy
from tests.support.system import System, certified_line
from tests.support.waiting import wait_until

VILLAGE, TOWNSHIP = "410102003001", "410102003"  # test_risk's V1 and township
START = date(2026, 1, 15)
FIRST_DUE = date(2026, 2, 15)  # a drawdown on START: the first instalment a month later
OPENING = Decimal("10000000.00")  # the fund's configured opening balance (DOMAIN §5)


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans"], start_date=START) as system:
        yield system


@pytest.fixture
async def with_risk(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans", "risk"], start_date=START) as system:
        yield system


async def _line(system: System, limit: str = "50000.00") -> str:
    return (await certified_line(system, VILLAGE, TOWNSHIP, limit=limit))[1]


async def _draw(client: httpx.AsyncClient, line: str, amount: str) -> str:
    body = {"credit_line_id": line, "amount": amount, "term_months": 12, "repayment_method": "equal_principal"}
    r = await client.post("/v1/loans", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["loan_id"])


async def _count(system: System, service: str, what: Any, *where: Any) -> int:
    async with system.runtimes[service].read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(what).where(*where)) or 0)


async def _events(system: System, service: str, event_type: str) -> list[str]:
    """The envelopes ``service`` emitted of one type, in the order it emitted them."""
    async with system.runtimes[service].read_sessions() as session:
        rows = await session.execute(select(outbox.c.envelope).where(outbox.c.type == event_type).order_by(outbox.c.id))
        return [r.envelope for r in rows]


async def _non_performing(system: System, amount: str = "12000.00") -> tuple[str, str]:
    """A loan drawn on START and never paid, closed through 91 days past its first due date:
    substandard, non-performing. (credit line, loan)."""
    client = system["loans"]
    line = await _line(system)
    loan = await _draw(client, line, amount)
    r = await client.post("/v1/cob", json={"date": str(FIRST_DUE + timedelta(days=91))})
    assert r.status_code == 200, r.text
    state = (await client.get(f"/v1/loans/{loan}")).json()
    assert (state["classification"], state["non_performing"]) == ("substandard", True), state
    return line, loan


# --- refusals ------------------------------------------------------------------------------


async def test_a_write_off_of_a_performing_loan_is_refused_and_changes_nothing(loans: System) -> None:
    client = loans["loans"]
    line = await _line(loans)
    loan = await _draw(client, line, "12000.00")
    before = (await client.get(f"/v1/loans/{loan}")).json()
    assert (before["classification"], before["non_performing"]) == ("normal", False)
    counts = (
        await _count(loans, "loans", LedgerEntry),
        await _count(loans, "loans", outbox),
    )

    key = str(uuid.uuid4())
    r = await client.post(f"/v1/loans/{loan}/write-off", headers={"Idempotency-Key": key})
    assert (r.status_code, r.json()["code"]) == (409, "NOT_NON_PERFORMING"), r.text

    assert (await client.get(f"/v1/loans/{loan}")).json() == before, "the loan is as it was"
    assert (await _count(loans, "loans", LedgerEntry), await _count(loans, "loans", outbox)) == counts
    assert await _events(loans, "loans", "loans.loan.written_off") == []
    line_now = (await client.get(f"/v1/credit-lines/{line}")).json()
    assert (line_now["outstanding"], line_now["available"]) == ("12000.00", "38000.00")
    # The refusal left no claim on its key: once the loan is non-performing the same key works.
    r = await client.post("/v1/cob", json={"date": str(FIRST_DUE + timedelta(days=91))})
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/loans/{loan}/write-off", headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    await ledger_matches_loans(loans)


# --- races ---------------------------------------------------------------------------------


async def test_concurrent_credit_line_openings_for_one_household_open_one_line(loans: System) -> None:
    household, first_line = await certified_line(loans, VILLAGE, TOWNSHIP, limit="50000.00")
    other = str(uuid.uuid4())
    await loans.publish(
        new_event(
            "scoring.rating.certified",
            VILLAGE,
            RatingCertified(
                subject_kind="household",
                subject_id=other,
                village_code=VILLAGE,
                township_code=TOWNSHIP,
                rating_id=1,
                grade="AA",
                credit_limit="100000.00",
                certificate_no="HB-2026-RACE",
            ),
        )
    )

    async def rated() -> bool:
        async with loans.runtimes["loans"].read_sessions() as session:
            view = await session.get(RatingView, other)
            return view is not None and view.certified

    await wait_until(rated, what="the second household's rating to reach loans")
    client = loans["loans"]
    answers = await asyncio.gather(
        *(client.post("/v1/credit-lines", json={"household_id": h}) for h in [other] * 6 + [household] * 2)
    )
    for_other = answers[:6]
    assert sorted(r.status_code for r in for_other) == [201, 409, 409, 409, 409, 409], [r.text for r in for_other]
    assert {r.json()["code"] for r in for_other if r.status_code == 409} == {"CREDIT_LINE_EXISTS"}
    assert [(r.status_code, r.json()["code"]) for r in answers[6:]] == [(409, "CREDIT_LINE_EXISTS")] * 2
    (opened,) = (r.json() for r in for_other if r.status_code == 201)
    assert (opened["limit"], opened["available"]) == ("100000.00", "100000.00")
    assert await _count(loans, "loans", CreditLine, CreditLine.subject_id == other) == 1
    assert await _count(loans, "loans", CreditLine) == 2
    opened_events = await _events(loans, "loans", "loans.credit_line.opened")
    assert sum(other in e for e in opened_events) == 1 and sum(first_line in e for e in opened_events) == 1


async def test_concurrent_debit_runs_on_the_same_loans_apply_each_payment_once_and_never_overpay(
    loans: System,
) -> None:
    client = loans["loans"]
    line = await _line(loans)
    a = await _draw(client, line, "10000.00")
    b = await _draw(client, line, "10000.00")
    # Four runs of 3,000.00 on each loan, in both orders (a deadlock would show as a 500 or a
    # timeout). Drawn today, nothing accrued: every payment is principal. 3 x 3,000 fit in
    # 10,000; the fourth on each loan (1,000 left) is an overpayment, refused alone.
    runs = [[a, b], [b, a], [a, b], [b, a]]
    answers = await asyncio.gather(
        *(
            client.post(
                "/v1/repayment-batches", json={"repayments": [{"loan_id": x, "amount": "3000.00"} for x in order]}
            )
            for order in runs
        )
    )
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    results = [item for r in answers for item in r.json()["results"]]
    for loan in (a, b):
        mine = [item for item in results if item["loan_id"] == loan]
        assert sorted(item["status"] for item in mine) == [201, 201, 201, 422], mine
        assert [item["problem"]["code"] for item in mine if item["status"] == 422] == ["OVERPAYMENT"]
        state = (await client.get(f"/v1/loans/{loan}")).json()
        assert (state["principal_outstanding"], state["interest_outstanding"]) == ("1000.00", "0.00")
    assert sum(r.json()["applied"] for r in answers) == 6 and sum(r.json()["refused"] for r in answers) == 2
    async with loans.runtimes["loans"].read_sessions() as session:
        paid = await session.execute(
            select(Repayment.loan_id, func.count(), func.sum(Repayment.amount)).group_by(Repayment.loan_id)
        )
        assert {row[0]: (row[1], Decimal(row[2])) for row in paid} == {
            a: (3, Decimal("9000.00")),
            b: (3, Decimal("9000.00")),
        }
        settlement = await session.scalar(
            select(func.sum(LedgerEntry.debit)).where(LedgerEntry.account == "settlement")
        )
    assert Decimal(settlement or 0) == Decimal("18000.00")
    state = (await client.get(f"/v1/credit-lines/{line}")).json()
    assert (state["outstanding"], state["available"]) == ("2000.00", "48000.00")
    assert len(await _events(loans, "loans", "loans.repayment.received")) == 6
    await ledger_matches_loans(loans)


async def test_one_idempotency_key_in_flight_on_concurrent_posts_has_one_effect(loans: System) -> None:
    """shared/idempotency.py: the same key with the same body returns the first result; a
    request still running answers 409 IDEMPOTENT_REQUEST_IN_PROGRESS (SQLite without
    BEGIN IMMEDIATE only). Never two effects, never a 500."""
    client = loans["loans"]
    line = await _line(loans)
    key = str(uuid.uuid4())
    body = {"credit_line_id": line, "amount": "10000.00", "term_months": 12, "repayment_method": "equal_principal"}
    draws = await asyncio.gather(
        *(client.post("/v1/loans", json=body, headers={"Idempotency-Key": key}) for _ in range(5))
    )
    _one_effect(draws)
    (loan,) = {r.json()["loan_id"] for r in draws if r.status_code == 201}
    assert await _count(loans, "loans", Loan) == 1

    key = str(uuid.uuid4())
    pays = await asyncio.gather(
        *(
            client.post(f"/v1/loans/{loan}/repayments", json={"amount": "1000.00"}, headers={"Idempotency-Key": key})
            for _ in range(5)
        )
    )
    _one_effect(pays)
    assert await _count(loans, "loans", Repayment) == 1
    state = (await client.get(f"/v1/loans/{loan}")).json()
    assert state["principal_outstanding"] == "9000.00"
    line_now = (await client.get(f"/v1/credit-lines/{line}")).json()
    assert (line_now["outstanding"], line_now["available"]) == ("9000.00", "41000.00")
    assert len(await _events(loans, "loans", "loans.repayment.received")) == 1
    await ledger_matches_loans(loans)


def _one_effect(answers: list[httpx.Response]) -> None:
    first = [r for r in answers if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    replayed = [r for r in answers if r.headers.get("Idempotent-Replayed") == "true"]
    in_progress = [r for r in answers if r.status_code == 409 and r.json()["code"] == "IDEMPOTENT_REQUEST_IN_PROGRESS"]
    assert len(first) == 1, [(r.status_code, r.text) for r in answers]
    assert len(first) + len(replayed) + len(in_progress) == len(answers), [(r.status_code, r.text) for r in answers]
    assert all(r.json() == first[0].json() and r.status_code == 201 for r in replayed)


async def test_a_write_off_racing_a_repayment_on_one_loan_resolves_one_way(loans: System) -> None:
    client = loans["loans"]
    line, loan = await _non_performing(loans)
    before = (await client.get(f"/v1/loans/{loan}")).json()
    principal, interest = Decimal(before["principal_outstanding"]), Decimal(before["interest_outstanding"])
    penalty = Decimal(before["penalty_outstanding"])
    assert principal == Decimal("12000.00") and interest > Decimal("100.00") and Decimal("0") < penalty < 100

    off, pay = await asyncio.gather(
        client.post(f"/v1/loans/{loan}/write-off"),
        client.post(f"/v1/loans/{loan}/repayments", json={"amount": "100.00"}),
    )
    assert off.status_code == 201, off.text
    if pay.status_code == 201:  # the repayment first: the penalty, then interest, the rest written off
        # (issue 24: penalty first; penalty is never part of the loss)
        assert Decimal(off.json()["loss"]) == principal + interest - (Decimal("100.00") - penalty)
        repaid, to_penalty = Decimal("100.00"), penalty
    else:  # the write-off first: the loan is closed to repayments
        assert (pay.status_code, pay.json()["code"]) == (409, "LOAN_CLOSED"), pay.text
        assert Decimal(off.json()["loss"]) == principal + interest
        repaid, to_penalty = Decimal("0.00"), Decimal("0.00")
    state = (await client.get(f"/v1/loans/{loan}")).json()
    assert (state["status"], state["principal_outstanding"], state["interest_outstanding"]) == (
        "written_off",
        "0.00",
        "0.00",
    )
    async with loans.runtimes["loans"].read_sessions() as session:
        paid = await session.scalar(select(func.coalesce(func.sum(Repayment.amount), 0)))
        written = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.debit), 0)).where(LedgerEntry.account == "write_off_loss")
        )
    assert (Decimal(paid or 0), Decimal(written or 0)) == (repaid, principal + interest - (repaid - to_penalty))
    assert len(await _events(loans, "loans", "loans.loan.written_off")) == 1
    assert (await client.get(f"/v1/credit-lines/{line}")).json()["outstanding"] == "0.00"
    await ledger_matches_loans(loans)


async def test_concurrent_fund_top_ups_each_count_and_the_capacity_published_last_is_the_balance(
    with_risk: System,
) -> None:
    risk = with_risk["risk"]
    amounts = [Decimal(n) * Decimal("1000000.00") for n in (1, 2, 3, 4)]

    async def opened() -> bool:
        return len(await _events(with_risk, "risk", "risk.fund.capacity_changed")) == 1

    await wait_until(opened, what="the fund's opening")
    answers = await asyncio.gather(
        *(risk.post("/v1/fund/top-ups", json={"amount": f"{a:.2f}", "reason": "财政追加风险补偿金"}) for a in amounts)
    )
    assert [r.status_code for r in answers] == [201] * 4, [r.text for r in answers]
    expected = OPENING + sum(amounts)  # 20,000,000.00
    fund = (await risk.get("/v1/fund")).json()
    assert (Decimal(fund["balance"]), Decimal(fund["capacity"])) == (expected, expected * 10)
    # Loans keeps the capacity of the last event it applies: each event must carry the
    # balance after its own movement and every movement before it (a running sum).
    published = [json.loads(e)["payload"] for e in await _events(with_risk, "risk", "risk.fund.capacity_changed")]
    running = [OPENING]
    for p in published[1:]:
        running.append(running[-1] + Decimal(p["amount"]))
    assert [Decimal(p["balance"]) for p in published] == running, published
    assert Decimal(published[-1]["capacity"]) == expected * 10

    async def loans_capacity() -> Decimal | None:
        async with with_risk.runtimes["loans"].read_sessions() as session:
            view = await session.get(FundView, 1)
            return None if view is None else view.capacity

    await wait_until(lambda: _relayed(with_risk, "risk"), what="risk's capacity events to be published")
    await wait_until(lambda: _equals(loans_capacity, expected * 10), what="loans to apply the last capacity")


async def _relayed(system: System, service: str) -> bool:
    return not await system.runtimes[service].relay.backlog()


async def _equals(read: Any, value: Any) -> bool:
    return bool(await read() == value)


async def test_concurrent_settlements_of_one_claim_settle_it_once(with_risk: System) -> None:
    await publish_hierarchy(with_risk)
    risk, client = with_risk["risk"], with_risk["loans"]
    _, loan = await _non_performing(with_risk)
    r = await client.post(f"/v1/loans/{loan}/write-off")
    assert r.status_code == 201, r.text
    loss = Decimal(r.json()["loss"])

    async def split() -> bool:
        return bool((await risk.get("/v1/losses", params={"loan_id": loan})).json())

    await wait_until(split, what="the loss to reach risk")
    answers = await asyncio.gather(
        *(risk.post(f"/v1/claims/{loan}/bank/settle", json={"reference": f"HB-CLAIM-{n}"}) for n in range(5))
    )
    codes = sorted((r.status_code, r.json().get("code")) for r in answers)
    assert codes == [(200, None)] + [(409, "CLAIM_SETTLED")] * 4, [r.text for r in answers]
    (settled,) = (r.json() for r in answers if r.status_code == 200)
    bank_share = (loss * Decimal("0.20")).quantize(Decimal("0.01"))
    assert abs(Decimal(settled["amount"]) - bank_share) <= Decimal("0.01")
    assert await _count(with_risk, "risk", ClaimSettlement) == 1
    events = await _events(with_risk, "risk", "risk.claim.settled")
    assert len(events) == 1 and settled["reference"] in events[0]
    claims = (await risk.get("/v1/claims", params={"loan_id": loan})).json()
    assert {(c["party"], c["status"]) for c in claims} == {("bank", "settled"), ("insurer", "open")}
