"""The close of business for one loan and one day: accrual, billing, ageing. Pure: no I/O (the
caller, services/loans/cob.py, reads and writes the loans and posts ``Accruals`` to the ledger).

How interest works (documented for the bank, DOMAIN.md §4):
- A period runs from the previous due date (the disbursement date for period 1) to its own
  due date. Its interest is the principal outstanding at the period's start, *after* any
  payment made on the previous due date (for period 1: on the disbursement date), times the
  annual rate by the loan's day count (30/360: a month is 1/12 of a year), rounded to the fen
  once (DOMAIN §4, "Interest and billing"). The close of business fixes it, with the
  period's subsidy, when it closes the period's first day (``period_start``): that day's
  payments are in by then. Both come from ``schedule.period_charges``, the rule the schedule
  shown at drawdown is built by, so a borrower who pays every instalment in full on its due
  date is billed exactly that schedule, to the fen, and accrues exactly its subsidy.
- The interest accrues day by day over the period's actual days, pro rata and rounded
  cumulatively (day k recognises round(interest × k / days) less what is already accrued),
  so the period's last day completes exactly the period's interest. The close of the day
  before the due date bills the period: the instalment's scheduled principal (the last one:
  all the principal not yet billed) plus the period's accrued interest net of subsidy; it is
  due on the due date.
- The subsidy (贴息) is the district finance's share of that interest: a separate
  receivable, never netted; the borrower owes interest minus subsidy. The period's subsidy
  fixed on its first day (``period_subsidy``) is at a share of 1; each day earns the share of
  the subsidy policy in force that calendar day, rounded cumulatively over the period
  (domain/policies.py: through day k, round(period_subsidy × (s_1 + … + s_k) / days)), so a
  policy change mid-period applies from its effective day; the shares that applied are
  recorded on the instalment when it bills (``subsidy_policy``). A day the borrower is
  on the black list earns no subsidy (seed 001): its share is forfeited (``subsidy_forfeited``)
  and the borrower owes that day's interest in full; it is not caught up after delisting.
- An extension (展期, domain/reschedule.py) re-plans the principal not yet billed over the
  remaining and added periods from the period in progress; that period keeps its dates, its
  interest (fixed on its first day) and what of it has accrued, so nothing here changes.
  With ``VCREDIT_LOANS_EXTENSION_SUBSIDY=none``, periods starting on or after the original
  maturity (``subsidy_ends_on``) earn no subsidy.
- A red-listed borrower's new loans are priced ``red_list_rate_discount`` lower (floor 0),
  recorded on the loan as ``red_list_discount``; the rate is fixed at drawdown.
- Repayments pay penalty, then accrued interest, then principal (the bank may configure
  another order: domain/repayment.py). Paying more than is due pays principal ahead: the
  loan ends sooner, later periods charge interest on less.
- An instalment unpaid at the end of its due date plus the grace days (default 0) is 1 day
  past due on the next business day; classification follows the DOMAIN.md §4 bands.
- Penalty interest (罚息) and compound interest (复利), domain/penalty.py: the close of each
  day after which the loan is past due accrues penalty on the principal in arrears and
  compound interest on the interest in arrears, at the contract rate plus the markup, a
  day at a time (rounded per day), never subsidised. The principal in arrears at a period's
  start is left out of that period's contract interest: it bears the penalty instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import cast

from services.loans.domain.loan_state import (
    DAY,
    ZERO,
    InstalmentState,
    LoanState,
    age,
    arrears,
    oldest_unpaid_due,
    who,
)
from services.loans.domain.penalty import (
    DEFAULT_POLICY,
    OverduePolicy,
    accrue,
    contract_base,
    interest_in_arrears,
    principal_in_arrears,
)
from services.loans.domain.policies import SubsidyShare, describe, subsidy_of_day
from services.loans.domain.schedule import DayCount, period_charges
from shared.catalogue import BusinessDateAdvanced, InstalmentOverdue
from shared.events import Envelope, new_event
from shared.money import format_money, to_fen


class Accruals:
    """A chunk's accruals, posted (``ledger.accrual_posting``) as one balanced summary entry:
    the general ledger carries the totals, each loan row (the subledger) its own amounts; tests
    reconcile the two."""

    def __init__(self) -> None:
        self.gross = ZERO
        self.subsidy = ZERO
        self.net_up = ZERO  # borrower interest accrued
        self.net_down = ZERO  # rounding give-backs where a day's net is negative
        self.penalty = ZERO  # penalty and compound interest (domain/penalty.py), never subsidised

    def add(self, gross: Decimal, subsidy: Decimal) -> None:
        self.gross += gross
        self.subsidy += subsidy
        net = gross - subsidy
        if net >= 0:
            self.net_up += net
        else:
            self.net_down -= net


def close_loan_day(
    loan: LoanState,
    day: date,
    accruals: Accruals,
    *,
    subsidised: bool = True,
    schedule: Sequence[InstalmentState] | None = None,
    subsidy_policy: Sequence[SubsidyShare] = (),
    policy: OverduePolicy = DEFAULT_POLICY,
) -> list[Envelope]:
    """Close ``day`` for one loan: fix the period's interest and subsidy on its first day,
    accrue, bill a period that ends, age and classify as of the next business day.
    Idempotent per loan and day (``closed_through``). A day its subject is blacklisted
    (not ``subsidised``) earns no subsidy: seed 001, no fiscal subsidy for subjects with
    bad records; the borrower owes that day's interest in full.
    ``schedule``: all the loan's instalments in number order, required when
    ``needs_schedule`` (their ``billed`` is set when a period bills). ``subsidy_policy``: the
    dated shares of the subsidy (domain/policies.py; none: all of it every day). ``policy``:
    grace days, penalty markup and compounding (domain/penalty.py): a loan past due after the
    close (the grace over) accrues that day's penalty and compound interest."""
    if loan.closed_through >= day or loan.status != "active":
        return []
    events: list[Envelope] = []
    next_day = day + DAY
    # The penalty's bases, before the day's billing (domain/penalty.accrue).
    principal_base, interest_base = principal_in_arrears(loan), interest_in_arrears(loan)
    if loan.period_number <= loan.term_months:
        if day == loan.period_start:
            # DOMAIN §4: the period's charges on the principal outstanding at its start, after
            # the payments of this day (the previous due date, or the disbursement date),
            # less the principal in arrears, which bears penalty instead (domain/penalty.py).
            loan.period_interest, loan.period_subsidy = period_charges(
                contract_base(loan),
                loan.annual_rate,
                # An extension without subsidy (domain/reschedule.py): none from that day.
                ZERO if subsidy_ended(loan) else loan.subsidy_rate,
                loan.period_start,
                loan.period_end,
                cast(DayCount, loan.day_count),
            )
        days = (loan.period_end - loan.period_start).days
        elapsed = min((next_day - loan.period_start).days, days)
        gross = to_fen(loan.period_interest * elapsed / days) - loan.period_accrued
        subsidy = subsidy_of_day(loan.period_subsidy, subsidy_policy, loan.period_start, day, days)
        loan.accrual_days += 1
        if not subsidised:
            loan.subsidy_forfeited += subsidy
            loan.forfeited_days += 1
            subsidy = ZERO
        if gross or subsidy:
            accruals.add(gross, subsidy)
            loan.period_accrued += gross
            loan.period_subsidy_accrued += subsidy
            loan.interest_outstanding += gross - subsidy
            loan.subsidy_accrued += subsidy
        if billing_today(loan, day):
            if schedule is None:
                raise ValueError(f"loan {loan.id} bills on {day}: its instalments are needed")
            _bill_period(loan, schedule, subsidy_policy)
    if loan.principal_billed + loan.interest_billed > loan.principal_paid + loan.interest_paid or loan.days_past_due:
        # No payment happens in close of business: an oldest unpaid due date already known
        # stays, so the instalments are not read for every overdue loan every day.
        if loan.overdue_since is None:
            loan.overdue_since = oldest_unpaid_due(loan, schedule)
        events += age(loan, next_day, policy.grace_days)
        # The day's penalty, on the balances at its end, once the grace is over.
        penalty, compound = accrue(loan, policy, principal_base, interest_base)
        accruals.penalty += penalty + compound
    if loan.days_past_due == 1 and loan.overdue_since is not None:
        # The oldest unpaid instalment, not the last billed: with grace days longer than a
        # period, later periods have billed by the first day past due.
        events.append(
            new_event(
                "loans.instalment.overdue",
                loan.village_code,
                InstalmentOverdue(
                    **who(loan),
                    loan_id=loan.id,
                    instalment=instalment_due_on(loan, loan.overdue_since),
                    due_on=loan.overdue_since,
                    amount_overdue=format_money(arrears(loan)),
                ),
            )
        )
    loan.closed_through = day
    return events


