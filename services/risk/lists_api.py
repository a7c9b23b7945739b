"""Red and black lists, credit repair and their public disclosure (issue 11)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal, TypeVar, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import breaker, credit_lists
from services.risk.domain import credit_lists as rules
from services.risk.models import ListEntry, Repair
from services.risk.schemas import (
    BlackListProposalIn,
    ListDecisionIn,
    ListEntryOut,
    PublicListEntryOut,
    PublicRepairOut,
    RedListEvaluationOut,
    RepairDecisionIn,
    RepairIn,
    RepairOut,
    RepairReviewIn,
)
from shared import idempotency
from shared.catalogue import RepairDecided
from shared.events import new_event
from shared.messaging import emit
from shared.paging import Limit, Offset
from shared.redaction import mask_resident_ids
from shared.web import CurrentPrincipal, Problem, ReadSession, Session, ensure_bound, scope

router = APIRouter(prefix="/v1")

ListName = Literal["red", "black"]
# A query over list entries, alone or joined (repairs with their entries).
Searched = TypeVar("Searched", bound=Select[*tuple[Any, ...]])
NameQuery = Query(default=None, min_length=1, max_length=50, description="Part of the name")
VillageQuery = Query(default=None, pattern=r"^[0-9]{1,12}$")  # ASCII: \d takes every script's digits


def _entry_out(e: ListEntry) -> ListEntryOut:
    return ListEntryOut(
        entry_id=e.id,
        list=cast(ListName, e.list),
        subject_kind=cast(credit_lists.SubjectKind, e.subject_kind),
        subject_id=e.subject_id,
        name=e.name,
        identifier_masked=e.identifier_masked,
        village_code=e.village_code,
        township_code=e.township_code,
        cause=e.cause,
        tier=e.tier,
        legal_basis=e.legal_basis,
        evidence=e.evidence,
        proposed_by=e.proposed_by,
        status=cast(Literal["proposed", "active", "rejected", "ended"], e.status),
        decided_by_role=e.decided_by_role,
        decision_reasons=e.decision_reasons,
        listed_on=e.listed_on,
        publication_ends_on=e.publication_ends_on,
        earliest_repair_on=e.earliest_repair_on,
        ended_on=e.ended_on,
        end_reason=e.end_reason,
        retention_ends_on=e.retention_ends_on,
    )


async def _entry(session: AsyncSession, entry_id: str, *, lock: bool = False) -> ListEntry:
    entry = await session.get(ListEntry, entry_id, with_for_update=lock)
    if entry is None:
        raise Problem(404, "LIST_ENTRY_NOT_FOUND", "List entry not found", f"No list entry {entry_id}.")
    return entry


def _searched(query: Searched, name: str | None, village_code: str | None) -> Searched:
    if name is not None:
        query = query.where(ListEntry.name.contains(name, autoescape=True))
    if village_code is not None:
        query = query.where(ListEntry.village_code == village_code)
    return query


# --- black list: the bank proposes, the government decides ----------------------------------


@router.post(
    "/black-list/proposals",
    status_code=201,
    response_model=ListEntryOut,
    tags=["credit lists"],
    dependencies=[scope("lists:propose")],
)
async def propose_black_listing(
    body: BlackListProposalIn, request: Request, session: Session, principal: CurrentPrincipal
) -> ListEntryOut | JSONResponse:
    """A bank reports malicious debt evasion (恶意逃废债务, seed 000 §五(三)); nothing is
    listed or published until the government approves (issue 11)."""
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        who = await credit_lists.subject(session, body.subject_kind, body.subject_id)
        if who is None:
            raise Problem(
                404, "SUBJECT_NOT_FOUND", "Subject not found", f"Risk knows no {body.subject_kind} {body.subject_id}."
            )
        pending = await credit_lists.entries_of(session, who.id, list_="black", statuses=("proposed", "active"))
        if any(e.cause == rules.MALICIOUS_DEBT_EVASION for e in pending):
            raise Problem(
                409, "ALREADY_PROPOSED", "Already proposed or listed", "This subject has an open entry for this cause."
            )
        entry = credit_lists.new_entry(
            who,
            list_="black",
            cause=rules.MALICIOUS_DEBT_EVASION,
            status="proposed",
            evidence=body.evidence,
            proposed_by=principal.name,
        )
        session.add(entry)
        await session.flush()
        out = _entry_out(entry)
        await idempotency.remember(session, request, 201, out)
    return out


@router.post(
    "/black-list/proposals/{entry_id}/decision",
    response_model=ListEntryOut,
    tags=["credit lists"],
    dependencies=[scope("lists:decide")],
)
async def decide_black_listing(entry_id: str, body: ListDecisionIn, session: Session) -> ListEntryOut:
    """The government approves (the subject is listed and published from the business date)
    or rejects a bank's proposal, with reasons."""
    async with session.begin():
        entry = await _entry(session, entry_id, lock=True)
        if entry.status != "proposed":
            raise Problem(409, "NOT_PROPOSED", "Not a proposal", f"The entry is {entry.status}, not proposed.")
        today = await breaker.today(session)
        if body.approve:
            await credit_lists.activate(session, entry, today=today, decided_by_role="government", reasons=body.reasons)
        else:
            entry.status, entry.decided_by_role, entry.decision_reasons = "rejected", "government", body.reasons
            entry.ended_on, entry.end_reason = today, "rejected"
            entry.retention_ends_on = today  # never published, nothing to keep
        return _entry_out(entry)


