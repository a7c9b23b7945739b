"""Loans' consumers: the certified rating in force (scoring) and the circuit breaker, fund
capacity and red and black lists (risk), kept as local projections so a drawdown is decided
locally."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.loans.credit_lines import set_limit
from services.loans.credit_lists import is_blacklisted
from services.loans.models import (
    CreditLine,
    FundView,
    ListEntry,
    RatingStatusView,
    RatingView,
    TownshipView,
    VillageView,
)
from shared.catalogue import (
    FundCapacityChanged,
    NoticeEnded,
    NoticeStarted,
    RatingCertified,
    RatingChanged,
    RatingDowngraded,
    RatingRejected,
    SubjectDelisted,
    SubjectListed,
    TownshipHalt,
    VillageFreeze,
)
from shared.events import Envelope, parse_payload
from shared.messaging import Handler

_RATING_TYPES = ("scoring.rating.certified", "scoring.rating.downgraded")
# The workflow's events, for why a line does not open (RatingStatusView, domain/opening.py).
_STATUS_TYPES = (
    "scoring.rating.certified",
    "scoring.rating.changed",
    "scoring.rating.rejected",
    "scoring.notice.started",
    "scoring.notice.ended",
)
_BATCH_ROWS = "loans_rating_rows"


@dataclass
class _BatchRows:
    """A batch's rating views, credit lines, blacklisted subjects and workflow statuses, read
    in four queries (``prefetch``). A day's certificates arrive by the thousand; a SELECT of
    each row, each behind an autoflush, held loans' consumer to about a hundred ratings a second."""

    subjects: set[str]
    views: dict[str, RatingView]
    lines: dict[str, CreditLine]
    blacklisted: set[str]
    status_subjects: set[str]
    statuses: dict[str, RatingStatusView]


async def prefetch(session: AsyncSession, events: Sequence[Envelope]) -> None:
    subjects = {str(e.payload["subject_id"]) for e in events if e.type in _RATING_TYPES}
    status_subjects = {str(e.payload["subject_id"]) for e in events if e.type in _STATUS_TYPES}
    if not subjects and not status_subjects:
        return
    statuses = await session.scalars(
        select(RatingStatusView)
        .where(RatingStatusView.subject_id.in_(status_subjects))
        .order_by(RatingStatusView.subject_id)
        .with_for_update()
    )
    views: Sequence[RatingView] = []
    lines: Sequence[CreditLine] = []
    black: Sequence[str] = []
    if subjects:
        # In key order, as the whole-village opening locks a village's (village_credit.py).
        views = (
            await session.scalars(
                select(RatingView)
                .where(RatingView.subject_id.in_(subjects))
                .order_by(RatingView.subject_id)
                .with_for_update()
            )
        ).all()
        lines = (
            await session.scalars(select(CreditLine).where(CreditLine.subject_id.in_(subjects)).with_for_update())
        ).all()
        black = (
            await session.scalars(
                select(ListEntry.subject_id)
                .where(ListEntry.subject_id.in_(subjects), ListEntry.list == "black", ListEntry.active)
                .distinct()
            )
        ).all()
    session.info[_BATCH_ROWS] = _BatchRows(
        subjects,
        {v.subject_id: v for v in views},
        {line.subject_id: line for line in lines},
        set(black),
        status_subjects,
        {s.subject_id: s for s in statuses},
    )


async def _rating_rows(
    session: AsyncSession, subject_id: str
) -> tuple[RatingView | None, CreditLine | None, bool | None]:
    """The subject's rating view and line, locked, and whether it is blacklisted when the
    batch already knows (None: ``set_limit`` asks if it needs to)."""
    rows: _BatchRows | None = session.info.get(_BATCH_ROWS)
    if rows is not None and subject_id in rows.subjects:
        return rows.views.get(subject_id), rows.lines.get(subject_id), subject_id in rows.blacklisted
    view = await session.get(RatingView, subject_id, with_for_update=True)
    line = await session.scalar(select(CreditLine).where(CreditLine.subject_id == subject_id).with_for_update())
    return view, line, None