def instalment_due_on(loan: LoanState, due: date) -> int:
    """The number of the instalment due on ``due``: due date k is k calendar months after
    disbursement (domain/schedule.py), clamped to a short month's end, so k is the months between."""
    return (due.year - loan.disbursed_on.year) * 12 + due.month - loan.disbursed_on.month


def subsidy_ended(loan: LoanState) -> bool:
    """Whether the current period starts on or after the loan's last subsidised day
    (``subsidy_ends_on``: an extension the district does not subsidise, by setting)."""
    return loan.subsidy_ends_on is not None and loan.period_start >= loan.subsidy_ends_on


def billing_today(loan: LoanState, day: date) -> bool:
    """Whether closing ``day`` ends one of the loan's periods."""
    return loan.status == "active" and loan.period_number <= loan.term_months and loan.period_end == day + DAY


def needs_schedule(loan: LoanState, day: date) -> bool:
    """Whether closing ``day`` reads the loan's instalments: a period bills, or the loan is
    in arrears with no oldest unpaid due date known yet (close_loan_day)."""
    return billing_today(loan, day) or (loan.overdue_since is None and arrears(loan) > ZERO)


def _instalment(schedule: Sequence[InstalmentState], number: int) -> InstalmentState | None:
    return next((i for i in schedule if i.number == number), None)


def _bill_period(loan: LoanState, schedule: Sequence[InstalmentState], subsidy_policy: Sequence[SubsidyShare]) -> None:
    inst = _instalment(schedule, loan.period_number)
    assert inst is not None
    inst.subsidy_policy = describe(subsidy_policy, loan.period_start, loan.period_end)
    before = loan.principal_billed + loan.interest_billed
    last = loan.period_number == loan.term_months
    loan.principal_billed = loan.principal if last else min(loan.principal, loan.principal_billed + inst.principal)
    loan.interest_billed += loan.period_accrued - loan.period_subsidy_accrued
    inst.billed = loan.principal_billed + loan.interest_billed - before
    loan.period_number += 1
    following = _instalment(schedule, loan.period_number)
    loan.period_start = inst.due_on
    loan.period_accrued = loan.period_subsidy_accrued = ZERO
    # Not fixed yet: the due date's payments come first (close_loan_day fixes them when it
    # closes the new period's first day, the due date).
    loan.period_interest = loan.period_subsidy = ZERO
    # Matured (no following instalment): nothing more accrues.
    loan.period_end = inst.due_on if following is None else following.due_on


def day_closed_event(day: date) -> Envelope:
    return new_event(
        "loans.business_date.advanced", "district", BusinessDateAdvanced(closed_date=day, business_date=day + DAY)
    )
