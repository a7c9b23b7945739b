"""A repayment applied to a loan: pure, no I/O (services/loans/loans.py records it).

Allocation (DOMAIN.md §7, docs/loan-lifecycle.md): a repayment settles, in the bank's configured
order (``VCREDIT_LOANS_REPAYMENT_ORDER``, default penalty, interest, principal):
    penalty    the penalty and compound interest outstanding (domain/penalty.py);
    interest   the interest accrued and unpaid (billed or not: today's rule);
    principal  the principal billed and unpaid (in arrears);
and what remains pays principal ahead of schedule: the loan ends sooner, later periods charge
interest on less (domain/close_of_business.py). With the default order and no penalty this is the
rule before penalties existed: interest first, then principal. A repayment larger than
everything outstanding is refused rather than silently kept as a credit. All of it paid, the
loan is repaid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from services.loans.domain.loan_state import ZERO, InstalmentState, LoanState, age, arrears, oldest_unpaid_due, who
from services.loans.domain.penalty import principal_in_arrears
from shared.catalogue import LoanRepaid
from shared.events import Envelope, new_event
from shared.money import format_money, to_fen
from shared.periods import add_months

Part = Literal["penalty", "interest", "principal"]
DEFAULT_ORDER: tuple[Part, ...] = ("penalty", "interest", "principal")


def check_order(order: Sequence[str]) -> tuple[Part, ...]:
    """``order`` as a repayment order: each of penalty, interest, principal exactly once."""
    if sorted(order) != sorted(DEFAULT_ORDER):
        raise ValueError(f"a repayment order names penalty, interest and principal once each, got {list(order)}")
    return tuple(order)  # type: ignore[arg-type]  # checked above


@dataclass(frozen=True)
class Split:
    penalty: Decimal
    interest: Decimal
    principal: Decimal


def allocate_in_order(
    amount: Decimal,
    *,
    penalty_due: Decimal,
    interest_due: Decimal,
    principal_in_arrears: Decimal,
    principal_outstanding: Decimal,
    order: Sequence[Part] = DEFAULT_ORDER,
) -> Split:
    """Split a repayment (module docstring): each part of ``order`` up to what is due of it,
    then principal ahead. Raises ``ValueError`` (an invalid amount, an overpayment)."""
    check_order(order)
    for name, value in (
        ("amount", amount),
        ("penalty_due", penalty_due),
        ("interest_due", interest_due),
        ("principal_in_arrears", principal_in_arrears),
        ("principal_outstanding", principal_outstanding),
    ):
        _fen_amount(name, value)
    if penalty_due < 0 or interest_due < 0 or principal_in_arrears < 0 or principal_outstanding < principal_in_arrears:
        raise ValueError(
            "penalty, interest and principal due cannot be negative nor the principal in arrears above the "
            f"principal outstanding, got {penalty_due}, {interest_due}, {principal_in_arrears}, {principal_outstanding}"
        )
    if amount <= 0:
        raise ValueError(f"a repayment must be a positive amount, got {amount}")
    maximum = penalty_due + interest_due + principal_outstanding
    if amount > maximum:
        raise ValueError(f"overpayment: at most {format_money(maximum)} can be repaid, got {format_money(amount)}")
    due = {"penalty": penalty_due, "interest": interest_due, "principal": principal_in_arrears}
    paid = dict.fromkeys(due, ZERO)
    left = amount
    for part in order:
        paid[part] = min(left, due[part])
        left -= paid[part]
    paid["principal"] += left  # ahead of schedule: at most what is outstanding (checked above)
    return Split(paid["penalty"], paid["interest"], paid["principal"])


def _fen_amount(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or (Fraction(value) * 100).denominator != 1:
        raise ValueError(f"{name} must be an amount in fen (at most two decimal places), got {value}")


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
    penalty: Decimal = ZERO  # penalty and compound interest paid


def apply_repayment(
    loan: LoanState,
    amount: Decimal,
    today: date,
    schedule: Sequence[InstalmentState] | None = None,
    *,
    order: Sequence[Part] = DEFAULT_ORDER,
    grace_days: int = 0,
) -> Applied:
    """Apply a repayment to an active loan's balances in ``order`` (module docstring; more
    than is due pays principal ahead); all of it paid, the loan is repaid; then its age and
    class as of ``today`` (after ``grace_days``). Pure: no I/O. ``schedule``: the loan's billed
    instalments in number order, needed when the payment leaves arrears
    (``payment_leaves_arrears``). Raises ``ValueError`` (overpayment, an invalid amount),
    changing nothing."""
    split = allocate_in_order(
        amount,
        penalty_due=loan.penalty_outstanding,
        interest_due=loan.interest_outstanding,
        principal_in_arrears=principal_in_arrears(loan),
        principal_outstanding=loan.principal_outstanding,
        order=order,
    )
    interest, principal = split.interest, split.principal
    loan.penalty_outstanding -= split.penalty
    loan.penalty_paid += split.penalty
    loan.interest_outstanding -= interest
    loan.interest_paid += interest
    loan.principal_outstanding -= principal
    loan.principal_paid += principal
    events: list[Envelope] = []
    if loan.principal_outstanding == ZERO and loan.interest_outstanding == ZERO and loan.penalty_outstanding == ZERO:
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
        events += age(loan, today, grace_days)
    return Applied(interest, principal, events, split.penalty)


def payment_leaves_arrears(loan: LoanState, amount: Decimal) -> bool:
    """Whether paying ``amount`` may leave some of what is billed unpaid (``apply_repayment``
    then needs the billed instalments): the penalty may take part of it first."""
    return arrears(loan) + loan.penalty_outstanding > amount
