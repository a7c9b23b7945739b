"""What risk's handlers and requests all read: the service's settings, its business date and
whether the events being applied are a replay (``vcredit rebuild risk``)."""

from __future__ import annotations

from datetime import date
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import Clock
from services.risk.settings import RiskSettings
from shared.settings import CommonSettings


@cache
def settings() -> RiskSettings:
    return RiskSettings()


def start_replay(session: AsyncSession) -> None:
    """Mark the session as a rebuild's: projections are recomputed, but nothing is emitted or
    recorded again, since it was when the events first arrived."""
    session.info["replay"] = True


def replaying(session: AsyncSession) -> bool:
    return bool(session.info.get("replay"))


async def business_date(session: AsyncSession) -> date:
    """Risk's business date: the last one loans published, else the configured start."""
    clock = await session.get(Clock, 1)
    if clock is not None:
        return clock.business_date
    common: CommonSettings = session.info.get("settings") or CommonSettings()
    return common.start_date or date.today()


async def advance_clock(session: AsyncSession, to: date) -> None:
    clock = await session.get(Clock, 1)
    if clock is None:
        session.add(Clock(id=1, business_date=to))
    elif to > clock.business_date:  # max, so the order of replay does not matter
        clock.business_date = to
