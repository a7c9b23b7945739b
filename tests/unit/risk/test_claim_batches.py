"""Insurer claim batches' pure rules (services/risk/domain/claim_batches.py, DOMAIN §7): the
batch period a month names, when it has ended, a dispute's reason, the settled total."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.risk.domain.claim_batches import PERIOD_LENGTHS, dispute_reason, ended, period, settled_total


def test_a_month_is_its_own_period_by_default() -> None:
    assert period("2026-05") == (date(2026, 5, 1), date(2026, 5, 31))
    assert period("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    # February's last day, in a common and a leap year.
    assert period("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert period("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))


def test_longer_periods_tile_the_year_from_january() -> None:
    assert period("2026-04", 3) == (date(2026, 4, 1), date(2026, 6, 30))
    assert period("2026-10", 3) == (date(2026, 10, 1), date(2026, 12, 31))
    assert period("2026-07", 6) == (date(2026, 7, 1), date(2026, 12, 31))
    assert period("2026-01", 12) == (date(2026, 1, 1), date(2026, 12, 31))
    with pytest.raises(ValueError, match="does not start a period of 3 months"):
        period("2026-02", 3)
    with pytest.raises(ValueError, match="one of"):
        period("2026-01", 5)
    # Every length divides the year: each month starts a period or lies in exactly one.
    for months in PERIOD_LENGTHS:
        starts = [m for m in range(1, 13) if (m - 1) % months == 0]
        assert len(starts) * months == 12


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-5", "26-05", "2026/05", "", "2026-05-01"])
def test_a_malformed_month_is_refused(month: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        period(month)


def test_a_period_ends_only_once_the_business_date_is_past_its_last_day() -> None:
    last = date(2026, 5, 31)
    assert not ended(last, date(2026, 5, 30))
    # On its last day loans may still write off a loan dated within it.
    assert not ended(last, last)
    assert ended(last, date(2026, 6, 1))


def test_a_dispute_needs_its_reason_and_an_acceptance_may_have_one() -> None:
    assert dispute_reason("dispute", "  no collection record  ") == "no collection record"
    assert dispute_reason("accept", None) is None
    assert dispute_reason("accept", "  ") is None
    assert dispute_reason("accept", "paid with the May transfer") == "paid with the May transfer"
    for reason in (None, "", "   "):
        with pytest.raises(ValueError, match="reason"):
            dispute_reason("dispute", reason)


def test_the_settled_total_is_the_accepted_amounts_summed_to_the_fen() -> None:
    assert settled_total([Decimal("5000.00"), Decimal("2499.99")]) == Decimal("7499.99")
    assert settled_total([]) == Decimal("0.00")
    assert str(settled_total([])) == "0.00"