async def _rating(session: AsyncSession, p: RatingCertified | RatingDowngraded, certified: bool) -> None:
    view, line, blacklisted = await _rating_rows(session, p.subject_id)
    if view is None:
        view = RatingView(subject_id=p.subject_id)
        session.add(view)
        rows: _BatchRows | None = session.info.get(_BATCH_ROWS)
        if rows is not None:
            rows.views[p.subject_id] = view  # a second rating of the subject in the batch
    view.subject_kind, view.village_code, view.township_code = p.subject_kind, p.village_code, p.township_code
    view.poor_household = p.poor_household
    view.grade, view.credit_limit, view.certified = p.grade, Decimal(p.credit_limit), certified
    if line is not None:
        cause = "rating_certified" if certified else "rating_downgraded"
        await set_limit(session, line, view.credit_limit, cause, blacklisted=blacklisted)


async def on_certified(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, RatingCertified)
    await _rating(session, p, True)
    status = await _status(session, p)
    status.status, status.notice_ends, status.reason_code = "certified", None, None


async def _status(
    session: AsyncSession, p: RatingCertified | RatingChanged | RatingRejected | NoticeStarted | NoticeEnded
) -> RatingStatusView:
    """The subject's workflow status row (locked; new if none), who and where refreshed."""
    rows: _BatchRows | None = session.info.get(_BATCH_ROWS)
    if rows is not None and p.subject_id in rows.status_subjects:
        row = rows.statuses.get(p.subject_id)
    else:
        row = await session.get(RatingStatusView, p.subject_id, with_for_update=True)
    if row is None:
        row = RatingStatusView(subject_id=p.subject_id, status="rejected", vetoed=False)
        session.add(row)
        if rows is not None:
            rows.statuses[p.subject_id] = row  # a second event of the subject in the batch
    row.subject_kind, row.village_code, row.township_code = p.subject_kind, p.village_code, p.township_code
    return row


async def on_rating_changed(session: AsyncSession, event: Envelope) -> None:
    """Every new rating, with its status after scoring's step (in notice, or settled)."""
    p = parse_payload(event, RatingChanged)
    status = await _status(session, p)
    status.status, status.vetoed, status.reason_code = p.status, p.vetoed, None
    if p.status not in ("pending_notice", "objected"):
        status.notice_ends = None  # notice.started, just before it, set the end of a new notice


async def on_notice_started(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, NoticeStarted)
    status = await _status(session, p)
    status.status, status.vetoed, status.notice_ends, status.reason_code = "pending_notice", False, p.notice_ends, None


async def on_notice_ended(session: AsyncSession, event: Envelope) -> None:
    """Certified and rejected end the notice here; a superseded one is followed by the new
    rating's own events (rating.changed)."""
    p = parse_payload(event, NoticeEnded)
    if p.outcome == "superseded":
        return
    status = await _status(session, p)
    status.status, status.notice_ends = p.outcome, None


async def on_rating_rejected(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, RatingRejected)
    status = await _status(session, p)
    status.status, status.notice_ends, status.reason_code = "rejected", None, p.reason_code


async def on_downgraded(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, RatingDowngraded)
    await _rating(session, p, Decimal(p.credit_limit) > 0)


async def _raise_held_limits(session: AsyncSession, where: ColumnElement[bool]) -> None:
    """Limit raises held back by a freeze, halt or black listing (credit_lines.set_limit) take
    effect once lifted; a blacklisted subject's stays held whatever else lifts."""
    black = exists().where(ListEntry.subject_id == CreditLine.subject_id, ListEntry.list == "black", ListEntry.active)
    held = await session.execute(
        select(CreditLine, RatingView.credit_limit)
        .join(RatingView, RatingView.subject_id == CreditLine.subject_id)
        .where(where, RatingView.certified, RatingView.credit_limit > CreditLine.limit, ~black)
        .with_for_update(of=CreditLine)
    )
    for line, limit in held.all():
        await set_limit(session, line, limit, "new_credit_resumed", blacklisted=False)


