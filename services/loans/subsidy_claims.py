"""Subsidy claims (贴息资金拨付, DOMAIN.md §7): the bank files a period's claim computed from
the loans' month-end snapshots, a second principal (the district finance) approves it, approves
part or returns it, and its payments are recorded; the ledger settles the subsidy receivable.

Ledger (services/loans/ledger.py), dated the business date: an approval moves the claimed
subsidy off the receivable, the approved part to ``subsidy_claimed`` (owed by the finance until
paid), the rest to ``subsidy_disallowed`` (the bank's expense; the borrowers' bills do not
change); a payment debits ``settlement`` and credits ``subsidy_claimed``. A returned claim
posts nothing and its days may be claimed again. So ``subsidy_claimed`` is, at every date,
the claims approved less their payments, and ``subsidy_receivable`` the loans' accrued subsidy
less what reviews took off it. A refusal (``Problem``) changes nothing.

Rules: domain/subsidy_claims.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Table, and_, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.loans import ledger
from services.loans.context import business_date, settings
from services.loans.domain.loan_state import DAY
from services.loans.domain.policies import describe
from services.loans.domain.subsidy_claims import (
    ZERO,
    ClaimRefused,
    Cumulative,
    PartLine,
    check_payment,
    check_period,
    line_of,
    review,
)
from services.loans.models import (
    BusinessDate,
    Loan,
    LoanSubsidySnapshot,
    SubsidyClaim,
    SubsidyClaimLine,
    SubsidyPayment,
    SubsidySnapshotMonth,
)
from shared.auth import Principal
from shared.bulk import insert_rows
from shared.catalogue import SubsidyClaimFiled, SubsidyClaimPaid, SubsidyClaimReviewed
from shared.events import new_event
from shared.messaging import emit
from shared.money import format_money
from shared.problems import Problem
from shared.web import ensure_second_principal

SNAPSHOTS: Table = LoanSubsidySnapshot.__table__  # type: ignore[assignment]  # declared as FromClause
LINES: Table = SubsidyClaimLine.__table__  # type: ignore[assignment]
LOANS: Table = Loan.__table__  # type: ignore[assignment]
DISTRICT = "district"  # one sequence of claims for the district finance (catalogue.DISTRICT)


def _refused(refusal: ClaimRefused) -> Problem:
    return Problem(refusal.status, refusal.code, "Subsidy claim refused", refusal.detail, None, **refusal.extra)


# --- the month-end snapshots (written by close of business, services/loans/cob.py) ----------


async def snapshot_month(session: AsyncSession, day: date) -> None:
    """Keep each loan's cumulative subsidy figures as of ``day``, a month end whose close has
    just closed every loan: one INSERT ... SELECT, no row read into Python. The loans active
    that day and those that closed during the month (their figures are final): a loan left out
    has not changed since its last snapshot (domain/subsidy_claims.py)."""
    c = LOANS.c
    previous_month_end = day.replace(day=1) - DAY
    rows = select(
        c.id,
        literal(day, SNAPSHOTS.c.as_of.type),
        c.subsidy_accrued,
        c.subsidy_forfeited,
        c.penalty_accrued + c.compound_accrued,
        c.accrual_days,
        c.forfeited_days,
    ).where(or_(c.status == "active", c.closed_through > previous_month_end))
    names = ["loan_id", "as_of", "subsidy_accrued", "subsidy_forfeited", "penalty_accrued", "accrual_days"]
    written = await session.execute(insert(SNAPSHOTS).from_select([*names, "forfeited_days"], rows))
    session.add(SubsidySnapshotMonth(as_of=day, loans=written.rowcount))  # type: ignore[attr-defined]
    await session.flush()


# --- filing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Figures:
    loan: Any  # the loan's columns (a result row)
    at_end: Cumulative
    before: Cumulative | None


def _cumulative(subsidy: Any, forfeited: Any, penalty: Any, days: Any, forfeited_days: Any) -> Cumulative:
    return Cumulative(Decimal(subsidy), Decimal(forfeited), Decimal(penalty), int(days), int(forfeited_days))


async def _figures(session: AsyncSession, start: date, end: date) -> list[_Figures]:
    """Each subsidised loan with a snapshot in the period: its last one in it and, if any, the
    one at the day before the period. A loan with none in the period did not change in it."""
    s = SNAPSHOTS.c
    before_day = start - DAY
    last = (
        select(s.loan_id, func.max(s.as_of).label("as_of"))
        .where(s.as_of > before_day, s.as_of <= end)
        .group_by(s.loan_id)
        .subquery()
    )
    at_end = aliased(LoanSubsidySnapshot)
    before = aliased(LoanSubsidySnapshot)
    query = (
        select(
            Loan.id,
            Loan.subject_kind,
            Loan.subject_id,
            Loan.village_code,
            Loan.principal,
            Loan.disbursed_on,
            Loan.maturity_on,
            Loan.annual_rate,
            Loan.subsidy_rate,
            at_end.subsidy_accrued,
            at_end.subsidy_forfeited,
            at_end.penalty_accrued,
            at_end.accrual_days,
            at_end.forfeited_days,
            before.subsidy_accrued.label("b_subsidy"),
            before.subsidy_forfeited.label("b_forfeited"),
            before.penalty_accrued.label("b_penalty"),
            before.accrual_days.label("b_days"),
            before.forfeited_days.label("b_forfeited_days"),
        )
        .join(last, last.c.loan_id == Loan.id)
        .join(at_end, and_(at_end.loan_id == last.c.loan_id, at_end.as_of == last.c.as_of))
        .outerjoin(before, and_(before.loan_id == Loan.id, before.as_of == before_day))
        # 004 §3(2): only subsidised loans are claimed (ordinary households pay their interest).
        .where(Loan.subsidy_rate > 0)
        .order_by(Loan.village_code, Loan.disbursed_on, Loan.id)
    )
    out = []
    for row in await session.execute(query):
        end_figures = _cumulative(*row[9:14])
        before_figures = None if row.b_subsidy is None else _cumulative(*row[14:19])
        out.append(_Figures(row, end_figures, before_figures))
    return out


async def _overlapping(session: AsyncSession, start: date, end: date) -> list[SubsidyClaim]:
    c = SubsidyClaim
    rows = await session.scalars(
        select(c).where(c.status != "returned", c.period_start <= end, c.period_end >= start).order_by(c.period_start)
    )
    return list(rows)


# 004 §4(1)5: 负责扶贫小额贴息贷款利息补贴的及时拨付 — the bank's claim for a period, a day claimed once
async def file(session: AsyncSession, principal: Principal, start: date, end: date) -> SubsidyClaim:
    """File the claim for the days ``start``..``end``: refused (422) for a period that is not
    one whole configured period, not closed, or has no snapshots (closed before they were kept)
    or nothing to claim; (409) when any of its days is in a claim not returned."""
    # Claims are filed one at a time: the business date row, locked, orders them (PostgreSQL;
    # SQLite writes one at a time anyway), so two overlapping filings cannot both pass the check.
    today = (await session.execute(select(BusinessDate).with_for_update())).scalar_one_or_none()
    day = today.current if today is not None else await business_date(session)
    try:
        check_period(start, end, settings().subsidy_claim_period, day)
    except ClaimRefused as refusal:
        raise _refused(refusal) from None
    if await session.get(SubsidySnapshotMonth, end) is None:
        raise Problem(
            422,
            "SUBSIDY_HISTORY_MISSING",
            "No subsidy history for the period",
            f"{end} was closed before the loans' month-end subsidy snapshots were kept: its days cannot be "
            "claimed from the ledger.",
        )
    if overlapping := await _overlapping(session, start, end):
        raise Problem(
            409,
            "SUBSIDY_DAYS_CLAIMED",
            "Days already claimed",
            f"Days of {start}..{end} are in claim(s) not returned: "
            + ", ".join(f"{c.id} ({c.period_start}..{c.period_end}, {c.status})" for c in overlapping)
            + ". A day's subsidy is claimed once (DOMAIN.md §7).",
            claim_ids=[c.id for c in overlapping],
        )
    figures = [(f, line_of(f.at_end, f.before)) for f in await _figures(session, start, end)]
    figures = [(f, line) for f, line in figures if not line.empty]
    claimed = sum((line.subsidy for _, line in figures), ZERO)
    if claimed == ZERO:
        raise Problem(
            422,
            "SUBSIDY_NOTHING_TO_CLAIM",
            "Nothing to claim",
            f"No loan accrued subsidy in {start}..{end}.",
        )
    claim = SubsidyClaim(
        id=str(uuid.uuid4()),
        period_start=start,
        period_end=end,
        status="filed",
        policy=describe(settings().subsidy_shares(), start, end + DAY),
        loans=sum(1 for _, line in figures if line.claimed),
        claimed=claimed,
        forfeited=sum((line.forfeited for _, line in figures), ZERO),
        penalty=sum((line.penalty for _, line in figures), ZERO),
        approved=None,
        paid=ZERO,
        filed_by=principal.name,
        filed_on=day,
        created_at=datetime.now(UTC),
    )
    session.add(claim)
    await session.flush()
    rows = [
        {
            "claim_id": claim.id,
            "loan_id": f.loan.id,
            "number": number,
            "subject_kind": f.loan.subject_kind,
            "subject_id": f.loan.subject_id,
            "village_code": f.loan.village_code,
            "principal": f.loan.principal,
            "disbursed_on": f.loan.disbursed_on,
            "maturity_on": f.loan.maturity_on,
            "annual_rate": f.loan.annual_rate,
            "subsidy_rate": f.loan.subsidy_rate,
            "days": line.days,
            "forfeited_days": line.forfeited_days,
            "subsidy": line.subsidy,
            "forfeited": line.forfeited,
            "penalty": line.penalty,
            "approved": None,
            "reason": None,
        }
        for number, (f, line) in enumerate(figures, start=1)
    ]
    await insert_rows(session, LINES, rows)
    await emit(
        session,
        new_event(
            "loans.subsidy_claim.filed",
            DISTRICT,
            SubsidyClaimFiled(
                claim_id=claim.id,
                period_start=start,
                period_end=end,
                loans=claim.loans,
                claimed=format_money(claim.claimed),
                forfeited=format_money(claim.forfeited),
                penalty_excluded=format_money(claim.penalty),
                filed_by=claim.filed_by,
                business_date=day,
            ),
        ),
    )
    return claim


# --- reading ------------------------------------------------------------------------------


async def get_claim(session: AsyncSession, claim_id: str, *, lock: bool = False) -> SubsidyClaim:
    claim = await session.get(SubsidyClaim, claim_id, with_for_update=lock, populate_existing=lock)
    if claim is None:
        raise Problem(404, "SUBSIDY_CLAIM_NOT_FOUND", "Subsidy claim not found", f"No subsidy claim {claim_id}.")
    return claim


async def lines_of(session: AsyncSession, claim_id: str) -> list[SubsidyClaimLine]:
    rows = await session.scalars(
        select(SubsidyClaimLine).where(SubsidyClaimLine.claim_id == claim_id).order_by(SubsidyClaimLine.number)
    )
    return list(rows)


async def payments_of(session: AsyncSession, claim_id: str) -> list[SubsidyPayment]:
    rows = await session.scalars(
        select(SubsidyPayment)
        .where(SubsidyPayment.claim_id == claim_id)
        .order_by(SubsidyPayment.created_at, SubsidyPayment.id)
    )
    return list(rows)


async def claims(session: AsyncSession, status: str | None, limit: int, offset: int) -> list[SubsidyClaim]:
    query = select(SubsidyClaim)
    if status is not None:
        query = query.where(SubsidyClaim.status == status)
    rows = await session.scalars(
        query.order_by(SubsidyClaim.period_start.desc(), SubsidyClaim.created_at.desc()).limit(limit).offset(offset)
    )
    return list(rows)


# --- review and payment -------------------------------------------------------------------


async def decide(
    session: AsyncSession,
    principal: Principal,
    claim_id: str,
    decision: Literal["approve", "approve_part", "return"],
    reasons: str | None,
    parts: Sequence[PartLine],
) -> SubsidyClaim:
    """The district finance's review, never by the claim's filer (409 FOUR_EYES_REQUIRED);
    a claim is reviewed once (409 SUBSIDY_CLAIM_DECIDED)."""
    claim = await get_claim(session, claim_id, lock=True)
    ensure_second_principal(principal, claim.filed_by, "subsidy claim")
    if claim.status != "filed":
        raise Problem(
            409,
            "SUBSIDY_CLAIM_DECIDED",
            "Subsidy claim already reviewed",
            f"Claim {claim.id} is {claim.status}; a claim is reviewed once (a returned one is filed anew).",
            claim_status=claim.status,
        )
    lines = [line for line in await lines_of(session, claim.id) if line.subsidy != ZERO]
    try:
        decided = review(decision, {line.loan_id: line.subsidy for line in lines}, parts, reasons)
    except ClaimRefused as refusal:
        raise _refused(refusal) from None
    day = await business_date(session)
    claim.status, claim.reviewed_by, claim.reviewed_on, claim.review_reasons = (
        decided.status,
        principal.name,
        day,
        reasons,
    )
    if decided.status != "returned":
        claim.approved = decided.total
        for line in lines:
            line.approved = decided.approved[line.loan_id]
            line.reason = decided.reasons.get(line.loan_id)
        disallowed = claim.claimed - decided.total
        await ledger.post(
            session,
            ledger.posting(
                "subsidy_claim",
                None,
                day,
                [
                    (ledger.SUBSIDY_CLAIMED, decided.total, ZERO),
                    (ledger.SUBSIDY_DISALLOWED, disallowed, ZERO),
                    (ledger.SUBSIDY_RECEIVABLE, ZERO, claim.claimed),
                ],
            ),
        )
    await session.flush()
    await emit(
        session,
        new_event(
            "loans.subsidy_claim.reviewed",
            DISTRICT,
            SubsidyClaimReviewed(
                claim_id=claim.id,
                period_start=claim.period_start,
                period_end=claim.period_end,
                status=decided.status,
                claimed=format_money(claim.claimed),
                approved=format_money(decided.total),
                disallowed=format_money(claim.claimed - decided.total if decided.status != "returned" else ZERO),
                filed_by=claim.filed_by,
                reviewed_by=principal.name,
                business_date=day,
            ),
        ),
    )
    return claim


async def pay(
    session: AsyncSession, principal: Principal, claim_id: str, amount: Decimal, reference: str, paid_on: date | None
) -> SubsidyPayment:
    """Record a payment of an approved claim by the district finance: partial payments add up
    to at most the approved amount (409 SUBSIDY_OVERPAID); a claim not approved takes none."""
    claim = await get_claim(session, claim_id, lock=True)
    if claim.status not in ("approved", "part_approved") or claim.approved is None:
        raise Problem(
            409,
            "SUBSIDY_CLAIM_NOT_PAYABLE",
            "Subsidy claim not payable",
            f"Claim {claim.id} is {claim.status}: only an approved claim not yet paid in full is paid.",
            claim_status=claim.status,
        )
    day = await business_date(session)
    paid_on = paid_on or day
    if paid_on > day:
        raise Problem(
            422,
            "VALIDATION_FAILED",
            "Invalid request",
            f"paid_on {paid_on} is after the business date {day}.",
            field="paid_on",
        )
    try:
        check_payment(amount, claim.approved, claim.paid)
    except ClaimRefused as refusal:
        raise _refused(refusal) from None
    payment = SubsidyPayment(
        id=str(uuid.uuid4()),
        claim_id=claim.id,
        amount=amount,
        reference=reference,
        paid_on=paid_on,
        business_date=day,
        recorded_by=principal.name,
        created_at=datetime.now(UTC),
    )
    session.add(payment)
    claim.paid += amount
    if claim.paid == claim.approved:
        claim.status = "paid"
    await ledger.post(
        session,
        ledger.posting(
            "subsidy_payment", None, day, [(ledger.SETTLEMENT, amount, ZERO), (ledger.SUBSIDY_CLAIMED, ZERO, amount)]
        ),
    )
    await session.flush()
    await emit(
        session,
        new_event(
            "loans.subsidy_claim.paid",
            DISTRICT,
            SubsidyClaimPaid(
                claim_id=claim.id,
                payment_id=payment.id,
                amount=format_money(amount),
                paid=format_money(claim.paid),
                approved=format_money(claim.approved),
                reference=reference,
                paid_on=paid_on,
                business_date=day,
            ),
        ),
    )
    return payment
