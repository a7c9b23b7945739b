from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.registry.models import Township, Village
from services.registry.schemas import TownshipIn, TownshipOut, VillageIn, VillageOut
from shared import idempotency
from shared.catalogue import TownshipCreated, VillageCreated
from shared.events import new_event
from shared.messaging import emit
from shared.web import Problem, ReadSession, Session

router = APIRouter(prefix="/v1", tags=["hierarchy"])


@router.post("/townships", status_code=201, response_model=TownshipOut)
async def create_township(body: TownshipIn, request: Request, session: Session) -> TownshipOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        if await session.get(Township, body.code) is not None:
            raise Problem(409, "DUPLICATE_CODE", "Township exists", f"Township {body.code} is already registered.")
        session.add(Township(code=body.code, name=body.name, created_at=datetime.now(UTC)))
        await emit(
            session, new_event("registry.township.created", body.code, TownshipCreated(code=body.code, name=body.name))
        )
        out = TownshipOut(code=body.code, name=body.name)
        await idempotency.remember(session, request, 201, out)
    return out


@router.get("/townships/{code}", response_model=TownshipOut)
async def get_township(code: str, session: ReadSession) -> TownshipOut:
    township = await session.get(Township, code)
    if township is None:
        raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"No township {code}.")
    return TownshipOut(code=township.code, name=township.name)


@router.post("/villages", status_code=201, response_model=VillageOut)
async def create_village(body: VillageIn, request: Request, session: Session) -> VillageOut | JSONResponse:
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        if await session.get(Township, body.township_code) is None:
            raise Problem(
                422,
                "UNKNOWN_TOWNSHIP",
                "Unknown township",
                f"Township {body.township_code} is not registered.",
                field="township_code",
            )
        if await session.get(Village, body.code) is not None:
            raise Problem(409, "DUPLICATE_CODE", "Village exists", f"Village {body.code} is already registered.")
        session.add(
            Village(code=body.code, name=body.name, township_code=body.township_code, created_at=datetime.now(UTC))
        )
        await emit(
            session,
            new_event(
                "registry.village.created",
                body.code,
                VillageCreated(code=body.code, name=body.name, township_code=body.township_code),
            ),
        )
        out = VillageOut(code=body.code, name=body.name, township_code=body.township_code)
        await idempotency.remember(session, request, 201, out)
    return out


@router.get("/villages/{code}", response_model=VillageOut)
async def get_village(code: str, session: ReadSession) -> VillageOut:
    village = await session.get(Village, code)
    if village is None:
        raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"No village {code}.")
    return VillageOut(code=village.code, name=village.name, township_code=village.township_code)


@router.get("/villages", response_model=list[VillageOut])
async def list_villages(session: ReadSession, township_code: str | None = None) -> list[VillageOut]:
    query = select(Village).order_by(Village.code)
    if township_code is not None:
        query = query.where(Village.township_code == township_code)
    return [
        VillageOut(code=v.code, name=v.name, township_code=v.township_code)
        for v in (await session.scalars(query)).all()
    ]
