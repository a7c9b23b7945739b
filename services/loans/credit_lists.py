"""Reads of the red and black lists (seeds 001, 002: joint rewards and punishment) that lending
acts on; the rules themselves are in domain/credit_lists.py (loans' own: rates and day shares)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.models import ListEntry
from shared.bulk import among


async def active_entries(session: AsyncSession, subject_id: str, list_: str) -> list[ListEntry]:
    return list(
        await session.scalars(
            select(ListEntry)
            .where(ListEntry.subject_id == subject_id, ListEntry.list == list_, ListEntry.active)
            .order_by(ListEntry.listed_on, ListEntry.entry_id)
        )
    )


async def is_blacklisted(session: AsyncSession, subject_id: str) -> bool:
    return bool(
        await session.scalar(
            select(exists().where(ListEntry.subject_id == subject_id, ListEntry.list == "black", ListEntry.active))
        )
    )


async def red_listed(session: AsyncSession, subject_id: str) -> bool:
    return bool(await active_entries(session, subject_id, "red"))


async def blacklisted_on(session: AsyncSession, subject_ids: set[str], day: date) -> set[str]:
    """Which of the subjects had an active black entry on ``day`` (listed that day or before,
    not yet delisted): their loans earn no subsidy for the day."""
    if not subject_ids:
        return set()
    listed = await session.scalars(
        select(ListEntry.subject_id)
        .where(among(session, ListEntry.__table__.c.subject_id, subject_ids), _black_on(day))
        .distinct()
    )
    return set(listed)


def _black_on(day: date) -> ColumnElement[bool]:
    """An entry that has its subject on the black list on ``day``."""
    return and_(
        ListEntry.list == "black",
        ListEntry.listed_on <= day,
        (ListEntry.delisted_on.is_(None)) | (ListEntry.delisted_on > day),
    )


def blacklisted_on_clause(subject_id: ColumnElement[str], day: date) -> ColumnElement[bool]:
    """``blacklisted_on`` as a condition on a statement's subject column (close of business's
    statement for plain accruals, services/loans/cob_accrual.py, leaves such loans out): the
    same entries, so the two cannot disagree. ``IN (subquery)``, not a correlated EXISTS:
    negated, PostgreSQL reads the day's black list once into a hash (a hashed SubPlan)
    instead of probing it for each of the chunk's loans. ``subject_id`` is never null, so
    ``NOT IN`` means what it says."""
    return subject_id.in_(select(ListEntry.subject_id).where(_black_on(day)))
