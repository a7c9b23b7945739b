from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import funds
from services.risk.handlers import HANDLERS
from services.risk.models import Township, Village, metadata
from services.risk.routers import routers
from services.risk.rows import finish, prefetch
from shared.metrics import SampledGauge
from shared.money import to_fen
from shared.runtime import ServiceSpec


async def _open_fund(session: AsyncSession) -> None:
    await funds.open_fund(session)


async def _frozen_villages(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Village).where(Village.frozen)) or 0)


async def _halted_townships(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Township).where(Township.halted)) or 0)


async def _fund_balance_fen(session: AsyncSession) -> int:
    return int(to_fen(await funds.balance(session)) * 100)


SPEC = ServiceSpec(
    name="risk",
    title="risk",
    description="NPL ratios, the 3% circuit breaker, loss split, risk compensation fund, titles.",
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=routers,
    handlers=HANDLERS,
    on_start=_open_fund,
    prefetch=prefetch,
    finish=finish,
    gauges=(
        SampledGauge("vcredit_frozen_villages", "Villages whose new credit is frozen (004 §6(3))", _frozen_villages),
        SampledGauge(
            "vcredit_halted_townships", "Townships whose new lending is halted (004 §6(3))", _halted_townships
        ),
        SampledGauge("vcredit_fund_balance_fen", "Risk compensation fund balance, fen (004 §6(2))", _fund_balance_fen),
    ),
)
