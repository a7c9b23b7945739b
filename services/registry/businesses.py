"""Agricultural businesses (带贫农业经营主体, 004 annex 2 art. 11): registering one and its view.
Their facts are recorded and changed as every subject's are (``subjects.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.domain.facts import canonical, profile_of
from services.registry.models import Business, Fact
from services.registry.schemas import BusinessIn, BusinessOut
from services.registry.subjects import Provenance, current_facts, fact_ends_of, fact_rows, known_facts, village_or_422
from shared.catalogue import BusinessRegistered
from shared.events import new_event
from shared.messaging import emit
from shared.problems import Problem


async def register_business(session: AsyncSession, body: BusinessIn, provenance: Provenance) -> Business:
    """Refused when its village is unknown or its credit code registered already."""
    village = await village_or_422(session, body.village_code)
    if await session.scalar(select(Business.id).where(Business.credit_code == body.credit_code)):
        raise Problem(
            409,
            "CREDIT_CODE_REGISTERED",
            "Already registered",
            f"A business with credit code {body.credit_code} is already registered.",
        )
    now = datetime.now(UTC)
    business = Business(
        id=str(uuid.uuid4()),
        credit_code=body.credit_code,
        name=body.name,
        kind=body.kind,
        village_code=village.code,
        township_code=village.township_code,
        created_at=now,
        version=1,
    )
    session.add(business)
    await session.flush()
    known = known_facts(body.profile)
    if known:
        await session.execute(insert(Fact), fact_rows("business", business.id, known, provenance, now))
    await emit(
        session,
        new_event(
            "registry.business.registered",
            village.code,
            BusinessRegistered(
                business_id=business.id,
                credit_code=business.credit_code,
                name=business.name,
                kind=business.kind,
                village_code=village.code,
                township_code=village.township_code,
                profile=profile_of({f: canonical(v) for f, v in known.items()}),
            ),
        ),
    )
    return business


async def business_view(session: AsyncSession, business: Business) -> BusinessOut:
    current = (await current_facts(session, [business.id]))[business.id]
    return BusinessOut(
        business_id=business.id,
        credit_code=business.credit_code,
        name=business.name,
        kind=business.kind,
        village_code=business.village_code,
        township_code=business.township_code,
        profile=profile_of({f: fact.value for f, fact in current.items()}),
        disputed_fields=sorted(f for f, fact in current.items() if fact.disputed),
        fact_ends=fact_ends_of(current),
        version=business.version,
        created_at=business.created_at,
    )
