"""Billing, accrual and subsidy through the HTTP API on both backends (issue 19, DOMAIN §4
"Interest and billing"), against the independent reference model (tests/reference): loans
drawn, repaid and closed day by day by ``POST /v1/cob``; each instalment's bill read from the
loans database (the API shows the schedule, not the bills), the balances from ``GET
/v1/loans/{id}``, the ledger from the trial balance."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.loans.models import Instalment
from shared.catalogue import RatingCertified
from shared.events import new_event
from tests.conftest import Infra
from tests.reference import payments
from tests.reference.loan_model import DAY, ReferenceLoan, Refused, money
from tests.support.loans import ledger_matches_loans
from tests.support.system import System
from tests.support.waiting import wait_until

VILLAGE, TOWNSHIP = "410102003001", "410102003"
START = date(2027, 3, 20)
METHODS = ("equal_instalment", "equal_principal", "interest_only")
D = Decimal


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans"], start_date=START) as system:
        yield system


async def _line(system: System, kind: str) -> str:
    """A certified line: ``household``, ``poor`` (a registered poor household) or ``business``."""
    subject = str(uuid.uuid4())
    await system.publish(
        new_event(
            "scoring.rating.certified",
            VILLAGE,
            RatingCertified(
                subject_kind="business" if kind == "business" else "household",
                subject_id=subject,
                village_code=VILLAGE,
                township_code=TOWNSHIP,
                rating_id=1,
                grade="AA",
                credit_limit="500000.00",
                certificate_no="XYZ-2027-1",
                poor_household=kind == "poor",
            ),
        ),
    )
    client = system["loans"]
    body = {"business_id" if kind == "business" else "household_id": subject}
    created: dict[str, Any] = {}

    async def opens() -> bool:
        r = await client.post("/v1/credit-lines", json=body)
        created.update(r.json() if r.status_code == 201 else {})
        return r.status_code == 201

    await wait_until(opens, seconds=30, what="the certified rating to reach loans")
    return str(created["credit_line_id"])


@dataclass
class Tracked:
    """A loan through the API and the same loan in the reference model."""

    loan_id: str
    model: ReferenceLoan
    schedule: list[dict[str, Any]]
    actions: dict[date, list[tuple[str, int, int]]] = field(default_factory=dict)


async def _draw(
    system: System, kind: str, amount: str, term: int, method: str, behaviours: list[payments.Behaviour]
) -> Tracked:
    client = system["loans"]
    line = await _line(system, kind)
    r = await client.post(
        "/v1/loans", json={"credit_line_id": line, "amount": amount, "term_months": term, "repayment_method": method}
    )
    assert r.status_code == 201, r.text
    out = r.json()
    model = ReferenceLoan(
        Fraction(amount),
        Fraction(out["annual_rate"]),
        Fraction(out["subsidy_rate"]),
        term,
        method,
        date.fromisoformat(out["disbursed_on"]),
        out["day_count"],
    )
    # The schedule shown at drawdown is the reference's.
    assert [(x["due_on"], x["principal"], x["interest"], x["subsidy"]) for x in out["schedule"]] == [
        (p.due.isoformat(), str(money(p.principal)), str(money(p.interest)), str(money(p.subsidy))) for p in model.plan
    ]
    return Tracked(out["loan_id"], model, out["schedule"], payments.plan_days(model, behaviours))


async def _bills(system: System, loan_id: str) -> dict[int, Decimal]:
    async with system.runtimes["loans"].read_sessions() as session:
        rows = await session.execute(
            select(Instalment.number, Instalment.billed).where(
                Instalment.loan_id == loan_id, Instalment.billed.is_not(None)
            )
        )
        return {number: billed for number, billed in rows if billed is not None}


async def _agrees(system: System, loan: Tracked, when: date) -> None:
    state = (await system["loans"].get(f"/v1/loans/{loan.loan_id}")).json()
    m = loan.model
    assert (
        state["status"],
        state["principal_outstanding"],
        state["interest_outstanding"],
        state["subsidy_accrued"],
        state["penalty_accrued"],
        state["compound_accrued"],
        state["penalty_outstanding"],
    ) == (
        m.status,
        str(money(m.principal_outstanding)),
        str(money(m.interest_outstanding)),
        str(money(m.subsidy_accrued)),
        str(money(m.penalty_accrued)),
        str(money(m.compound_accrued)),
        str(money(m.penalty_outstanding)),
    ), f"{when}: loan {loan.loan_id}"
    assert await _bills(system, loan.loan_id) == {k: money(v) for k, v in m.billed.items()}, when


async def _ledger_agrees(system: System, tracked: list[Tracked]) -> None:
    """The ledger matches the loan rows (test_loans) and the reference's totals."""
    await ledger_matches_loans(system)
    accounts = (await system["loans"].get("/v1/ledger/trial-balance")).json()["accounts"]
    total = {
        "loans_principal": sum((t.model.principal_outstanding for t in tracked), Fraction(0)),
        "interest_receivable": sum((t.model.interest_outstanding for t in tracked), Fraction(0)),
        "subsidy_receivable": sum((t.model.subsidy_accrued for t in tracked), Fraction(0)),
        "interest_income": sum((t.model.interest_accrued for t in tracked), Fraction(0)),
        "penalty_receivable": sum((t.model.penalty_outstanding for t in tracked), Fraction(0)),
        "penalty_income": sum((t.model.penalty_accrued + t.model.compound_accrued for t in tracked), Fraction(0)),
    }
    assert {k: D(accounts.get(k, "0")) for k in total} == {k: money(v) for k, v in total.items()}


