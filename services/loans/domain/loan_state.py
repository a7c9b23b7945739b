"""A loan's state as the rules read it, its arrears and its ageing: pure, no I/O.

The rules take a loan either as its ORM row (a request: drawdown, repayment) or as a plain
``LoanDay`` (close of business reads a day's loans without the ORM, services/loans/cob.py); the
ORM types are named for the type checker only. Ageing (DOMAIN.md §4, §7): an instalment unpaid at
the end of its due date plus the grace days (default 0) is 1 day past due on the next business
day; the class follows the bands of ``classification``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from services.loans.domain.classification import Classification, classify, is_non_performing, no_better_than
from services.loans.domain.schedule import Instalment as ScheduledInstalment
from shared.catalogue import LoanClassified
from shared.events import Envelope, new_event
from shared.money import format_money

if TYPE_CHECKING:
    from services.loans.models import CreditLine, Instalment, Loan, RatingView

ZERO = Decimal("0.00")
DAY = timedelta(days=1)


@dataclass(slots=True)
class LoanDay:
    """The loan columns the rules read, as a plain object: close of business reads a day's
    loans without the ORM (services/loans/cob.py). Field order is the order cob.py selects the
    columns."""

    id: str
    subject_id: str
    subject_kind: str
    village_code: str
    township_code: str
    principal: Decimal
    annual_rate: Decimal
    subsidy_rate: Decimal
    day_count: str
    term_months: int
    disbursed_on: date
    status: str
    principal_outstanding: Decimal
    interest_outstanding: Decimal
    subsidy_accrued: Decimal
    subsidy_forfeited: Decimal
    principal_billed: Decimal
    interest_billed: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    period_number: int
    period_start: date
    period_end: date
    period_interest: Decimal
    period_subsidy: Decimal
    period_accrued: Decimal
    period_subsidy_accrued: Decimal
    overdue_since: date | None
    days_past_due: int
    ever_overdue: bool
    classification: str
    closed_through: date
    # Issue 24, extension (domain/reschedule.py): the class it may not be better than, and
    # the first day without subsidy (None: subsidised to the end).
    classification_floor: str = "normal"
    subsidy_ends_on: date | None = None
    # domain/penalty.py; last, with defaults: nothing was ever charged before issue 24.
    penalty_outstanding: Decimal = Decimal("0.00")
    penalty_accrued: Decimal = Decimal("0.00")
    compound_accrued: Decimal = Decimal("0.00")
    penalty_paid: Decimal = Decimal("0.00")
    # Issue 25 (domain/subsidy_claims.py): days contract interest accrued, and of those days on
    # the black list, cumulative.
    accrual_days: int = 0
    forfeited_days: int = 0


@dataclass(slots=True)
class InstalmentDay:
    """The instalment columns the rules read, as a plain object (services/loans/cob.py)."""

    loan_id: str
    number: int
    due_on: date
    principal: Decimal
    billed: Decimal | None
    subsidy_policy: str | None = None  # set when it bills (domain/policies.describe)


# The rules take either: an ORM row (requests) or a plain one (close of business).
LoanState: TypeAlias = "Loan | LoanDay"
InstalmentState: TypeAlias = "Instalment | InstalmentDay"


def who(x: CreditLine | LoanState | RatingView) -> dict[str, Any]:
    """The subject and place fields every loans event carries."""
    return {
        "subject_kind": x.subject_kind,
        "subject_id": x.subject_id,
        "village_code": x.village_code,
        "township_code": x.township_code,
    }


def opening_state(plan: Sequence[ScheduledInstalment], amount: Decimal, today: date) -> dict[str, Any]:
    """A new loan's balances and period fields, the same for the loan row written at drawdown
    and a plain ``LoanDay``. Period 1's interest and subsidy are not fixed yet (0.00): the
    close of the disbursement day fixes them (close_loan_day)."""
    return {
        "status": "active",
        "principal_outstanding": amount,
        "interest_outstanding": ZERO,
        "subsidy_accrued": ZERO,
        "subsidy_forfeited": ZERO,
        "principal_billed": ZERO,
        "interest_billed": ZERO,
        "principal_paid": ZERO,
        "interest_paid": ZERO,
        # domain/penalty.py: penalty (罚息) and compound (复利) interest, never subsidised
        "penalty_outstanding": ZERO,
        "penalty_accrued": ZERO,
        "compound_accrued": ZERO,
        "penalty_paid": ZERO,
        "period_number": 1,
        "period_start": today,
        "period_end": plan[0].due_on,
        "period_interest": ZERO,
        "period_subsidy": ZERO,
        "period_accrued": ZERO,
        "period_subsidy_accrued": ZERO,
        "overdue_since": None,
        "days_past_due": 0,
        "ever_overdue": False,
        "classification": "normal",
        "closed_through": today - DAY,
        "classification_floor": "normal",
        "subsidy_ends_on": None,
        "accrual_days": 0,
        "forfeited_days": 0,
    }


def instalment_rows(loan_id: str, plan: Sequence[ScheduledInstalment]) -> list[dict[str, Any]]:
    """A new loan's instalment rows, none billed yet, as a drawdown writes them."""
    return [
        {
            "loan_id": loan_id,
            "number": x.number,
            "start": x.start,
            "due_on": x.due_on,
            "principal": x.principal,
            "interest": x.interest,
            "subsidy": x.subsidy,
            "billed": None,
        }
        for x in plan
    ]


