"""What households and businesses share: the provenance of a statement, their current facts,
changing them and stating the day a negative one ended, with the profile-changed event.
Registering and viewing each kind is in ``households.py`` and ``businesses.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.domain.facts import canonical, changes, profile_of, statement_of
from services.registry.domain.provenance import FactRefused, check_sources
from services.registry.models import Business, Fact, Household, Village
from shared.catalogue import ProfileChanged
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.problems import Problem
from shared.profile import Profile, is_negative

T = TypeVar("T")

# SQLite allows 32766 bound parameters per statement; stay far below with IN lists.
_CHUNK = 500


@dataclass(frozen=True)
class Provenance:
    source: str  # the role the facts are stated as
    supplied_by: str  # the principal
    evidence_ref: str | None = None


def refuse(exc: FactRefused) -> Problem:
    if exc.forbidden:
        return Problem(403, "FACT_SOURCE_NOT_ALLOWED", "Not your fact to supply", exc.reason, field=exc.field)
    return Problem(422, "DERIVED_FACT", "Fact is derived, not recorded", exc.reason, field=exc.field)


def check_statement(stated: Iterable[str], provenance: Provenance) -> None:
    try:
        check_sources(stated, provenance.source)
    except FactRefused as exc:
        raise refuse(exc) from None


async def village_or_422(session: AsyncSession, code: str) -> Village:
    village = await session.get(Village, code)
    if village is None:
        raise Problem(
            422, "UNKNOWN_VILLAGE", "Unknown village", f"Village {code} is not registered.", field="village_code"
        )
    return village


def chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def current_facts(session: AsyncSession, subject_ids: Sequence[str]) -> dict[str, dict[str, Fact]]:
    found: dict[str, dict[str, Fact]] = {sid: {} for sid in subject_ids}
    for chunk in chunks(subject_ids):
        for fact in await session.scalars(select(Fact).where(Fact.subject_id.in_(chunk), Fact.current.is_(True))):
            found[fact.subject_id][fact.field] = fact
    return found


def fact_rows(
    kind: str, subject_id: str, stated: dict[str, Any], provenance: Provenance, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "subject_kind": kind,
            "subject_id": subject_id,
            "field": field,
            "value": canonical(value),
            "source": provenance.source,
            "supplied_by": provenance.supplied_by,
            "evidence_ref": provenance.evidence_ref,
            "recorded_at": now,
            "current": True,
            "disputed": False,
        }
        for field, value in stated.items()
    ]


def known_facts(profile: Profile) -> dict[str, Any]:
    """At registration a null says nothing: only known fields become facts."""
    return {field: value for field, value in statement_of(profile).items() if value is not None}


async def change_facts(
    session: AsyncSession,
    subject: Household | Business,
    stated: dict[str, Any],
    provenance: Provenance,
    *,
    poor_household: bool | None = None,
    current: dict[str, Fact] | None = None,
) -> dict[str, Any]:
    """Record what differs from the current facts; one profile_changed event per change.
    Returns the changed fields ({} when the statement repeats what is known)."""
    kind = "household" if isinstance(subject, Household) else "business"
    if current is None:
        current = (await current_facts(session, [subject.id]))[subject.id]
    changed = changes({f: fact.value for f, fact in current.items()}, stated)
    poor_changed = (
        isinstance(subject, Household) and poor_household is not None and (poor_household != subject.poor_household)
    )
    if not changed and not poor_changed:
        return {}
    now = datetime.now(UTC)
    if changed:
        await session.execute(
            update(Fact)
            .where(Fact.subject_id == subject.id, Fact.field.in_(list(changed)), Fact.current.is_(True))
            .values(current=False)
        )
        await session.execute(insert(Fact), fact_rows(kind, subject.id, changed, provenance, now))
    if isinstance(subject, Household) and poor_changed:
        assert poor_household is not None
        subject.poor_household = poor_household
        changed = {**changed, "poor_household": poor_household}
    subject.version += 1
    after = {f: fact.value for f, fact in current.items()} | {f: canonical(v) for f, v in changed.items()}
    after.pop("poor_household", None)
    untouched = {f: fact for f, fact in current.items() if f not in changed}
    await emit(session, _profile_changed(subject, changed, after, untouched, provenance))
    return changed


def _profile_changed(
    subject: Household | Business,
    changed: dict[str, Any],
    after: dict[str, str],
    untouched: dict[str, Fact],
    provenance: Provenance,
) -> Envelope:
    """The event of a committed change: ``after`` is every current value, ``untouched`` the
    current facts this change did not restate (their dispute marks and end dates stand)."""
    kind = "household" if isinstance(subject, Household) else "business"
    return new_event(
        f"registry.{kind}.profile_changed",
        subject.village_code,
        ProfileChanged(
            subject_kind=kind,
            subject_id=subject.id,
            village_code=subject.village_code,
            township_code=subject.township_code,
            poor_household=subject.poor_household if isinstance(subject, Household) else None,
            changed=changed,
            profile=profile_of(after),
            disputed_fields=sorted(f for f, fact in untouched.items() if fact.disputed),
            source=provenance.source,
            supplied_by=provenance.supplied_by,
            fact_ends=fact_ends_of(untouched),
        ),
    )


def fact_ends_of(current: dict[str, Fact]) -> dict[str, date]:
    return {f: fact.ended_on for f, fact in sorted(current.items()) if fact.ended_on is not None}


async def end_fact(
    session: AsyncSession, subject: Household | Business, field: str, ended_on: date, provenance: Provenance
) -> Fact:
    """State the day a current negative fact ended (征信业管理条例 §16): a new statement of the
    same value with its end date, superseding the current one. Stating the date it already
    has changes nothing."""
    current = (await current_facts(session, [subject.id]))[subject.id]
    fact = current.get(field)
    if fact is None or not is_negative(field, fact_value(fact)):
        raise Problem(
            409,
            "NO_NEGATIVE_FACT",
            "No negative fact to end",
            f"The subject has no current negative statement of {field}; only a fact stated true can end.",
            field="field",
        )
    if fact.ended_on == ended_on:
        return fact
    if fact.disputed:
        raise Problem(
            409, "FACT_DISPUTED", "Fact disputed", f"{field} is disputed; the objection is decided first (异议)."
        )
    fact.current = False
    ended = Fact(
        subject_kind="household" if isinstance(subject, Household) else "business",
        subject_id=subject.id,
        field=field,
        value=fact.value,
        source=provenance.source,
        supplied_by=provenance.supplied_by,
        evidence_ref=provenance.evidence_ref,
        recorded_at=datetime.now(UTC),
        current=True,
        disputed=False,
        ended_on=ended_on,
    )
    session.add(ended)
    subject.version += 1
    await session.flush()
    current[field] = ended
    after = {f: c.value for f, c in current.items()}
    await emit(session, _profile_changed(subject, {}, after, current, provenance))
    return ended


def fact_value(fact: Fact) -> Any:
    return json.loads(fact.value)
