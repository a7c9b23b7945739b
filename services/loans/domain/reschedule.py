"""Extension (展期) and re-planning a loan's remaining instalments: pure, no I/O
(services/loans/extensions.py and loans.py apply them). docs/loan-lifecycle.md explains them
to the bank.

Limits (DOMAIN.md §7)
    The cumulative extension of a loan is at most its original term for a loan of up to a
    year, half of it (rounded down) for up to five years, 3 years beyond; the programme's
    total term stays within 36 months; and a loan is extended at most ``max_extensions``
    times (a setting, 1 by default).

The re-plan (both an extension and a prepayment that lowers the instalment)
    The loan is in period ``p`` (``period_number``): periods before it are billed and stay as
    they are. Instalments ``p``..``last`` are planned again with the loan's method and rate
    (schedule.plan_periods, due dates still anchored on the disbursement date) on the
    principal not yet billed. The period in progress keeps its dates, its interest and
    subsidy (fixed by the close of its first day on the principal then outstanding,
    close_of_business.py) and what of them has accrued: only its principal part and the
    periods after it change, so no day's interest is lost or charged twice. Once its interest
    is fixed the re-planned instalment ``p`` shows that interest, the one it will bill.
    What is billed and not paid stays due (and keeps ageing); principal paid ahead covers the
    next bills, as before (a shorter term), unless a prepayment asks for a lower instalment:
    then the principal paid ahead is billed with instalment ``p`` (it is paid already) and the
    rest is re-amortised over the same periods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from services.loans.domain.loan_state import ZERO
from services.loans.domain.schedule import MAX_TERM_MONTHS, DayCount, Instalment, Method, plan_periods

if TYPE_CHECKING:
    from services.loans.models import Loan

SHORT_TERM_MONTHS = 12  # 贷款通则 art. 12: 短期贷款 up to a year, extended at most its term
MEDIUM_TERM_MONTHS = 60  # 贷款通则 art. 12: 中期贷款 up to five years, at most half its term
LONG_TERM_EXTENSION_MONTHS = 36  # 贷款通则 art. 12: 长期贷款 at most 3 years


class ExtensionRefused(Exception):
    """A refused extension: its reason and the figures that decided it."""

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ExtensionNotAllowed(ExtensionRefused):
    """The loan cannot be extended at all (not active, or all of it fallen due)."""


class ExtensionLimit(ExtensionRefused):
    """The months asked exceed a limit: ``rule`` says which."""


def cumulative_cap(original_term: int) -> int:
    """Most months a loan of ``original_term`` months may be extended in all."""
    # 贷款通则 art. 12: 短期 <= the original term, 中期 <= half of it, 长期 <= 3 years.
    if original_term <= SHORT_TERM_MONTHS:
        return original_term
    if original_term <= MEDIUM_TERM_MONTHS:
        return original_term // 2
    return LONG_TERM_EXTENSION_MONTHS


@dataclass(frozen=True)
class Extendable:
    """What the limits read of a loan."""

    status: str
    term_months: int  # now, extensions included
    extended_months: int  # so far
    extensions: int  # approved so far
    unbilled_periods: int  # periods not billed yet, the one in progress included


def check_extension(loan: Extendable, months: int, max_extensions: int) -> None:
    """Raise ``ExtensionRefused`` unless ``loan`` may be extended by ``months`` (module docstring)."""
    if loan.status != "active":
        raise ExtensionNotAllowed(f"The loan is {loan.status}; only an active loan is extended.")
    if loan.unbilled_periods < 1:
        # 贷款通则 art. 12: the borrower applies before the loan falls due; all of it has.
        raise ExtensionNotAllowed("Every instalment has fallen due: an extension is applied for before maturity.")
    original = loan.term_months - loan.extended_months
    if loan.extensions >= max_extensions:
        raise ExtensionLimit(
            f"The loan was extended {loan.extensions} time(s); at most {max_extensions} "
            "(VCREDIT_LOANS_EXTENSION_MAX_COUNT).",
            rule="count",
            max_extensions=max_extensions,
        )
    cap = cumulative_cap(original)
    if loan.extended_months + months > cap:
        raise ExtensionLimit(
            f"A {original}-month loan may be extended by {cap} months in all (贷款通则 art. 12); "
            f"{loan.extended_months} used, {months} asked.",
            rule="cumulative",
            max_months=cap - loan.extended_months,
        )
    if loan.term_months + months > MAX_TERM_MONTHS:
        raise ExtensionLimit(
            f"Programme loans stay within {MAX_TERM_MONTHS} months in all (DOMAIN §4: term <= 3 years); "
            f"{loan.term_months} + {months} is more.",
            rule="programme_term",
            max_months=MAX_TERM_MONTHS - loan.term_months,
        )


def extendable(loan: Loan, extensions: int) -> Extendable:
    return Extendable(
        status=loan.status,
        term_months=loan.term_months,
        extended_months=loan.extended_months,
        extensions=extensions,
        unbilled_periods=loan.term_months - loan.period_number + 1,
    )


def extend(loan: Loan, months: int, *, floor: str, subsidised: bool) -> list[Instalment]:
    """Extend an active loan by ``months`` (the limits checked: ``check_extension``): the new
    plan of its unbilled periods (for the caller to write), its term, maturity and floor.
    ``subsidised``: whether the added periods earn subsidy; if not, none from the original
    maturity on (an earlier end stays)."""
    if loan.subsidy_ends_on is None and not subsidised:
        loan.subsidy_ends_on = loan.maturity_on
    plan = replan(loan, loan.term_months + months, subsidy_until=loan.subsidy_ends_on)
    loan.term_months += months
    loan.extended_months += months
    loan.maturity_on = plan[-1].due_on
    loan.classification_floor = floor
    return plan


def replan(loan: Loan, last: int, *, subsidy_until: date | None, ahead: Decimal = ZERO) -> list[Instalment]:
    """Instalments ``period_number``..``last`` of an active loan with a period in progress
    (module docstring). ``ahead``: principal paid ahead to bill with the first of them (a
    lower instalment); 0 leaves it covering the next bills (a shorter term)."""
    first = loan.period_number
    unbilled = loan.principal - loan.principal_billed
    if not ZERO <= ahead <= unbilled:
        raise ValueError(f"principal paid ahead {ahead} is not within the principal not billed {unbilled}")
    plan = plan_periods(
        unbilled - ahead,
        loan.annual_rate,
        first,
        last,
        cast(Method, loan.method),
        loan.disbursed_on,
        cast(DayCount, loan.day_count),
        loan.subsidy_rate,
        subsidy_until,
    )
    current = plan[0]
    fixed = loan.closed_through >= loan.period_start  # close_loan_day fixed them on the period's first day
    plan[0] = replace(
        current,
        opening_principal=current.opening_principal + ahead,
        principal=current.principal + ahead,
        interest=loan.period_interest if fixed else current.interest,
        subsidy=loan.period_subsidy if fixed else current.subsidy,
    )
    return plan
