"""Close of business: each business day before the target date, in order.

A day is closed in chunks of loans, one transaction each; the run's cursor is committed
with the chunk, and each loan remembers the last day closed for it, so a crash leaves no
lock behind (locks are the database's, released by the rollback) and a rerun resumes
without closing any loan twice. Only when every loan is closed does the business date move
and ``loans.business_date.advanced`` go out.

Run control (issue 19). One close of business at a time per loans database, across replicas
and processes: a run takes the ``cob_lease`` row with a conditional UPDATE (free, or expired)
and renews it at the start of every chunk's and every day's own transaction, by an UPDATE
that names it as the holder. A run that lost the lease (it stalled past the lease and
another took over) fails that renewal and its chunk rolls back before writing anything: the
lease is a fencing token checked in the same transaction as the writes, not a belief held in
memory. A holder that dies (SIGKILL, lost node) leaves its lease to lapse after
``VCREDIT_LOANS_COB_LEASE_SECONDS``; the next run takes it over, marks the dead run
``interrupted`` and resumes at the day's cursor. (A PostgreSQL advisory lock would be
released at once when its connection dies, but it belongs to one connection, which the
run's chunks, each a transaction from the pool, do not keep; SQLite has no equivalent, and
the lease works the same on both.) The lease is stamped with the replica's clock, so clocks
must agree to well within the lease (NTP does).

A run moves the business date forward only, closes at most ``VCREDIT_LOANS_COB_MAX_DAYS``,
and stops at a day boundary when an operator cancels it (``cancel_requested``, read from
its ``cob_jobs`` row between days, so any replica may ask) or when its service stops
(``should_stop``, the runtime's shutdown hook). A day whose ``cob_runs`` row is done while
the business date is not past it (left by the concurrent runs of issue 19) moves the
business date on without closing or announcing the day again.

A chunk's loans are read as plain rows (``LoanDay``), closed by the same rules as an ORM
``Loan`` (``domain.close_of_business.close_loan_day``), and written back in one statement per set of changed
columns (shared/bulk.py): most loans only accrue, so most rows share one statement. The ORM
unit of work cost more than the rules themselves (about 0.2 ms a loan of Python, and one
UPDATE a loan). Instalments are read the same way (``InstalmentDay``), only for the loans
that bill or age from an unknown due date, and those billed written back together.

On PostgreSQL (issue 27) a chunk's rows are locked first (``_lock_chunk``: their ids, in key
order, one row back) and those that only accrue that day are closed by one statement
(cob_accrual.py), which returns their totals for the chunk's ledger entry; the chunk's other
loans are read (``_read_rest``) and closed by the rules as above, in the same transaction.
The Python rules cost about 40 µs a loan, most loans only accrue, and the statement costs
the database little more than rewriting the row. The chunk is ``VCREDIT_LOANS_COB_SQL_CHUNK``
loans then. SQLite's numbers are not decimal: it keeps the rules for every loan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from itertools import compress
from operator import attrgetter, is_not, itemgetter
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.loans import ledger, reconciliation
from services.loans.cob_accrual import accrue_plain
from services.loans.context import business_date, settings
from services.loans.credit_lists import blacklisted_on
from services.loans.domain.close_of_business import Accruals, close_loan_day, day_closed_event, needs_schedule
from services.loans.domain.loan_state import DAY, InstalmentDay, LoanDay
from services.loans.domain.subsidy_claims import is_month_end
from services.loans.models import BusinessDate, CobJob, CobLease, CobRun, Instalment, Loan
from services.loans.subsidy_claims import snapshot_month
from shared.bulk import among, update_rows
from shared.db import dialect_of
from shared.events import Envelope
from shared.messaging import emit

CHUNK = 2000

log = logging.getLogger(__name__)


LOANS: Table = Loan.__table__  # type: ignore[assignment]  # declared as FromClause
INSTALMENTS: Table = Instalment.__table__  # type: ignore[assignment]
LEASE: Table = CobLease.__table__  # type: ignore[assignment]
JOBS: Table = CobJob.__table__  # type: ignore[assignment]
NAMES = tuple(f.name for f in fields(LoanDay))  # id first
_values = attrgetter(*NAMES)
_positions = range(len(NAMES))


async def _read_loans(session: AsyncSession, cursor: str | None) -> Sequence[Sequence[Any]]:
    """The chunk's rows, locked (``FOR UPDATE``) in key order."""
    query = select(*(LOANS.c[name] for name in NAMES)).where(LOANS.c.status == "active")
    if cursor is not None:
        query = query.where(LOANS.c.id > cursor)
    return (await session.execute(query.order_by(LOANS.c.id).limit(CHUNK).with_for_update())).all()