@router.get(
    "/credit-lists/entries",
    response_model=list[ListEntryOut],
    tags=["credit lists"],
    dependencies=[scope("lists:decide")],
)
async def list_entries(
    session: ReadSession,
    list: ListName | None = None,
    status: Literal["proposed", "active", "rejected", "ended"] | None = None,
    subject_id: str | None = Query(default=None, max_length=36),
    name: str | None = NameQuery,
    village_code: str | None = VillageQuery,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ListEntryOut]:
    """Every entry, proposals and ended ones included, with the evidence (the government's view)."""
    query = _searched(select(ListEntry), name, village_code)
    if list is not None:
        query = query.where(ListEntry.list == list)
    if status is not None:
        query = query.where(ListEntry.status == status)
    if subject_id is not None:
        query = query.where(ListEntry.subject_id == subject_id)
    rows = await session.scalars(query.order_by(ListEntry.created_at, ListEntry.id).limit(limit).offset(offset))
    return [_entry_out(e) for e in rows]


@router.get(
    "/credit-lists/entries/{entry_id}",
    response_model=ListEntryOut,
    tags=["credit lists"],
    dependencies=[scope("lists:decide")],
)
async def get_entry(entry_id: str, session: ReadSession) -> ListEntryOut:
    return _entry_out(await _entry(session, entry_id))


# --- red list --------------------------------------------------------------------------------


@router.post(
    "/red-list/evaluations",
    response_model=RedListEvaluationOut,
    tags=["credit lists"],
    dependencies=[scope("lists:decide")],
)
async def evaluate_red_list(session: Session) -> RedListEvaluationOut:
    """守信红名单 as of the business date: title, grade, a clean record, not blacklisted."""
    async with session.begin():
        today = await breaker.today(session)
        result = await credit_lists.evaluate_red_list(session, today, "government")
    return RedListEvaluationOut(business_date=today, **result.__dict__)


# --- credit repair ---------------------------------------------------------------------------


def _repair_out(r: Repair, entry: ListEntry) -> RepairOut:
    return RepairOut(
        repair_id=r.id,
        entry_id=r.entry_id,
        subject_kind=cast(credit_lists.SubjectKind, entry.subject_kind),
        subject_id=entry.subject_id,
        name=entry.name,
        identifier_masked=entry.identifier_masked,
        village_code=entry.village_code,
        statement=r.statement,
        obligations_fulfilled_on=r.obligations_fulfilled_on,
        status=cast(Literal["applied", "under_review", "granted", "refused"], r.status),
        applied_by=r.applied_by,
        applied_on=r.applied_on,
        earliest_repair_on=entry.earliest_repair_on,
        review_note=r.review_note,
        decided_by_role=r.decided_by_role,
        reasons=r.reasons,
        decided_on=r.decided_on,
    )


def _too_early(entry: ListEntry, today: date) -> None:
    if entry.earliest_repair_on is not None and today < entry.earliest_repair_on:
        raise Problem(
            409,
            "REPAIR_TOO_EARLY",
            "Too early for credit repair",
            f"A {entry.tier} entry listed on {entry.listed_on} may be repaired from {entry.earliest_repair_on}.",
            earliest_date=entry.earliest_repair_on.isoformat(),
        )


async def _repair(session: AsyncSession, repair_id: str, *, lock: bool = False) -> Repair:
    repair = await session.get(Repair, repair_id, with_for_update=lock)
    if repair is None:
        raise Problem(404, "REPAIR_NOT_FOUND", "Repair not found", f"No credit repair {repair_id}.")
    return repair


