"""The risk compensation fund and the businesses' mutual guarantee contributions (004 §6(2)),
and their statements (issue 25 item 5)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import context, funds, mutual_guarantee, statements
from services.risk.schemas import (
    FundEntryOut,
    FundOut,
    FundStatementOut,
    MutualGuaranteeOut,
    MutualGuaranteeStatementOut,
    TopUpIn,
)
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.money import format_money
from shared.openapi import problems
from shared.paging import MAX_PAGE, Limit, Offset
from shared.tabular import FILE_RESPONSES, download
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
    "/fund/statement",
    response_model=FundStatementOut,
    tags=["funds"],
    summary="The fund's statement for a period: opening, each movement, totals by kind, closing",
    description="from defaults to the first day of to's year (VCREDIT_RISK_STATEMENT_PERIOD: or quarter, "
    "month), to to the business date (no later: 422 naming it); "
    "from after to is 422 naming from. JSON, or with format=csv or format=xlsx a file (shared/tabular): "
    "Chinese column titles, the balance brought forward as the first line, a 合计 row with the closing "
    "balance; the XLSX heading also gives the period and the totals by kind.",
    responses=FILE_RESPONSES,
    dependencies=[scope("fund:read")],
)
async def get_fund_statement(
    session: ReadSession,
    start: Annotated[date | None, Query(alias="from", description="first business date, included")] = None,
    end: Annotated[date | None, Query(alias="to", description="last business date, included")] = None,
    format: Annotated[Literal["csv", "xlsx"] | None, Query(description="a file instead of JSON")] = None,
) -> FundStatementOut | Response:
    """The risk compensation fund (004 §6(2)) over a period: opening + movements = closing."""
    out = await statements.fund_statement(session, await statements.period(session, start, end))
    if format is None:
        return out
    return download([statements.fund_sheet(out)], format, f"fund-statement-{out.from_}-{out.to}")


@router.get(
    "/mutual-guarantee", response_model=list[MutualGuaranteeOut], tags=["funds"], dependencies=[scope("losses:read")]
)
async def list_mutual_guarantee(
    session: ReadSession,
    business_id: str | None = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[MutualGuaranteeOut]:
    """Businesses' 10% contributions (004 §6(2)) and what their own losses drew from them, net
    of what recoveries gave back: balance = contributed - drawn."""
    return [
        MutualGuaranteeOut(
            business_id=a.business_id,
            village_code=a.village_code,
            contributed=format_money(a.contributed),
            drawn=format_money(a.drawn),
            balance=format_money(a.contributed - a.drawn),
        )
        for a in await mutual_guarantee.accounts(session, business_id, limit, offset)
    ]


@router.get(
    "/businesses/{business_id}/mutual-guarantee/statement",
    response_model=MutualGuaranteeStatementOut,
    tags=["funds"],
    summary="A business's mutual guarantee statement for a period: contributions, draws, recoveries, balance",
    description="Periods and formats as GET /v1/fund/statement. A registered business without loans has "
    "an empty statement; one risk has never heard of is 404.",
    responses={**FILE_RESPONSES, **problems({404: ["BUSINESS_NOT_FOUND"]})},
    dependencies=[scope("losses:read")],
)
async def get_mutual_guarantee_statement(
    business_id: str,
    session: ReadSession,
    start: Annotated[date | None, Query(alias="from", description="first business date, included")] = None,
    end: Annotated[date | None, Query(alias="to", description="last business date, included")] = None,
    format: Annotated[Literal["csv", "xlsx"] | None, Query(description="a file instead of JSON")] = None,
) -> MutualGuaranteeStatementOut | Response:
    """A business's 10% contributions (004 §6(2)), its own losses' draws and recoveries' parts
    back: opening + movements = closing."""
    span = await statements.period(session, start, end)
    out = await statements.mutual_guarantee_statement(session, business_id, span)
    if format is None:
        return out
    return download(
        [statements.mutual_guarantee_sheet(out)], format, f"mutual-guarantee-{business_id}-{out.from_}-{out.to}"
    )