async def on_frozen(session: AsyncSession, event: Envelope) -> None:
    await session.merge(VillageView(code=parse_payload(event, VillageFreeze).village_code, frozen=True))


async def on_unfrozen(session: AsyncSession, event: Envelope) -> None:
    code = parse_payload(event, VillageFreeze).village_code
    await session.merge(VillageView(code=code, frozen=False))
    await _raise_held_limits(session, CreditLine.village_code == code)


async def on_halted(session: AsyncSession, event: Envelope) -> None:
    await session.merge(TownshipView(code=parse_payload(event, TownshipHalt).township_code, halted=True))


async def on_resumed(session: AsyncSession, event: Envelope) -> None:
    code = parse_payload(event, TownshipHalt).township_code
    await session.merge(TownshipView(code=code, halted=False))
    await _raise_held_limits(session, CreditLine.township_code == code)


async def on_listed(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, SubjectListed)
    entry = await session.get(ListEntry, p.entry_id, with_for_update=True)
    if entry is None:
        session.add(
            ListEntry(
                entry_id=p.entry_id,
                list=p.list,
                subject_kind=p.subject_kind,
                subject_id=p.subject_id,
                cause=p.cause,
                active=True,
                listed_on=p.listed_on,
                delisted_on=None,
            )
        )
    else:  # a listing again, or after its own delisting: that entry is over, keep it so
        entry.cause, entry.listed_on = p.cause, p.listed_on
    rows: _BatchRows | None = session.info.get(_BATCH_ROWS)
    if rows is not None and p.list == "black" and (entry is None or entry.active):
        rows.blacklisted.add(p.subject_id)  # a rating later in the batch sees it


async def on_delisted(session: AsyncSession, event: Envelope) -> None:
    p = parse_payload(event, SubjectDelisted)
    entry = await session.get(ListEntry, p.entry_id, with_for_update=True)
    if entry is None:  # the delisting overtook its listing: remember it, so the listing stays over
        entry = ListEntry(
            entry_id=p.entry_id,
            list=p.list,
            subject_kind=p.subject_kind,
            subject_id=p.subject_id,
            cause=None,
            active=False,
            listed_on=None,
            delisted_on=p.delisted_on,
        )
        session.add(entry)
        return
    if not entry.active:
        return  # delisted once already
    entry.active, entry.delisted_on = False, p.delisted_on
    if p.list != "black":
        return
    still = await is_blacklisted(session, p.subject_id)  # autoflushed: this entry no longer counts
    rows: _BatchRows | None = session.info.get(_BATCH_ROWS)
    if rows is not None and not still:
        rows.blacklisted.discard(p.subject_id)
    if not still:
        await _raise_held_limits(session, CreditLine.subject_id == p.subject_id)


async def on_capacity(session: AsyncSession, event: Envelope) -> None:
    await session.merge(FundView(id=1, capacity=Decimal(parse_payload(event, FundCapacityChanged).capacity)))


HANDLERS: dict[str, Handler] = {
    "scoring.rating.certified": on_certified,
    "scoring.rating.downgraded": on_downgraded,
    "scoring.rating.changed": on_rating_changed,
    "scoring.rating.rejected": on_rating_rejected,
    "scoring.notice.started": on_notice_started,
    "scoring.notice.ended": on_notice_ended,
    "risk.village.frozen": on_frozen,
    "risk.village.unfrozen": on_unfrozen,
    "risk.township.halted": on_halted,
    "risk.township.resumed": on_resumed,
    "risk.fund.capacity_changed": on_capacity,
    "risk.subject.listed": on_listed,
    "risk.subject.delisted": on_delisted,
}
