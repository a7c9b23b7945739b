from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import api, funds
from services.risk.handlers import HANDLERS
from services.risk.models import metadata
from services.risk.rows import prefetch
from shared.runtime import ServiceSpec


async def _open_fund(session: AsyncSession) -> None:
    await funds.open_fund(session)


SPEC = ServiceSpec(
    name="risk",
    title="risk",
    description="NPL ratios, the 3% circuit breaker, loss split, risk compensation fund, titles.",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=lambda: [api.router],
    handlers=HANDLERS,
    on_start=_open_fund,
    prefetch=prefetch,
)
