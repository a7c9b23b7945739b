"""A varied book of loans built day by day, for tests that close it two ways and compare
(tests/integration/test_cob_equivalence.py, test_cob_accrual.py).

Loans of every method, several day counts and terms (one anchored on 31 January, some
maturing), poor households fully subsidised, businesses at 3%, subjects blacklisted for a
while or for good, and borrowers who pay on time, late, in part, ahead, in full, one day
late, never (some written off). ``setup_book`` makes the database, ``business_of_the_day``
draws the day's loans and books the day's repayments and write-offs; ``loan_rows`` and
``everything_else`` read what the two books are compared on."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.loans.domain import loan_state
from services.loans.domain.schedule import build_schedule
from services.loans.loans import record, repay, write_off
from services.loans.models import (
    BusinessDate,
    CobRun,
    CreditLine,
    Instalment,
    LedgerEntry,
    ListEntry,
    Loan,
    Repayment,
)
from shared.db import create_engine, create_sessionmaker
from shared.messaging import outbox
from shared.migrations import upgrade
from shared.settings import CommonSettings
from vcredit.services import load_spec

START = date(2026, 1, 1)
LOANS = 36
D = Decimal
ZERO = D("0.00")
METHODS = ("equal_instalment", "equal_principal", "interest_only")
TERMS = (1, 3, 6, 12, 12, 24)
DAY_COUNTS = ("30/360", "ACT/365", "ACT/360", "30/360")
SUBJECTS = {4: "black-a", 10: "black-a", 15: "black-b", 19: "black-c", 20: "black-c"}  # all subsidised
BLACK = [  # entry, subject, listed, delisted (days from START)
    ("e1", "black-a", 20, 90),
    ("e2", "black-b", 5, None),
    ("e3", "black-c", 200, 250),
    ("e4", "black-c", 230, 300),  # overlaps e3: listed once, not twice
    ("e5", "subject-30", 500, None),  # after the run
]


def disbursed_on(i: int) -> date:
    return START + timedelta(days=30 if i == 5 else (i * 7) % 41)  # loan 5: on 31 January


def new_loan(i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    on = disbursed_on(i)
    term = TERMS[i % len(TERMS)]
    rate = D("0.0475") if term > 12 else D("0.0435")
    kind = "business" if i % 5 == 4 else "household"
    if kind == "business":
        rate, subsidy_rate = rate * D("1.10"), D("0.03")
    else:
        subsidy_rate = rate if i % 5 == 0 else D(0)  # poor households: 全额贴息
    amount = D(3000 + 1237 * i) + D(i % 3) / 7
    amount = amount.quantize(D("0.01"))
    method, day_count = METHODS[i % 3], DAY_COUNTS[i % 4]
    plan = build_schedule(amount, rate, term, method, on, day_count, subsidy_rate)  # type: ignore[arg-type]
    loan_id = str(uuid.UUID(int=i + 1))
    row = {
        "id": loan_id,
        "credit_line_id": "line",
        "subject_id": SUBJECTS.get(i, f"subject-{i}"),
        "subject_kind": kind,
        "village_code": f"V{i % 4}",
        "township_code": "T",
        "principal": amount,
        "annual_rate": rate,
        "subsidy_rate": subsidy_rate,
        "red_list_discount": D(0),
        "day_count": day_count,
        "method": method,
        "term_months": term,
        "disbursed_on": on,
        "maturity_on": plan[-1].due_on,
        "version": 1,
        **loan_state.opening_state(plan, amount, on),  # as a drawdown writes it
    }
    return row, loan_state.instalment_rows(loan_id, plan)


def payment(i: int, loan: Loan, today: date) -> Decimal | None:
    """What borrower ``i`` pays today, before the day closes (None: nothing)."""
    due = loan_state.arrears(loan)
    dpd, age = loan.days_past_due, (today - loan.disbursed_on).days
    behaviour = i % 7
    if behaviour == 5 and age == 100:  # pays everything off
        return loan.principal_outstanding + loan.interest_outstanding
    if behaviour == 4 and age == 50:  # pays a third of the principal ahead
        return loan.interest_outstanding + (loan.principal_outstanding / 3).quantize(D("0.01"))
    if not due:
        return None
    if behaviour in (0, 4, 5):
        return due if dpd == 0 else None  # on the due date
    if behaviour == 1:
        return due if dpd == 45 else None
    if behaviour == 2:
        return (due / 2).quantize(D("0.01")) if dpd % 30 == 10 else None
    if behaviour == 6:
        return due if dpd == 1 else None
    return None  # 3: never pays


async def setup_book(url: str) -> async_sessionmaker[AsyncSession]:
    await asyncio.to_thread(upgrade, load_spec("loans").migrations_dir, url)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":  # a commit without fsync: thousands of them below

        @event.listens_for(engine.sync_engine, "connect")
        def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    sessions = create_sessionmaker(engine, info={"settings": CommonSettings(start_date=START)})
    async with sessions() as session, session.begin():
        session.add(BusinessDate(id=1, current=START))
        session.add(
            CreditLine(
                id="line",
                subject_id="s",
                subject_kind="household",
                village_code="V",
                township_code="T",
                limit=D("1e9"),
                outstanding=D("1e8"),
                status="active",
                opened_on=START,
                version=1,
            )
        )
        for entry, subject, listed, delisted in BLACK:
            session.add(
                ListEntry(
                    entry_id=entry,
                    list="black",
                    subject_kind="household",
                    subject_id=subject,
                    cause="dishonest_debtor_list",
                    active=delisted is None,
                    listed_on=START + timedelta(days=listed),
                    delisted_on=None if delisted is None else START + timedelta(days=delisted),
                )
            )
    return sessions


async def business_of_the_day(sessions: async_sessionmaker[AsyncSession], today: date) -> None:
    """Loans disbursed today, then today's repayments and write-offs, in loan order."""
    new = [new_loan(i) for i in range(LOANS) if disbursed_on(i) == today]
    async with sessions() as session, session.begin():
        if new:
            await session.execute(insert(Loan), [row for row, _ in new])
            await session.execute(insert(Instalment), [x for _, xs in new for x in xs])
        line = await session.get(CreditLine, "line")
        assert line is not None
        loans = await session.scalars(select(Loan).where(Loan.status == "active").order_by(Loan.id))
        for loan in loans:
            i = uuid.UUID(loan.id).int - 1
            amount = payment(i, loan, today)
            if amount:
                await record(session, [await repay(session, loan, line, amount, today)])
            elif i % 14 == 3 and loan.classification == "substandard":
                await write_off(session, loan, line, today)


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, date):
        return value.isoformat()
    return value


