"""Periods counted as the Civil Code counts them, and the one retention rule that scoring and
risk both apply. Pure functions, no I/O; common code, so it lives here and nowhere else.

Calendar months (Civil Code arts. 200-203): a period of n months ends on the same day number
n months on, or on that month's last day when the month has no such day (art. 202).

征信业管理条例 §16: 不良信息保存期限自不良行为或者事件终止之日起为5年; 超过5年的, 应当予以删除.
Negative credit information is kept five years from the day the act or event ended, and
deleted once that period is over. Counted in years (art. 201: the day it ended is not
counted; art. 202: the last day is the corresponding day of the final month, or that month's
last day when it has none):

- ``retention_ends``: the **last day kept** (the information still counts on it);
- ``expires_on``: the **day of deletion**, the day after (it no longer counts from then).

An act ended 2021-03-01 is kept through 2026-03-01 and deleted on 2026-03-02. An act ended
on 29 February 2020 is kept through **28 February 2025** and deleted on **1 March 2025**:
2025 has no 29 February, so art. 202 makes the month's last day the period's last day (not
1 March, which would keep it a day longer than five years). In a leap target year the 29th
keeps its own day (ended 2016-02-29, four years: kept through 2020-02-29).

Scoring stops counting a fact on ``expires_on``; risk stores ``retention_ends`` on a
black-list entry (``retention_ends_on``) and deletes the entry on the first business date
after it, which is the same day.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

RETENTION_YEARS = 5  # 征信业管理条例 §16


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months, clamped to the target month's last day."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def retention_ends(ended_on: date, years: int = RETENTION_YEARS) -> date:
    """The last day negative information whose act ended on ``ended_on`` is kept (§16;
    Civil Code arts. 201, 202)."""
    return add_months(ended_on, 12 * years)


def expires_on(ended_on: date, years: int = RETENTION_YEARS) -> date:
    """The day it is deleted and stops counting: the day after the last day kept."""
    return retention_ends(ended_on, years) + timedelta(days=1)


def expired(ended_on: date, today: date, years: int = RETENTION_YEARS) -> bool:
    """Is the information deleted (no longer counted) on ``today``?"""
    return today >= expires_on(ended_on, years)
