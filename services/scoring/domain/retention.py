"""How long negative credit information counts. Pure functions.

征信业管理条例 §16: 不良信息保存期限自不良行为或者事件终止之日起为5年; 超过5年的, 应当予以删除.
Scoring therefore ignores a negative fact once five years have run from the day it ended,
judged on the business date the rating is computed for: the registry's facts whose supplier
stated an end date, and the overdue and non-performing spells of loans (D3, D3b).

The period is counted as the Civil Code counts periods in years (art. 201: the day it ended
is not counted; art. 202: the period's last day is the corresponding day of the final
month, or that month's last day when it has none). So a fact that ended on 2021-03-01 still
counts on 2026-03-01 and no longer on 2026-03-02; one that ended on 2020-02-29 counts until
2025-02-28. The dates are ``shared/periods.py``'s, the same risk deletes its records by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from shared.periods import RETENTION_YEARS, expired, expires_on, retention_ends
from shared.profile import is_negative

# The period and its counting are one rule shared with risk's black list (shared/periods.py).
__all__ = [
    "RETENTION_YEARS",
    "expired",
    "expires_on",
    "in_force",
    "loan_history_in_force",
    "next_expiry",
    "retention_ends",
]


def in_force(
    profile: Mapping[str, Any], fact_ends: Mapping[str, date], business_date: date
) -> tuple[dict[str, Any], list[str]]:
    """The profile without the negative facts whose retention is over, and those fields.
    An end date only ever removes a negative statement: a positive one is never dropped."""
    dropped = sorted(
        field
        for field, ended in fact_ends.items()
        if is_negative(field, profile.get(field)) and expired(ended, business_date)
    )
    return {f: v for f, v in profile.items() if f not in dropped}, dropped


def next_expiry(profile: Mapping[str, Any], fact_ends: Mapping[str, date], business_date: date) -> date | None:
    """The first business date after ``business_date`` on which one of the profile's negative
    facts stops counting, or None: when close of business must re-rate the subject."""
    upcoming = [
        day
        for field, ended in fact_ends.items()
        if is_negative(field, profile.get(field)) and (day := expires_on(ended)) > business_date
    ]
    return min(upcoming, default=None)


def loan_history_in_force(
    overdue_occurrences: int, npl_occurrences: int, spells: Iterable[tuple[str, date]], business_date: date
) -> tuple[int, int]:
    """D3 and D3b occurrences that still count on ``business_date``: an overdue or
    non-performing spell is negative information like any other and stops counting 5 years
    after it ended (征信业管理条例 §16). ``spells`` are the ended ones, (kind, end date);
    occurrences without a dated spell (recorded before spells were kept) never expire."""
    gone = {"overdue": 0, "non_performing": 0}
    for kind, ended in spells:
        if expired(ended, business_date):
            gone[kind] += 1
    return max(0, overdue_occurrences - gone["overdue"]), max(0, npl_occurrences - gone["non_performing"])
