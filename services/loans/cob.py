"""Close of business: each business day before the target date, in order.

A day is closed in chunks of loans, one transaction each; the run's cursor is committed
with the chunk, and each loan remembers the last day closed for it, so a crash leaves no
lock behind (locks are the database's, released by the rollback) and a rerun resumes
without closing any loan twice. Only when every loan is closed does the business date move
and ``loans.business_date.advanced`` go out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.loans import ledger
from services.loans.lending import (
    DAY,
    Accruals,
    billing_today,
    blacklisted_on,
    business_date,
    close_loan_day,
    day_closed_event,
    schedules,
)
from services.loans.models import BusinessDate, CobRun, Loan
from shared.events import Envelope
from shared.messaging import emit

CHUNK = 2000


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
            query = select(Loan).where(Loan.status == "active").order_by(Loan.id).limit(CHUNK).with_for_update()
            if cursor is not None:
                query = query.where(Loan.id > cursor)
            loans = list(await session.scalars(query))
            events: list[Envelope] = []
            accruals = Accruals()
            # One query a chunk: the black list is short, the chunk's loans are many.
            unsubsidised = await blacklisted_on(session, {loan.subject_id for loan in loans}, day)
            # The instalments of the loans that bill today, read together: one read per loan
            # would also flush the chunk's changes a few rows at a time.
            billing = await schedules(session, [loan.id for loan in loans if billing_today(loan, day)])
            for loan in loans:
                events += await close_loan_day(
                    session,
                    loan,
                    day,
                    accruals,
                    subsidised=loan.subject_id not in unsubsidised,
                    schedule=billing.get(loan.id),
                )
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
