"""Consumers of other services' events. Each runs inside the inbox transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import Township, Village
from shared.catalogue import TownshipCreated, VillageCreated
from shared.events import Envelope, parse_payload
from shared.messaging import Handler


async def on_township_created(session: AsyncSession, event: Envelope) -> None:
    township = parse_payload(event, TownshipCreated)
    await session.merge(Township(code=township.code, name=township.name))


async def on_village_created(session: AsyncSession, event: Envelope) -> None:
    village = parse_payload(event, VillageCreated)
    # The township event may still be in flight on another partition (it is keyed by the
    # township code), so the village does not require it to be here first.
    await session.merge(Village(code=village.code, name=village.name, township_code=village.township_code))


HANDLERS: dict[str, Handler] = {
    "registry.township.created": on_township_created,
    "registry.village.created": on_village_created,
}
