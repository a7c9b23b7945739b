"""Red and black list rules for lending (seeds 001, 002: joint rewards and punishment): pure
functions, rates as ``Decimal`` fractions (0.0025 is 0.25 percentage points), money to the fen.

Red list (守信红名单)
    A new loan of a red-listed subject is priced ``discount`` below its rate, never below zero.
    The subsidy rate is capped at the discounted rate (the subsidy never exceeds the interest),
    so a fully subsidised poor household's discount lowers the district's subsidy, not its own
    net due, which is already nothing. The discount applied is recorded on the loan.

Black list (失信黑名单)
    No new credit, and no interest subsidy for any day the subject is blacklisted: that day's
    share of the period's subsidy is forfeited (the borrower owes the full interest for it) and
    is never caught up after delisting.
"""

from __future__ import annotations

from decimal import Decimal

from shared.money import to_fen

ZERO_RATE = Decimal(0)


def red_list_rates(rate: Decimal, subsidy_rate: Decimal, discount: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(annual rate, subsidy rate, discount applied) of a red-listed subject's new loan."""
    if discount < 0:
        raise ValueError("the red list discount cannot be negative")
    discounted = max(ZERO_RATE, rate - discount)
    return discounted, min(subsidy_rate, discounted), rate - discounted


def day_share(total: Decimal, elapsed: int, days: int) -> Decimal:
    """The part of a period's ``total`` that accrues on its ``elapsed``-th day (1-based).
    Rounded cumulatively, so the shares of all ``days`` days add up to ``total`` exactly; it
    depends on nothing accrued before, so a forfeited day is not caught up the next day."""
    if not 1 <= elapsed <= days:
        raise ValueError(f"day {elapsed} is not in a period of {days} days")
    return to_fen(total * elapsed / days) - to_fen(total * (elapsed - 1) / days)