# --- arrears, ageing, classification ------------------------------------------------------


def arrears(loan: LoanState) -> Decimal:
    """Everything billed and not yet paid (principal paid ahead covers later bills)."""
    return max(ZERO, loan.principal_billed + loan.interest_billed - loan.principal_paid - loan.interest_paid)


def oldest_unpaid_due(loan: LoanState, schedule: Sequence[InstalmentState] | None) -> date | None:
    """The due date of the oldest instalment not paid in full (None: nothing in arrears).
    ``schedule``: the loan's instalments in number order (at least the billed ones); needed
    only when the loan is in arrears."""
    if arrears(loan) == ZERO:
        return None
    if schedule is None:
        raise ValueError(f"loan {loan.id} is in arrears: its oldest unpaid due date needs its instalments")
    paid = loan.principal_paid + loan.interest_paid
    billed = ZERO
    for inst in schedule:
        if inst.billed is None:
            continue
        billed += inst.billed
        if billed > paid:
            return inst.due_on
    return loan.period_start


def days_past_due(overdue_since: date | None, today: date, grace_days: int = 0) -> int:
    """Days past due as of ``today``, counted after the grace (DOMAIN.md §7, 宽限期): an
    instalment unpaid at the end of its due date plus ``grace_days`` is 1 day past due the
    next day; within the grace it is not past due (0) and a payment then is on time."""
    if overdue_since is None:
        return 0
    return max(0, (today - overdue_since).days - grace_days)


def age(loan: LoanState, today: date, grace_days: int = 0) -> list[Envelope]:
    """Days past due (after ``grace_days``) and class as of ``today`` from the oldest unpaid
    due date already set (DOMAIN.md §4 bands), no better than the loan's floor (an extended
    loan's); the event when the class changed."""
    dpd = days_past_due(loan.overdue_since, today, grace_days)
    previous = loan.classification
    loan.days_past_due = dpd
    loan.classification = no_better_than(classify(dpd), cast(Classification, loan.classification_floor))
    loan.ever_overdue = loan.ever_overdue or dpd > 0
    events: list[Envelope] = []
    if loan.classification != previous:
        events.append(
            new_event(
                "loans.loan.classified",
                loan.village_code,
                LoanClassified(
                    **who(loan),
                    loan_id=loan.id,
                    business_date=today,
                    days_past_due=dpd,
                    classification=loan.classification,
                    previous_classification=previous,
                    non_performing=is_non_performing(loan.classification),
                    principal_outstanding=format_money(loan.principal_outstanding),
                ),
            )
        )
    return events
