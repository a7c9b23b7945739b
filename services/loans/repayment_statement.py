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
import functools
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, insert, literal_column, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

from services.loans import ledger, loans
from services.loans.domain.loan_state import InstalmentDay, LoanDay
from services.loans.domain.repayment import payment_leaves_arrears
from services.loans.models import BusinessDate, CreditLine, Instalment, LedgerClose, LedgerEntry, Loan, Repayment
from shared.db import dialect_of
from shared.idempotency import REMEMBER
from shared.messaging.outbox import OUTBOX_COLUMNS as _OUTBOX_COLUMNS
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
        .join(BusinessDate.__table__, BusinessDate.__table__.c.id == literal_column("1"))
        .join(LedgerClose.__table__, LedgerClose.__table__.c.id == literal_column("1"))
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

Remember = Callable[[loans.Repaid], dict[str, object] | None]


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
    row = (await connection.exec_driver_sql(_driver_sql(_READ, connection.dialect), (loan_id,))).one_or_none()
    if row is None:
        return None
    loan = LoanDay(*(row[i] for i in range(len(_LOAN_FIELDS))))
    if loan.status != "active":
        raise Problem(409, "LOAN_CLOSED", "Loan closed", f"The loan is {loan.status}.")
    today: date = row.business_date
    loans.refuse_other_date(today, value_date)
    schedule = None
    if payment_leaves_arrears(loan, amount):
        billed = await connection.exec_driver_sql(_driver_sql(_BILLED, connection.dialect), (loan_id,))
        schedule = [InstalmentDay(x.loan_id, x.number, x.due_on, x.principal, x.billed) for x in billed]
    # Field by field, not dataclasses.astuple: it deep-copies each value (10% of the request's CPU).
    before = _fields(loan)
    applied = loans.applied_to(loan, amount, today, schedule)
    repaid = loans.booked(loan, amount, today, applied)
    ledger.refuse_closed(row.ledger_closed_through, repaid.postings)
    # The columns the rule changed, as the unit of work would write them.
    after = _fields(loan)
    changed = {name: new for name, old, new in zip(_LOAN_FIELDS, before, after, strict=True) if old != new}
    remembered = remember(repaid) if remember is not None else None
    shape = _Shape(tuple(changed), len(repaid.postings), len(repaid.events), remembered is not None)
    repayment = repaid.repayment
    values: dict[str, Any] = {
        "loan_id": loan_id,
        "loan_version": row.version,
        "loan_new_version": row.version + 1,
        "line_id": row.credit_line_id,
        "line_outstanding": row.line_outstanding - applied.principal,
        **{f"loan_{name}": value for name, value in changed.items()},
        **{f"repayment_{c.name}": getattr(repayment, c.name) for c in _repayments.columns},
        **{f"leg{n}_{k}": v for n, leg in enumerate(repaid.postings) for k, v in leg.items()},
        **{f"event{n}_{k}": v for n, event in enumerate(outbox_rows(repaid.events)) for k, v in event.items()},
        **(remembered or {}),
    }
    sql, order = _write_sql(shape, connection.dialect)
    counts = (await connection.exec_driver_sql(sql, tuple(values[name] for name in order))).one()
    expected = (1, 1, 1, shape.legs, shape.events, *((1,) if shape.remembered else ()))
    if tuple(counts) != expected:  # the rows are locked: only a bug gets here
        raise RuntimeError(f"repayment of loan {loan_id} wrote {tuple(counts)} rows, expected {expected}")
    emitted(session)
    return repaid


def _fields(loan: LoanDay) -> tuple[object, ...]:
    return tuple(getattr(loan, name) for name in _LOAN_FIELDS)


@functools.cache
def _driver_sql(statement: Select[Any], dialect: Dialect) -> str:
    """A read of this module compiled once, its only parameter the loan's id: executed as
    driver SQL, no cache key is computed per request."""
    compiled = statement.compile(dialect=dialect)
    assert compiled.positiontup == ["loan_id"], compiled.positiontup
    return compiled.string


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What the write statement's text depends on: the loan columns the rule changed, the
    number of ledger legs and of events, and whether it stores the idempotency answer. A few
    shapes occur (penalty or not, a class change, the loan repaid), each compiled once."""

    changed: tuple[str, ...]
    legs: int
    events: int
    remembered: bool


@functools.lru_cache(maxsize=256)
def _write_sql(shape: _Shape, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """The write statement of a shape, compiled once for the dialect (asyncpg), and the names of its
    parameters in order: executed as driver SQL, each call binds only its values (no
    statement built, no cache key computed per request: SQLAlchemy caches no multi-row
    VALUES, which compiled the statement anew each time, a millisecond of CPU)."""
    compiled = _counted(_writes(shape)).compile(dialect=dialect)
    assert compiled.positiontup is not None  # asyncpg's parameters are positional
    return compiled.string, tuple(compiled.positiontup)


def _writes(shape: _Shape) -> dict[str, UpdateBase]:
    """Each write of a repayment of ``shape``, its values bound by name (``repay_in_two_statements``).
    The loan's update keeps the optimistic version's check although the row is locked: a
    count other than 1 is a bug, not a race."""
    ledger_columns = [c for c in _ledger.columns if not c.primary_key]
    outbox_columns = [c for c in outbox.columns if c.name in _OUTBOX_COLUMNS]
    writes: dict[str, UpdateBase] = {
        "loan": update(_loans)
        .where(_loans.c.id == bindparam("loan_id"), _loans.c.version == bindparam("loan_version"))
        .values(
            {name: bindparam(f"loan_{name}") for name in shape.changed} | {"version": bindparam("loan_new_version")}
        )
        .returning(_loans.c.id),
        "line": update(_lines)
        .where(_lines.c.id == bindparam("line_id"))
        .values(outstanding=bindparam("line_outstanding"))
        .returning(_lines.c.id),
        "repayment": insert(_repayments)
        .values({c.name: bindparam(f"repayment_{c.name}") for c in _repayments.columns})
        .returning(_repayments.c.id),
        "ledger": insert(_ledger)
        .values([{c.name: bindparam(f"leg{n}_{c.name}") for c in ledger_columns} for n in range(shape.legs)])
        .returning(_ledger.c.id),
        # Inserted after the loan's row was locked (by the read), as shared/messaging asks: a
        # village's events get ids in commit order. repayment.received is always one of them.
        "events": insert(outbox)
        .values([{c.name: bindparam(f"event{n}_{c.name}") for c in outbox_columns} for n in range(shape.events)])
        .returning(outbox.c.id),
    }
    if shape.remembered:
        writes["remembered"] = REMEMBER.returning(literal_column("1"))  # only the count is read
    return writes


def _counted(writes: dict[str, UpdateBase]) -> Select[Any]:
    """One statement running every write as a data-modifying CTE (PostgreSQL runs each
    once, all in the statement's snapshot), answering how many rows each wrote, in order."""
    ctes = [statement.cte(f"{name}_written") for name, statement in writes.items()]
    return select(*(select(func.count()).select_from(cte).scalar_subquery().label(cte.name) for cte in ctes))
