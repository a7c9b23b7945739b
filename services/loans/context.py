"""What loans' requests and the close of business both read: the service's settings and the
business date."""

from __future__ import annotations

from datetime import date
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.models import BusinessDate
from services.loans.settings import LoansSettings
from shared.settings import CommonSettings


@cache
def settings() -> LoansSettings:
    return LoansSettings()


async def business_date(session: AsyncSession) -> date:
    row = await session.get(BusinessDate, 1)
    if row is None:
        common: CommonSettings = session.info.get("settings") or CommonSettings()
        row = BusinessDate(id=1, current=common.start_date or date.today())
        session.add(row)
        await session.flush()
    return row.current
