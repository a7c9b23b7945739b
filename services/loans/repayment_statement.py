"""One repayment in two statements on PostgreSQL (issue 27): one that locks the loan and its
line and reads the business date and the ledger's closing date, and one data-modifying CTE
that writes everything the repayment books (the line, the loan and its version, the
repayment row, its ledger legs, its outbox events and the idempotency answer). The ORM path
(loans.repay_loan) took eleven round trips for the same rows.

The rules stay in Python and are the same calls as the ORM path's: ``loans.applied_to``
(domain/repayment.py ``apply_repayment``, the one home of the allocation rule),
``loans.booked`` (the repayment row, posting and events) and ``ledger.refuse_closed``; only
the reading and writing differ. tests/integration/test_repayment_statement.py runs the same
repayments both ways and compares every row.

Taken for a repayment on PostgreSQL with the default ``shorter_term`` prepayment; the rest
stays on the ORM path: SQLite (no data-modifying CTEs; its writers are serialised anyway),
``lower_instalment`` (it re-plans the schedule, domain/reschedule.py), and a database not
yet holding its business-date or ledger-close row (the ORM path makes them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import CTE, Select, Table, Update, bindparam, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger, loans
from services.loans.domain.loan_state import InstalmentDay, LoanDay
from services.loans.domain.repayment import payment_leaves_arrears
from services.loans.models import BusinessDate, CreditLine, Instalment, LedgerClose, LedgerEntry, Loan, Repayment
from shared.db import dialect_of
from shared.messaging.outbox import emitted, outbox_rows
from shared.platform_tables import outbox
from shared.problems import Problem

_loans = cast(Table, Loan.__table__)
_lines = cast(Table, CreditLine.__table__)
_instalments = cast(Table, Instalment.__table__)
_repayments = cast(Table, Repayment.__table__)
_ledger = cast(Table, LedgerEntry.__table__)
_LOAN_FIELDS = tuple(f.name for f in dataclasses.fields(LoanDay))

# The loan and its line FOR UPDATE, then the business date and the ledger's closing date FOR
# SHARE: PostgreSQL locks a result row's rows in the order the FROM names them, so this is
# the order of the ORM path's two statements (loans._locked_loan, then context.business_date
# with hold), and of every other writer of these rows. The two singleton rows join as a
# product of one row each; either missing, there is no row and the ORM path makes it.
_READ: Select[Any] = (
    select(
        *(_loans.c[name] for name in _LOAN_FIELDS),
        _loans.c.version,
        _loans.c.credit_line_id,
        _lines.c.outstanding.label("line_outstanding"),
        BusinessDate.__table__.c.current.label("business_date"),
        LedgerClose.__table__.c.closed_through.label("ledger_closed_through"),
    )
    .select_from(
        _loans.join(_lines, _lines.c.id == _loans.c.credit_line_id)
        .join(BusinessDate.__table__, BusinessDate.__table__.c.id == 1)
        .join(LedgerClose.__table__, LedgerClose.__table__.c.id == 1)
    )
    .where(_loans.c.id == bindparam("loan_id"))
    .with_for_update(of=[_loans, _lines])
    .suffix_with("FOR SHARE OF business_date, ledger_close")
)

_BILLED: Select[Any] = (
    select(
        _instalments.c.loan_id,
        _instalments.c.number,
        _instalments.c.due_on,
        _instalments.c.principal,
        _instalments.c.billed,
    )
    .where(_instalments.c.loan_id == bindparam("loan_id"), _instalments.c.billed.is_not(None))
    .order_by(_instalments.c.number)
)

Remember = Callable[[loans.Repaid], Update | None]


async def repay_loan(
    session: AsyncSession,
    loan_id: str,
    amount: Decimal,
    value_date: date | None,
    prepayment: loans.Prepayment = "shorter_term",
    *,
    remember: Remember | None = None,
) -> loans.Repaid:
    """``loans.repay_loan``'s repayment, in two statements where it can be (module
    docstring), else by the ORM path. ``remember``: the idempotency answer's UPDATE for the
    repayment (shared/idempotency.py ``remembering``), written with it."""
    if prepayment == "shorter_term" and dialect_of(session) == "postgresql":
        repaid = await repay_in_two_statements(session, loan_id, amount, value_date, remember)
        if repaid is not None:
            return repaid
    return await loans.repay_loan(session, loan_id, amount, value_date, prepayment)


async def repay_in_two_statements(
    session: AsyncSession,
    loan_id: str,
    amount: Decimal,
    value_date: date | None,
    remember: Remember | None = None,
) -> loans.Repaid | None:
    """A ``shorter_term`` repayment on PostgreSQL (two statements, three when it leaves
    arrears and the rule needs the billed instalments), with the ORM path's refusals; None
    when the loan or a singleton row is missing (the ORM path answers 404 or makes the row)."""
    connection = await session.connection()
    row = (await connection.execute(_READ, {"loan_id": loan_id})).one_or_none()
    if row is None:
        return None
    loan = LoanDay(*(row[i] for i in range(len(_LOAN_FIELDS))))
    if loan.status != "active":
        raise Problem(409, "LOAN_CLOSED", "Loan closed", f"The loan is {loan.status}.")
    today: date = row.business_date
    loans.refuse_other_date(today, value_date)
    schedule = None
    if payment_leaves_arrears(loan, amount):
        schedule = [InstalmentDay(*x) for x in await connection.execute(_BILLED, {"loan_id": loan_id})]
    before = dataclasses.astuple(loan)
    applied = loans.applied_to(loan, amount, today, schedule)
    repaid = loans.booked(loan, amount, today, applied)
    ledger.refuse_closed(row.ledger_closed_through, repaid.postings)
    # The columns the rule changed, as the unit of work would write them.
    changed = {
        name: value
        for name, old, value in zip(_LOAN_FIELDS, before, dataclasses.astuple(loan), strict=True)
        if old != value
    }
    written = _writes(
        loan_id,
        row.version,
        changed,
        row.credit_line_id,
        row.line_outstanding - applied.principal,
        repaid,
        remember(repaid) if remember is not None else None,
    )
    counts = (await connection.execute(_counted(written))).one()
    expected = {"loan": 1, "line": 1, "repayment": 1, "ledger": len(repaid.postings), "events": len(repaid.events)}
    if "remembered" in written:
        expected["remembered"] = 1
    if dict(counts._mapping) != expected:  # the rows are locked: only a bug gets here
        raise RuntimeError(f"repayment of loan {loan_id} wrote {dict(counts._mapping)}, expected {expected}")
    emitted(session)
    return repaid


def _writes(
    loan_id: str,
    version: int,
    changed: dict[str, object],
    line_id: str,
    line_outstanding: Decimal,
    repaid: loans.Repaid,
    remembered: Update | None,
) -> dict[str, CTE]:
    """Each write of the repayment as a CTE, by name. The loan's update keeps the optimistic
    version's check although the row is locked: a count other than 1 is a bug, not a race."""
    repayment = repaid.repayment
    writes = {
        "loan": update(_loans)
        .where(_loans.c.id == loan_id, _loans.c.version == version)
        .values(**changed, version=version + 1)
        .returning(_loans.c.id),
        "line": update(_lines)
        .where(_lines.c.id == line_id)
        .values(outstanding=line_outstanding)
        .returning(_lines.c.id),
        "repayment": insert(_repayments)
        .values({c.name: getattr(repayment, c.name) for c in _repayments.columns})
        .returning(_repayments.c.id),
        "ledger": insert(_ledger).values(repaid.postings).returning(_ledger.c.id),
    }
    # Inserted after the loan's row was locked (by the read), as shared/messaging asks: a
    # village's events get ids in commit order. repayment.received is always one of them.
    writes["events"] = insert(outbox).values(outbox_rows(repaid.events)).returning(outbox.c.id)
    if remembered is not None:
        writes["remembered"] = remembered.returning(literal_column("1"))  # only the count is read
    return {name: statement.cte(f"{name}_written") for name, statement in writes.items()}


def _counted(written: dict[str, CTE]) -> Select[Any]:
    """One statement running every write (PostgreSQL runs each data-modifying CTE once, all
    in the statement's snapshot), answering how many rows each wrote."""
    return select(
        *(select(func.count()).select_from(cte).scalar_subquery().label(name) for name, cte in written.items())
    )
