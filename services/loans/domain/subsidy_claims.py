"""Subsidy claims (贴息资金拨付): the periods a claim may cover, a loan's line as the difference of
its month-end snapshots, and the checks of a review and a payment. Pure: no I/O (the caller,
services/loans/subsidy_claims.py, reads the snapshots and writes the claim).

- A claim covers one whole configured period (``VCREDIT_LOANS_SUBSIDY_CLAIM_PERIOD``: a
  calendar month, quarter or year; a quarter by default, DOMAIN.md §7) and only days the close
  of business has closed: its last day is before the business date.
- Close of business keeps, at each month end, each loan's cumulative subsidy accrued and
  forfeited, penalty and compound interest, days accrued and days forfeited
  (``loan_subsidy_snapshots``). A loan's line for the days ``start``..``end`` is its snapshot at
  ``end`` less its snapshot at ``start - 1``; a loan without the earlier one (drawn in the
  period, or drawn before the snapshots existed) starts from 0 at its drawdown.
- The subsidy claimed is the subsidy accrued; the subsidy forfeited on days its borrower was on
  the black list (seed 001) and the penalty and compound interest (never subsidised, DOMAIN.md
  §7) are listed as excluded, never claimed.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

Period = Literal["month", "quarter", "year"]
MONTHS: dict[Period, int] = {"month": 1, "quarter": 3, "year": 12}
ZERO = Decimal("0.00")
DAY = timedelta(days=1)


class ClaimRefused(ValueError):
    """A claim, review or payment the rules refuse: ``code`` and ``status`` for the answer."""

    def __init__(self, status: int, code: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def is_month_end(day: date) -> bool:
    return day == month_end(day)


def period_of(day: date, period: Period) -> tuple[date, date]:
    """The configured period holding ``day``: its first and last days."""
    months = MONTHS[period]
    first_month = (day.month - 1) // months * months + 1
    start = date(day.year, first_month, 1)
    return start, month_end(date(day.year, first_month + months - 1, 1))


def check_period(start: date, end: date, period: Period, business_date: date) -> None:
    """A claim's days: exactly one configured period, every day of it closed (422 otherwise)."""
    if (start, end) != period_of(start, period):
        first, last = period_of(start, period)
        raise ClaimRefused(
            422,
            "SUBSIDY_PERIOD_INVALID",
            f"A claim covers one whole {period} (VCREDIT_LOANS_SUBSIDY_CLAIM_PERIOD): {start}..{end} is not one; "
            f"the {period} holding {start} is {first}..{last}.",
            period=period,
            expected_start=str(first),
            expected_end=str(last),
        )
    if end >= business_date:
        raise ClaimRefused(
            422,
            "SUBSIDY_PERIOD_NOT_CLOSED",
            f"The business date is {business_date}: the days to {end} are not all closed yet; "
            f"a claim for {start}..{end} can be filed from {end + DAY}.",
            business_date=str(business_date),
        )


@dataclass(frozen=True)
class Cumulative:
    """A loan's cumulative amounts at the end of a day (a month-end snapshot)."""

    subsidy: Decimal = ZERO
    forfeited: Decimal = ZERO
    penalty: Decimal = ZERO  # penalty and compound interest
    days: int = 0  # days contract interest accrued
    forfeited_days: int = 0  # of those, days on the black list


NOTHING = Cumulative()


@dataclass(frozen=True)
class Line:
    """One loan's part of a period: the subsidy claimed and what is excluded."""

    subsidy: Decimal
    forfeited: Decimal
    penalty: Decimal
    days: int
    forfeited_days: int

    @property
    def claimed(self) -> bool:
        return self.subsidy != ZERO

    @property
    def excluded(self) -> bool:
        return self.forfeited != ZERO or self.penalty != ZERO

    @property
    def empty(self) -> bool:
        return not (self.claimed or self.excluded)


# 004 §4(1)5: the subsidy of exactly the period's days — the snapshot at its end less the one before it
def line_of(at_end: Cumulative, before: Cumulative | None) -> Line:
    """The period's amounts of one loan; ``before`` None: no snapshot before the period (drawn
    in it, or before snapshots were kept), counted from 0 at its drawdown."""
    b = before or NOTHING
    line = Line(
        subsidy=at_end.subsidy - b.subsidy,
        forfeited=at_end.forfeited - b.forfeited,
        penalty=at_end.penalty - b.penalty,
        days=at_end.days - b.days,
        forfeited_days=at_end.forfeited_days - b.forfeited_days,
    )
    if min(line.subsidy, line.forfeited, line.penalty) < 0 or min(line.days, line.forfeited_days) < 0:
        # The amounts are cumulative and never fall: a negative difference is a bug, not a claim.
        raise ValueError(f"cumulative amounts fell between snapshots: {b} then {at_end}")
    return line


