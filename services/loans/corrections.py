"""Corrections (issue 25 item 4): a mistake in the ledger is never edited or posted into a
closed month; it is corrected by a new balanced entry in the open period that names the
transaction it corrects, why, and who posted it. Only accounts no subledger mirrors may be
corrected (ledger.SUBLEDGER: a loan's balances change through its own operations)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans import ledger
from services.loans.context import business_date
from services.loans.domain import periods
from services.loans.domain.periods import CorrectionRefused, Leg
from services.loans.models import LedgerEntry
from shared.problems import Problem

KIND = "correction"


@dataclass(frozen=True)
class Correction:
    txn_id: str
    corrects: str
    reason: str
    business_date: date
    recorded_by: str
    legs: list[Leg]


async def correct(
    session: AsyncSession, corrects: str, reason: str, legs: Sequence[Leg] | None, day: date | None, recorded_by: str
) -> Correction:
    """Post the correction in the caller's transaction, dated ``day`` (the business date by
    default); ``legs`` None reverses the original exactly. Refused, nothing written: 404 an
    unknown transaction, 422 legs that do not balance or name an account not correctable,
    or a day after the business date, 409 PERIOD_CLOSED a day in a closed month (ledger.post)."""
    original = list(await session.scalars(select(LedgerEntry).where(LedgerEntry.txn_id == corrects)))
    if not original:
        raise Problem(
            404,
            "TRANSACTION_NOT_FOUND",
            "Transaction not found",
            f"No ledger transaction {corrects}.",
            field="corrects",
        )
    today = await business_date(session)
    day = day or today
    if day > today:
        raise Problem(
            422,
            "DATE_IN_THE_FUTURE",
            "Date after the business date",
            f"The business date is {today}: a correction is dated on it or earlier in an open period.",
            field="date",
        )
    if legs is None:
        legs = periods.reverse([(e.account, e.debit, e.credit) for e in original])
    try:
        periods.check_correction(legs, ledger.ACCOUNTS, ledger.SUBLEDGER)
    except CorrectionRefused as refused:
        raise Problem(422, refused.code, "Correction refused", refused.detail, field=refused.field) from None
    rows = ledger.posting(KIND, None, day, legs, corrects=corrects, reason=reason, recorded_by=recorded_by[:128])
    await ledger.post(session, rows)
    return Correction(str(rows[0]["txn_id"]), corrects, reason, day, recorded_by[:128], list(legs))


async def corrections(
    session: AsyncSession, start: date | None, end: date | None, limit: int, offset: int
) -> list[Correction]:
    """The corrections dated ``start``..``end`` (either open), oldest first, a page of
    transactions (each with all its legs)."""
    page = select(LedgerEntry.txn_id).where(LedgerEntry.kind == KIND)
    if start is not None:
        page = page.where(LedgerEntry.business_date >= start)
    if end is not None:
        page = page.where(LedgerEntry.business_date <= end)
    page = page.group_by(LedgerEntry.txn_id).order_by(func.min(LedgerEntry.id)).limit(limit).offset(offset)
    query = select(LedgerEntry).where(LedgerEntry.txn_id.in_(page.scalar_subquery()))
    found: dict[str, Correction] = {}
    for e in await session.scalars(query.order_by(LedgerEntry.id)):
        if e.txn_id not in found:
            found[e.txn_id] = Correction(
                e.txn_id, e.corrects_txn_id or "", e.reason or "", e.business_date, e.recorded_by or "", []
            )
        found[e.txn_id].legs.append((e.account, e.debit, e.credit))
    return list(found.values())
