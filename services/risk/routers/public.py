"""Public disclosure (公示) of the lists in force and of credit repair decisions: no evidence,
no workflow, identifiers and ID numbers masked."""

from __future__ import annotations

from datetime import date
from typing import Literal, cast

from fastapi import APIRouter

from services.risk import credit_lists, repairs
from services.risk.routers.credit_lists import ListName, NameQuery, VillageQuery, entry_out
from services.risk.schemas import PublicListEntryOut, PublicRepairOut
from shared.paging import Limit, Offset
from shared.redaction import mask_resident_ids
from shared.web import ReadSession, scope

router = APIRouter(prefix="/v1")


@router.get(
    "/public/credit-lists",
    response_model=list[PublicListEntryOut],
    tags=["public disclosure"],
    dependencies=[scope("lists:read")],
)
async def public_lists(
    session: ReadSession,
    list: ListName | None = None,
    name: str | None = NameQuery,
    village_code: str | None = VillageQuery,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PublicListEntryOut]:
    """The red and black lists in force (公示): no proposal, rejected or ended entry, no
    evidence, identifiers masked."""
    rows = await credit_lists.published(session, list, name, village_code, limit, offset)
    # The government's view, less what the public must not see (evidence, ids, the workflow).
    return [PublicListEntryOut.model_validate(entry_out(e).model_dump()) for e in rows]


@router.get(
    "/public/credit-repairs",
    response_model=list[PublicRepairOut],
    tags=["public disclosure"],
    dependencies=[scope("lists:read")],
)
async def public_repairs(
    session: ReadSession,
    name: str | None = NameQuery,
    village_code: str | None = VillageQuery,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PublicRepairOut]:
    """Credit repair decisions, published with their reasons (ID numbers masked)."""
    return [
        PublicRepairOut(
            repair_id=r.id,
            entry_id=e.id,
            subject_kind=cast(credit_lists.SubjectKind, e.subject_kind),
            name=e.name,
            identifier_masked=e.identifier_masked,
            village_code=e.village_code,
            decision=cast(Literal["granted", "refused"], r.status),
            reasons=mask_resident_ids(r.reasons or ""),
            decided_by_role=r.decided_by_role or "government",
            decided_on=cast(date, r.decided_on),
        )
        for r, e in await repairs.published(session, name, village_code, limit, offset)
    ]
