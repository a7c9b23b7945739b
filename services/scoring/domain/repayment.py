"""Which repaid loans earn the repayment bonus (DOMAIN.md §2, 004 §7(5)). Pure rule, no I/O.

004 §7(5) binds repayment behaviour to the rating: on-time repayment raises it. The product
choice (DOMAIN.md §2) is +1 per loan repaid in full on time, at most +3, counting only a loan
that **ran at least one full instalment period** and **never had a day past due**. A loan
drawn and repaid the same day, or any time before its first due date, earns nothing: 1,000
drawn and paid back within the hour must not lift a household from A to AA.

"Ran a full instalment period" = repaid on or after its first due date. The first due date is
the loans schedule's own: the disbursement date plus one calendar month, clamped to the
month's end (``add_months`` in services/loans/domain/schedule.py; 31 January -> 28/29
February). Loans states it on ``loans.loan.repaid`` as ``first_due_on``, so the anchoring is
never computed twice. "Never a day past due" is the event's ``on_time`` (the loan never went
overdue; a payment within the grace period is on time, DOMAIN.md §7).

An event without ``first_due_on`` (published before the field existed) earns nothing under
this rule: whether the loan ran a period cannot be told, and the bonus is never granted on a
guess.
"""

from __future__ import annotations

from datetime import date


def earns_repayment_bonus(*, on_time: bool, first_due_on: date | None, repaid_on: date) -> bool:
    """Does a loan repaid in full on ``repaid_on`` count for the repayment bonus (R1)?"""
    return on_time and first_due_on is not None and repaid_on >= first_due_on