async def _lock_chunk(session: AsyncSession, cursor: str | None, size: int) -> tuple[list[str], date | None]:
    """The chunk's ids, locked (``FOR UPDATE``) in key order as ``_read_loans`` locks them,
    and their earliest period start; one row back, not a row a loan."""
    query = select(LOANS.c.id, LOANS.c.period_start).where(LOANS.c.status == "active")
    if cursor is not None:
        query = query.where(LOANS.c.id > cursor)
    chunk = query.order_by(LOANS.c.id).limit(size).with_for_update().subquery("chunk")
    ids, oldest = (
        await session.execute(
            select(func.array_agg(aggregate_order_by(chunk.c.id, chunk.c.id)), func.min(chunk.c.period_start))
        )
    ).one()
    return list(ids or ()), oldest


async def _read_rest(session: AsyncSession, chunk: Sequence[str], day: date) -> Sequence[Sequence[Any]]:
    """The active rows of the chunk's key range not closed for ``day`` yet: those the
    statement for plain accruals left (cob_accrual.py), in key order. Locked again, which
    costs nothing for the chunk's rows and locks a loan drawn into the range since."""
    if not chunk:
        return []
    c = LOANS.c
    query = select(*(c[name] for name in NAMES)).where(
        c.status == "active", c.id >= chunk[0], c.id <= chunk[-1], c.closed_through < day
    )
    return (await session.execute(query.order_by(c.id).with_for_update())).all()


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
    rows = [
        {"loan_id": i.loan_id, "number": i.number, "billed": i.billed, "subsidy_policy": i.subsidy_policy}
        for i in unbilled
        if i.billed is not None
    ]
    await update_rows(session, INSTALMENTS, rows)


class CobRunning(Exception):
    """Another close of business holds the lease."""

    def __init__(self, holder: str | None, expires_at: datetime | None) -> None:
        super().__init__(f"close of business {holder} holds the ledger until {expires_at}")
        self.holder = holder
        self.expires_at = expires_at


class LeaseLost(Exception):
    """The run's lease was taken over (it stalled past it): it must not write on."""


class CobRefused(Exception):
    """The target date is refused (422), with the problem's code and extras."""

    def __init__(self, code: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.title = title
        self.detail = detail
        self.extra = extra


@dataclass
class Outcome:
    run_id: str | None  # None: nothing to close, no run recorded
    status: str  # done cancelled interrupted
    closed: list[date] = field(default_factory=list)
    business_date: date | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _lease_time() -> timedelta:
    return timedelta(seconds=settings().cob_lease_seconds)


async def _take_lease(session: AsyncSession, run_id: str) -> None:
    """Take the lease if it is free or lapsed, or raise ``CobRunning``. One conditional
    UPDATE: PostgreSQL re-evaluates its WHERE on the row a concurrent taker committed, SQLite
    runs it under the database's write lock, so of racing takers exactly one matches."""
    now = _now()
    c = LEASE.c
    taken = await session.execute(
        update(LEASE)
        .where(c.id == 1, or_(c.holder.is_(None), c.expires_at.is_(None), c.expires_at < now))
        .values(holder=run_id, expires_at=now + _lease_time())
    )
    if taken.rowcount == 1:  # type: ignore[attr-defined]  # CursorResult
        return
    row = await session.get(CobLease, 1, populate_existing=True)
    if row is not None:
        raise CobRunning(row.holder, row.expires_at)
    session.add(CobLease(id=1, holder=run_id, expires_at=now + _lease_time()))  # a database made without 0007
    await session.flush()


async def _renew(session: AsyncSession, run_id: str) -> None:
    """The fence: extend the lease only if this run still holds it; first statement of each
    of the run's transactions, so a run that lost it writes nothing more."""
    c = LEASE.c
    renewed = await session.execute(
        update(LEASE).where(c.id == 1, c.holder == run_id).values(expires_at=_now() + _lease_time())
    )
    if renewed.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"close of business {run_id} lost its lease")


