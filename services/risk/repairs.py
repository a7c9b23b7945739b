"""Credit repair (信用修复, seed 001; issue 11): a black-listed subject that has fulfilled its
obligations applies once its tier's minimum publication period is over; the government
reviews and decides, and a granted repair ends the entry (``credit_lists.end``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import context, credit_lists
from services.risk.domain import credit_lists as rules
from services.risk.models import ListEntry, Repair
from shared.auth import Principal
from shared.catalogue import RepairDecided
from shared.events import new_event
from shared.messaging import emit
from shared.problems import Problem
from shared.redaction import mask_resident_ids
from shared.web import ensure_second_principal, ensure_visible


def _too_early(entry: ListEntry, today: date) -> None:
    if entry.earliest_repair_on is not None and today < entry.earliest_repair_on:
        raise Problem(
            409,
            "REPAIR_TOO_EARLY",
            "Too early for credit repair",
            f"A {entry.tier} entry listed on {entry.listed_on} may be repaired from {entry.earliest_repair_on}.",
            earliest_date=entry.earliest_repair_on.isoformat(),
        )


async def get_repair(session: AsyncSession, repair_id: str, *, lock: bool = False) -> Repair:
    repair = await session.get(Repair, repair_id, with_for_update=lock)
    if repair is None:
        raise Problem(404, "REPAIR_NOT_FOUND", "Repair not found", f"No credit repair {repair_id}.")
    return repair


async def apply(
    session: AsyncSession, principal: Principal, entry_id: str, statement: str, obligations_fulfilled_on: date
) -> tuple[Repair, ListEntry]:
    """An application for the subject's own black-list entry in force (the principal must be
    bound to its village or household)."""
    entry = await credit_lists.get_entry(session, entry_id, lock=True)
    # Another's entry answers as no entry: a bound credential learns nothing of who is listed.
    ensure_visible(
        principal, credit_lists.entry_not_found(entry_id), village=entry.village_code, household=entry.subject_id
    )
    if entry.list != "black" or entry.status != "active":
        raise Problem(409, "NOT_REPAIRABLE", "Not repairable", "Only a black-list entry in force can be repaired.")
    today = await context.business_date(session)
    if obligations_fulfilled_on > today:
        raise Problem(
            422,
            "FULFILLED_IN_THE_FUTURE",
            "Obligations not yet fulfilled",
            f"The business date is {today}.",
            field="obligations_fulfilled_on",
        )
    _too_early(entry, today)
    open_ = await session.scalar(
        select(Repair.id).where(Repair.entry_id == entry.id, Repair.status.in_(("applied", "under_review")))
    )
    if open_ is not None:
        raise Problem(409, "REPAIR_PENDING", "Repair pending", f"Application {open_} is still open.")
    repair = Repair(
        id=str(uuid.uuid4()),
        entry_id=entry.id,
        statement=statement,
        obligations_fulfilled_on=obligations_fulfilled_on,
        status="applied",
        applied_by=principal.name,
        applied_on=today,
    )
    session.add(repair)
    await session.flush()
    return repair, entry


async def review(session: AsyncSession, principal: Principal, repair_id: str, note: str) -> tuple[Repair, ListEntry]:
    """The review is the first half of the decision: the applicant (the government applying
    for a subject) does not review its own application either."""
    repair = await get_repair(session, repair_id, lock=True)
    if repair.status != "applied":
        raise Problem(409, "NOT_APPLIED", "Not awaiting review", f"The application is {repair.status}.")
    ensure_second_principal(principal, repair.applied_by, "credit repair application")
    repair.status, repair.reviewed_by, repair.review_note = "under_review", principal.name, note
    return repair, await credit_lists.get_entry(session, repair.entry_id)


async def decide(
    session: AsyncSession,
    principal: Principal,
    repair_id: str,
    decision: Literal["granted", "refused"],
    reasons: str,
) -> tuple[Repair, ListEntry]:
    """Granted: the subject leaves the black list, and the record is kept 5 years from the
    fulfilment (征信业管理条例 §16). Either way the decision is published. Never decided by
    the applicant."""
    repair = await get_repair(session, repair_id, lock=True)
    if repair.status != "under_review":
        raise Problem(
            409, "NOT_UNDER_REVIEW", "Not under review", f"The application is {repair.status}; review it first."
        )
    ensure_second_principal(principal, repair.applied_by, "credit repair application")
    entry = await credit_lists.get_entry(session, repair.entry_id, lock=True)
    today = await context.business_date(session)
    if decision == "granted":
        if entry.status != "active":
            raise Problem(409, "NOT_REPAIRABLE", "Not repairable", f"The entry is {entry.status}.")
        _too_early(entry, today)
        await credit_lists.end(
            session,
            entry,
            today=today,
            reason="repaired",
            decided_by_role="government",
            decided_by=principal.name,
            legal_basis=rules.REPAIR_BASIS,
            act_ended_on=repair.obligations_fulfilled_on,
        )
    repair.status, repair.decided_by_role, repair.reasons, repair.decided_on = (
        decision,
        "government",
        reasons,
        today,
    )
    repair.decided_by = principal.name
    await emit(
        session,
        new_event(
            "risk.repair.decided",
            entry.village_code,
            RepairDecided(
                repair_id=repair.id,
                entry_id=entry.id,
                subject_kind=cast(credit_lists.SubjectKind, entry.subject_kind),
                subject_id=entry.subject_id,
                village_code=entry.village_code,
                decision=decision,
                reasons=mask_resident_ids(reasons),
                decided_by_role="government",
                decided_on=today,
                decided_by=principal.name,
            ),
        ),
    )
    return repair, entry


async def listed(
    session: AsyncSession,
    status: Literal["applied", "under_review", "granted", "refused"] | None,
    limit: int,
    offset: int,
) -> list[tuple[Repair, ListEntry]]:
    query = (
        select(Repair, ListEntry)
        .join(ListEntry, ListEntry.id == Repair.entry_id)
        .order_by(Repair.applied_on, Repair.id)
        .limit(limit)
        .offset(offset)
    )
    if status is not None:
        query = query.where(Repair.status == status)
    return [(r, entry) for r, entry in await session.execute(query)]


async def published(
    session: AsyncSession, name: str | None, village_code: str | None, limit: int, offset: int
) -> list[tuple[Repair, ListEntry]]:
    """The decided applications, published with their reasons."""
    query = credit_lists.searched(
        select(Repair, ListEntry)
        .join(ListEntry, ListEntry.id == Repair.entry_id)
        .where(Repair.status.in_(("granted", "refused"))),
        name,
        village_code,
    )
    rows = await session.execute(query.order_by(Repair.decided_on, Repair.id).limit(limit).offset(offset))
    return [(r, e) for r, e in rows]
