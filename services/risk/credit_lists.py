"""Red and black lists and credit repair (issue 11): listing, delisting, expiry, the red
list's evaluation. The rules are in ``domain/credit_lists.py``; every listing and delisting is an
event (``risk.subject.listed`` / ``risk.subject.delisted``) that loans acts on.

Entries are records, not projections: ``vcredit rebuild risk`` keeps them, and the handlers
that list from the court's feed decide nothing while replaying."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk import context
from services.risk.domain import credit_lists as rules
from services.risk.models import Business, Household, ListEntry, OverdueYear, Repair, SubjectGrade, Title
from shared.auth import Principal
from shared.catalogue import SubjectDelisted, SubjectListed
from shared.events import new_event
from shared.messaging import emit
from shared.periods import retention_ends
from shared.problems import Problem
from shared.web import ensure_second_principal

SubjectKind = Literal["household", "business"]


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    id: str
    village_code: str
    township_code: str
    name: str
    identifier_masked: str


async def subject(session: AsyncSession, kind: SubjectKind, subject_id: str) -> Subject | None:
    if kind == "household":
        h = await session.get(Household, subject_id)
        if h is None:
            return None
        return Subject(kind, h.id, h.village_code, h.township_code, h.head_name or "", h.id_number_masked or "")
    b = await session.get(Business, subject_id)
    if b is None:
        return None
    return Subject(kind, b.id, b.village_code, b.township_code, b.name, b.credit_code_masked)


def tier_of(cause: str) -> rules.Tier:
    return context.settings().list_tiers.get(cause, "serious")


async def entries_of(
    session: AsyncSession, subject_id: str, *, list_: str, statuses: Sequence[str] = ("active",)
) -> list[ListEntry]:
    query = select(ListEntry).where(
        ListEntry.subject_id == subject_id, ListEntry.list == list_, ListEntry.status.in_(statuses)
    )
    return list(await session.scalars(query.order_by(ListEntry.created_at, ListEntry.id)))


async def blacklisted_subjects(session: AsyncSession) -> set[str]:
    """Every subject on the black list now (seed 001: left out of rewards and distinctions)."""
    return set(
        await session.scalars(
            select(ListEntry.subject_id).where(ListEntry.list == "black", ListEntry.status == "active")
        )
    )


def new_entry(
    who: Subject, *, list_: str, cause: str, status: str, evidence: str | None = None, proposed_by: str | None = None
) -> ListEntry:
    return ListEntry(
        id=str(uuid.uuid4()),
        list=list_,
        subject_kind=who.kind,
        subject_id=who.id,
        village_code=who.village_code,
        township_code=who.township_code,
        name=who.name,
        identifier_masked=who.identifier_masked,
        cause=cause,
        tier=tier_of(cause) if list_ == "black" else None,
        legal_basis=rules.LEGAL_BASIS[cause],
        evidence=evidence,
        proposed_by=proposed_by,
        status=status,
        created_at=datetime.now(UTC),
    )


async def activate(
    session: AsyncSession,
    entry: ListEntry,
    *,
    today: date,
    decided_by_role: str,
    decided_by: str | None = None,
    reasons: str | None = None,
) -> None:
    """Put an entry in force and say so. A black entry takes the subject off the red list
    (seed 001: subjects with bad records are excluded from rewards). ``decided_by`` is the
    deciding principal's name; None when none decided (the court's feed)."""
    entry.status, entry.listed_on, entry.decided_by_role = "active", today, decided_by_role
    entry.decided_by = decided_by
    entry.decision_reasons = reasons
    if entry.tier is not None:
        tier = cast(rules.Tier, entry.tier)
        entry.publication_ends_on = rules.publication_ends(today, tier)
        entry.earliest_repair_on = rules.earliest_repair(today, tier)
    await emit(
        session,
        new_event(
            "risk.subject.listed",
            # API.md: the village is the partition key; a subject's village never changes, so
            # its listings and delistings keep their order too.
            entry.village_code,
            SubjectListed(
                entry_id=entry.id,
                list=cast(Literal["red", "black"], entry.list),
                subject_kind=cast(SubjectKind, entry.subject_kind),
                subject_id=entry.subject_id,
                village_code=entry.village_code,
                township_code=entry.township_code,
                cause=entry.cause,
                tier=cast(rules.Tier | None, entry.tier),
                legal_basis=entry.legal_basis,
                decided_by_role=decided_by_role,
                listed_on=today,
                publication_ends_on=entry.publication_ends_on,
                decided_by=decided_by,
            ),
        ),
    )
    if entry.list == "black":
        for red in await entries_of(session, entry.subject_id, list_="red"):
            await end(
                session, red, today=today, reason="blacklisted", decided_by_role=decided_by_role, decided_by=decided_by
            )


async def end(
    session: AsyncSession,
    entry: ListEntry,
    *,
    today: date,
    reason: str,
    decided_by_role: str,
    decided_by: str | None = None,
    legal_basis: str | None = None,
    act_ended_on: date | None = None,
) -> None:
    """Take an entry out of force and say so. A black entry's record is then kept for the
    retention period from the end of the act (征信业管理条例 §16); a red one has nothing to keep."""
    entry.status, entry.ended_on, entry.end_reason = "ended", today, reason
    entry.act_ended_on = act_ended_on or today
    entry.retention_ends_on = retention_ends(entry.act_ended_on) if entry.list == "black" else today
    await emit(
        session,
        new_event(
            "risk.subject.delisted",
            entry.village_code,
            SubjectDelisted(
                entry_id=entry.id,
                list=cast(Literal["red", "black"], entry.list),
                subject_kind=cast(SubjectKind, entry.subject_kind),
                subject_id=entry.subject_id,
                village_code=entry.village_code,
                township_code=entry.township_code,
                reason=reason,
                legal_basis=legal_basis or entry.legal_basis,
                decided_by_role=decided_by_role,
                delisted_on=today,
                decided_by=decided_by,
            ),
        ),
    )


async def court_fact(
    session: AsyncSession, kind: SubjectKind, subject_id: str, on_list: bool | None, ended_on: date | None
) -> None:
    """The court's feed stated the dishonest-debtor fact: list, or the court removed them."""
    if context.replaying(session):
        return
    today = await context.business_date(session)
    current = [
        e for e in await entries_of(session, subject_id, list_="black") if e.cause == rules.COURT_DISHONEST_DEBTOR
    ]
    if on_list and not current:
        who = await subject(session, kind, subject_id)
        if who is None:
            # Registration and facts share the subject's partition, so this is a lost event.
            raise LookupError(f"no {kind} {subject_id}: its registration was not seen")
        entry = new_entry(who, list_="black", cause=rules.COURT_DISHONEST_DEBTOR, status="active")
        session.add(entry)
        await activate(session, entry, today=today, decided_by_role="court")
    elif not on_list:
        for entry in current:
            await end(
                session, entry, today=today, reason="court_removed", decided_by_role="court", act_ended_on=ended_on
            )


