"""``GET /v1/statistics``: how many households and businesses are registered, in the district,
a township or a village (issue 26). Counts only: no subject is read, so nothing is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from services.registry.models import Business, Household
from services.registry.schemas import RegistryStatisticsOut
from shared.web import ReadSession, scope

router = APIRouter(prefix="/v1")

Code = Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$")]


def _count(table: type[Household] | type[Business], township_code: str | None, village_code: str | None) -> Any:
    query = select(func.count()).select_from(table)
    if township_code is not None:
        query = query.where(table.township_code == township_code)
    if village_code is not None:
        query = query.where(table.village_code == village_code)
    return query


@router.get(
    "/statistics",
    response_model=RegistryStatisticsOut,
    tags=["hierarchy"],
    summary="Households and businesses registered, counted (district, township or village)",
    dependencies=[scope("bulletins:read")],
)
async def registry_statistics(
    session: ReadSession, township_code: Code = None, village_code: Code = None
) -> RegistryStatisticsOut:
    return RegistryStatisticsOut(
        township_code=township_code,
        village_code=village_code,
        households=await session.scalar(_count(Household, township_code, village_code)) or 0,
        businesses=await session.scalar(_count(Business, township_code, village_code)) or 0,
    )
