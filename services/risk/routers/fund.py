"""The risk compensation fund and the businesses' mutual guarantee contributions (004 §6(2))."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import context, funds
from services.risk.schemas import FundEntryOut, FundOut, MutualGuaranteeOut, TopUpIn
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.money import format_money
from shared.paging import MAX_PAGE, Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")


async def _fund_out(session: AsyncSession) -> FundOut:
    balance = await funds.balance(session)
    capacity = funds.capacity_of(balance)
    outstanding = await funds.programme_outstanding(session)
    return FundOut(
        balance=format_money(balance),
        capacity=format_money(capacity),
        outstanding=format_money(outstanding),
        available=format_money(max(Decimal("0.00"), capacity - outstanding)),
        leverage=context.settings().fund_leverage,
    )


@router.get("/fund", response_model=FundOut, tags=["funds"], dependencies=[scope("risk:read")])
async def get_fund(session: ReadSession) -> FundOut:
    """The risk compensation fund (004 §6(2)): capacity is 10x the balance."""
    return await _fund_out(session)


@router.get("/fund/entries", response_model=list[FundEntryOut], tags=["funds"], dependencies=[scope("fund:read")])
async def list_fund_entries(session: ReadSession, limit: Limit = 100, offset: Offset = 0) -> list[FundEntryOut]:
    return [
        FundEntryOut(
            kind=e.kind,
            amount=format_money(e.amount),
            loan_id=e.loan_id,
            reason=e.reason,
            decided_by=e.decided_by,
            business_date=e.business_date,
            recorded_at=e.recorded_at,
        )
        for e in await funds.entries(session, limit, offset)
    ]


@router.post(
    "/fund/top-ups",
    status_code=201,
    response_model=FundOut,
    tags=["funds"],
    summary="Top up the fund (government)",
    dependencies=[scope("fund:write"), IDEMPOTENCY_KEY],
)
async def top_up_fund(
    body: TopUpIn, request: Request, session: Session, principal: CurrentPrincipal
) -> FundOut | JSONResponse:
    async def topped_up() -> FundOut:
        await funds.top_up(session, body.amount, body.reason, principal.name)
        return await _fund_out(session)

    return await idempotent(session, request, body, topped_up, status=201)


@router.get(
    "/mutual-guarantee", response_model=list[MutualGuaranteeOut], tags=["funds"], dependencies=[scope("losses:read")]
)
async def list_mutual_guarantee(
    session: ReadSession,
    business_id: str | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[MutualGuaranteeOut]:
    """Businesses' 10% contributions (004 §6(2)) and what their own losses drew from them."""
    return [
        MutualGuaranteeOut(
            business_id=a.business_id,
            village_code=a.village_code,
            contributed=format_money(a.contributed),
            drawn=format_money(a.drawn),
            balance=format_money(a.contributed - a.drawn),
        )
        for a in await funds.mutual_guarantee_accounts(session, business_id, limit, offset)
    ]
