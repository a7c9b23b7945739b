"""Credit lines: opening one, its limit following the rating in force, what it has available,
the refusals of new credit (DOMAIN.md §5) and the fund's capacity (004 §6(2))."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.context import business_date, settings
from services.loans.credit_lists import active_entries, is_blacklisted
from services.loans.domain.loan_state import ZERO, who
from services.loans.models import CreditLine, FundView, RatingView, TownshipView, VillageView
from shared.catalogue import CreditLineChanged, CreditLineOpened
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem


def available(line: CreditLine) -> Decimal:
    # 004 §5.4: 一次授信、随用随贷、周转使用, so repaid principal is available again.
    return max(ZERO, line.limit - line.outstanding)


# --- refusals (DOMAIN.md §5: new credit = opening a line, raising a limit, a drawdown) --------


async def refuse_blacklisted(session: AsyncSession, subject_id: str) -> None:
    entries = await active_entries(session, subject_id, "black")
    if entries:
        named = ", ".join(f"{e.entry_id} ({e.cause})" for e in entries)
        raise Problem(
            409,
            "BLACKLISTED",
            "Blacklisted",
            f"On the black list (失信黑名单), entry {named}: no new credit until delisted (seed 001).",
            entries=[e.entry_id for e in entries],
        )


async def refuse_new_credit(session: AsyncSession, village_code: str, township_code: str, subject_id: str) -> None:
    await refuse_blacklisted(session, subject_id)
    village = await session.get(VillageView, village_code)
    if village is not None and village.frozen:
        raise Problem(
            409,
            "VILLAGE_FROZEN",
            "Village frozen",
            f"Village {village_code}'s NPL ratio is over the line: no new credit (004 §6(3)).",
        )
    township = await session.get(TownshipView, township_code)
    if township is not None and township.halted:
        raise Problem(
            409, "TOWNSHIP_HALTED", "Township halted", f"Lending to township {township_code} is halted (004 §6(3))."
        )


async def new_credit_stopped(session: AsyncSession, village_code: str, township_code: str) -> bool:
    village = await session.get(VillageView, village_code)
    township = await session.get(TownshipView, township_code)
    return bool((village is not None and village.frozen) or (township is not None and township.halted))


async def fund(session: AsyncSession) -> FundView:
    fund = await session.get(FundView, 1, with_for_update=True)
    if fund is None:
        fund = FundView(id=1, capacity=settings().initial_fund_capacity)
        session.add(fund)
        await session.flush()
    return fund


async def fund_capacity(session: AsyncSession) -> Decimal:
    """The capacity now, without the drawdowns' lock: opening a line lends nothing, so the
    line openings of a certificate day need not queue behind each other on the fund row."""
    row = await session.get(FundView, 1)
    return row.capacity if row is not None else settings().initial_fund_capacity


async def programme_outstanding(session: AsyncSession) -> Decimal:
    total = await session.scalar(select(func.coalesce(func.sum(CreditLine.outstanding), 0)))
    return Decimal(total or 0)


# --- credit lines -------------------------------------------------------------------------


async def open_credit_line(session: AsyncSession, subject_id: str) -> CreditLine:
    """The subject's revolving line (一次授信) at its certified grade's limit, unless a refusal
    applies: no certified rating, no credit grade, new credit stopped, the fund's capacity
    reached, or a line already open."""
    # Locked: concurrent openings for one subject queue here, so the second sees the
    # first's line (409 CREDIT_LINE_EXISTS) instead of failing on its unique key (a 500).
    rating = await session.get(RatingView, subject_id, with_for_update=True)
    if rating is None or not rating.certified:
        raise Problem(
            409,
            "RATING_NOT_CERTIFIED",
            "Rating not certified",
            "A credit line needs a certified rating (after its public notice).",
        )
    if rating.credit_limit <= 0 or rating.grade == "NONE":
        raise Problem(409, "NO_CREDIT_GRADE", "No credit grade", "The rating in force gives no credit.")
    await refuse_new_credit(session, rating.village_code, rating.township_code, rating.subject_id)
    if await programme_outstanding(session) >= await fund_capacity(session):
        raise Problem(
            409,
            "FUND_CAPACITY_EXCEEDED",
            "Fund capacity reached",
            "Programme lending is at 10x the risk compensation fund (004 §6(2)).",
        )
    if await session.scalar(select(CreditLine.id).where(CreditLine.subject_id == subject_id)):
        raise Problem(409, "CREDIT_LINE_EXISTS", "Credit line exists", "One revolving line per subject.")
    return await open_line(session, rating, await business_date(session))


async def open_line(session: AsyncSession, rating: RatingView, today: date) -> CreditLine:
    line = CreditLine(
        id=str(uuid.uuid4()),
        subject_id=rating.subject_id,
        subject_kind=rating.subject_kind,
        village_code=rating.village_code,
        township_code=rating.township_code,
        limit=rating.credit_limit,
        outstanding=ZERO,
        status="active",
        opened_on=today,
        version=1,
    )
    session.add(line)
    await emit(
        session,
        new_event(
            "loans.credit_line.opened",
            line.village_code,
            CreditLineOpened(**who(line), credit_line_id=line.id, limit=format_money(line.limit)),
        ),
    )
    return line


async def set_limit(
    session: AsyncSession, line: CreditLine, limit: Decimal, cause: str, *, blacklisted: bool | None = None
) -> None:
    """The line follows the rating in force: a downgrade lowers it at once (drawn principal
    stays, drawdowns over the new limit are refused); an upgrade arrives only certified.
    ``blacklisted``, when the caller already knows it, saves a query."""
    if line.limit == limit:
        return
    if limit > line.limit:
        # DOMAIN §5: raising a limit is new credit, stopped by a freeze, a halt or the black
        # list (seed 001); the raise is applied when the last of them lifts (handlers.py).
        if await new_credit_stopped(session, line.village_code, line.township_code):
            return
        if blacklisted is None:
            blacklisted = await is_blacklisted(session, line.subject_id)
        if blacklisted:
            return
    line.limit = limit
    line.version += 1
    await emit(
        session,
        new_event(
            "loans.credit_line.changed",
            line.village_code,
            CreditLineChanged(
                **who(line),
                credit_line_id=line.id,
                limit=format_money(line.limit),
                available=format_money(available(line)),
                status=line.status,
                cause=cause,
            ),
        ),
    )
