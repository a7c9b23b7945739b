"""The rating workflow's decisions (DOMAIN.md §3, 004 annex 2). Pure functions.

A rating that would raise the credit limit must first be publicly noticed (公示) for at
least 7 days (004 annex 2 step 4); one that lowers it takes effect at once, because it
protects the bank (product choice, DOMAIN.md §3). A rating that leaves the limit where it
is changes nothing in force.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

NOTICE_DAYS = 7  # 004 annex 2 step 4: 公示 at least 7 days

Action = Literal["start_notice", "downgrade", "keep"]
Status = Literal["pending_notice", "objected", "certified", "rejected"]


def action_for(effective_limit: Decimal, new_limit: Decimal) -> Action:
    if new_limit > effective_limit:
        return "start_notice"
    if new_limit < effective_limit:
        return "downgrade"
    return "keep"


def settled_status(effective_limit: Decimal) -> Status:
    """Status when nothing is pending: certified while a limit is in force, else rejected
    (no credit grade)."""
    return "certified" if effective_limit > 0 else "rejected"


def notice_period(business_date: date, days: int = NOTICE_DAYS) -> tuple[date, date]:
    """First and last day of the notice; it may be certified on the day after the last."""
    return business_date, business_date + timedelta(days=days - 1)


def notice_over(notice_ends: date, business_date: date) -> bool:
    return business_date > notice_ends


def certificate_number(year: int, village_code: str, number: int) -> str:
    """贷款信用证 number: year of issue, village, sequence within the village."""
    # 004 annex 2 step 6: the certificate, for a household whose notice ended with no sustained objection.
    return f"XYZ-{year}-{village_code}-{number:05d}"
