"""The one-statement repayment (services/loans/repayment_statement.py) books what the ORM path
(loans.repay_loan) books, row for row, and refuses what it refuses, on PostgreSQL (SQLite
keeps the ORM path: its case is the embedded backend of every other repayment test).

The varied book of tests/support/cob_book.py is built day by day in two databases alike and
closed by the same close of business; each day's repayments go through the new path in one
and the ORM path in the other: on time, late (with penalty and compound interest), partial,
ahead of schedule, paid off; and attempts each path must refuse the same way (overpayment,
another value date, a closed period, a loan no longer active). After every day the loan
rows must be equal, and at the end the line, the repayments, the ledger and the events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.loans import cob, loans, repayment_statement
from services.loans.domain import loan_state
from services.loans.models import CreditLine, Instalment, LedgerClose, Loan
from shared.problems import Problem
from tests.conftest import Infra
from tests.support.cob_book import (
    LOANS,
    START,
    disbursed_on,
    everything_else,
    first_difference,
    loan_rows,
    new_loan,
    payment,
    setup_book,
    table_rows,
)

pytestmark = pytest.mark.integration

DAYS = 130  # past the book's payoffs (day 100 of a loan), 45 days late and the partial payers

Repay = Callable[[AsyncSession, str, Decimal, date | None], Awaitable[loans.Repaid]]


async def _one_statement(session: AsyncSession, loan_id: str, amount: Decimal, value_date: date | None) -> loans.Repaid:
    repaid = await repayment_statement.repay_in_two_statements(session, loan_id, amount, value_date)
    assert repaid is not None, "the one-statement path fell back"
    return repaid


async def _orm(session: AsyncSession, loan_id: str, amount: Decimal, value_date: date | None) -> loans.Repaid:
    return await loans.repay_loan(session, loan_id, amount, value_date)


Outcome = tuple[str, ...]


async def _attempt(
    sessions: async_sessionmaker[AsyncSession],
    repay: Repay,
    loan_id: str,
    amount: Decimal,
    value_date: date | None = None,
    *,
    close_through: date | None = None,
) -> Outcome:
    """One repayment in its own transaction: what it answered (the balances after it) or its
    refusal. ``close_through``: the ledger closed through that day first, in the same
    transaction (rolled back with the refusal)."""
    try:
        async with sessions() as session, session.begin():
            if close_through is not None:
                closed = update(LedgerClose).where(LedgerClose.id == 1).values(closed_through=close_through)
                await session.execute(closed)
            r = await repay(session, loan_id, amount, value_date)
    except Problem as refused:
        return ("refused", str(refused.status), refused.code, refused.detail, repr(sorted(refused.extra.items())))
    x = r.repayment
    booked = (x.loan_id, x.amount, x.interest, x.principal, x.penalty, x.business_date)
    after = (r.principal_outstanding, r.interest_outstanding, r.penalty_outstanding)
    return ("repaid", *map(str, booked + after), *(e.type for e in r.events))


async def _day(sessions: async_sessionmaker[AsyncSession], today: date, repay: Repay) -> list[Outcome]:
    """The book's loans disbursed today, then today's repayments (cob_book.payment) and the
    attempts to refuse, each its own transaction, in loan order."""
    new = [new_loan(i) for i in range(LOANS) if disbursed_on(i) == today]
    one = Decimal("1.00")
    attempts: list[tuple[str, Decimal, date | None, date | None]] = []  # loan, amount, value date, closed through
    async with sessions() as session, session.begin():
        if new:
            await session.execute(insert(Loan), [row for row, _ in new])
            await session.execute(insert(Instalment), [x for _, xs in new for x in xs])
        for loan in await session.scalars(select(Loan).order_by(Loan.id)):
            i = uuid.UUID(loan.id).int - 1
            age = (today - loan.disbursed_on).days
            if loan.status != "active":
                if age % 40 == 0:  # LOAN_CLOSED
                    attempts.append((loan.id, one, None, None))
                continue
            if age == 20 + i % 5:  # OVERPAYMENT, NOT_THE_BUSINESS_DATE, PERIOD_CLOSED
                everything = loan.principal_outstanding + loan.interest_outstanding + loan.penalty_outstanding
                attempts.append((loan.id, everything + Decimal("0.01"), None, None))
                attempts.append((loan.id, one, today - timedelta(days=1), None))
                attempts.append((loan.id, one, None, today))
            if amount := payment(i, loan, today):
                attempts.append((loan.id, amount, None, None))
            elif i % 7 == 3 and loan.days_past_due == 12:  # a never-payer pays some penalty
                attempts.append((loan.id, min(loan.penalty_outstanding, Decimal("3.00")), None, None))
            elif i % 7 == 3 and loan.days_past_due == 35:  # and all it owes: back to normal
                attempts.append((loan.id, loan_state.arrears(loan) + loan.penalty_outstanding, None, None))
    return [
        await _attempt(sessions, repay, loan_id, amount, value_date, close_through=closed)
        for loan_id, amount, value_date, closed in attempts
    ]


@pytest.fixture
async def two_books(postgresql_infra: Infra) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], ...]]:
    # PostgreSQL only: SQLite keeps the ORM path (no data-modifying CTEs).
    statement = await setup_book(await postgresql_infra.database_url("repay_statement"))
    orm = await setup_book(await postgresql_infra.database_url("repay_orm"))
    yield statement, orm
    for sessions in (statement, orm):
        await sessions.kw["bind"].dispose()


async def test_the_repayment_statement_books_what_the_orm_path_books(
    two_books: tuple[async_sessionmaker[AsyncSession], ...],
) -> None:
    statement, orm = two_books
    seen: list[Outcome] = []
    for n in range(DAYS):
        today = START + timedelta(days=n)
        ours = await _day(statement, today, _one_statement)
        theirs = await _day(orm, today, _orm)
        assert ours == theirs, f"{today}: {next((a, b) for a, b in zip(ours, theirs, strict=False) if a != b)}"
        seen += ours
        for sessions in two_books:
            await cob.close_until(sessions, today + loan_state.DAY)
        rows, reference = await loan_rows(statement), await loan_rows(orm)
        assert rows == reference, f"{today}: {first_difference(rows, reference)}"
    rest, reference_rest = await everything_else(statement), await everything_else(orm)
    for part in rest:
        assert rest[part] == reference_rest[part], f"{part}: {first_difference(rest[part], reference_rest[part])}"
    lines: list[list[dict[str, Any]]] = []
    for sessions in two_books:
        async with sessions() as session:
            lines.append(await table_rows(session, CreditLine.__table__, [CreditLine.id]))
    assert lines[0] == lines[1]
    # The book went through what it is meant to: each refusal, penalties paid, loans repaid.
    assert {x[2] for x in seen if x[0] == "refused"} == {
        "OVERPAYMENT",
        "NOT_THE_BUSINESS_DATE",
        "PERIOD_CLOSED",
        "LOAN_CLOSED",
    }
    repaid = [x for x in seen if x[0] == "repaid"]
    assert any(Decimal(x[5]) > 0 for x in repaid), "no penalty paid"
    assert any("loans.loan.repaid" in x for x in repaid)
    assert any("loans.loan.classified" in x for x in repaid)
    assert len(rest["repayments"]) == len(repaid)
