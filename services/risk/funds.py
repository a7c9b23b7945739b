"""The risk compensation fund (004 §6(2)): its entries, balance and capacity, and its statement
for a period. The split of realised losses (004 §6(1)), which draws on it and on the
businesses' mutual guarantee (``mutual_guarantee.py``), is in ``losses.py``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.context import business_date, settings
from services.risk.domain.statement import Period
from services.risk.models import FundEntry, Village
from shared.catalogue import FundCapacityChanged
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money

ZERO = Decimal("0.00")


async def balance(session: AsyncSession) -> Decimal:
    return Decimal(await session.scalar(select(func.coalesce(func.sum(FundEntry.amount), 0))) or 0)


def capacity_of(fund_balance: Decimal) -> Decimal:
    # 004 §6(2): programme lending is leveraged 10x on the fund; an overdrawn fund gives none.
    return max(ZERO, fund_balance * settings().fund_leverage)


async def programme_outstanding(session: AsyncSession) -> Decimal:
    return Decimal(await session.scalar(select(func.coalesce(func.sum(Village.outstanding), 0))) or 0)


async def publish_capacity(session: AsyncSession, cause: str, amount: Decimal | None) -> None:
    # Every movement (a top-up here, a loss in the consumer) publishes the balance after it,
    # and loans keeps the last one it applies. Without a lock two concurrent movements each
    # summed the entries without the other's and published a stale balance (PostgreSQL).
    # The opening entry's row is the fund's lock: the sum below then sees every movement
    # committed before this one, and this event follows theirs in the outbox. (SQLite:
    # writers already queue whole, BEGIN IMMEDIATE.)
    await session.execute(select(FundEntry.id).where(FundEntry.kind == "opening").with_for_update())
    fund_balance = await balance(session)
    await emit(
        session,
        new_event(
            "risk.fund.capacity_changed",
            "fund",
            FundCapacityChanged(
                balance=format_money(fund_balance),
                capacity=format_money(capacity_of(fund_balance)),
                cause=cause,
                amount=None if amount is None else format_money(amount),
            ),
        ),
    )


async def _book(session: AsyncSession, kind: str, amount: Decimal, reason: str, decided_by: str) -> None:
    """A movement decided here (the opening, a top-up), dated on risk's business date."""
    session.add(
        FundEntry(
            kind=kind,
            amount=amount,
            loan_id=None,
            reason=reason,
            decided_by=decided_by,
            business_date=await business_date(session),
            recorded_at=datetime.now(UTC),
        )
    )
    await session.flush()


async def open_fund(session: AsyncSession) -> bool:
    """Book the opening balance once (at the service's first start) and publish the
    capacity, so loans stops using its configured initial capacity."""
    if await session.scalar(select(FundEntry.id).where(FundEntry.kind == "opening").limit(1)) is not None:
        return False
    opening = settings().fund_opening_balance
    try:
        async with session.begin_nested():
            await _book(
                session, "opening", opening, "district finance's opening contribution (004 §6(2))", "configuration"
            )
    except IntegrityError:  # another replica opened it at the same moment
        return False
    await publish_capacity(session, "opening", opening)
    return True


async def top_up(session: AsyncSession, amount: Decimal, reason: str, decided_by: str) -> None:
    await _book(session, "top_up", amount, reason, decided_by)
    await publish_capacity(session, "top_up", amount)


async def entries(session: AsyncSession, limit: int, offset: int) -> list[FundEntry]:
    return list(await session.scalars(select(FundEntry).order_by(FundEntry.id).limit(limit).offset(offset)))


async def balance_before(session: AsyncSession, start: date) -> Decimal:
    """The fund's balance at the start of ``start``: its entries dated before it."""
    total = await session.scalar(
        select(func.coalesce(func.sum(FundEntry.amount), 0)).where(FundEntry.business_date < start)
    )
    return Decimal(total or 0)


async def entries_in(session: AsyncSession, period: Period) -> list[FundEntry]:
    """The fund's entries dated in the period, by date and then as they were booked."""
    return list(
        await session.scalars(
            select(FundEntry)
            .where(FundEntry.business_date >= period.start, FundEntry.business_date <= period.end)
            .order_by(FundEntry.business_date, FundEntry.id)
        )
    )