async def _release(session: AsyncSession, run_id: str) -> None:
    c = LEASE.c
    await session.execute(update(LEASE).where(c.id == 1, c.holder == run_id).values(holder=None, expires_at=None))


async def close_day(sessions: async_sessionmaker[AsyncSession], day: date, run_id: str) -> int:
    """Close ``day`` for every active loan, chunk by chunk, as the holder of the lease
    ``run_id``; the business date becomes ``day + 1`` with the last chunk."""
    async with sessions() as session, session.begin():
        await _renew(session, run_id)
        run = await session.get(CobRun, day, with_for_update=True)
        if run is None:
            run = CobRun(
                business_date=day, status="running", last_loan_id=None, loans_processed=0, started_at=datetime.now(UTC)
            )
            session.add(run)
        if run.status == "done":
            # Closed and announced already; only the business date was left behind (issue 19:
            # racing runs put it back). Move it on, never back; the day is not closed again.
            current = await session.get(BusinessDate, 1, with_for_update=True)
            if current is not None and current.current <= day:
                log.warning("business day %s was closed but the business date is %s: moved on", day, current.current)
                current.current = day + DAY
            return 0
        cursor = run.last_loan_id
    processed = 0
    shares = settings().subsidy_shares()  # the dated subsidy policy (domain/policies.py)
    while True:
        async with sessions() as session, session.begin():
            await _renew(session, run_id)
            accruals = Accruals()
            # PostgreSQL computes in numeric exactly as Python's Decimal (cob_accrual.py);
            # SQLite's numbers are not decimal: it keeps the rules in Python for every loan.
            if settings().cob_sql_accrual and dialect_of(session) == "postgresql":
                # Loans that only accrue today by one statement (cob_accrual.py), the rest
                # of the chunk below by the rules, in the same transaction and ledger entry.
                chunk, oldest = await _lock_chunk(session, cursor, settings().cob_sql_chunk)
                await accrue_plain(session, day, chunk, oldest, shares, accruals)
                rows = await _read_rest(session, chunk, day)
            else:
                rows = await _read_loans(session, cursor)
                chunk = [row[0] for row in rows]
            loans = [LoanDay(*row) for row in rows]
            events: list[Envelope] = []
            # One query a chunk: the black list is short, the chunk's loans are many.
            unsubsidised = await blacklisted_on(session, {loan.subject_id for loan in loans}, day)
            # The instalments of the loans that need them, read together.
            schedules = await _read_schedules(session, [loan.id for loan in loans if needs_schedule(loan, day)])
            unbilled = [i for schedule in schedules.values() for i in schedule if i.billed is None]
            policy = settings().overdue_policy()
            for loan in loans:
                events += close_loan_day(
                    loan,
                    day,
                    accruals,
                    subsidised=loan.subject_id not in unsubsidised,
                    schedule=schedules.get(loan.id),
                    subsidy_policy=shares,
                    policy=policy,
                )
            await _write_loans(session, rows, loans)
            await _write_billed(session, unbilled)
            await ledger.post(session, ledger.accrual_posting(accruals, day))
            await emit(session, *events)
            run = await session.get(CobRun, day, with_for_update=True)
            assert run is not None
            if chunk:
                cursor = run.last_loan_id = chunk[-1]
                run.loans_processed += len(chunk)
                processed += len(chunk)
                continue
            run.status = "done"
            run.finished_at = datetime.now(UTC)
            current = await session.get(BusinessDate, 1, with_for_update=True)
            assert current is not None
            current.current = max(current.current, day + DAY)  # only forward
            if is_month_end(day):
                # Every loan is closed for the month end: keep its cumulative subsidy figures
                # for the claims (services/loans/subsidy_claims.py), with the day, atomically.
                await snapshot_month(session, day)
            # The day's reconciliation file (对账) is final now: its totals and checksum go out
            # with the day's close, in this transaction, so a consumer never sees one without
            # the other (services/loans/reconciliation.py).
            made = await reconciliation.read_file(session, day)
            await emit(session, day_closed_event(day), reconciliation.ready_event(made))
            return processed


