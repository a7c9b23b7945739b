"""What scoring's handlers and requests both read: the service's settings and the business
date (loans' close of business announces it)."""

from __future__ import annotations

from datetime import date
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.models import BusinessDate
from services.scoring.settings import ScoringSettings
from shared.settings import CommonSettings


@cache
def settings() -> ScoringSettings:
    return ScoringSettings()


async def business_date(session: AsyncSession) -> date:
    row = await session.get(BusinessDate, 1)
    if row is None:
        # Until the loans service announces one, the configured start date (or today).
        common: CommonSettings = session.info.get("settings") or CommonSettings()
        row = BusinessDate(id=1, current=common.start_date or date.today())
        session.add(row)
        await session.flush()
    return row.current
