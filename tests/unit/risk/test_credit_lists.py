"""The rules of the red and black lists and credit repair (services/risk/domain/credit_lists.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.risk.domain import credit_lists as rules
from shared.periods import retention_ends


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 5, 11), 3, date(2026, 8, 11)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),  # no 31 February: the month's last day
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 15), 12, date(2027, 12, 15)),
        (date(2024, 2, 29), 60, date(2029, 2, 28)),
        (date(2026, 5, 11), 0, date(2026, 5, 11)),
    ],
)
def test_months_count_by_the_calendar(day: date, months: int, expected: date) -> None:
    assert rules.add_months(day, months) == expected


@pytest.mark.parametrize(
    ("tier", "earliest", "ends"),
    [
        ("minor", date(2026, 5, 11), date(2026, 8, 11)),
        ("general", date(2026, 8, 11), date(2027, 5, 11)),
        ("serious", date(2027, 5, 11), date(2029, 5, 11)),
    ],
)
def test_each_tier_has_its_publication_period(tier: rules.Tier, earliest: date, ends: date) -> None:
    listed = date(2026, 5, 11)
    assert rules.earliest_repair(listed, tier) == earliest
    assert rules.publication_ends(listed, tier) == ends
    low, high = rules.PUBLICATION_MONTHS[tier]
    assert low <= high


def test_records_are_kept_five_years_from_the_end_of_the_act() -> None:
    assert retention_ends(date(2026, 8, 11)) == date(2031, 8, 11), "the last day kept (shared/periods.py)"
    assert rules.deleted(date(2026, 8, 11), date(2031, 8, 12))
    assert not rules.deleted(date(2026, 8, 11), date(2031, 8, 11))


def test_every_cause_has_a_legal_basis() -> None:
    for cause in (rules.COURT_DISHONEST_DEBTOR, rules.MALICIOUS_DEBT_EVASION, rules.TRUSTWORTHY):
        assert rules.LEGAL_BASIS[cause]


TODAY = date(2026, 11, 21)


def eligible(**overrides: Any) -> bool:
    facts: dict[str, Any] = {
        "subject_kind": "household",
        "grade": "AA",
        "min_grade": "AA",
        "holds_credit_household_title": True,
        "overdue_years": (),
        "today": TODAY,
        "clean_years": 2,
        "blacklisted": False,
    }
    return rules.red_list_eligible(**(facts | overrides))


def test_red_list_the_trustworthy_household() -> None:
    assert eligible()
    assert eligible(grade="AAA") and eligible(grade="AAA+")


@pytest.mark.parametrize(
    "overrides",
    [
        {"grade": "A"},
        {"grade": "NONE"},
        {"grade": "AAA", "min_grade": "AAA+"},
        {"holds_credit_household_title": False},
        {"overdue_years": (2026,)},
        {"overdue_years": (2025,)},
        {"blacklisted": True},
        {"blacklisted": True, "grade": "AAA+"},
    ],
)
def test_red_list_refuses(overrides: dict[str, Any]) -> None:
    assert not eligible(**overrides)


def test_old_overdue_is_forgiven_after_the_clean_years() -> None:
    assert eligible(overdue_years=(2024, 2019))
    assert not eligible(overdue_years=(2024,), clean_years=3)
    assert list(rules.overdue_years_considered(TODAY, 2)) == [2025, 2026]


def test_a_business_needs_no_household_title() -> None:
    assert eligible(subject_kind="business", holds_credit_household_title=False)
    assert not eligible(subject_kind="business", holds_credit_household_title=False, grade="A")
