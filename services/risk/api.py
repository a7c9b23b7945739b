from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from services.risk.models import Township, Village
from services.risk.schemas import TownshipOut, VillageOut
from shared.web import Problem, ReadSession

router = APIRouter(prefix="/v1", tags=["villages"])


@router.get("/villages/{code}", response_model=VillageOut)
async def get_village(code: str, session: ReadSession) -> VillageOut:
    village = await session.get(Village, code)
    if village is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"Risk knows no village {code}.")
    return VillageOut(code=village.code, name=village.name, township_code=village.township_code)


@router.get("/townships/{code}", response_model=TownshipOut)
async def get_township(code: str, session: ReadSession) -> TownshipOut:
    township = await session.get(Township, code)
    if township is None:
        raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"Risk knows no township {code}.")
    villages = await session.scalar(select(func.count()).where(Village.township_code == code))
    return TownshipOut(code=township.code, name=township.name, villages=int(villages or 0))
