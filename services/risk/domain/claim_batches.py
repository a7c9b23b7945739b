"""Insurer claims in batches (DOMAIN §7, issue 25 item 2). Pure rules, no I/O.

The insurer's 50% of each realised loss (004 §6(1)) is claimed from it once a period (a month
by default), in one batch: every open claim on a loss written off by the period's end. The
insurer accepts or disputes each line, a dispute with its reason; the batch is settled once
every line is decided: the accepted lines at what they are then net of recoveries, the
disputed ones back to open for the next period's batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from shared.periods import add_months

# A period is named by its first month, YYYY-MM.
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# Periods tile the calendar year, so each month is in exactly one period whatever the length.
PERIOD_LENGTHS = (1, 2, 3, 4, 6, 12)


# DOMAIN §7: insurer claims are settled in monthly batches (the length is a setting)
def period(month: str, months: int = 1) -> tuple[date, date]:
    """The first and last day of the batch period that starts with ``month`` (YYYY-MM), a
    period ``months`` long. ``ValueError`` for a malformed month or one that does not start a
    period (with quarters, 2026-01, 2026-04, ... do; 2026-02 does not)."""
    if months not in PERIOD_LENGTHS:
        raise ValueError(f"a batch period is one of {PERIOD_LENGTHS} months, not {months}")
    found = _MONTH.match(month)
    if found is None or not 1 <= int(found[2]) <= 12:
        raise ValueError(f"a month is written YYYY-MM, e.g. 2026-06, not {month!r}")
    if (int(found[2]) - 1) % months:
        raise ValueError(f"{month} does not start a period of {months} months (periods start in January)")
    first = date(int(found[1]), int(found[2]), 1)
    return first, add_months(first, months) - timedelta(days=1)


def ended(period_end: date, business_date: date) -> bool:
    """Has the period ended? Only once the business date is past its last day: on that day
    loans may still write off a loan dated within it."""
    return business_date > period_end


def dispute_reason(decision: str, reason: str | None) -> str | None:
    """The reason kept with a decision, stripped; ``ValueError`` for a dispute without one
    (the bank must know what to answer)."""
    text = (reason or "").strip()
    if decision == "dispute" and not text:
        raise ValueError("a disputed line needs its reason")
    return text or None


def settled_total(accepted: Iterable[Decimal]) -> Decimal:
    """What the batch settles: the sum of its accepted lines' amounts, in fen."""
    return sum(accepted, Decimal("0.00"))
