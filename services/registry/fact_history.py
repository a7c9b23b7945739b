"""A subject's facts as answered (every statement, oldest first), and the checks on stating
the day a negative fact ended."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import Fact
from services.registry.schemas import FactEndIn, FactOut
from services.registry.subjects import fact_value
from shared.problems import Problem
from shared.profile import NEGATIVE_FIELDS, PROFILE_FIELDS


def fact_out(f: Fact) -> FactOut:
    return FactOut(
        fact_id=f.id,
        field=f.field,
        value=fact_value(f),
        source=f.source,
        supplied_by=f.supplied_by,
        evidence_ref=f.evidence_ref,
        recorded_at=f.recorded_at,
        current=f.current,
        disputed=f.disputed,
        ended_on=f.ended_on,
    )


async def fact_history(session: AsyncSession, subject_id: str, limit: int, offset: int) -> list[FactOut]:
    query = select(Fact).where(Fact.subject_id == subject_id).order_by(Fact.id).limit(limit).offset(offset)
    return [fact_out(f) for f in await session.scalars(query)]


def negative_field(field: str) -> str:
    if field not in NEGATIVE_FIELDS:
        kind = "not a negative fact" if field in PROFILE_FIELDS else "not a profile field"
        raise Problem(
            422,
            "NOT_A_NEGATIVE_FACT",
            "Not a negative fact",
            f"{field} is {kind}; end dates are stated for {', '.join(sorted(NEGATIVE_FIELDS))}.",
            field="field",
        )
    return field


def end_date(body: FactEndIn) -> date:
    # 不良行为或者事件终止之日 is a day that has come: a future end would be a guess.
    if body.ended_on > date.today():
        raise Problem(
            422,
            "END_DATE_IN_FUTURE",
            "End date in the future",
            "A fact cannot have ended after today.",
            field="ended_on",
        )
    return body.ended_on