@dataclass(frozen=True)
class Decided:
    """A review's outcome per line (loan id -> approved, reason) and its status."""

    status: Literal["approved", "part_approved", "returned"]
    approved: dict[str, Decimal]
    reasons: dict[str, str]

    @property
    def total(self) -> Decimal:
        return sum(self.approved.values(), ZERO)


@dataclass(frozen=True)
class PartLine:
    loan_id: str
    approved: Decimal
    reason: str | None


def review(
    decision: Literal["approve", "approve_part", "return"],
    claimed: Mapping[str, Decimal],
    parts: Sequence[PartLine],
    reasons: str | None,
) -> Decided:
    """The government's decision on the lines ``claimed`` (loan id -> subsidy claimed):
    ``approve`` all, ``approve_part`` (the lines named get their ``approved`` amount, with a
    reason, the others all they claimed), ``return`` (nothing approved, with reasons; the days
    may be claimed again)."""
    if decision == "return":
        if not reasons:
            raise ClaimRefused(422, "SUBSIDY_REVIEW_INVALID", "A returned claim needs its reasons.", field="reasons")
        return Decided("returned", {}, {})
    if decision == "approve":
        if parts:
            raise ClaimRefused(
                422, "SUBSIDY_REVIEW_INVALID", "Lines are given only to approve part (approve_part).", field="lines"
            )
        return Decided("approved", dict(claimed), {})
    approved = dict(claimed)
    why: dict[str, str] = {}
    for part in parts:
        if part.loan_id not in claimed:
            raise ClaimRefused(
                422, "SUBSIDY_REVIEW_INVALID", f"Loan {part.loan_id} is not a line of this claim.", field="lines"
            )
        if part.loan_id in why:
            raise ClaimRefused(422, "SUBSIDY_REVIEW_INVALID", f"Loan {part.loan_id} is given twice.", field="lines")
        if not ZERO <= part.approved < claimed[part.loan_id]:
            raise ClaimRefused(
                422,
                "SUBSIDY_REVIEW_INVALID",
                f"Loan {part.loan_id}: the approved amount is at least 0.00 and less than the "
                f"{claimed[part.loan_id]} claimed (approve it in full by leaving it out).",
                field="lines",
            )
        if not part.reason:
            raise ClaimRefused(
                422, "SUBSIDY_REVIEW_INVALID", f"Loan {part.loan_id}: a reduced line needs its reason.", field="lines"
            )
        approved[part.loan_id] = part.approved
        why[part.loan_id] = part.reason
    if not why:
        raise ClaimRefused(
            422, "SUBSIDY_REVIEW_INVALID", "Approving part needs at least one reduced line.", field="lines"
        )
    return Decided("part_approved", approved, why)


def check_payment(amount: Decimal, approved: Decimal, paid: Decimal) -> None:
    """A payment never takes what was paid past what was approved (409)."""
    if amount > approved - paid:
        raise ClaimRefused(
            409,
            "SUBSIDY_OVERPAID",
            f"The claim's approved {approved}, {paid} of it paid: at most {approved - paid} more can be paid.",
            approved=f"{approved:.2f}",
            paid=f"{paid:.2f}",
        )


def masked_subject(subject_id: str) -> str:
    """The borrower as a claim shows it: loans holds no names or ID numbers (registry does),
    so its subject id, masked: enough for the bank to find the loan, not to identify anyone."""
    return f"{subject_id[:4]}****{subject_id[-4:]}" if len(subject_id) > 8 else "****"


# 004 §3(2): poor households 全额贴息, businesses 按照年贴息率3%贴息
def policy_text(annual_rate: Decimal, subsidy_rate: Decimal, shares: str) -> str:
    """贴息比例/政策 of a line: full subsidy or the business's annual subsidy rate, and the
    dated shares of the period when any is not 1 (``describe``'s ``first..last=share``)."""
    base = "全额贴息" if subsidy_rate >= annual_rate else f"年贴息率{(subsidy_rate * 100).normalize():f}%"
    partial = [part for part in shares.split(";") if part and not part.endswith("=1")]
    return f"{base}; 份额 {shares}" if partial else base
