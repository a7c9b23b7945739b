"""Objections (异议) to a stated fact: opened by or for the subject, answered by the
fact's supplier within 20 days (征信业管理条例 §25)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import ValidationError
from sqlalchemy import select

from services.registry.loaders import household_of, subject_or_404
from services.registry.models import Fact, Objection
from services.registry.routers.dependencies import EvidenceRef, FactSource, provenance
from services.registry.schemas import Code, DecisionIn, ObjectionIn, ObjectionOut
from services.registry.subjects import change_facts, check_statement, current_facts, fact_value
from shared.catalogue import ObjectionDecided, ObjectionOpened
from shared.db import BIGINT_MAX
from shared.events import new_event
from shared.messaging import emit
from shared.paging import MAX_PAGE, Limit, Offset
from shared.profile import Profile
from shared.web import CurrentPrincipal, Problem, ReadSession, Session, ensure_bound, scope

router = APIRouter(prefix="/v1")

# 征信业管理条例 §25: an objection is checked and answered within 20 days of receipt.
OBJECTION_DAYS = 20


def _objection_view(o: Objection, today: date) -> ObjectionOut:
    return ObjectionOut(
        objection_id=o.id,
        fact_id=o.fact_id,
        subject_kind=o.subject_kind,
        subject_id=o.subject_id,
        village_code=o.village_code,
        field=o.field,
        reason=o.reason,
        raised_by=o.raised_by,
        opened_on=o.opened_on,
        due_on=o.due_on,
        overdue=o.status == "open" and today > o.due_on,
        status=o.status,
        decision_note=o.decision_note,
        subject_statement=o.subject_statement,
        decided_at=o.decided_at,
        decided_by=o.decided_by,
    )


@router.post(
    "/facts/{fact_id}/objections",
    status_code=201,
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("objections:write")],
)
async def open_objection(
    fact_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], body: ObjectionIn, session: Session, principal: CurrentPrincipal
) -> ObjectionOut:
    async with session.begin():
        fact = await session.get(Fact, fact_id, with_for_update=True)
        if fact is None:
            raise Problem(404, "FACT_NOT_FOUND", "Fact not found", f"No fact {fact_id}.")
        subject = await subject_or_404(session, fact.subject_kind, fact.subject_id)
        ensure_bound(
            principal, village=subject.village_code, household=household_of(fact.subject_kind, fact.subject_id)
        )
        if not fact.current:
            raise Problem(409, "FACT_SUPERSEDED", "Fact superseded", "Object to the current statement of the field.")
        if await session.scalar(select(Objection.id).where(Objection.fact_id == fact_id, Objection.status == "open")):
            raise Problem(409, "OBJECTION_OPEN", "Objection already open", "This fact is already disputed.")
        today = date.today()
        objection = Objection(
            id=str(uuid.uuid4()),
            fact_id=fact.id,
            subject_kind=fact.subject_kind,
            subject_id=fact.subject_id,
            village_code=subject.village_code,
            field=fact.field,
            reason=body.reason,
            raised_by=principal.name,
            opened_on=today,
            due_on=today + timedelta(days=OBJECTION_DAYS),
            status="open",
        )
        session.add(objection)
        fact.disputed = True
        await emit(
            session,
            new_event(
                "registry.objection.opened",
                subject.village_code,
                ObjectionOpened(
                    objection_id=objection.id,
                    subject_kind=fact.subject_kind,
                    subject_id=fact.subject_id,
                    village_code=subject.village_code,
                    fact_id=fact.id,
                    field=fact.field,
                    due_on=objection.due_on,
                ),
            ),
        )
        await session.flush()
        return _objection_view(objection, today)


@router.get(
    "/objections", response_model=list[ObjectionOut], tags=["objections"], dependencies=[scope("objections:read")]
)
async def list_objections(
    session: ReadSession,
    principal: CurrentPrincipal,
    status: str | None = None,
    overdue: bool | None = None,
    village_code: Code | None = None,
    as_of: Annotated[date | None, Query(description="judge overdue as of this date; default today")] = None,
    limit: Limit = MAX_PAGE,
    offset: Offset = 0,
) -> list[ObjectionOut]:
    if principal.village is not None:
        village_code = principal.village
    today = as_of or date.today()
    query = select(Objection).order_by(Objection.due_on, Objection.id).limit(limit).offset(offset)
    if principal.household is not None:
        query = query.where(Objection.subject_kind == "household", Objection.subject_id == principal.household)
    if status is not None:
        query = query.where(Objection.status == status)
    if village_code is not None:
        query = query.where(Objection.village_code == village_code)
    if overdue is not None:
        late = (Objection.status == "open") & (Objection.due_on < today)
        query = query.where(late if overdue else ~late)
    return [_objection_view(o, today) for o in await session.scalars(query)]


@router.get(
    "/objections/{objection_id}",
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("objections:read")],
)
async def get_objection(objection_id: str, session: ReadSession, principal: CurrentPrincipal) -> ObjectionOut:
    objection = await session.get(Objection, objection_id)
    if objection is None:
        raise Problem(404, "OBJECTION_NOT_FOUND", "Objection not found", f"No objection {objection_id}.")
    ensure_bound(
        principal, village=objection.village_code, household=household_of(objection.subject_kind, objection.subject_id)
    )
    return _objection_view(objection, date.today())


@router.post(
    "/objections/{objection_id}/decision",
    response_model=ObjectionOut,
    tags=["objections"],
    dependencies=[scope("facts:write")],
)
async def decide_objection(
    objection_id: str,
    body: DecisionIn,
    session: Session,
    principal: CurrentPrincipal,
    source: FactSource = None,
    evidence: EvidenceRef = None,
) -> ObjectionOut:
    # The supplier of the fact checks and answers (征信业管理条例 §25): deciding needs a
    # role that may state the field.
    prov = provenance(principal, source, evidence)
    async with session.begin():
        objection = await session.get(Objection, objection_id, with_for_update=True)
        if objection is None:
            raise Problem(404, "OBJECTION_NOT_FOUND", "Objection not found", f"No objection {objection_id}.")
        # A collector answers for its own village's facts only.
        ensure_bound(principal, village=objection.village_code)
        check_statement([objection.field], prov)
        if objection.status != "open":
            raise Problem(409, "OBJECTION_DECIDED", "Already decided", f"The objection was {objection.status}.")
        fact = await session.get(Fact, objection.fact_id, with_for_update=True)
        assert fact is not None
        subject = await subject_or_404(session, objection.subject_kind, objection.subject_id, lock=True)
        if body.outcome == "corrected":
            corrected = _validated_value(objection.field, body.corrected_value)
            if fact.current and fact_value(fact) == corrected:
                raise Problem(
                    422,
                    "NOT_A_CORRECTION",
                    "Not a correction",
                    "The corrected value equals the disputed one; decide 'upheld' instead.",
                    field="corrected_value",
                )
            fact.disputed = False
            current = (await current_facts(session, [subject.id]))[subject.id]
            await change_facts(session, subject, {objection.field: corrected}, prov, current=current)
        elif body.outcome == "upheld":
            fact.disputed = False
        else:
            if not body.subject_statement:
                raise Problem(
                    422,
                    "STATEMENT_REQUIRED",
                    "Subject's statement required",
                    "An unresolved objection keeps the subject's statement beside the fact.",
                    field="subject_statement",
                )
        objection.status = body.outcome
        objection.decision_note = body.note
        objection.subject_statement = body.subject_statement
        objection.decided_at = datetime.now(UTC)
        objection.decided_by = principal.name
        await emit(
            session,
            new_event(
                "registry.objection.decided",
                objection.village_code,
                ObjectionDecided(
                    objection_id=objection.id,
                    subject_kind=objection.subject_kind,
                    subject_id=objection.subject_id,
                    village_code=objection.village_code,
                    field=objection.field,
                    outcome=body.outcome,
                    decided_by=principal.name,
                ),
            ),
        )
        return _objection_view(objection, date.today())


def _validated_value(field: str, value: Any) -> Any:
    try:
        profile = Profile.model_validate({field: value})
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        raise Problem(422, "VALIDATION_FAILED", "Invalid corrected value", reason, field="corrected_value") from None
    return profile.model_dump(mode="json")[field]
