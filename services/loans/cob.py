"""Close of business: each business day before the target date, in order.

A day is closed in chunks of loans, one transaction each; the run's cursor is committed
with the chunk, and each loan remembers the last day closed for it, so a crash leaves no
lock behind (locks are the database's, released by the rollback) and a rerun resumes
without closing any loan twice. Only when every loan is closed does the business date move
and ``loans.business_date.advanced`` go out.

A chunk's loans are read as plain rows (``LoanDay``), closed by the same rules as an ORM
``Loan`` (``lending.close_loan_day``), and written back in one statement per set of changed
columns (shared/bulk.py): most loans only accrue, so most rows share one statement. The ORM
unit of work cost more than the rules themselves (about 0.2 ms a loan of Python, and one
UPDATE a loan). Instalments are read the same way (``InstalmentDay``), only for the loans
that bill or age from an unknown due date, and those billed written back together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime
from itertools import compress
from operator import attrgetter, is_not, itemgetter
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.loans import ledger
from services.loans.lending import (
    DAY,
    Accruals,
    InstalmentDay,
    LoanDay,
    blacklisted_on,
    business_date,
    close_loan_day,
    day_closed_event,
    needs_schedule,
)
from services.loans.models import BusinessDate, CobRun, Instalment, Loan
from shared.bulk import among, update_rows
from shared.events import Envelope
from shared.messaging import emit

CHUNK = 2000


LOANS: Table = Loan.__table__  # type: ignore[assignment]  # declared as FromClause
INSTALMENTS: Table = Instalment.__table__  # type: ignore[assignment]
NAMES = tuple(f.name for f in fields(LoanDay))  # id first
_values = attrgetter(*NAMES)
_positions = range(len(NAMES))


async def _read_loans(session: AsyncSession, cursor: str | None) -> Sequence[Sequence[Any]]:
    """The chunk's rows, locked (``FOR UPDATE``) in key order."""
    query = select(*(LOANS.c[name] for name in NAMES)).where(LOANS.c.status == "active")
    if cursor is not None:
        query = query.where(LOANS.c.id > cursor)
    return (await session.execute(query.order_by(LOANS.c.id).limit(CHUNK).with_for_update())).all()


async def _write_loans(session: AsyncSession, rows: Sequence[Sequence[Any]], loans: Sequence[LoanDay]) -> None:
    """UPDATE each loan's changed columns, one statement per set of them. The rows were
    locked by the chunk's SELECT ... FOR UPDATE in key order, so the UPDATE's own order
    cannot deadlock (shared/bulk.py)."""
    groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
    for row, loan in zip(rows, loans, strict=True):
        after = _values(loan)
        # Columns the rules assigned (a new object), then of those the ones whose value
        # changed: the first pass runs in C over every column, the second over a few.
        changed = tuple(i for i in compress(_positions, map(is_not, row, after)) if row[i] != after[i])
        if changed:
            groups.setdefault(changed, []).append(after)
    for changed, values in groups.items():
        names = (NAMES[0], *(NAMES[i] for i in changed))
        pick = itemgetter(0, *changed)
        await update_rows(session, LOANS, [dict(zip(names, pick(v), strict=True)) for v in values])


async def _read_schedules(session: AsyncSession, loan_ids: Sequence[str]) -> dict[str, list[InstalmentDay]]:
    """The loans' instalments in number order, in one query."""
    found: dict[str, list[InstalmentDay]] = {loan_id: [] for loan_id in loan_ids}
    if loan_ids:
        c = INSTALMENTS.c
        query = select(c.loan_id, c.number, c.due_on, c.principal, c.billed).where(among(session, c.loan_id, loan_ids))
        for row in await session.execute(query.order_by(c.loan_id, c.number)):
            found[row.loan_id].append(InstalmentDay(*row))
    return found


async def _write_billed(session: AsyncSession, unbilled: Sequence[InstalmentDay]) -> None:
    """Those of the instalments read unbilled that billed today."""
    rows = [{"loan_id": i.loan_id, "number": i.number, "billed": i.billed} for i in unbilled if i.billed is not None]
    await update_rows(session, INSTALMENTS, rows)


async def close_day(sessions: async_sessionmaker[AsyncSession], day: date) -> int:
    async with sessions() as session, session.begin():
        run = await session.get(CobRun, day, with_for_update=True)
        if run is None:
            run = CobRun(
                business_date=day, status="running", last_loan_id=None, loans_processed=0, started_at=datetime.now(UTC)
            )
            session.add(run)
        if run.status == "done":
            return 0
        cursor = run.last_loan_id
    processed = 0
    while True:
        async with sessions() as session, session.begin():
            rows = await _read_loans(session, cursor)
            loans = [LoanDay(*row) for row in rows]
            events: list[Envelope] = []
            accruals = Accruals()
            # One query a chunk: the black list is short, the chunk's loans are many.
            unsubsidised = await blacklisted_on(session, {loan.subject_id for loan in loans}, day)
            # The instalments of the loans that need them, read together.
            schedules = await _read_schedules(session, [loan.id for loan in loans if needs_schedule(loan, day)])
            unbilled = [i for schedule in schedules.values() for i in schedule if i.billed is None]
            for loan in loans:
                events += close_loan_day(
                    loan,
                    day,
                    accruals,
                    subsidised=loan.subject_id not in unsubsidised,
                    schedule=schedules.get(loan.id),
                )
            await _write_loans(session, rows, loans)
            await _write_billed(session, unbilled)
            await ledger.post(session, accruals.posting(day))
            await emit(session, *events)
            run = await session.get(CobRun, day, with_for_update=True)
            assert run is not None
            if loans:
                cursor = run.last_loan_id = loans[-1].id
                run.loans_processed += len(loans)
                processed += len(loans)
                continue
            run.status = "done"
            run.finished_at = datetime.now(UTC)
            current = await session.get(BusinessDate, 1, with_for_update=True)
            assert current is not None
            current.current = day + DAY
            await emit(session, day_closed_event(day))
            return processed


async def close_until(
    sessions: async_sessionmaker[AsyncSession], target: date, observe: Callable[[float], None] | None = None
) -> list[date]:
    """Close every business day before ``target``; the business date becomes ``target``.
    ``observe`` is told how many seconds each day took."""
    closed: list[date] = []
    while True:
        async with sessions() as session, session.begin():
            today = await business_date(session)
        if today >= target:
            return closed
        started = time.perf_counter()
        await close_day(sessions, today)
        if observe is not None:
            observe(time.perf_counter() - started)
        closed.append(today)
