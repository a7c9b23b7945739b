"""Red and black list rules for lending (services/loans/domain/credit_lists.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.loans.domain.credit_lists import day_share, red_list_rates

D = Decimal


def test_the_discount_comes_off_the_rate_and_is_recorded() -> None:
    # a business at benchmark + 10% (4.785%), subsidised 3%: 0.25 points off the rate only
    assert red_list_rates(D("0.04785"), D("0.03"), D("0.0025")) == (D("0.04535"), D("0.03"), D("0.0025"))


def test_a_fully_subsidised_loan_keeps_its_subsidy_at_the_discounted_rate() -> None:
    # poor household: subsidy rate = rate, so the discount lowers the district's subsidy too
    assert red_list_rates(D("0.0435"), D("0.0435"), D("0.0025")) == (D("0.0410"), D("0.0410"), D("0.0025"))


def test_the_rate_never_goes_below_zero_and_only_the_discount_taken_is_recorded() -> None:
    assert red_list_rates(D("0.0020"), D("0.0020"), D("0.0025")) == (D("0"), D("0"), D("0.0020"))


def test_no_discount_changes_nothing() -> None:
    assert red_list_rates(D("0.0435"), D("0"), D("0")) == (D("0.0435"), D("0"), D("0"))


def test_a_negative_discount_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        red_list_rates(D("0.0435"), D("0"), D("-0.01"))


def test_day_shares_round_cumulatively() -> None:
    # 108.75 over 31 days: 3.51 a day, rounded cumulatively (10 days = 35.08 as COB accrues)
    shares = [day_share(D("108.75"), day, 31) for day in range(1, 32)]
    assert sum(shares[:10]) == D("35.08")
    assert sum(shares) == D("108.75")


@given(
    total=st.decimals(min_value=0, max_value=100000, places=2),
    days=st.integers(min_value=1, max_value=92),
    data=st.data(),
)
def test_forfeited_days_are_never_caught_up(total: Decimal, days: int, data: st.DataObject) -> None:
    forfeited = data.draw(st.sets(st.integers(min_value=1, max_value=days)))
    granted = sum((day_share(total, d, days) for d in range(1, days + 1) if d not in forfeited), D("0.00"))
    lost = sum((day_share(total, d, days) for d in forfeited), D("0.00"))
    assert granted + lost == total
    assert all(day_share(total, d, days) >= 0 for d in range(1, days + 1))


def test_a_day_outside_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match="not in a period"):
        day_share(D("100.00"), 0, 30)
