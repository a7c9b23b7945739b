"""Red and black lists, and credit repair (issue 11). Pure rules, no I/O.

Seed 001 (建立诚信企业"红名单"激励制度和"黑名单"惩戒制度; 信用修复 so a subject can leave
the black list), seed 002 §3(1)1-4 (the platform's duties; 联动奖惩 is 002 §3(1)4), seed 000 §4(6)
(无恶意逃废金融机构债务: malicious debt evasion → 失信黑名单),
征信业管理条例 §16 (不良信息 kept 5 years from the end of the act, then deleted).

Periods count as Civil Code arts. 200-203 count them: by calendar months, ending on the
same day number (the month's last day where that day does not exist): ``shared/periods.py``,
which also holds the §16 retention rule scoring applies to the same information.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Literal

from services.risk.domain.titles import CREDIT_GRADES
from shared.periods import add_months, expired

Tier = Literal["minor", "general", "serious"]
TIERS: tuple[Tier, ...] = ("minor", "general", "serious")

# 信用修复, publication of a black-list entry by tier: (minimum months before repair may be
# granted, most months it stays published). Minor: at most 3 months; general: 3 months to a
# year; serious: 1 to 3 years (issue 11, after the national 信用修复 rules).
PUBLICATION_MONTHS: dict[Tier, tuple[int, int]] = {"minor": (0, 3), "general": (3, 12), "serious": (12, 36)}

# DOMAIN §2 grades from the best; the red list asks for AA or better (product choice).
GRADES_BEST_FIRST = CREDIT_GRADES

COURT_DISHONEST_DEBTOR = "court_dishonest_debtor"
MALICIOUS_DEBT_EVASION = "malicious_debt_evasion"
TRUSTWORTHY = "trustworthy"

LEGAL_BASIS = {
    COURT_DISHONEST_DEBTOR: "最高人民法院关于公布失信被执行人名单信息的若干规定 (法释〔2017〕7号); seed 001",
    MALICIOUS_DEBT_EVASION: "恶意逃废银行债务列入失信黑名单 (seed 000 §4(6)); seed 001 黑名单惩戒制度",
    TRUSTWORTHY: "守信红名单激励 (seed 001); 信用户 (004 §6(4)); 联动奖惩 (seed 002 §3(1)4)",
}
REPAIR_BASIS = "信用修复 (seed 001): obligations fulfilled, minimum publication period served"


def earliest_repair(listed_on: date, tier: Tier) -> date:
    """The first day a repair of this entry may be granted."""
    return add_months(listed_on, PUBLICATION_MONTHS[tier][0])


def publication_ends(listed_on: date, tier: Tier) -> date:
    """The day the entry stops being published, and its punishment with it, unless repaired
    or removed before."""
    return add_months(listed_on, PUBLICATION_MONTHS[tier][1])


def deleted(act_ended_on: date, today: date) -> bool:
    """Is a black-list record whose act ended on ``act_ended_on`` deleted by ``today``
    (征信业管理条例 §16)? An entry stores ``retention_ends(act_ended_on)``, the last day it is
    kept, and ``credit_lists.expire`` deletes it once the business date is past that day: the SQL
    there is ``retention_ends_on < today``, this rule."""
    return expired(act_ended_on, today)


def overdue_years_considered(today: date, clean_years: int) -> range:
    """The calendar years whose overdue record keeps a subject off the red list: this one
    and the ``clean_years - 1`` before (overdue is recorded by year, DOMAIN §2 D3)."""
    return range(today.year - clean_years + 1, today.year + 1)


def red_list_eligible(
    *,
    subject_kind: Literal["household", "business"],
    grade: str,
    min_grade: str,
    holds_credit_household_title: bool,
    overdue_years: Iterable[int],
    today: date,
    clean_years: int,
    blacklisted: bool,
) -> bool:
    """守信红名单: the credit-household title (a business has no title in the programme, so its
    grade and record alone), a certified grade of ``min_grade`` or better, no overdue in the
    last ``clean_years`` years, and not on the black list (seed 001: bad records exclude)."""
    if blacklisted or grade not in GRADES_BEST_FIRST or min_grade not in GRADES_BEST_FIRST:
        return False
    if GRADES_BEST_FIRST.index(grade) > GRADES_BEST_FIRST.index(min_grade):
        return False
    if subject_kind == "household" and not holds_credit_household_title:
        return False
    considered = overdue_years_considered(today, clean_years)
    return not any(year in considered for year in overdue_years)
