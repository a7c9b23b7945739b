"""Red and black lists (issue 11): the bank proposes a black listing, the government decides,
the red list is evaluated; the government's view of every entry."""

from __future__ import annotations

from typing import Literal, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.risk import credit_lists
from services.risk.models import ListEntry
from services.risk.schemas import BlackListProposalIn, ListDecisionIn, ListEntryOut, RedListEvaluationOut
from shared.idempotency import IDEMPOTENCY_KEY, idempotent
from shared.openapi import problems
from shared.paging import Limit, Offset
from shared.web import CurrentPrincipal, ReadSession, Session, scope

router = APIRouter(prefix="/v1")

ListName = Literal["red", "black"]
NameQuery = Query(default=None, min_length=1, max_length=50, description="Part of the name")
VillageQuery = Query(default=None, pattern=r"^[0-9]{1,12}$")  # ASCII: \d takes every script's digits


def entry_out(e: ListEntry) -> ListEntryOut:
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
        decided_by=e.decided_by,
        decision_reasons=e.decision_reasons,
        listed_on=e.listed_on,
        publication_ends_on=e.publication_ends_on,
        earliest_repair_on=e.earliest_repair_on,
        ended_on=e.ended_on,
        end_reason=e.end_reason,
        retention_ends_on=e.retention_ends_on,
    )


# --- black list: the bank proposes, the government decides ----------------------------------


@router.post(
    "/black-list/proposals",
    status_code=201,
    response_model=ListEntryOut,
    tags=["credit lists"],
    dependencies=[scope("lists:propose"), IDEMPOTENCY_KEY],
    responses=problems({404: ["SUBJECT_NOT_FOUND"], 409: ["ALREADY_PROPOSED"]}),
)
async def propose_black_listing(
    body: BlackListProposalIn, request: Request, session: Session, principal: CurrentPrincipal
) -> ListEntryOut | JSONResponse:
    """A bank reports malicious debt evasion (恶意逃废债务, seed 000 §4(6)); nothing is
    listed or published until the government approves (issue 11)."""

    async def proposed() -> ListEntryOut:
        entry = await credit_lists.propose_black_listing(
            session, body.subject_kind, body.subject_id, body.evidence, principal.name
        )
        return entry_out(entry)

    return await idempotent(session, request, body, proposed, status=201)


@router.post(
    "/black-list/proposals/{entry_id}/decision",
    response_model=ListEntryOut,
    tags=["credit lists"],
    dependencies=[scope("lists:decide")],
    responses=problems({404: ["LIST_ENTRY_NOT_FOUND"], 409: ["FOUR_EYES_REQUIRED", "NOT_PROPOSED"]}),
)
async def decide_black_listing(
    entry_id: str, body: ListDecisionIn, session: Session, principal: CurrentPrincipal
) -> ListEntryOut:
    """The government approves (the subject is listed and published from the business date)
    or rejects a bank's proposal, with reasons. The proposer never decides its own proposal:
    409 `FOUR_EYES_REQUIRED`, even with a key that holds the government's role too."""
    async with session.begin():
        return entry_out(
            await credit_lists.decide_black_listing(session, principal, entry_id, body.approve, body.reasons)
        )


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
    rows = await credit_lists.entries(session, list, status, subject_id, name, village_code, limit, offset)
    return [entry_out(e) for e in rows]


@router.get(
    "/credit-lists/entries/{entry_id}",
    response_model=ListEntryOut,
    tags=["credit lists"],
    dependencies=[scope("lists:decide")],
    responses=problems({404: ["LIST_ENTRY_NOT_FOUND"]}),
)
async def get_entry(entry_id: str, session: ReadSession) -> ListEntryOut:
    return entry_out(await credit_lists.get_entry(session, entry_id))


# --- red list --------------------------------------------------------------------------------


@router.post(
    "/red-list/evaluations",
    response_model=RedListEvaluationOut,
    tags=["credit lists"],
    dependencies=[scope("lists:decide")],
)
async def evaluate_red_list(session: Session, principal: CurrentPrincipal) -> RedListEvaluationOut:
    """守信红名单 as of the business date: title, grade, a clean record, not blacklisted."""
    async with session.begin():
        today, result = await credit_lists.evaluate_red_list_now(session, "government", principal.name)
    return RedListEvaluationOut(business_date=today, **result.__dict__)
