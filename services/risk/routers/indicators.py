"""The district's indicators (seed 003 annex 1)."""

from __future__ import annotations

from fastapi import APIRouter

from services.risk import indicators
from services.risk.schemas import DistrictIndicatorsOut
from shared.web import ReadSession, scope

router = APIRouter(prefix="/v1")


@router.get("/indicators", response_model=DistrictIndicatorsOut, tags=["indicators"], dependencies=[scope("risk:read")])
async def get_indicators(session: ReadSession) -> DistrictIndicatorsOut:
    """Credit-household coverage (seed 003 annex 1) and NPL figures per township and district."""
    return await indicators.district(session)
