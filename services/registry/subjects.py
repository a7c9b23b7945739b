"""Households and businesses: registration and fact changes, with their events.

Written for batches (the collection-sheet import registers hundreds per transaction); the
HTTP endpoints call the same functions with one item, so both paths behave alike.

Over 400 lines on purpose: registration, fact changes, fact ends and the views share private
helpers (the fact rows of a statement, the chunked reads, the profile-changed event and its
fact ends); split apart, each would have to export them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.domain.facts import canonical, changes, profile_of, statement_of
from services.registry.domain.identifiers import mask_resident_id
from services.registry.domain.provenance import FactRefused, check_sources
from services.registry.models import Business, Fact, Household, Person, Village
from services.registry.schemas import BusinessIn, BusinessOut, HouseholdIn, HouseholdOut, MemberOut
from shared.catalogue import BusinessRegistered, HouseholdRegistered, ProfileChanged
from shared.events import Envelope, new_event
from shared.messaging import emit
from shared.pii import PiiCipher
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


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def current_facts(session: AsyncSession, subject_ids: Sequence[str]) -> dict[str, dict[str, Fact]]:
    found: dict[str, dict[str, Fact]] = {sid: {} for sid in subject_ids}
    for chunk in _chunks(subject_ids):
        for fact in await session.scalars(select(Fact).where(Fact.subject_id.in_(chunk), Fact.current.is_(True))):
            found[fact.subject_id][fact.field] = fact
    return found


def lookups_of(cipher: PiiCipher, id_numbers: Iterable[str]) -> dict[str, str]:
    """Every key's hash of each ID number -> its current-key hash (shared/pii.py rotation)."""
    return {h: every[0] for every in map(cipher.lookup_hashes, id_numbers) for h in every}


async def persons_by_hash(session: AsyncSession, lookups: Mapping[str, str]) -> dict[str, Person]:
    """Registered persons by their current-key hash; ``lookups`` (see ``lookups_of``) also
    finds those still stored under a retired key's hash."""
    found: dict[str, Person] = {}
    for chunk in _chunks(list(lookups)):
        for person in await session.scalars(select(Person).where(Person.id_hash.in_(chunk))):
            found[lookups[person.id_hash]] = person
    return found


