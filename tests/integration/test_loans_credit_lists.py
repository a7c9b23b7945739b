"""Loans' side of the red and black lists (issue 11) on both backends: risk's listings arrive
as the events risk publishes. Joint punishment: a blacklisted subject gets no new credit (409
BLACKLISTED) and no subsidy while listed; joint rewards: a red-listed subject's new loans are
discounted and flagged for priority."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
import pytest
from sqlalchemy import func, select

from services.loans.models import CreditLine, LedgerEntry, ListEntry, Loan, RatingView, VillageView
from shared.catalogue import RatingCertified, RatingDowngraded, SubjectDelisted, SubjectListed, VillageFreeze
from shared.events import Envelope, new_event
from tests.conftest import Infra
from tests.support.loans import ledger_matches_loans
from tests.support.system import System
from tests.support.waiting import wait_until

VILLAGE, TOWNSHIP = "410102003001", "410102003"
START = date(2026, 1, 15)
Kind = Literal["household", "business"]


@pytest.fixture
async def loans(infra: Infra) -> AsyncIterator[System]:
    async with System(infra, ["loans"], start_date=START) as system:
        yield system


def _rating(subject: str, limit: str, kind: Kind = "household", rating_id: int = 1) -> Envelope:
    return new_event(
        "scoring.rating.certified",
        VILLAGE,
        RatingCertified(
            subject_kind=kind,
            subject_id=subject,
            village_code=VILLAGE,
            township_code=TOWNSHIP,
            rating_id=rating_id,
            grade="AA",
            credit_limit=limit,
            certificate_no=f"XYZ-2026-{rating_id}",
        ),
    )


async def _rated(system: System, limit: str = "100000.00", kind: Kind = "household") -> str:
    subject = str(uuid.uuid4())
    await system.publish(_rating(subject, limit, kind))

    async def seen() -> bool:
        async with system.runtimes["loans"].read_sessions() as session:
            return await session.get(RatingView, subject) is not None

    await wait_until(seen, what="the certified rating to reach loans")
    return subject


async def _line(system: System, limit: str = "100000.00", kind: Kind = "household") -> tuple[str, str]:
    subject = await _rated(system, limit, kind)
    r = await system["loans"].post("/v1/credit-lines", json={f"{kind}_id": subject})
    assert r.status_code == 201, r.text
    return subject, str(r.json()["credit_line_id"])


def _listed(subject: str, list_: Literal["red", "black"], cause: str, *, kind: Kind = "household", **kw: Any) -> Any:
    payload = SubjectListed(
        entry_id=kw.pop("entry_id", str(uuid.uuid4())),
        list=list_,
        subject_kind=kind,
        subject_id=subject,
        village_code=VILLAGE,
        township_code=TOWNSHIP,
        cause=cause,
        tier="serious" if list_ == "black" else None,
        legal_basis="Opinions on joint punishment of dishonest subjects (seed 001)",
        decided_by_role="government",
        listed_on=kw.pop("listed_on", START),
    )
    return new_event("risk.subject.listed", VILLAGE, payload)


def _delisted(listed: Envelope, reason: str = "repaired", on: date = START) -> Envelope:
    p = listed.payload
    payload = SubjectDelisted(
        entry_id=p["entry_id"],
        list=p["list"],
        subject_kind=p["subject_kind"],
        subject_id=p["subject_id"],
        village_code=VILLAGE,
        township_code=TOWNSHIP,
        reason=reason,
        legal_basis="credit repair decision",
        decided_by_role="government",
        delisted_on=on,
    )
    return new_event("risk.subject.delisted", VILLAGE, payload)


async def _entry_active(system: System, entry_id: str) -> bool | None:
    async with system.runtimes["loans"].read_sessions() as session:
        entry = await session.get(ListEntry, entry_id)
    return None if entry is None else entry.active


async def _wait_entry(system: System, listed: Envelope, active: bool) -> None:
    async def arrived() -> bool:
        return await _entry_active(system, listed.payload["entry_id"]) is active

    await wait_until(arrived, what=f"the entry to be {'listed' if active else 'delisted'} in loans")


async def _counts(system: System) -> tuple[int, int, int]:
    async with system.runtimes["loans"].read_sessions() as session:
        return (
            await session.scalar(select(func.count()).select_from(Loan)) or 0,
            await session.scalar(select(func.count()).select_from(CreditLine)) or 0,
            await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        )


async def _draw(client: httpx.AsyncClient, line: str, amount: str = "1000.00", **kw: Any) -> httpx.Response:
    return await client.post("/v1/loans", json={"credit_line_id": line, "amount": amount, "term_months": 12} | kw)


async def test_a_court_entry_blocks_drawdowns_and_a_repair_restores_them(loans: System, infra: Infra) -> None:
    subject, line = await _line(loans)
    client = loans["loans"]
    assert (await _draw(client, line)).status_code == 201
    court = _listed(subject, "black", "court_dishonest_debtor")
    started = time.monotonic()
    await loans.publish(court)
    # loans' own view of the entry, a read: polling with drawdowns lent 1,000.00 per poll
    # while the entry was on its way. The < 1 s target is bench/'s to measure.
    await _wait_entry(loans, court, True)
    print(f"\n    court entry → loans' view after {time.monotonic() - started:.3f}s ({infra.backend})")
    before = await _counts(loans)
    r = await _draw(client, line)
    problem = r.json()
    assert (r.status_code, problem["code"]) == (409, "BLACKLISTED")
    assert court.payload["entry_id"] in problem["detail"] and "court_dishonest_debtor" in problem["detail"]
    assert subject not in problem["detail"], "no personal data in the refusal"
    assert problem["entries"] == [court.payload["entry_id"]]
    assert await _counts(loans) == before, "a refusal writes nothing"
    state = (await client.get(f"/v1/credit-lines/{line}")).json()
    assert (state["status"], state["priority"]) == ("active", False), "repayments and collection continue"

    await loans.publish(_delisted(court, "repaired"))
    await _wait_entry(loans, court, False)
    r = await _draw(client, line)
    assert r.status_code == 201, r.text
    state = (await client.get(f"/v1/credit-lines/{line}")).json()
    assert state["available"] == "98000.00", "two drawdowns of 1,000.00, the refused one wrote nothing"


async def test_a_blacklisted_subject_cannot_open_a_credit_line(loans: System, infra: Infra) -> None:
    subject = await _rated(loans)
    listed = _listed(subject, "black", "malicious_debt_evasion")
    await loans.publish(listed)
    await _wait_entry(loans, listed, True)
    before = await _counts(loans)
    r = await loans["loans"].post("/v1/credit-lines", json={"household_id": subject})
    assert (r.status_code, r.json()["code"]) == (409, "BLACKLISTED"), r.text
    assert await _counts(loans) == before


async def test_blocked_while_any_black_entry_is_active_and_duplicates_are_harmless(loans: System, infra: Infra) -> None:
    subject, line = await _line(loans)
    client = loans["loans"]
    court = _listed(subject, "black", "court_dishonest_debtor")
    bank = _listed(subject, "black", "malicious_debt_evasion")
    await loans.publish(court, bank, court)  # the same event twice: the inbox drops the second
    await _wait_entry(loans, court, True)
    await _wait_entry(loans, bank, True)

    court_out = _delisted(court, "repaired")
    # Delivered twice, and once more as a new event (risk re-sent it, later): one delisting,
    # on its first date (the subsidy's days on the list count to it).
    await loans.publish(court_out, court_out, _delisted(court, "repaired", on=START + timedelta(days=3)))
    await _wait_entry(loans, court, False)
    r = await _draw(client, line)
    assert (r.status_code, r.json()["code"]) == (409, "BLACKLISTED"), "the bank's entry still stands"
    assert r.json()["entries"] == [bank.payload["entry_id"]]
    # A listing replayed after its delisting does not bring the entry back.
    await loans.publish(_listed(subject, "black", "court_dishonest_debtor", entry_id=court.payload["entry_id"]))
    await loans.publish(_delisted(bank, "court_removed"))
    await _wait_entry(loans, bank, False)
    r = await _draw(client, line)  # both delisted in loans' view: lends at once, no polling
    assert r.status_code == 201, r.text
    async with loans.runtimes["loans"].read_sessions() as session:
        entries = {e.entry_id: e for e in await session.scalars(select(ListEntry))}
    assert set(entries) == {court.payload["entry_id"], bank.payload["entry_id"]}
    assert (entries[court.payload["entry_id"]].active, entries[court.payload["entry_id"]].delisted_on) == (False, START)


async def test_a_blacklisted_limit_is_not_raised_until_delisted_but_is_lowered(loans: System, infra: Infra) -> None:
    subject, line = await _line(loans, limit="50000.00")
    client = loans["loans"]
    listed = _listed(subject, "black", "court_dishonest_debtor")
    await loans.publish(listed)
    await _wait_entry(loans, listed, True)

    async def limit_in_view(limit: str) -> bool:
        async with loans.runtimes["loans"].read_sessions() as session:
            view = await session.get(RatingView, subject)
        return view is not None and view.credit_limit == Decimal(limit)

    async def line_limit() -> str:
        return str((await client.get(f"/v1/credit-lines/{line}")).json()["limit"])

    await loans.publish(_rating(subject, "150000.00", rating_id=2))
    await wait_until(lambda: limit_in_view("150000.00"), what="the upgrade to reach loans")
    assert await line_limit() == "50000.00", "a raise is new credit: held while blacklisted"

    await loans.publish(
        new_event(
            "scoring.rating.downgraded",
            VILLAGE,
            RatingDowngraded(
                subject_kind="household",
                subject_id=subject,
                village_code=VILLAGE,
                township_code=TOWNSHIP,
                rating_id=3,
                grade="A",
                credit_limit="30000.00",
                previous_grade="AAA",
                previous_limit="150000.00",
                certificate_no="XYZ-2026-3",
            ),
        )
    )

    async def lowered() -> bool:
        return await line_limit() == "30000.00"

    await wait_until(lowered, what="the downgrade to lower a blacklisted line")
    await loans.publish(_rating(subject, "150000.00", rating_id=4))
    await wait_until(lambda: limit_in_view("150000.00"), what="the second upgrade to reach loans")

    # A freeze lifting elsewhere in the village must not release a blacklisted line's raise.
    def freeze(event_type: str) -> Envelope:
        return new_event(
            event_type,
            VILLAGE,
            VillageFreeze(
                village_code=VILLAGE,
                township_code=TOWNSHIP,
                npl_ratio="0.0400",
                outstanding="100000.00",
                non_performing="4000.00",
                manual=True,
                reason="test",
            ),
        )

    await loans.publish(freeze("risk.village.frozen"), freeze("risk.village.unfrozen"))

    async def lifted() -> bool:
        async with loans.runtimes["loans"].read_sessions() as session:
            village = await session.get(VillageView, VILLAGE)
        return village is not None and not village.frozen

    await wait_until(lifted, what="the freeze and its lifting to reach loans")
    assert await line_limit() == "30000.00", "still held: blacklisted"

    await loans.publish(_delisted(listed, "repaired"))

    async def raised() -> bool:
        return await line_limit() == "150000.00"

    await wait_until(raised, what="the held raise to apply once delisted")


async def test_the_red_list_discounts_new_loans_and_flags_priority(loans: System, infra: Infra) -> None:
    subject, line = await _line(loans)
    client = loans["loans"]
    red = _listed(subject, "red", "trustworthy")
    await loans.publish(red)
    await _wait_entry(loans, red, True)
    assert (await client.get(f"/v1/credit-lines/{line}")).json()["priority"] is True
    r = await _draw(client, line, "12000.00", repayment_method="equal_principal")
    assert r.status_code == 201, r.text
    discounted = r.json()
    # benchmark 4.35% less the default 0.25 points; 12000 * 0.041 / 12 = 41.00 in the first month
    assert (discounted["annual_rate"], discounted["red_list_discount"]) == ("0.041000", "0.002500")
    assert discounted["priority"] is True
    assert discounted["schedule"][0]["interest"] == "41.00"

    await loans.publish(_delisted(red, "blacklisted"))
    await _wait_entry(loans, red, False)
    assert (await client.get(f"/v1/credit-lines/{line}")).json()["priority"] is False
    plain = (await _draw(client, line, "12000.00", repayment_method="equal_principal")).json()
    assert (plain["annual_rate"], plain["red_list_discount"], plain["priority"]) == ("0.043500", "0.000000", False)
    earlier = (await client.get(f"/v1/loans/{discounted['loan_id']}")).json()
    assert (earlier["annual_rate"], earlier["red_list_discount"]) == ("0.041000", "0.002500"), "fixed at drawdown"
    assert earlier["priority"] is False


async def test_no_subsidy_accrues_for_the_days_a_business_is_blacklisted(loans: System, infra: Infra) -> None:
    client = loans["loans"]
    listed_subject, listed_line = await _line(loans, kind="business")
    _, clean_line = await _line(loans, kind="business")
    body = {"amount": "100000.00", "repayment_method": "interest_only"}
    listed_loan = (await _draw(client, listed_line, **body)).json()
    clean_loan = (await _draw(client, clean_line, **body)).json()
    assert listed_loan["subsidy_rate"] == "0.030000" and listed_loan["subsidy_forfeited"] == "0.00"

    async def cob(day: date) -> None:
        assert (await client.post("/v1/cob", json={"date": str(day)})).status_code == 200

    async def loan(loan_id: str) -> dict[str, Any]:
        return dict((await client.get(f"/v1/loans/{loan_id}")).json())

    await cob(START + timedelta(days=5))
    court = _listed(listed_subject, "black", "court_dishonest_debtor", kind="business", listed_on=START + timedelta(5))
    await loans.publish(court)
    await _wait_entry(loans, court, True)
    granted_before = (await loan(listed_loan["loan_id"]))["subsidy_accrued"]
    await cob(START + timedelta(days=10))  # 20-24 January closed while blacklisted
    during = await loan(listed_loan["loan_id"])
    assert during["subsidy_accrued"] == granted_before, "no subsidy while blacklisted"
    # 100000 * 3% / 12 = 250.00 for the period (31 days); days 6 to 10 of it: 80.65 - 40.32
    assert during["subsidy_forfeited"] == "40.33"

    await loans.publish(_delisted(court, "repaired", on=START + timedelta(days=10)))
    await _wait_entry(loans, court, False)
    await cob(START + timedelta(days=40))  # past the first due date: the period is billed
    listed_now, clean_now = await loan(listed_loan["loan_id"]), await loan(clean_loan["loan_id"])
    assert Decimal(listed_now["subsidy_accrued"]) > Decimal(during["subsidy_accrued"]), "subsidised again"
    forfeited = Decimal(listed_now["subsidy_forfeited"])
    assert forfeited == Decimal("40.33"), "forfeited days are not caught up after delisting"
    assert Decimal(listed_now["subsidy_accrued"]) + forfeited == Decimal(clean_now["subsidy_accrued"])

    # The borrower owes the forfeited subsidy: billed as interest with the first instalment.
    # Both bills are unpaid 9 days past the due date, so both owe penalty too, and the listed
    # borrower's compound interest runs on more interest (issue 24): compared without it.
    def due_without_penalty(loan: dict[str, Any]) -> Decimal:
        return Decimal(loan["amount_due"]) - Decimal(loan["penalty_outstanding"])

    assert due_without_penalty(listed_now) == due_without_penalty(clean_now) + forfeited
    assert Decimal(listed_now["penalty_outstanding"]) > Decimal(clean_now["penalty_outstanding"])
    await ledger_matches_loans(loans)
