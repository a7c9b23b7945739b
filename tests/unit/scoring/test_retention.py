"""Negative facts stop counting 5 years after they ended (征信业管理条例 §16), counted as the
Civil Code counts years (arts. 201, 202): the boundary day, leap days, year ends."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.engine import RuleSet
from services.scoring.domain.retention import (
    expired,
    expires_on,
    in_force,
    loan_history_in_force,
    next_expiry,
    retention_ends,
)
from shared.profile import NEGATIVE_FIELDS


@pytest.mark.parametrize(
    ("ended_on", "last_day"),
    [
        (date(2021, 3, 1), date(2026, 3, 1)),
        (date(2020, 2, 29), date(2025, 2, 28)),  # no 29 February in 2025: the month's last day
        (date(2024, 2, 29), date(2029, 2, 28)),
        (date(2023, 2, 28), date(2028, 2, 28)),  # 2028 is a leap year; the corresponding day is still the 28th
        (date(2019, 2, 28), date(2024, 2, 28)),
        (date(2019, 3, 1), date(2024, 3, 1)),
        (date(2020, 12, 31), date(2025, 12, 31)),
        (date(2021, 1, 1), date(2026, 1, 1)),
        (date(2095, 2, 28), date(2100, 2, 28)),
        (date(1995, 2, 28), date(2000, 2, 28)),
    ],
)
def test_the_last_day_kept_is_the_corresponding_day_five_years_on(ended_on: date, last_day: date) -> None:
    assert retention_ends(ended_on) == last_day
    assert not expired(ended_on, last_day), "the fifth anniversary is still within the period"
    assert expired(ended_on, last_day + timedelta(days=1))
    assert expires_on(ended_on) == last_day + timedelta(days=1)


def test_exactly_five_years_still_counts_and_the_next_day_does_not() -> None:
    ended = date(2021, 3, 4)
    assert [expired(ended, d) for d in (date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5))] == [False, False, True]
    assert not expired(ended, ended), "the day it ended"
    assert not expired(ended, date(2021, 1, 1)), "a business date before the end"


def test_leap_day_ends_count_through_28_february() -> None:
    ended = date(2020, 2, 29)
    assert not expired(ended, date(2025, 2, 28))
    assert expired(ended, date(2025, 3, 1))
    # In a leap target year a 29 February end keeps its own day.
    assert retention_ends(date(2016, 2, 29), years=4) == date(2020, 2, 29)
    assert retention_ends(date(2096, 2, 29), years=4) == date(2100, 2, 28), "2100 is not a leap year"
    assert retention_ends(date(1996, 2, 29), years=4) == date(2000, 2, 29), "2000 is"


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2500, 12, 31)), st.integers(min_value=1, max_value=10))
def test_retention_matches_civil_code_article_202(ended_on: date, years: int) -> None:
    # Art. 202 restated independently: same month, the same day or the month's last.
    year = ended_on.year + years
    expected = date(year, ended_on.month, min(ended_on.day, calendar.monthrange(year, ended_on.month)[1]))
    assert retention_ends(ended_on, years) == expected
    assert expires_on(ended_on, years) - expected == timedelta(days=1)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2400, 12, 31)), st.integers(min_value=-4000, max_value=4000))
def test_expired_exactly_after_the_last_day(ended_on: date, offset: int) -> None:
    business_date = retention_ends(ended_on) + timedelta(days=offset)
    assert expired(ended_on, business_date) is (offset > 0)


@given(st.dates(max_value=date(2400, 1, 1)), st.dates(max_value=date(2400, 1, 1)))
def test_a_later_end_never_expires_sooner(a: date, b: date) -> None:
    early, late = sorted((a, b))
    assert retention_ends(early) <= retention_ends(late)


VETOED = {"vice_record": True, "income_project": True, "head_healthy": True}


def test_in_force_drops_only_expired_negative_statements() -> None:
    profile = {
        "vice_record": True,
        "currently_under_enforcement": True,
        "guarantee_currently_overdue": False,
        "income_project": True,
    }
    ends = {
        "vice_record": date(2021, 3, 1),  # expires 2026-03-02
        "currently_under_enforcement": date(2024, 1, 1),  # counts until 2029-01-01
        "guarantee_currently_overdue": date(2000, 1, 1),  # not negative: nothing to drop
        "income_project": date(2000, 1, 1),  # not a negative field: an end date never removes it
    }
    kept, dropped = in_force(profile, ends, date(2026, 3, 1))
    assert (kept, dropped) == (profile, [])
    kept, dropped = in_force(profile, ends, date(2026, 3, 2))
    assert dropped == ["vice_record"]
    assert kept == {k: v for k, v in profile.items() if k != "vice_record"}
    kept, dropped = in_force(profile, ends, date(2029, 1, 2))
    assert dropped == ["currently_under_enforcement", "vice_record"]
    assert kept == {"guarantee_currently_overdue": False, "income_project": True}


def test_without_end_dates_nothing_expires() -> None:
    profile = {f: True for f in NEGATIVE_FIELDS}
    assert in_force(profile, {}, date(2999, 1, 1)) == (profile, [])
    assert next_expiry(profile, {}, date(2026, 1, 1)) is None


def test_next_expiry_is_the_earliest_still_to_come() -> None:
    profile = {"vice_record": True, "court_enforcement_within_3y": True, "guarantee_currently_overdue": False}
    ends = {
        "vice_record": date(2021, 6, 30),  # expires 2026-07-01
        "court_enforcement_within_3y": date(2022, 2, 1),  # expires 2027-02-02
        "guarantee_currently_overdue": date(2021, 1, 1),  # not negative: never re-rates
    }
    assert next_expiry(profile, ends, date(2026, 1, 1)) == date(2026, 7, 1)
    assert next_expiry(profile, ends, date(2026, 6, 30)) == date(2026, 7, 1)
    assert next_expiry(profile, ends, date(2026, 7, 1)) == date(2027, 2, 2), "already expired: the next one"
    assert next_expiry(profile, ends, date(2027, 2, 2)) is None


def test_an_expired_veto_no_longer_vetoes_the_scorecard() -> None:
    rules = RuleSet.load("hubin-2017")
    ends = {"vice_record": date(2021, 3, 1)}
    before = rules.evaluate(in_force(VETOED, ends, date(2026, 3, 1))[0])
    assert before.vetoed and before.score == 0 and [r.rule for r in before.reasons] == ["V1.vice"]
    after = rules.evaluate(in_force(VETOED, ends, date(2026, 3, 2))[0])
    assert not after.vetoed
    assert after.score == 80 + 3 + 1 and after.grade == "A"


def test_loan_spells_stop_counting_five_years_after_they_ended() -> None:
    spells = [
        ("overdue", date(2020, 2, 29)),  # counts through 2025-02-28
        ("overdue", date(2021, 7, 1)),
        ("non_performing", date(2021, 7, 1)),  # counts through 2026-07-01
    ]
    assert loan_history_in_force(3, 1, spells, date(2025, 2, 28)) == (3, 1)
    assert loan_history_in_force(3, 1, spells, date(2025, 3, 1)) == (2, 1)
    assert loan_history_in_force(3, 1, spells, date(2026, 7, 1)) == (2, 1)
    assert loan_history_in_force(3, 1, spells, date(2026, 7, 2)) == (1, 0), "an undated occurrence stays"
    assert loan_history_in_force(0, 0, [], date(2999, 1, 1)) == (0, 0)


@given(
    st.lists(st.tuples(st.sampled_from(["overdue", "non_performing"]), st.dates(max_value=date(2400, 1, 1)))),
    st.integers(min_value=0, max_value=5),
    st.dates(max_value=date(2500, 1, 1)),
)
def test_loan_history_counts_exactly_the_unexpired_spells(
    spells: list[tuple[str, date]], undated: int, business_date: date
) -> None:
    overdue = sum(1 for kind, _ in spells if kind == "overdue") + undated
    npl = sum(1 for kind, _ in spells if kind == "non_performing")
    still = [kind for kind, ended in spells if business_date <= retention_ends(ended)]
    assert loan_history_in_force(overdue, npl, spells, business_date) == (
        still.count("overdue") + undated,
        still.count("non_performing"),
    )
