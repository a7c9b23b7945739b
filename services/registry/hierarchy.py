"""Registering and renaming the administrative units subjects belong to: townships, and the
villages and urban communities under them. A rename keeps the former name with its date."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import Community, NameChange, Township, Village
from services.registry.schemas import (
    CommunityIn,
    CommunityOut,
    FormerName,
    TownshipIn,
    TownshipOut,
    VillageIn,
    VillageOut,
)
from shared.auth import Principal
from shared.catalogue import CommunityCreated, TownshipCreated, UnitRenamed, VillageCreated
from shared.events import new_event
from shared.messaging import emit
from shared.problems import Problem


def _former(changes: list[NameChange]) -> list[FormerName]:
    return [FormerName(name=c.old_name, until=c.changed_at) for c in changes]


async def name_history(session: AsyncSession, kind: str, code: str) -> list[FormerName]:
    rows = await session.scalars(
        select(NameChange).where(NameChange.kind == kind, NameChange.code == code).order_by(NameChange.id)
    )
    return _former(list(rows))


async def create_township(session: AsyncSession, body: TownshipIn) -> TownshipOut:
    if await session.get(Township, body.code) is not None:
        raise Problem(409, "DUPLICATE_CODE", "Township exists", f"Township {body.code} is already registered.")
    session.add(Township(code=body.code, name=body.name, created_at=datetime.now(UTC)))
    await emit(
        session, new_event("registry.township.created", body.code, TownshipCreated(code=body.code, name=body.name))
    )
    return TownshipOut(code=body.code, name=body.name)


async def _rename(
    session: AsyncSession, kind: str, unit: Township | Village, name: str, principal: Principal
) -> list[FormerName]:
    if unit.name != name:
        session.add(
            NameChange(
                kind=kind,
                code=unit.code,
                old_name=unit.name,
                new_name=name,
                changed_at=datetime.now(UTC),
                changed_by=principal.name,
            )
        )
        key = unit.code
        await emit(
            session,
            new_event(f"registry.{kind}.renamed", key, UnitRenamed(code=unit.code, old_name=unit.name, new_name=name)),
        )
        unit.name = name
        await session.flush()
    return await name_history(session, kind, unit.code)


async def rename_township(session: AsyncSession, code: str, name: str, principal: Principal) -> TownshipOut:
    async with session.begin():
        township = await session.get(Township, code, with_for_update=True)
        if township is None:
            raise Problem(404, "TOWNSHIP_NOT_FOUND", "Township not found", f"No township {code}.")
        former = await _rename(session, "township", township, name, principal)
        return TownshipOut(code=code, name=township.name, former_names=former)


async def rename_village(session: AsyncSession, code: str, name: str, principal: Principal) -> VillageOut:
    async with session.begin():
        village = await session.get(Village, code, with_for_update=True)
        if village is None:
            raise Problem(404, "VILLAGE_NOT_FOUND", "Village not found", f"No village {code}.")
        former = await _rename(session, "village", village, name, principal)
        return VillageOut(code=code, name=village.name, township_code=village.township_code, former_names=former)


async def _create_under_township(
    session: AsyncSession,
    body: VillageIn | CommunityIn,
    kind: str,
    model: type[Village] | type[Community],
    payload: type[VillageCreated] | type[CommunityCreated],
) -> None:
    """Villages and urban communities: a unit with a code, registered under its township."""
    if await session.get(Township, body.township_code) is None:
        raise Problem(
            422,
            "UNKNOWN_TOWNSHIP",
            "Unknown township",
            f"Township {body.township_code} is not registered.",
            field="township_code",
        )
    if await session.get(model, body.code) is not None:
        title = kind.capitalize()
        raise Problem(409, "DUPLICATE_CODE", f"{title} exists", f"{title} {body.code} is already registered.")
    session.add(model(code=body.code, name=body.name, township_code=body.township_code, created_at=datetime.now(UTC)))
    event = payload(code=body.code, name=body.name, township_code=body.township_code)
    await emit(session, new_event(f"registry.{kind}.created", body.code, event))


async def create_village(session: AsyncSession, body: VillageIn) -> VillageOut:
    await _create_under_township(session, body, "village", Village, VillageCreated)
    return VillageOut(code=body.code, name=body.name, township_code=body.township_code)


async def create_community(session: AsyncSession, body: CommunityIn) -> CommunityOut:
    await _create_under_township(session, body, "community", Community, CommunityCreated)
    return CommunityOut(code=body.code, name=body.name, township_code=body.township_code)
