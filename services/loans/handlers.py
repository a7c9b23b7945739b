"""Loans' consumers: the certified rating in force (scoring) and the circuit breaker and
fund capacity (risk), kept as local projections so a drawdown is decided locally."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.lending import set_limit
from services.loans.models import CreditLine, FundView, RatingView, TownshipView, VillageView
from shared.catalogue import FundCapacityChanged, RatingCertified, RatingDowngraded, TownshipHalt, VillageFreeze
from shared.events import Envelope, parse_payload
from shared.messaging import Handler


async def _rating(session: AsyncSession, p: RatingCertified | RatingDowngraded, certified: bool) -> None:
    view = await session.get(RatingView, p.subject_id, with_for_update=True)
    if view is None:
        view = RatingView(subject_id=p.subject_id)
        session.add(view)
    view.subject_kind, view.village_code, view.township_code = p.subject_kind, p.village_code, p.township_code
    view.poor_household = p.poor_household
    view.grade, view.credit_limit, view.certified = p.grade, Decimal(p.credit_limit), certified
    line = await session.scalar(select(CreditLine).where(CreditLine.subject_id == p.subject_id).with_for_update())
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
