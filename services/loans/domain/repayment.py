"""A repayment applied to a loan: pure, no I/O (services/loans/loans.py records it).

Allocation: a repayment settles the interest due first and only then principal; a repayment larger
than interest due plus principal outstanding is refused rather than silently kept as a credit.
Paying more than is due pays principal ahead: the loan ends sooner, later periods charge interest
on less (domain/close_of_business.py). All of it paid, the loan is repaid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from services.loans.domain.loan_state import ZERO, InstalmentState, LoanState, age, arrears, oldest_unpaid_due, who
from shared.catalogue import LoanRepaid
from shared.events import Envelope, new_event
from shared.money import format_money, to_fen
from shared.periods import add_months


def allocate(amount: Decimal, interest_due: Decimal, principal_outstanding: Decimal) -> tuple[Decimal, Decimal]:
    """Split a repayment into (to interest, to principal): interest first, then principal."""
    for name, value in (
        ("amount", amount),
        ("interest_due", interest_due),
        ("principal_outstanding", principal_outstanding),
    ):
        if not isinstance(value, Decimal):
            raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
        if not value.is_finite() or (Fraction(value) * 100).denominator != 1:
            raise ValueError(f"{name} must be an amount in fen (at most two decimal places), got {value}")
    if interest_due < 0 or principal_outstanding < 0:
        raise ValueError(
            f"interest due and principal outstanding cannot be negative, got {interest_due} and {principal_outstanding}"
        )
    if amount <= 0:
        raise ValueError(f"a repayment must be a positive amount, got {amount}")
    maximum = interest_due + principal_outstanding
    if amount > maximum:
        raise ValueError(f"overpayment: at most {format_money(maximum)} can be repaid, got {format_money(amount)}")
    to_interest = min(amount, interest_due)
    return to_fen(to_interest), to_fen(amount - to_interest)


@dataclass
class Applied:
    """What a repayment did to its loan (``apply_repayment``): the split, and the loan's
    events after it (classification, repaid), in order."""

    interest: Decimal
    principal: Decimal
    events: list[Envelope]


def apply_repayment(
    loan: LoanState, amount: Decimal, today: date, schedule: Sequence[InstalmentState] | None = None
) -> Applied:
    """Apply a repayment to an active loan's balances: accrued interest first, then principal
    (more than is due pays principal ahead); all of it paid, the loan is repaid; then its age
    and class as of ``today``. Pure: no I/O. ``schedule``: the loan's billed instalments in
    number order, needed when the payment leaves arrears (``payment_leaves_arrears``).
    Raises ``ValueError`` (overpayment, an invalid amount), changing nothing."""
    interest, principal = allocate(amount, loan.interest_outstanding, loan.principal_outstanding)
    loan.interest_outstanding -= interest
    loan.interest_paid += interest
    loan.principal_outstanding -= principal
    loan.principal_paid += principal
    events: list[Envelope] = []
    if loan.principal_outstanding == ZERO and loan.interest_outstanding == ZERO:
        loan.status = "repaid"
        loan.principal_billed, loan.interest_billed = loan.principal_paid, loan.interest_paid
        loan.overdue_since = None
        events += age(loan, today)
        events.append(
            new_event(
                "loans.loan.repaid",
                loan.village_code,
                LoanRepaid(
                    **who(loan),
                    loan_id=loan.id,
                    business_date=today,
                    on_time=not loan.ever_overdue,
                    first_due_on=add_months(loan.disbursed_on, 1),
                ),
            )
        )
    else:
        loan.overdue_since = oldest_unpaid_due(loan, schedule)
        events += age(loan, today)
    return Applied(interest, principal, events)


def payment_leaves_arrears(loan: LoanState, amount: Decimal) -> bool:
    """Whether paying ``amount`` leaves some of what is billed unpaid (``apply_repayment``
    then needs the billed instalments)."""
    return arrears(loan) > amount
