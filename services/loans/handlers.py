"""Loans' consumers: the certified rating in force (scoring) and the circuit breaker and
fund capacity (risk), kept as local projections so a drawdown is decided locally."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.lending import set_limit
from services.loans.models import CreditLine, FundView, RatingView, TownshipView, VillageView
from shared.catalogue import FundCapacityChanged, RatingCertified, RatingDowngraded, TownshipHalt, VillageFreeze
from shared.events import Envelope, parse_payload
from shared.messaging import Handler

_RATING_TYPES = ("scoring.rating.certified", "scoring.rating.downgraded")
_BATCH_ROWS = "loans_rating_rows"


@dataclass
class _BatchRows:
    """A batch's rating views and credit lines, read in two queries (``prefetch``). A day's
    certificates arrive by the thousand; a SELECT of each row, each behind an autoflush,
    held loans' consumer to about a hundred ratings a second."""

    subjects: set[str]
    views: dict[str, RatingView]
    lines: dict[str, CreditLine]


async def prefetch(session: AsyncSession, events: Sequence[Envelope]) -> None:
    subjects = {str(e.payload["subject_id"]) for e in events if e.type in _RATING_TYPES}
    if not subjects:
        return
    views = await session.scalars(select(RatingView).where(RatingView.subject_id.in_(subjects)).with_for_update())
    lines = await session.scalars(select(CreditLine).where(CreditLine.subject_id.in_(subjects)).with_for_update())
    session.info[_BATCH_ROWS] = _BatchRows(
        subjects, {v.subject_id: v for v in views}, {line.subject_id: line for line in lines}
    )


async def _rating_rows(session: AsyncSession, subject_id: str) -> tuple[RatingView | None, CreditLine | None]:
    rows: _BatchRows | None = session.info.get(_BATCH_ROWS)
    if rows is not None and subject_id in rows.subjects:
        return rows.views.get(subject_id), rows.lines.get(subject_id)
    view = await session.get(RatingView, subject_id, with_for_update=True)
    line = await session.scalar(select(CreditLine).where(CreditLine.subject_id == subject_id).with_for_update())
    return view, line


async def _rating(session: AsyncSession, p: RatingCertified | RatingDowngraded, certified: bool) -> None:
    view, line = await _rating_rows(session, p.subject_id)
    if view is None:
        view = RatingView(subject_id=p.subject_id)
        session.add(view)
        rows: _BatchRows | None = session.info.get(_BATCH_ROWS)
        if rows is not None:
            rows.views[p.subject_id] = view  # a second rating of the subject in the batch
    view.subject_kind, view.village_code, view.township_code = p.subject_kind, p.village_code, p.township_code
    view.poor_household = p.poor_household
    view.grade, view.credit_limit, view.certified = p.grade, Decimal(p.credit_limit), certified
    if line is not None:
        await set_limit(session, line, view.credit_limit, "rating_certified" if certified else "rating_downgraded")


async def on_certified(session: AsyncSession, event: Envelope) -> None:
    await _rating(session, parse_payload(event, RatingCertified), True)


async def on_downgraded(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, RatingDowngraded)
    await _rating(session, p, Decimal(p.credit_limit) > 0)


async def _raise_held_limits(session: AsyncSession, where: ColumnElement[bool]) -> None:
    """Limit raises held back by a freeze or halt (lending.set_limit) take effect once lifted."""
    held = await session.execute(
        select(CreditLine, RatingView.credit_limit)
        .join(RatingView, RatingView.subject_id == CreditLine.subject_id)
        .where(where, RatingView.certified, RatingView.credit_limit > CreditLine.limit)
        .with_for_update(of=CreditLine)
    )
    for line, limit in held.all():
        await set_limit(session, line, limit, "new_credit_resumed")


async def on_frozen(session: AsyncSession, event: Envelope) -> None:
    await session.merge(VillageView(code=parse_payload(event, VillageFreeze).village_code, frozen=True))


async def on_unfrozen(session: AsyncSession, event: Envelope) -> None:
    code = parse_payload(event, VillageFreeze).village_code
    await session.merge(VillageView(code=code, frozen=False))
    await _raise_held_limits(session, CreditLine.village_code == code)


async def on_halted(session: AsyncSession, event: Envelope) -> None:
    await session.merge(TownshipView(code=parse_payload(event, TownshipHalt).township_code, halted=True))


async def on_resumed(session: AsyncSession, event: Envelope) -> None:
    code = parse_payload(event, TownshipHalt).township_code
    await session.merge(TownshipView(code=code, halted=False))
    await _raise_held_limits(session, CreditLine.township_code == code)


async def on_capacity(session: AsyncSession, event: Envelope) -> None:
    await session.merge(FundView(id=1, capacity=Decimal(parse_payload(event, FundCapacityChanged).capacity)))


HANDLERS: dict[str, Handler] = {
    "scoring.rating.certified": on_certified,
    "scoring.rating.downgraded": on_downgraded,
    "risk.village.frozen": on_frozen,
    "risk.village.unfrozen": on_unfrozen,
    "risk.township.halted": on_halted,
    "risk.township.resumed": on_resumed,
    "risk.fund.capacity_changed": on_capacity,
}