async def _pay(client: httpx.AsyncClient, loan: Tracked, amount: Fraction, day: date) -> None:
    try:
        expected = loan.model.pay(amount)
    except Refused:
        r = await client.post(f"/v1/loans/{loan.loan_id}/repayments", json={"amount": str(money(amount))})
        assert (r.status_code, r.json()["code"]) == (422, "OVERPAYMENT"), r.text
        return
    r = await client.post(f"/v1/loans/{loan.loan_id}/repayments", json={"amount": str(money(amount))})
    assert r.status_code == 201, r.text
    assert (r.json()["interest"], r.json()["principal"], r.json()["penalty"]) == tuple(
        str(money(x)) for x in expected
    ), day


async def _cob_to(client: httpx.AsyncClient, tracked: list[Tracked], today: date, target: date) -> None:
    """Close the days ``today`` .. ``target`` - 1 (the model too); the business date is ``target``."""
    r = await client.post("/v1/cob", json={"date": str(target)})
    assert r.status_code == 200, r.text
    day = today
    while day < target:
        for loan in tracked:
            loan.model.close(day)
        day += DAY


async def test_random_loans_follow_the_reference_through_the_api(loans: System) -> None:
    rng = random.Random(19)
    client = loans["loans"]
    tracked = []
    # One loan for each whole pattern, two mixing them instalment by instalment.
    patterns = ["on_time", "early", "partial", "late", "prepay", "never", "mixed", "mixed"]
    for pattern in patterns:
        term = rng.randint(1, 12)
        kinds = [pattern] * term if pattern != "mixed" else rng.choices(payments.KINDS, k=term)
        behaviours = [(kind, rng.randint(*payments.PARAMETER.get(kind, (0, 0)))) for kind in kinds]
        amount = f"{D(rng.randint(10_000, 20_000_000)).scaleb(-2):.2f}"
        kind = rng.choice(["household", "poor", "business"])
        tracked.append(await _draw(loans, kind, amount, term, rng.choice(METHODS), behaviours))
    end = max(payments.last_day(t.model) for t in tracked)
    events = {d for t in tracked for d in t.actions} | {p.due for t in tracked for p in t.model.plan} | {end}
    today = START
    for day in sorted(events):
        if day > today:
            await _cob_to(client, tracked, today, day)
            today = day
        for loan in tracked:
            await _agrees(loans, loan, today)
            for kind, parameter, number in loan.actions.get(today, []):
                for attempt in payments.attempts(loan.model, kind, parameter, number):
                    await _pay(client, loan, attempt, today)
            await _agrees(loans, loan, today)
        await _ledger_agrees(loans, tracked)
    assert {t.model.status for t in tracked} >= {"active", "repaid"}, "the sample pays some loans off, not all"


async def test_borrowers_paying_on_time_are_billed_their_schedule(loans: System) -> None:
    """12 months, every instalment paid in full on its due date: each bill is the schedule's
    net due, the subsidy accrued is the schedule's, the loan is repaid on its last due date."""
    client = loans["loans"]
    on_time = [("on_time", 0)] * 12
    tracked = {
        (kind, method): await _draw(loans, kind, "10000.00", 12, method, on_time)
        for kind in ("household", "poor", "business")
        for method in METHODS
    }
    # By hand (tests/unit/loans/test_billing.py): 10,000.00 at 4.35%, equal instalment,
    # period 2 billed 853.10 (interest 9183.15 × 0.0435 / 12 = 33.29), not 856.06.
    headline = tracked["household", "equal_instalment"]
    assert (headline.schedule[1]["principal"], headline.schedule[1]["interest"]) == ("819.81", "33.29")
    today = START
    for number in range(1, 13):
        due = headline.model.plan[number - 1].due
        await _cob_to(client, list(tracked.values()), today, due)
        today = due
        for loan in tracked.values():
            bills = await _bills(loans, loan.loan_id)
            assert bills[number] == D(loan.schedule[number - 1]["net_due"]), (loan.loan_id, number)
            state = (await client.get(f"/v1/loans/{loan.loan_id}")).json()
            assert state["amount_due"] == loan.schedule[number - 1]["net_due"]
            due_now = Fraction(state["amount_due"])
            if due_now:  # a poor household's interest-only instalment is all subsidy: 0.00 due
                await _pay(client, loan, due_now, today)
            await _agrees(loans, loan, today)
        await _ledger_agrees(loans, list(tracked.values()))
    assert headline.schedule[1]["net_due"] == "853.10"
    await _cob_to(client, list(tracked.values()), today, today + timedelta(days=3))
    for (kind, _), loan in tracked.items():
        state = (await client.get(f"/v1/loans/{loan.loan_id}")).json()
        assert state["status"] == "repaid" and state["days_past_due"] == 0
        assert await _bills(loans, loan.loan_id) == {x["number"]: D(x["net_due"]) for x in loan.schedule}
        assert D(state["subsidy_accrued"]) == sum((D(x["subsidy"]) for x in loan.schedule), D(0))
        if kind == "household":
            assert state["subsidy_accrued"] == "0.00"
        else:
            assert D(state["subsidy_accrued"]) > 0
    poor = tracked["poor", "equal_instalment"]
    assert (await client.get(f"/v1/loans/{poor.loan_id}")).json()["subsidy_accrued"] == "237.19"
    await _ledger_agrees(loans, list(tracked.values()))