@router.post(
    "/credit-repairs",
    status_code=201,
    response_model=RepairOut,
    tags=["credit repair"],
    dependencies=[scope("repairs:apply")],
)
async def apply_for_repair(
    body: RepairIn, request: Request, session: Session, principal: CurrentPrincipal
) -> RepairOut | JSONResponse:
    """信用修复 (seed 001): a listed subject that has fulfilled its obligations applies; the
    minimum publication period of the entry's tier must be over."""
    async with session.begin():
        if (replay := await idempotency.claim(session, request, body)) is not None:
            return replay
        entry = await _entry(session, body.entry_id, lock=True)
        ensure_bound(principal, village=entry.village_code, household=entry.subject_id)
        if entry.list != "black" or entry.status != "active":
            raise Problem(409, "NOT_REPAIRABLE", "Not repairable", "Only a black-list entry in force can be repaired.")
        today = await breaker.today(session)
        if body.obligations_fulfilled_on > today:
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
            statement=body.statement,
            obligations_fulfilled_on=body.obligations_fulfilled_on,
            status="applied",
            applied_by=principal.name,
            applied_on=today,
        )
        session.add(repair)
        await session.flush()
        out = _repair_out(repair, entry)
        await idempotency.remember(session, request, 201, out)
    return out


@router.post(
    "/credit-repairs/{repair_id}/review",
    response_model=RepairOut,
    tags=["credit repair"],
    dependencies=[scope("lists:decide")],
)
async def review_repair(
    repair_id: str, body: RepairReviewIn, session: Session, principal: CurrentPrincipal
) -> RepairOut:
    async with session.begin():
        repair = await _repair(session, repair_id, lock=True)
        if repair.status != "applied":
            raise Problem(409, "NOT_APPLIED", "Not awaiting review", f"The application is {repair.status}.")
        repair.status, repair.reviewed_by, repair.review_note = "under_review", principal.name, body.note
        return _repair_out(repair, await _entry(session, repair.entry_id))


@router.post(
    "/credit-repairs/{repair_id}/decision",
    response_model=RepairOut,
    tags=["credit repair"],
    dependencies=[scope("lists:decide")],
)
async def decide_repair(repair_id: str, body: RepairDecisionIn, session: Session) -> RepairOut:
    """Granted: the subject leaves the black list (its new credit is restored), the decision
    is published, and the record is kept 5 years from the fulfilment (征信业管理条例 §16)."""
    async with session.begin():
        repair = await _repair(session, repair_id, lock=True)
        if repair.status != "under_review":
            raise Problem(
                409, "NOT_UNDER_REVIEW", "Not under review", f"The application is {repair.status}; review it first."
            )
        entry = await _entry(session, repair.entry_id, lock=True)
        today = await breaker.today(session)
        if body.decision == "granted":
            if entry.status != "active":
                raise Problem(409, "NOT_REPAIRABLE", "Not repairable", f"The entry is {entry.status}.")
            _too_early(entry, today)
            await credit_lists.end(
                session,
                entry,
                today=today,
                reason="repaired",
                decided_by_role="government",
                legal_basis=rules.REPAIR_BASIS,
                act_ended_on=repair.obligations_fulfilled_on,
            )
        repair.status, repair.decided_by_role, repair.reasons, repair.decided_on = (
            body.decision,
            "government",
            body.reasons,
            today,
        )
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
                    decision=body.decision,
                    reasons=mask_resident_ids(body.reasons),
                    decided_by_role="government",
                    decided_on=today,
                ),
            ),
        )
        return _repair_out(repair, entry)


@router.get(
    "/credit-repairs", response_model=list[RepairOut], tags=["credit repair"], dependencies=[scope("lists:decide")]
)
async def list_repairs(
    session: ReadSession,
    status: Literal["applied", "under_review", "granted", "refused"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RepairOut]:
    query = (
        select(Repair, ListEntry)
        .join(ListEntry, ListEntry.id == Repair.entry_id)
        .order_by(Repair.applied_on, Repair.id)
        .limit(limit)
        .offset(offset)
    )
    if status is not None:
        query = query.where(Repair.status == status)
    return [_repair_out(r, entry) for r, entry in await session.execute(query)]


# --- public disclosure -----------------------------------------------------------------------


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
    today = await breaker.today(session)
    query = _searched(select(ListEntry), name, village_code).where(
        ListEntry.status == "active",
        (ListEntry.publication_ends_on.is_(None)) | (ListEntry.publication_ends_on > today),
    )
    if list is not None:
        query = query.where(ListEntry.list == list)
    rows = await session.scalars(
        query.order_by(ListEntry.list, ListEntry.village_code, ListEntry.listed_on, ListEntry.id)
        .limit(limit)
        .offset(offset)
    )
    # The government's view, less what the public must not see (evidence, ids, the workflow).
    return [PublicListEntryOut.model_validate(_entry_out(e).model_dump()) for e in rows]


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
    query = _searched(
        select(Repair, ListEntry)
        .join(ListEntry, ListEntry.id == Repair.entry_id)
        .where(Repair.status.in_(("granted", "refused"))),
        name,
        village_code,
    )
    rows = await session.execute(query.order_by(Repair.decided_on, Repair.id).limit(limit).offset(offset))
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
        for r, e in rows
    ]
