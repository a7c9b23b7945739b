"""Whole-village credit (整村授信, DOMAIN.md §7): once a village's notice has ended, the lines of
all its certified households open in one act. Each subject gets the answer the single opening
would give it (domain/opening.py, one rule): a line at its certified limit with the same
loans.credit_line.opened event, or a skip with the reason.

What stops every line of the village at once (the village frozen, its township halted, the
fund's capacity reached) refuses the whole call with the single opening's 409, writing
nothing: a list of identical skips would say less, and a refused call leaves no
Idempotency-Key record behind, so the same call can be repeated once the stop lifts.

One transaction: the lines, their events and the stored answer commit together or not at
all, so a retry after a crash is a plain retry. Bounded by reading and writing the village
``village_credit_chunk`` subjects at a time (a few queries and one outbox insert per chunk).
The village's rating views are locked in key order first, as the single opening locks its
one: a second call for the village (or a single opening of one of its households) waits,
then finds the lines open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.context import business_date, settings
from services.loans.credit_lines import (
    fund_full,
    new_line,
    rating_fact,
    refused,
    workflow_fact,
)
from services.loans.domain import opening
from services.loans.models import CreditLine, ListEntry, RatingStatusView, RatingView, TownshipView, VillageView
from shared.bulk import among
from shared.events import Envelope
from shared.messaging import emit
from shared.problems import Problem


@dataclass(frozen=True)
class Opened:
    subject_id: str
    credit_line_id: str
    limit: Decimal


@dataclass(frozen=True)
class Skipped:
    subject_id: str
    reason_code: str
    detail: str


@dataclass(frozen=True)
class VillageCredit:
    village_code: str
    business_date: date
    opened: list[Opened]
    skipped: list[Skipped]


# Households only: 整村授信 is the village's households' act; a business's line (004 annex 2
# art. 11) is opened on its own, POST /v1/credit-lines.


def village_not_found(village_code: str) -> Problem:
    return Problem(
        404,
        "VILLAGE_NOT_FOUND",
        "Village not found",
        f"Loans knows no village {village_code}: no rated household and no circuit-breaker state.",
    )


async def open_village_lines(session: AsyncSession, village_code: str) -> VillageCredit:
    today = await business_date(session)
    # Key order, the lock order of every writer of rating_view (handlers.prefetch).
    ratings = list(
        await session.scalars(
            select(RatingView)
            .where(RatingView.village_code == village_code, RatingView.subject_kind == "household")
            .order_by(RatingView.subject_id)
            .with_for_update()
        )
    )
    statuses = {
        s.subject_id: s
        for s in await session.scalars(
            select(RatingStatusView).where(
                RatingStatusView.village_code == village_code, RatingStatusView.subject_kind == "household"
            )
        )
    }
    village = await session.get(VillageView, village_code)
    if not ratings and not statuses and village is None:
        raise village_not_found(village_code)
    township_code = _township_of(ratings, list(statuses.values()))
    township = await session.get(TownshipView, township_code) if township_code else None
    frozen, halted = bool(village and village.frozen), bool(township and township.halted)
    full = await fund_full(session)
    whole = opening.village_wide_refusal(frozen, halted, full, village_code, township_code or "")
    if whole is not None:
        raise refused(whole)

    by_subject = {r.subject_id: r for r in ratings}
    subjects = sorted(by_subject.keys() | statuses.keys())
    answer = VillageCredit(village_code, today, [], [])
    chunk = settings().village_credit_chunk
    for start in range(0, len(subjects), chunk):
        await _open_chunk(session, subjects[start : start + chunk], by_subject, statuses, today, answer)
    return answer


def _township_of(ratings: Sequence[RatingView], statuses: Sequence[RatingStatusView]) -> str | None:
    codes = [r.township_code for r in ratings] + [s.township_code for s in statuses]
    return codes[0] if codes else None


async def _open_chunk(
    session: AsyncSession,
    subjects: list[str],
    ratings: dict[str, RatingView],
    statuses: dict[str, RatingStatusView],
    today: date,
    answer: VillageCredit,
) -> None:
    open_already = set(
        await session.scalars(
            select(CreditLine.subject_id).where(among(session, CreditLine.__table__.c.subject_id, subjects))
        )
    )
    black: dict[str, list[tuple[str, str | None]]] = {}
    for entry in await session.scalars(
        select(ListEntry)
        .where(among(session, ListEntry.__table__.c.subject_id, subjects), ListEntry.list == "black", ListEntry.active)
        .order_by(ListEntry.listed_on, ListEntry.entry_id)
    ):
        black.setdefault(entry.subject_id, []).append((entry.entry_id, entry.cause))
    events: list[Envelope] = []
    for subject_id in subjects:
        rating, status = ratings.get(subject_id), statuses.get(subject_id)
        facts = opening.Facts(
            rating=rating_fact(rating),
            workflow=workflow_fact(status),
            black_entries=tuple(black.get(subject_id, ())),
            village_frozen=False,  # checked for the whole village before (open_village_lines)
            township_halted=False,
            fund_full=False,
            line_open=subject_id in open_already,
        )
        where = rating or status
        assert where is not None  # every subject came from one of the two
        refusal = opening.opening_refusal(facts, where.village_code, where.township_code)
        if refusal is not None:
            answer.skipped.append(Skipped(subject_id, refusal.reason_code, refusal.detail))
            continue
        assert rating is not None
        line, opened = new_line(rating, today)
        session.add(line)
        events.append(opened)
        answer.opened.append(Opened(subject_id, line.id, line.limit))
    if events:
        await emit(session, *events)
