"""What the household and business routes share: a statement of a subject's facts (at
registration, a profile change, the end of a negative fact) checked against the role it is
made as, and the subject's fact history, each for a subject within the caller's reach."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.fact_history import end_date, fact_history, fact_out, negative_field
from services.registry.loaders import ensure_in_sight, subject_or_404
from services.registry.models import Business, Household
from services.registry.routers.dependencies import provenance
from services.registry.schemas import FactEndIn, FactOut
from services.registry.subjects import Provenance, change_facts, check_statement, end_fact
from shared.audit import Audited, SubjectKind
from shared.auth import Principal
from shared.profile import Profile

S = TypeVar("S", Household, Business)


def stated(principal: Principal, source: str | None, evidence: str | None, fields: Iterable[str]) -> Provenance:
    """The provenance of a statement of ``fields``; refused if its role may not state them."""
    prov = provenance(principal, source, evidence)
    check_statement(fields, prov)
    return prov


async def change_profile(session: AsyncSession, principal: Principal, subject: S, body: Profile, prov: Provenance) -> S:
    """The fields ``body`` states, recorded where they differ from the current facts."""
    ensure_in_sight(principal, subject)
    fields = {f: v for f, v in body.model_dump(mode="json").items() if f in body.model_fields_set}
    await change_facts(session, subject, fields, prov)
    return subject


async def facts(
    session: AsyncSession,
    principal: Principal,
    audit: Audited,
    kind: SubjectKind,
    subject_id: str,
    limit: int,
    offset: int,
) -> list[FactOut]:
    await subject_or_404(session, kind, subject_id, seen_by=principal)
    history = await fact_history(session, subject_id, limit, offset)
    await audit.record(kind, subject_id)
    return history


async def end_negative_fact(
    session: AsyncSession,
    principal: Principal,
    kind: SubjectKind,
    subject_id: str,
    field: str,
    body: FactEndIn,
    source: str | None,
    evidence: str | None,
) -> FactOut:
    negative_field(field)
    ended_on = end_date(body)
    prov = stated(principal, source, evidence, [field])
    async with session.begin():
        subject = await subject_or_404(session, kind, subject_id, lock=True, seen_by=principal)
        fact = await end_fact(session, subject, field, ended_on, prov)
    return fact_out(fact)
