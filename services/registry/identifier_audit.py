"""``vcredit registry check-identifiers``: which stored identifiers are not in the one normal
form (services/registry/domain/identifiers.py), and which people or businesses are stored
twice under two spellings of one number.

Before issue 19 an ID number with full-width or Arabic-Indic digits passed the GB 11643
check and was stored (encrypted, and hashed for lookup) as typed, so a person could hold a
second household. ID numbers are encrypted: each is decrypted with the PII cipher and
normalised in memory, never written back nor printed in full. This command **reports**; it
rewrites nothing: which of two households is the real one, and what happens to lines and
loans opened on the other, is for the operator to decide.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry.domain.identifiers import (
    InvalidIdentifier,
    normalise_identifier,
    validate_resident_id,
    validate_uscc,
)
from services.registry.models import Business, Person
from shared.pii import PiiCipher
from shared.redaction import mask

BATCH = 1000


@dataclass(frozen=True)
class Finding:
    kind: str  # "person" | "business"
    subject: str  # household id (person) or business id
    shown: str  # masked ID number or the credit code, as stored
    problem: str

    def __str__(self) -> str:
        return f"{self.kind} {self.shown} ({self.subject}): {self.problem}"


def _check(raw: str, validate: Callable[[str], str]) -> tuple[str | None, list[str]]:
    """(normal form or None, problems) of one stored identifier."""
    problems = []
    try:
        normal: str | None = normalise_identifier(raw)
    except InvalidIdentifier as exc:
        return None, [f"cannot be normalised: {exc}"]
    if normal != raw:
        problems.append("not in normal form (stored as typed: full-width, lower case or spaces)")
    try:
        validate(raw)
    except InvalidIdentifier as exc:
        problems.append(f"invalid: {exc}")
    return normal, problems


def _escaped(text: str) -> str:
    # Characters outside ASCII are shown by code point, so the operator sees what is stored.
    return "".join(c if c.isascii() else f"<U+{ord(c):04X}>" for c in text)


def _masked(number: str) -> str:
    """An ID number is never printed whole (region prefix and last four, as the API shows)."""
    return mask(number) if len(number) >= 8 else "*" * len(number)


def _twice(
    kind: str, by_normal: dict[str, list[tuple[str, str]]], what: str, show: Callable[[str], str]
) -> Iterable[Finding]:
    for normal, rows in sorted(by_normal.items()):
        if len(rows) > 1:
            subjects = sorted({subject for subject, _ in rows})
            for subject, shown in rows:
                others = ", ".join(s for s in subjects if s != subject) or subject
                problem = f"{len(rows)} rows hold the {what} {show(normal)}: also {others}"
                yield Finding(kind, subject, shown, problem)


async def audit_identifiers(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher) -> list[Finding]:
    findings: list[Finding] = []
    persons: dict[str, list[tuple[str, str]]] = defaultdict(list)
    after = ""
    while True:
        async with sessions() as session:
            query = select(Person).where(Person.id_hash > after).order_by(Person.id_hash).limit(BATCH)
            rows = list(await session.scalars(query))
        if not rows:
            break
        after = rows[-1].id_hash
        for person in rows:
            try:
                number = cipher.decrypt(person.id_encrypted)
            except Exception as exc:  # a retired key removed, a damaged token
                findings.append(Finding("person", person.household_id, person.id_masked, f"unreadable: {exc}"))
                continue
            normal, problems = _check(number, validate_resident_id)
            shown = _masked(_escaped(number))
            findings.extend(Finding("person", person.household_id, shown, p) for p in problems)
            if normal is not None:
                if person.id_hash not in cipher.lookup_hashes(normal):
                    findings.append(
                        Finding("person", person.household_id, shown, "lookup hash is not of the normal form")
                    )
                persons[normal].append((person.household_id, shown))
    findings.extend(_twice("person", persons, "ID number", _masked))

    businesses: dict[str, list[tuple[str, str]]] = defaultdict(list)
    async with sessions() as session:
        for business_id, code in await session.execute(select(Business.id, Business.credit_code).order_by(Business.id)):
            normal, problems = _check(code, validate_uscc)
            shown = _escaped(code)
            findings.extend(Finding("business", business_id, shown, p) for p in problems)
            if normal is not None:
                businesses[normal].append((business_id, shown))
    findings.extend(_twice("business", businesses, "credit code", str))
    return findings
