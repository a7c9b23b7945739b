"""What loans' requests and the close of business both read: the service's settings and the
business date."""

from __future__ import annotations

from datetime import date
from functools import cache

from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.models import BusinessDate, LedgerClose
from services.loans.settings import LoansSettings
from shared.db import insert_ignore, is_read_only
from shared.settings import CommonSettings


@cache
def settings() -> LoansSettings:
    return LoansSettings()


async def business_date(session: AsyncSession, *, hold: bool = False) -> date:
    """The business date. ``hold``: for a transaction that books money on it, which keeps it
    (a shared lock, PostgreSQL) until it commits: the close of business takes the row
    exclusively to move the date on, so it waits for bookings under way, and the day's
    reconciliation file (对账) and its event, read in that transaction, include them. Without
    it a repayment that read the date just before the close committed after it, dated the day
    just closed and missing from the file's event. SQLite's writers are serialised anyway.

    Every transaction that holds the date then posts to the ledger, which takes the ledger's
    closing date under a shared lock too (``ledger.closed_through``): both rows are read and
    locked in one statement here, business date first as before, and the closing date kept
    for the transaction's postings (one round trip fewer per booking, issue 27)."""
    if hold and (today := await _hold_with_ledger_close(session)) is not None:
        return today
    row = await session.get(BusinessDate, 1, with_for_update={"read": True} if hold else None)
    if row is None:
        common: CommonSettings = session.info.get("settings") or CommonSettings()
        if is_read_only(session):  # a read before anything was written: the date it will be
            return common.start_date or date.today()
        # Two first requests at once (e.g. two openings of a village) would both insert the
        # row: the second waits for the first and keeps its date instead of a key violation.
        values = {"id": 1, "current": common.start_date or date.today()}
        await insert_ignore(session, BusinessDate.__table__, values)  # type: ignore[arg-type]
        row = await session.get(BusinessDate, 1, populate_existing=True)
        assert row is not None
    return row.current


async def _hold_with_ledger_close(session: AsyncSession) -> date | None:
    """The business date and the ledger's closing date, both rows locked FOR SHARE in one
    statement (PostgreSQL locks a statement's rows in the order its FROM names them: the
    business date first, as when they were two statements); None when either row is missing
    (a new database: ``business_date`` and ``ledger.closed_through`` make them)."""
    query = (
        select(BusinessDate.current, LedgerClose.closed_through)
        .join_from(BusinessDate, LedgerClose, true())  # one row each: the product is one row
        .where(BusinessDate.id == 1, LedgerClose.id == 1)
        .with_for_update(read=True)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    ledger.hold_closed_through(session, row.closed_through)
    today: date = row.current
    return today
