"""Households: registering them with their people, finding people already registered, and
the households' views.

Written for batches (the collection-sheet import registers hundreds per transaction); the
HTTP endpoints call the same functions with one item, so both paths behave alike. Their
facts are recorded and changed as every subject's are (``subjects.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.domain.facts import canonical, profile_of
from services.registry.domain.identifiers import mask_resident_id
from services.registry.models import Fact, Household, Person, Village
from services.registry.schemas import HouseholdIn, HouseholdOut, MemberOut
from services.registry.subjects import (
    Provenance,
    chunks,
    current_facts,
    fact_ends_of,
    fact_rows,
    known_facts,
    village_or_422,
)
from shared.catalogue import HouseholdRegistered
from shared.events import new_event
from shared.messaging import emit
from shared.pii import PiiCipher
from shared.problems import Problem


def lookups_of(cipher: PiiCipher, id_numbers: Iterable[str]) -> dict[str, str]:
    """Every key's hash of each ID number -> its current-key hash (shared/pii.py rotation)."""
    return {h: every[0] for every in map(cipher.lookup_hashes, id_numbers) for h in every}


async def persons_by_hash(session: AsyncSession, lookups: Mapping[str, str]) -> dict[str, Person]:
    """Registered persons by their current-key hash; ``lookups`` (see ``lookups_of``) also
    finds those still stored under a retired key's hash."""
    found: dict[str, Person] = {}
    for chunk in chunks(list(lookups)):
        for person in await session.scalars(select(Person).where(Person.id_hash.in_(chunk))):
            found[lookups[person.id_hash]] = person
    return found


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
        known = known_facts(body.profile)
        facts.extend(fact_rows("household", household_id, known, provenance, now))
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


async def household_views(session: AsyncSession, households: Sequence[Household]) -> list[HouseholdOut]:
    ids = [h.id for h in households]
    facts = await current_facts(session, ids)
    people: dict[str, list[Person]] = {i: [] for i in ids}
    for chunk in chunks(ids):
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
