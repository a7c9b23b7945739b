"""Rows a consumer batch reads, loaded once per batch.

Hundreds of loan events arrive in one batch and most touch the same few villages. Reading
each row with its own SELECT (and the autoflush before it) made the projections run at a few
hundred events a second; ``prefetch`` loads a batch's positions, villages and village days in
three queries, and ``get_row`` then answers from memory, including "no such row", which the
session's identity map cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import LoanPosition, OverdueYear, RiskBase, Village, VillageDay
from shared.events import Envelope

R = TypeVar("R", bound=RiskBase)
_KEY = "risk_rows"


def _cache(session: AsyncSession) -> dict[tuple[type[RiskBase], Any], Any]:
    cache: dict[tuple[type[RiskBase], Any], Any] = session.info.setdefault(_KEY, {})
    return cache


async def get_row(session: AsyncSession, model: type[R], key: Any) -> R | None:
    cache = _cache(session)
    if (model, key) not in cache:
        cache[(model, key)] = await session.get(model, key)
    row: R | None = cache[(model, key)]
    return row


def add_row(session: AsyncSession, model: type[R], key: Any, row: R) -> R:
    session.add(row)
    _cache(session)[(model, key)] = row
    return row


def forget(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)


def _day(payload: dict[str, Any]) -> date | None:
    value = payload.get("business_date") or payload.get("disbursed_on")
    return date.fromisoformat(value) if isinstance(value, str) else None


async def prefetch(session: AsyncSession, events: Sequence[Envelope]) -> None:
    loans: set[str] = set()
    villages: set[str] = set()
    days: set[tuple[str, date]] = set()
    overdue: set[tuple[str, int]] = set()
    for event in events:
        if not event.type.startswith("loans.") or "village_code" not in event.payload:
            continue
        village = str(event.payload["village_code"])
        villages.add(village)
        if "loan_id" in event.payload:
            loans.add(str(event.payload["loan_id"]))
        if (day := _day(event.payload)) is not None:
            days.add((village, day))
            if "subject_id" in event.payload:
                overdue.update((str(event.payload["subject_id"]), y) for y in (day.year, day.year + 1))
    cache = _cache(session)
    missing = (
        {(LoanPosition, k) for k in loans}
        | {(Village, k) for k in villages}
        | {(VillageDay, k) for k in days}
        | {(OverdueYear, k) for k in overdue}
    )
    missing -= cache.keys()
    if not missing:
        return
    if loans:
        for row in await session.scalars(select(LoanPosition).where(LoanPosition.loan_id.in_(loans))):
            cache[(LoanPosition, row.loan_id)] = row
    if villages:
        for v in await session.scalars(select(Village).where(Village.code.in_(villages))):
            cache[(Village, v.code)] = v
        dates = {d for _, d in days}
        query = select(VillageDay).where(VillageDay.village_code.in_(villages), VillageDay.business_date.in_(dates))
        for d in await session.scalars(query):
            cache[(VillageDay, (d.village_code, d.business_date))] = d
    if overdue:
        subjects = {subject for subject, _ in overdue}
        for o in await session.scalars(select(OverdueYear).where(OverdueYear.subject_id.in_(subjects))):
            cache[(OverdueYear, (o.subject_id, o.year))] = o
    for key in missing:
        cache.setdefault(key, None)