async def expire(session: AsyncSession, today: date) -> None:
    """At each new business date: entries whose publication period is over leave the list;
    records whose retention is over are deleted, with their repairs (征信业管理条例 §16)."""
    if context.replaying(session):
        return
    over = await session.scalars(
        select(ListEntry).where(ListEntry.status == "active", ListEntry.publication_ends_on <= today)
    )
    for entry in over:
        await end(session, entry, today=today, reason="publication_ended", decided_by_role="risk")
    # rules.deleted: kept through retention_ends_on, deleted the day after (shared/periods.py)
    gone = select(ListEntry.id).where(ListEntry.retention_ends_on < today)
    await session.execute(delete(Repair).where(Repair.entry_id.in_(gone)))
    await session.execute(delete(ListEntry).where(ListEntry.retention_ends_on < today))


@dataclass(frozen=True)
class Evaluation:
    listed: int
    delisted: int
    on_list: int


async def evaluate_red_list(
    session: AsyncSession, today: date, decided_by_role: str, decided_by: str | None = None
) -> Evaluation:
    """守信红名单 as of ``today``: list the subjects that now qualify, delist those that no
    longer do. Between evaluations a listing ends only through the black list."""
    cfg = context.settings()
    considered = list(rules.overdue_years_considered(today, cfg.red_list_clean_years))
    overdue: dict[str, set[int]] = {}
    for subject_id, year in await session.execute(
        select(OverdueYear.subject_id, OverdueYear.year).where(OverdueYear.year.in_(considered))
    ):
        overdue.setdefault(subject_id, set()).add(year)
    # The latest yearly title counts: this year's once awarded, else last year's (004 §6(4)).
    titled = set(
        await session.scalars(
            select(Title.code).where(Title.kind == "credit_household", Title.year.in_([today.year, today.year - 1]))
        )
    )
    black = await blacklisted_subjects(session)
    red = {
        e.subject_id: e
        for e in await session.scalars(select(ListEntry).where(ListEntry.list == "red", ListEntry.status == "active"))
    }
    listed = delisted = 0
    for g in await session.scalars(select(SubjectGrade).order_by(SubjectGrade.subject_id)):
        eligible = rules.red_list_eligible(
            subject_kind=cast(SubjectKind, g.subject_kind),
            grade=g.grade,
            min_grade=cfg.red_list_min_grade,
            holds_credit_household_title=g.subject_id in titled,
            overdue_years=overdue.get(g.subject_id, ()),
            today=today,
            clean_years=cfg.red_list_clean_years,
            blacklisted=g.subject_id in black,
        )
        current = red.pop(g.subject_id, None)
        if eligible and current is None:
            who = await subject(session, cast(SubjectKind, g.subject_kind), g.subject_id)
            if who is None:
                continue  # rated before its registration reached risk; the next evaluation lists it
            entry = new_entry(who, list_="red", cause=rules.TRUSTWORTHY, status="active")
            session.add(entry)
            await activate(session, entry, today=today, decided_by_role=decided_by_role, decided_by=decided_by)
            listed += 1
        elif not eligible and current is not None:
            await end(
                session,
                current,
                today=today,
                reason="no_longer_eligible",
                decided_by_role=decided_by_role,
                decided_by=decided_by,
            )
            delisted += 1
    for stale in red.values():  # no grade in force any more
        await end(
            session,
            stale,
            today=today,
            reason="no_longer_eligible",
            decided_by_role=decided_by_role,
            decided_by=decided_by,
        )
        delisted += 1
    await session.flush()
    on_list = await session.scalar(
        select(func.count()).select_from(ListEntry).where(ListEntry.list == "red", ListEntry.status == "active")
    )
    return Evaluation(listed, delisted, int(on_list or 0))


