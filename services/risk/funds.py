"""The risk compensation fund (004 §6(2)) and the businesses' mutual guarantee contributions.
The split of realised losses (004 §6(1)), which draws on both, is in ``losses.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.context import business_date, settings
from services.risk.models import FundEntry, MutualGuaranteeAccount, Village
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


async def contribute(session: AsyncSession, business_id: str, village_code: str, amount: Decimal) -> None:
    account = await session.get(MutualGuaranteeAccount, business_id)
    if account is None:
        account = MutualGuaranteeAccount(
            business_id=business_id, village_code=village_code, contributed=ZERO, drawn=ZERO
        )
        session.add(account)
    account.contributed += amount


async def entries(session: AsyncSession, limit: int, offset: int) -> list[FundEntry]:
    return list(await session.scalars(select(FundEntry).order_by(FundEntry.id).limit(limit).offset(offset)))


async def mutual_guarantee_accounts(
    session: AsyncSession, business_id: str | None, limit: int, offset: int
) -> list[MutualGuaranteeAccount]:
    query = select(MutualGuaranteeAccount).order_by(MutualGuaranteeAccount.business_id).limit(limit).offset(offset)
    if business_id is not None:
        query = query.where(MutualGuaranteeAccount.business_id == business_id)
    return list(await session.scalars(query))
