"""Objections (异议) to a stated fact. Opening one marks the fact disputed until it is
decided; the fact's supplier decides within 20 days (征信业管理条例 §25): corrected (a new
statement of the field), upheld, or unresolved with the subject's statement kept beside the
fact. Each step is one transaction with its event."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.loaders import household_of, subject_or_404
from services.registry.models import Fact, Objection
from services.registry.schemas import DecisionIn, ObjectionIn, ObjectionOut
from services.registry.subjects import Provenance, change_facts, check_statement, current_facts, fact_value
from shared.auth import Principal
from shared.catalogue import ObjectionDecided, ObjectionOpened
from shared.events import new_event
from shared.messaging import emit
from shared.problems import Problem
from shared.profile import Profile
from shared.web import ensure_visible

# 征信业管理条例 §25: an objection is checked and answered within 20 days of receipt.
OBJECTION_DAYS = 20


def objection_view(o: Objection, today: date) -> ObjectionOut:
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


def objection_not_found(objection_id: str) -> Problem:
    return Problem(404, "OBJECTION_NOT_FOUND", "Objection not found", f"No objection {objection_id}.")


async def open_objection(session: AsyncSession, fact_id: int, body: ObjectionIn, principal: Principal) -> ObjectionOut:
    async with session.begin():
        fact = await session.get(Fact, fact_id, with_for_update=True)
        missing = Problem(404, "FACT_NOT_FOUND", "Fact not found", f"No fact {fact_id}.")
        if fact is None:
            raise missing
        subject = await subject_or_404(session, fact.subject_kind, fact.subject_id)
        # A fact of a subject outside the caller's binding answers as no fact at all.
        ensure_visible(
            principal, missing, village=subject.village_code, household=household_of(fact.subject_kind, fact.subject_id)
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
        return objection_view(objection, today)


async def decide_objection(
    session: AsyncSession, objection_id: str, body: DecisionIn, principal: Principal, prov: Provenance
) -> ObjectionOut:
    async with session.begin():
        objection = await session.get(Objection, objection_id, with_for_update=True)
        if objection is None:
            raise objection_not_found(objection_id)
        # A collector answers for its own village's facts only; another's answer as missing.
        ensure_visible(principal, objection_not_found(objection_id), village=objection.village_code)
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
        return objection_view(objection, date.today())


def _validated_value(field: str, value: Any) -> Any:
    try:
        profile = Profile.model_validate({field: value})
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        raise Problem(422, "VALIDATION_FAILED", "Invalid corrected value", reason, field="corrected_value") from None
    return profile.model_dump(mode="json")[field]