async def table_rows(session: AsyncSession, table: Any, order: Any, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    result = await session.execute(select(table).order_by(*order))
    return [{k: plain(v) for k, v in row._mapping.items() if k not in drop} for row in result]


async def loan_rows(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as session:
        return await table_rows(session, Loan.__table__, [Loan.id])


async def everything_else(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with sessions() as session:
        instalments = await table_rows(session, Instalment.__table__, [Instalment.loan_id, Instalment.number])
        legs = await table_rows(session, LedgerEntry.__table__, [LedgerEntry.id], drop=("id",))
        txns: dict[str, int] = {}
        for leg in legs:  # posting ids are random: number them in order of appearance
            leg["txn_id"] = txns.setdefault(leg["txn_id"], len(txns))
        repayments = await table_rows(
            session, Repayment.__table__, [Repayment.loan_id, Repayment.business_date], drop=("id", "received_at")
        )
        runs = await table_rows(session, CobRun.__table__, [CobRun.business_date], drop=("started_at", "finished_at"))
        events = []
        for envelope in (await session.execute(select(outbox.c.envelope).order_by(outbox.c.id))).scalars():
            event = json.loads(envelope)
            del event["event_id"], event["occurred_at"]
            event["payload"].pop("repayment_id", None)
            events.append(event)
        current = await session.get(BusinessDate, 1)
        assert current is not None
    return {
        "instalments": instalments,
        "ledger": legs,
        "repayments": repayments,
        "runs": runs,
        "events": events,
        "business_date": current.current.isoformat(),
    }


def first_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return str({k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)} | {"id": x.get("id")})
    return f"{len(a)} rows against {len(b)}"
