"""Credit lines: opening one, its limit following the rating in force, what it has available,
the refusals of new credit (DOMAIN.md §5) and the fund's capacity (004 §6(2))."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.context import business_date, settings
from services.loans.credit_lists import active_entries, is_blacklisted
from services.loans.domain import opening
from services.loans.domain.loan_state import ZERO, who
from services.loans.domain.opening import Refusal, new_credit_refusal
from services.loans.models import CreditLine, FundView, RatingStatusView, RatingView, TownshipView, VillageView
from shared.catalogue import CreditLineChanged, CreditLineOpened
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem


def available(line: CreditLine) -> Decimal:
    # 004 §5.4: 一次授信、随用随贷、周转使用, so repaid principal is available again.
    return max(ZERO, line.limit - line.outstanding)


# --- refusals (DOMAIN.md §5: new credit = opening a line, raising a limit, a drawdown) --------
# The rules are domain/opening.py's; here they are read for one subject and raised as 409s.


def refused(refusal: Refusal) -> Problem:
    """The single request's answer to a refusal: its 409, the case in ``reason_code``."""
    problem = Problem(409, refusal.code, refusal.title, refusal.detail, reason_code=refusal.reason_code)
    problem.extra.update(refusal.extra)
    return problem


async def _black_entries(session: AsyncSession, subject_id: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((e.entry_id, e.cause) for e in await active_entries(session, subject_id, "black"))


async def _breaker(session: AsyncSession, village_code: str, township_code: str) -> tuple[bool, bool]:
    """(village frozen, township halted), from risk's circuit breaker (004 §6(3))."""
    village = await session.get(VillageView, village_code)
    township = await session.get(TownshipView, township_code)
    return (village is not None and village.frozen), (township is not None and township.halted)


async def refuse_new_credit(session: AsyncSession, village_code: str, township_code: str, subject_id: str) -> None:
    frozen, halted = await _breaker(session, village_code, township_code)
    refusal = new_credit_refusal(await _black_entries(session, subject_id), frozen, halted, village_code, township_code)
    if refusal is not None:
        raise refused(refusal)


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


async def within_capacity(session: AsyncSession, amount: Decimal) -> bool:
    """Whether programme lending, this drawdown's ``amount`` included (its line flushed),
    stays within the fund's capacity (004 §6(2)): the rule ``programme_outstanding <=
    capacity``, checked under the fund row's lock, which every drawdown takes and holds to
    its commit, so concurrent drawdowns never both pass on the same headroom.

    The row keeps an upper bound of the outstanding (models.FundView.outstanding_bound).
    Usually one statement takes the lock and raises the bound by ``amount`` where that keeps
    it within the capacity: the outstanding, at most the bound, is then within it too, and
    the sum over every line (a scan, held under the lock) is not needed. Otherwise (no bound
    yet, or near the capacity) the lines are summed under the lock, as before, and the bound
    becomes that exact sum. A refusal rolls the bound back with the rest of the drawdown."""
    bound = FundView.outstanding_bound
    raised = await session.execute(
        update(FundView)
        .where(FundView.id == 1, bound.is_not(None), bound + amount <= FundView.capacity)
        .values(outstanding_bound=bound + amount)
        .returning(FundView.id)
        # The row is not in this session (a drawdown reads it only here): nothing to refresh.
        .execution_options(synchronize_session=False)
    )
    if raised.first() is not None:
        return True
    row = await fund(session)
    total = await programme_outstanding(session)
    row.outstanding_bound = total
    return total <= row.capacity


async def fund_capacity(session: AsyncSession) -> Decimal:
    """The capacity now, without the drawdowns' lock: opening a line lends nothing, so the
    line openings of a certificate day need not queue behind each other on the fund row."""
    row = await session.get(FundView, 1)
    return row.capacity if row is not None else settings().initial_fund_capacity


async def programme_outstanding(session: AsyncSession) -> Decimal:
    total = await session.scalar(select(func.coalesce(func.sum(CreditLine.outstanding), 0)))
    return Decimal(total or 0)


# --- credit lines -------------------------------------------------------------------------


async def fund_full(session: AsyncSession) -> bool:
    return await programme_outstanding(session) >= await fund_capacity(session)


def rating_fact(rating: RatingView | None) -> opening.Rating | None:
    return None if rating is None else opening.Rating(rating.certified, rating.grade, rating.credit_limit)


def workflow_fact(status: RatingStatusView | None) -> opening.Workflow | None:
    if status is None:
        return None
    return opening.Workflow(status.status, status.vetoed, status.notice_ends, status.reason_code)


async def open_credit_line(session: AsyncSession, subject_id: str) -> CreditLine:
    """The subject's revolving line (一次授信) at its certified grade's limit, unless a refusal
    applies (domain/opening.py: the same rule the whole village's opening applies)."""
    # Locked: concurrent openings for one subject queue here, so the second sees the
    # first's line (409 CREDIT_LINE_EXISTS) instead of failing on its unique key (a 500).
    rating = await session.get(RatingView, subject_id, with_for_update=True)
    village, township = (rating.village_code, rating.township_code) if rating is not None else ("", "")
    rating_ok = rating is not None and rating.certified and rating.credit_limit > 0 and rating.grade != "NONE"
    # Read only as far as the rule needs them: a refused rating asks nothing more.
    frozen, halted = await _breaker(session, village, township) if rating_ok else (False, False)
    facts = opening.Facts(
        rating=rating_fact(rating),
        workflow=workflow_fact(await session.get(RatingStatusView, subject_id)) if not rating_ok else None,
        black_entries=await _black_entries(session, subject_id) if rating_ok else (),
        village_frozen=frozen,
        township_halted=halted,
        fund_full=await fund_full(session) if rating_ok else False,
        line_open=bool(await session.scalar(select(CreditLine.id).where(CreditLine.subject_id == subject_id))),
    )
    refusal = opening.opening_refusal(facts, village, township)
    if refusal is not None:
        raise refused(refusal)
    assert rating is not None  # opening_refusal refuses a subject with no rating
    return await open_line(session, rating, await business_date(session))


async def open_line(session: AsyncSession, rating: RatingView, today: date) -> CreditLine:
    line, opened = new_line(rating, today)
    session.add(line)
    await emit(session, opened)
    return line


def new_line(rating: RatingView, today: date) -> tuple[CreditLine, Envelope]:
    """A line at the rating's limit and its loans.credit_line.opened event (not yet added)."""
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
    return line, new_event(
        "loans.credit_line.opened",
        line.village_code,
        CreditLineOpened(**who(line), credit_line_id=line.id, limit=format_money(line.limit)),
    )


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