async def evaluate_red_list_now(
    session: AsyncSession, decided_by_role: str, decided_by: str | None = None
) -> tuple[date, Evaluation]:
    """The red list's evaluation as of risk's business date, and that date."""
    today = await context.business_date(session)
    return today, await evaluate_red_list(session, today, decided_by_role, decided_by)


# --- what the API asks of the lists ---------------------------------------------------------

# A query over list entries, alone or joined (repairs with their entries).
Searched = TypeVar("Searched", bound=Select[*tuple[Any, ...]])


def searched(query: Searched, name: str | None, village_code: str | None) -> Searched:
    if name is not None:
        query = query.where(ListEntry.name.contains(name, autoescape=True))
    if village_code is not None:
        query = query.where(ListEntry.village_code == village_code)
    return query


async def get_entry(session: AsyncSession, entry_id: str, *, lock: bool = False) -> ListEntry:
    entry = await session.get(ListEntry, entry_id, with_for_update=lock)
    if entry is None:
        raise entry_not_found(entry_id)
    return entry


def entry_not_found(entry_id: str) -> Problem:
    return Problem(404, "LIST_ENTRY_NOT_FOUND", "List entry not found", f"No list entry {entry_id}.")


async def entries(
    session: AsyncSession,
    list_: Literal["red", "black"] | None,
    status: str | None,
    subject_id: str | None,
    name: str | None,
    village_code: str | None,
    limit: int,
    offset: int,
) -> list[ListEntry]:
    """Every entry, proposals and ended ones included (the government's view)."""
    query = searched(select(ListEntry), name, village_code)
    if list_ is not None:
        query = query.where(ListEntry.list == list_)
    if status is not None:
        query = query.where(ListEntry.status == status)
    if subject_id is not None:
        query = query.where(ListEntry.subject_id == subject_id)
    rows = await session.scalars(query.order_by(ListEntry.created_at, ListEntry.id).limit(limit).offset(offset))
    return list(rows)


async def propose_black_listing(
    session: AsyncSession, kind: SubjectKind, subject_id: str, evidence: str, proposed_by: str
) -> ListEntry:
    """A bank reports malicious debt evasion; nothing is listed until the government approves."""
    who = await subject(session, kind, subject_id)
    if who is None:
        raise Problem(404, "SUBJECT_NOT_FOUND", "Subject not found", f"Risk knows no {kind} {subject_id}.")
    pending = await entries_of(session, who.id, list_="black", statuses=("proposed", "active"))
    if any(e.cause == rules.MALICIOUS_DEBT_EVASION for e in pending):
        raise Problem(
            409, "ALREADY_PROPOSED", "Already proposed or listed", "This subject has an open entry for this cause."
        )
    entry = new_entry(
        who,
        list_="black",
        cause=rules.MALICIOUS_DEBT_EVASION,
        status="proposed",
        evidence=evidence,
        proposed_by=proposed_by,
    )
    session.add(entry)
    await session.flush()
    return entry


async def decide_black_listing(
    session: AsyncSession, principal: Principal, entry_id: str, approve: bool, reasons: str
) -> ListEntry:
    """The government approves (listed and published from the business date) or rejects; never
    the principal that proposed it, even one whose key holds the government's role too."""
    entry = await get_entry(session, entry_id, lock=True)
    if entry.status != "proposed":
        raise Problem(409, "NOT_PROPOSED", "Not a proposal", f"The entry is {entry.status}, not proposed.")
    ensure_second_principal(principal, entry.proposed_by, "black-list proposal")
    today = await context.business_date(session)
    if approve:
        await activate(
            session, entry, today=today, decided_by_role="government", decided_by=principal.name, reasons=reasons
        )
    else:
        entry.status, entry.decided_by_role, entry.decision_reasons = "rejected", "government", reasons
        entry.decided_by = principal.name
        entry.ended_on, entry.end_reason = today, "rejected"
        entry.retention_ends_on = today  # never published, nothing to keep
    return entry


async def published(
    session: AsyncSession,
    list_: Literal["red", "black"] | None,
    name: str | None,
    village_code: str | None,
    limit: int,
    offset: int,
) -> list[ListEntry]:
    """The entries in force and still within their publication period (公示)."""
    today = await context.business_date(session)
    query = searched(select(ListEntry), name, village_code).where(
        ListEntry.status == "active",
        (ListEntry.publication_ends_on.is_(None)) | (ListEntry.publication_ends_on > today),
    )
    if list_ is not None:
        query = query.where(ListEntry.list == list_)
    rows = await session.scalars(
        query.order_by(ListEntry.list, ListEntry.village_code, ListEntry.listed_on, ListEntry.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows)