async def _start(sessions: async_sessionmaker[AsyncSession], target: date, who: str) -> Outcome:
    """Take the lease and record the run, or refuse: ``CobRunning``, ``CobRefused``. A
    target equal to the business date closes nothing and records no run."""
    run_id = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        await _take_lease(session, run_id)
        # Read under the lease: whatever a previous holder closed is committed and seen.
        today = await business_date(session)
        if target < today:
            raise CobRefused(
                "DATE_IN_THE_PAST",
                "Date already closed",
                f"The business date is {today}; it only moves forward.",
                field="date",
                business_date=str(today),
            )
        limit = settings().cob_max_days
        if (target - today).days > limit:
            raise CobRefused(
                "COB_STEP_TOO_LARGE",
                "Too many business days at once",
                f"One close of business closes at most {limit} days (VCREDIT_LOANS_COB_MAX_DAYS); "
                f"{target} is {(target - today).days} days after the business date {today}.",
                field="date",
                limit=limit,
                business_date=str(today),
            )
        if target == today:
            await _release(session, run_id)
            return Outcome(None, "done", [], today)
        # A run still marked running holds no lease now (this one has it): it died.
        now = _now()
        await session.execute(
            update(JOBS)
            .where(JOBS.c.status == "running")
            .values(status="interrupted", finished_at=now, detail="its lease lapsed (the process stopped)")
        )
        session.add(
            CobJob(
                id=run_id,
                target=target,
                from_date=today,
                current_day=today,
                days_closed=0,
                status="running",
                cancel_requested=False,
                requested_by=who[:128],
                started_at=now,
            )
        )
    return Outcome(run_id, "running", [], today)


async def _end(sessions: async_sessionmaker[AsyncSession], run_id: str, status: str, detail: str) -> None:
    """Record how a run ended abnormally and free the lease if it still holds it."""
    async with sessions() as session, session.begin():
        job = await session.get(CobJob, run_id, with_for_update=True)
        if job is not None and job.status == "running":
            job.status, job.detail, job.finished_at = status, detail[:500], _now()
        await _release(session, run_id)


async def run_cob(
    sessions: async_sessionmaker[AsyncSession],
    target: date,
    *,
    who: str = "system",
    observe: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Outcome:
    """Close every business day before ``target`` as one run: the business date becomes
    ``target`` (status ``done``), or the run stops at a day boundary (``cancelled``,
    ``interrupted`` when ``should_stop`` says the service is stopping). Raises
    ``CobRunning`` if another run holds the ledger, ``CobRefused`` for a date before the
    business date or too far after it. ``observe`` is told how many seconds each day took."""
    outcome = await _start(sessions, target, who)
    if outcome.run_id is None:
        return outcome
    run_id = outcome.run_id
    closed = outcome.closed
    try:
        while True:
            async with sessions() as session, session.begin():
                await _renew(session, run_id)
                job = await session.get(CobJob, run_id, with_for_update=True)
                assert job is not None
                today = await business_date(session)
                if closed and today <= closed[-1]:
                    raise RuntimeError(f"the business date did not move past {closed[-1]}")
                job.current_day, job.days_closed = today, len(closed)
                status = None
                if today >= target:
                    status = "done"
                elif job.cancel_requested:
                    status, job.detail = "cancelled", f"cancelled by {job.cancelled_by}"
                elif should_stop is not None and should_stop():
                    status, job.detail = "interrupted", "the service stopped"
                if status is not None:
                    job.status, job.finished_at = status, _now()
                    await _release(session, run_id)
            if status is not None:
                return Outcome(run_id, status, closed, today)
            started = time.perf_counter()
            await close_day(sessions, today, run_id)
            if observe is not None:
                observe(time.perf_counter() - started)
            closed.append(today)
    except LeaseLost:
        with contextlib.suppress(Exception):
            await _end(sessions, run_id, "interrupted", "it lost its lease to another run")
        raise
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.shield(_end(sessions, run_id, "interrupted", "its task was cancelled"))
        raise
    except Exception as exc:
        with contextlib.suppress(Exception):
            await _end(sessions, run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise


async def close_until(
    sessions: async_sessionmaker[AsyncSession], target: date, observe: Callable[[float], None] | None = None
) -> list[date]:
    """Close every business day before ``target``; the business date becomes ``target``.
    ``observe`` is told how many seconds each day took. One run (``run_cob``)."""
    return (await run_cob(sessions, target, observe=observe)).closed
