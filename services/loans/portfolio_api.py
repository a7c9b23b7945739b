"""``GET /v1/portfolio``: the lending figures of the district, a township or a village
(issue 26), counts and sums only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.loans.context import business_date
from services.loans.portfolio import portfolio
from services.loans.schemas import PortfolioOut
from shared.money import format_money
from shared.web import ReadSession, scope

router = APIRouter(prefix="/v1")

Code = Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$")]


@router.get(
    "/portfolio",
    response_model=PortfolioOut,
    tags=["loans"],
    summary="Credit lines open and loans outstanding, counted and summed (district, township or village)",
    description="An aggregate (no subject, not an audited read), as of the business date: every credit line and "
    "its limit; the active loans (neither repaid nor written off) and their principal outstanding.",
    dependencies=[scope("bulletins:read")],
)
async def get_portfolio(session: ReadSession, township_code: Code = None, village_code: Code = None) -> PortfolioOut:
    found = await portfolio(session, township_code, village_code)
    return PortfolioOut(
        business_date=await business_date(session),
        township_code=township_code,
        village_code=village_code,
        credit_lines=found.credit_lines,
        credit_limit=format_money(found.credit_limit),
        loans_outstanding=found.loans_outstanding,
        principal_outstanding=format_money(found.principal_outstanding),
    )