def _fact_rows(
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


def _known(profile: Profile) -> dict[str, Any]:
    """At registration a null says nothing: only known fields become facts."""
    return {field: value for field, value in statement_of(profile).items() if value is not None}


# --- households ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NewHousehold:
    body: HouseholdIn
    township_code: str
    head_hash: str
    member_hashes: tuple[str | None, ...]
    # For persons_by_hash: finds the people also where a retired key hashed them.
    lookups: Mapping[str, str]


def new_household(body: HouseholdIn, village: Village, cipher: PiiCipher) -> NewHousehold:
    numbers = [body.id_number, *(m.id_number for m in body.members if m.id_number)]
    hashes = {number: cipher.lookup_hashes(number) for number in numbers}
    return NewHousehold(
        body,
        village.township_code,
        hashes[body.id_number][0],
        tuple(hashes[m.id_number][0] if m.id_number else None for m in body.members),
        {h: every[0] for every in hashes.values() for h in every},
    )


def duplicate_people(item: NewHousehold) -> str | None:
    hashes = [item.head_hash, *(h for h in item.member_hashes if h)]
    return "the same ID number appears twice in this household" if len(set(hashes)) != len(hashes) else None


async def register_household(
    session: AsyncSession, cipher: PiiCipher, body: HouseholdIn, provenance: Provenance
) -> str:
    """One household registered by hand, refused when its village is unknown, an ID number
    appears twice in it, or one of its people already belongs to a registered household."""
    village = await village_or_422(session, body.village_code)
    item = new_household(body, village, cipher)
    if (reason := duplicate_people(item)) is not None:
        raise Problem(422, "DUPLICATE_PERSON", "Duplicate person", reason, field="members")
    if await persons_by_hash(session, item.lookups):
        raise Problem(
            409,
            "ID_NUMBER_REGISTERED",
            "Already registered",
            "A person with this ID number already belongs to a registered household.",
        )
    (household_id,) = await register_households(session, cipher, [item], provenance)
    return household_id


async def register_households(
    session: AsyncSession, cipher: PiiCipher, items: Sequence[NewHousehold], provenance: Provenance
) -> list[str]:
    """Insert households, their people and facts, and one registered event each. The caller
    has checked that no ID number is registered yet (the persons key enforces it too)."""
    now = datetime.now(UTC)
    households, persons, facts, events = [], [], [], []
    ids = []
    for item in items:
        body = item.body
        household_id = str(uuid.uuid4())
        ids.append(household_id)
        households.append(
            {
                "id": household_id,
                "village_code": body.village_code,
                "township_code": item.township_code,
                "head_name": body.name,
                "poor_household": body.poor_household,
                "created_at": now,
                "version": 1,
            }
        )
        persons.append(
            {
                "id_hash": item.head_hash,
                "household_id": household_id,
                "is_head": True,
                "name": body.name,
                "relation": "户主",
                "id_masked": mask_resident_id(body.id_number),
                "id_encrypted": cipher.encrypt(body.id_number),
            }
        )
        for member, member_hash in zip(body.members, item.member_hashes, strict=True):
            if member.id_number is None or member_hash is None:
                continue  # a member without an ID number (a newborn) is listed in the household row only
            persons.append(
                {
                    "id_hash": member_hash,
                    "household_id": household_id,
                    "is_head": False,
                    "name": member.name,
                    "relation": member.relation,
                    "id_masked": mask_resident_id(member.id_number),
                    "id_encrypted": cipher.encrypt(member.id_number),
                }
            )
        known = _known(body.profile)
        facts.extend(_fact_rows("household", household_id, known, provenance, now))
        events.append(
            new_event(
                "registry.household.registered",
                body.village_code,
                HouseholdRegistered(
                    household_id=household_id,
                    village_code=body.village_code,
                    township_code=item.township_code,
                    poor_household=body.poor_household,
                    head_name=body.name,
                    id_number_masked=mask_resident_id(body.id_number),
                    members=len(body.members),
                    profile=profile_of({f: canonical(v) for f, v in known.items()}),
                ),
            )
        )
    await session.execute(insert(Household), households)
    await session.execute(insert(Person), persons)
    if facts:
        await session.execute(insert(Fact), facts)
    await emit(session, *events)
    return ids


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
        await session.execute(insert(Fact), _fact_rows(kind, subject.id, changed, provenance, now))
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


async def household_views(session: AsyncSession, households: Sequence[Household]) -> list[HouseholdOut]:
    ids = [h.id for h in households]
    facts = await current_facts(session, ids)
    people: dict[str, list[Person]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        for person in await session.scalars(select(Person).where(Person.household_id.in_(chunk))):
            people[person.household_id].append(person)
    views = []
    for h in households:
        head = next(p for p in people[h.id] if p.is_head)
        current = facts[h.id]
        views.append(
            HouseholdOut(
                household_id=h.id,
                village_code=h.village_code,
                township_code=h.township_code,
                name=h.head_name,
                id_number=head.id_masked,
                poor_household=h.poor_household,
                members=[
                    MemberOut(name=p.name, relation=p.relation, id_number=p.id_masked)
                    for p in sorted(people[h.id], key=lambda p: p.name)
                    if not p.is_head
                ],
                profile=profile_of({f: fact.value for f, fact in current.items()}),
                disputed_fields=sorted(f for f, fact in current.items() if fact.disputed),
                fact_ends=fact_ends_of(current),
                version=h.version,
                created_at=h.created_at,
            )
        )
    return views


# --- businesses ---------------------------------------------------------------------------


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
    known = _known(body.profile)
    if known:
        await session.execute(insert(Fact), _fact_rows("business", business.id, known, provenance, now))
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


def fact_value(fact: Fact) -> Any:
    return json.loads(fact.value)
