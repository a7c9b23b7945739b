"""``GET /v1/statistics``: how many households and businesses are rated and how many
certified (信用户, 004 annex 2 step 6: certified once the notice ends without a sustained
objection), in the district, a township or a village (issue 26). Counts only: no subject is
read, so nothing is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from services.scoring.models import RatingState, Subject
from services.scoring.schemas import ScoringStatisticsOut
from shared.web import ReadSession, scope

router = APIRouter(prefix="/v1")

Code = Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$")]


def _count(kind: str, certified: bool, township_code: str | None, village_code: str | None) -> Any:
    # Rated: a subject with a rating state, whatever its status (in notice, objected,
    # certified or rejected); certified: the state is certified.
    query = select(func.count()).select_from(Subject).join(RatingState, RatingState.subject_id == Subject.id)
    query = query.where(Subject.kind == kind)
    if certified:
        query = query.where(RatingState.status == "certified")
    if township_code is not None:
        query = query.where(Subject.township_code == township_code)
    if village_code is not None:
        query = query.where(Subject.village_code == village_code)
    return query


@router.get(
    "/statistics",
    response_model=ScoringStatisticsOut,
    tags=["ratings"],
    summary="Households and businesses rated and certified, counted (district, township or village)",
    dependencies=[scope("bulletins:read")],
)
async def scoring_statistics(
    session: ReadSession, township_code: Code = None, village_code: Code = None
) -> ScoringStatisticsOut:
    async def count(kind: str, certified: bool) -> int:
        return await session.scalar(_count(kind, certified, township_code, village_code)) or 0

    return ScoringStatisticsOut(
        township_code=township_code,
        village_code=village_code,
        households_rated=await count("household", False),
        households_certified=await count("household", True),
        businesses_rated=await count("business", False),
        businesses_certified=await count("business", True),
    )
