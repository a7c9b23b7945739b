"""Repayment schedules: hand-computed examples to the fen, then the invariants as properties."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.loans.domain.schedule import (
    DayCount,
    Instalment,
    Method,
    add_months,
    build_schedule,
    instalment_amount,
    period_fraction,
    period_interest,
)

D = Decimal
JAN_15, FEB_15, MAR_15 = date(2026, 1, 15), date(2026, 2, 15), date(2026, 3, 15)


def _half_up(amount: Fraction) -> Decimal:
    """Independent of the module: exact rational -> Decimal with 60 digits -> quantize half up."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (D(amount.numerator) / D(amount.denominator)).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def _two_places(row: Instalment) -> bool:
    amounts = (row.opening_principal, row.principal, row.interest, row.subsidy, row.total, row.net_due)
    return all(amount.as_tuple().exponent == -2 for amount in amounts)


# 1. equal instalment (等额本息), 10,000.00 at 4.35% over 12 months, 30/360


def test_equal_instalment_payment_is_the_annuity_to_the_fen() -> None:
    r = Fraction("0.0435") / 12  # 0.0435 / 12 = 0.003625
    growth = (1 + r) ** 12  # 1.003625^12 = 1.04437784687…
    exact = 10000 * r * growth / (growth - 1)  # 36.25 × 1.04437784687… / 0.04437784687… = 853.0990036…
    assert _half_up(exact) == D("853.10")
    assert instalment_amount(D("10000.00"), D("0.0435"), 12) == D("853.10")


def test_equal_instalment_schedule_by_hand() -> None:
    rows = build_schedule(D("10000.00"), D("0.0435"), 12, "equal_instalment", JAN_15)
    assert len(rows) == 12
    first, second, last = rows[0], rows[1], rows[-1]

    assert (first.start, first.due_on, first.days) == (JAN_15, FEB_15, 31)
    assert first.opening_principal == D("10000.00")
    assert first.interest == D("36.25")  # 10000 × 0.0435 / 12 = 36.25
    assert first.principal == D("816.85")  # 853.10 − 36.25
    assert first.closing_principal == D("9183.15")  # 10000.00 − 816.85
    assert first.total == D("853.10")

    assert (second.start, second.due_on, second.days) == (FEB_15, MAR_15, 28)  # 30/360: still 1/12 of a year
    assert second.opening_principal == D("9183.15")
    assert second.interest == D("33.29")  # 9183.15 × 0.003625 = 33.28891875 -> 33.29
    assert second.principal == D("819.81")  # 853.10 − 33.29
    assert second.closing_principal == D("8363.34")  # 9183.15 − 819.81

    assert all(row.total == D("853.10") for row in rows[:-1])
    # The last repays what the first 11 left (10000.00 − 9149.99 = 850.01) and absorbs the rounding:
    assert last.opening_principal == D("850.01")
    assert last.principal == D("850.01")
    assert last.interest == D("3.08")  # 850.01 × 0.003625 = 3.08128625 -> 3.08
    assert last.total == D("853.09")  # 850.01 + 3.08, one fen below A
    assert last.closing_principal == D("0.00")
    assert last.due_on == date(2027, 1, 15)

    assert sum(row.principal for row in rows) == D("10000.00")
    assert sum(row.interest for row in rows) == D("237.19")  # 11 × 853.10 + 853.09 − 10000.00
    assert sum(row.total for row in rows) == D("10237.19")  # 9384.10 + 853.09
    assert all(row.subsidy == D("0.00") and row.net_due == row.total for row in rows)


# 2. equal principal (等额本金), 12,000.00 at 4.35% over 12 months


def test_equal_principal_schedule_by_hand() -> None:
    rows = build_schedule(D("12000.00"), D("0.0435"), 12, "equal_principal", JAN_15)
    assert [row.principal for row in rows] == [D("1000.00")] * 12  # 12000 / 12
    assert [row.interest for row in rows] == [
        D("43.50"),  # 12000 × 0.003625 = 43.5
        D("39.88"),  # 11000 × 0.003625 = 39.875 -> 39.88 (half up)
        D("36.25"),  # 10000 × 0.003625
        D("32.63"),  # 9000 × 0.003625 = 32.625 -> 32.63
        D("29.00"),  # 8000 × 0.003625
        D("25.38"),  # 7000 × 0.003625 = 25.375 -> 25.38
        D("21.75"),  # 6000 × 0.003625
        D("18.13"),  # 5000 × 0.003625 = 18.125 -> 18.13
        D("14.50"),  # 4000 × 0.003625
        D("10.88"),  # 3000 × 0.003625 = 10.875 -> 10.88
        D("7.25"),  # 2000 × 0.003625
        D("3.63"),  # 1000 × 0.003625 = 3.625 -> 3.63
    ]
    # Formula: P × r × (n + 1) / 2 = 12000 × 0.003625 × 13 / 2 = 282.75, plus 6 half fen rounded up = 282.78
    assert sum(row.interest for row in rows) == D("282.78")
    assert rows[0].total == D("1043.50")
    assert rows[-1].total == D("1003.63")
    assert rows[-1].closing_principal == D("0.00")


def test_equal_principal_last_absorbs_the_rounding() -> None:
    rows = build_schedule(D("10000.00"), D("0.0435"), 3, "equal_principal", JAN_15)
    # 10000 / 3 = 3333.333… -> 3333.33 twice; the last repays 10000.00 − 6666.66 = 3333.34
    assert [row.principal for row in rows] == [D("3333.33"), D("3333.33"), D("3333.34")]
    assert [row.interest for row in rows] == [
        D("36.25"),  # 10000 × 0.003625
        D("24.17"),  # 6666.67 × 0.003625 = 24.16667875 -> 24.17
        D("12.08"),  # 3333.34 × 0.003625 = 12.0833575 -> 12.08
    ]


def test_a_tiny_loan_never_repays_more_than_is_outstanding() -> None:
    rows = build_schedule(D("1.00"), D("0"), 36, "equal_principal", JAN_15)
    # 1.00 / 36 = 0.0277… -> 0.03: 33 × 0.03 = 0.99, number 34 takes the last 0.01, then nothing is left
    assert [row.principal for row in rows[32:]] == [D("0.03"), D("0.01"), D("0.00"), D("0.00")]
    assert sum(row.principal for row in rows) == D("1.00")
    assert rows[-1].closing_principal == D("0.00")


# 3. interest only (按月付息到期还本), 50,000.00 at 4.75% over 24 months


def test_interest_only_schedule_by_hand() -> None:
    rows = build_schedule(D("50000.00"), D("0.0475"), 24, "interest_only", JAN_15)
    assert [row.interest for row in rows] == [D("197.92")] * 24  # 50000 × 0.0475 / 12 = 197.91666… -> 197.92
    assert [row.principal for row in rows[:-1]] == [D("0.00")] * 23
    assert rows[-1].principal == D("50000.00")
    assert rows[-1].total == D("50197.92")  # 50000.00 + 197.92
    assert rows[-1].due_on == date(2028, 1, 15)
    assert sum(row.interest for row in rows) == D("4750.08")  # 24 × 197.92 (exact 50000 × 0.0475 × 2 = 4750.00)


# 5. actual day counts


def test_actual_day_counts_by_hand() -> None:
    assert (FEB_15 - JAN_15).days == 31 and (MAR_15 - FEB_15).days == 28
    assert period_interest(D("10000.00"), D("0.0435"), JAN_15, FEB_15, "ACT/360") == D(
        "37.46"
    )  # 435 × 31 / 360 = 37.458333… -> 37.46
    assert period_interest(D("10000.00"), D("0.0435"), FEB_15, MAR_15, "ACT/360") == D(
        "33.83"
    )  # 435 × 28 / 360 = 33.8333… -> 33.83
    assert period_interest(D("10000.00"), D("0.0435"), JAN_15, FEB_15, "ACT/365") == D(
        "36.95"
    )  # 435 × 31 / 365 = 36.945205… -> 36.95
    assert period_interest(D("10000.00"), D("0.0435"), FEB_15, MAR_15, "ACT/365") == D(
        "33.37"
    )  # 435 × 28 / 365 = 33.369863… -> 33.37
    assert period_interest(D("10000.00"), D("0.0435"), JAN_15, FEB_15, "30/360") == D("36.25")  # 435 / 12
    assert period_interest(D("10000.00"), D("0.0435"), FEB_15, MAR_15, "30/360") == D(
        "36.25"
    )  # 435 / 12 whatever the days


def test_actual_day_counts_in_a_schedule_keep_the_payment() -> None:
    rows = build_schedule(D("10000.00"), D("0.0435"), 12, "equal_instalment", JAN_15, day_count="ACT/365")
    assert rows[0].interest == D("36.95")  # 10000 × 0.0435 × 31 / 365 = 36.945205… -> 36.95
    assert rows[0].principal == D("816.15")  # 853.10 − 36.95
    assert rows[1].opening_principal == D("9183.85")  # 10000.00 − 816.15
    assert rows[1].interest == D("30.65")  # 9183.85 × 0.0435 × 28 / 365 = 30.646381… -> 30.65
    assert rows[1].principal == D("822.45")  # 853.10 − 30.65
    assert all(row.total == D("853.10") for row in rows[:-1])


def test_half_a_fen_rounds_up_even_through_a_twelfth() -> None:
    # 11000 × 0.0435 / 12 = 39.875 exactly; a rounded 1/12 (0.0833…3) would give 39.8749… -> 39.87
    assert period_interest(D("11000.00"), D("0.0435"), JAN_15, FEB_15, "30/360") == D("39.88")


def test_period_fraction() -> None:
    # 1/12 to 40 significant digits, whatever the calendar length of the month
    assert str(period_fraction(JAN_15, FEB_15, "30/360")) == "0.08" + "3" * 39
    assert period_fraction(FEB_15, MAR_15, "30/360") == period_fraction(JAN_15, FEB_15, "30/360")
    assert period_fraction(JAN_15, date(2026, 4, 15), "30/360") == D("0.25")  # 3 months = 3/12
    assert str(period_fraction(JAN_15, FEB_15, "ACT/360")) == "0.086" + "1" * 38  # 31/360
    assert period_fraction(FEB_15, MAR_15, "ACT/365") == D("0.07671232876712328767123287671232876712329")  # 28/365


def test_30_360_refuses_broken_periods() -> None:
    with pytest.raises(ValueError, match="whole months"):
        period_interest(D("10000.00"), D("0.0435"), JAN_15, date(2026, 2, 20), "30/360")
    with pytest.raises(ValueError, match="end after it starts"):
        period_interest(D("10000.00"), D("0.0435"), FEB_15, FEB_15, "ACT/365")
    # Month ends of a schedule anchored on the 31st are whole months: 28 Feb -> 31 Mar
    assert period_interest(D("10000.00"), D("0.0435"), date(2026, 2, 28), date(2026, 3, 31), "30/360") == D("36.25")


# 6. subsidy (贴息)


def test_full_subsidy_for_a_poor_household() -> None:
    rows = build_schedule(
        D("10000.00"), D("0.0435"), 12, "equal_instalment", JAN_15, day_count="ACT/365", subsidy_rate=D("0.0435")
    )
    assert rows[0].interest == D("36.95") and rows[0].subsidy == D("36.95")  # 435 × 31 / 365 -> 36.95, all subsidised
    assert all(row.subsidy == row.interest for row in rows)
    assert all(row.net_due == row.principal for row in rows)
    assert sum(row.net_due for row in rows) == D("10000.00")


def test_business_subsidy_of_three_percent() -> None:
    # Business rate: benchmark 4.35% × 1.1 = 4.785%; subsidy 3% a year on the balance (DOMAIN §4)
    rows = build_schedule(D("100000.00"), D("0.04785"), 12, "interest_only", JAN_15, subsidy_rate=D("0.03"))
    first = rows[0]
    assert first.interest == D("398.75")  # 100000 × 0.04785 / 12 = 398.75
    assert first.subsidy == D("250.00")  # 100000 × 0.03 / 12 = 250.00
    assert first.net_due == D("148.75")  # 398.75 − 250.00, what the business pays
    assert rows[-1].net_due == D("100148.75")  # 100000.00 + 148.75

    amortising = build_schedule(D("100000.00"), D("0.04785"), 12, "equal_principal", JAN_15, subsidy_rate=D("0.03"))
    second = amortising[1]
    assert second.opening_principal == D("91666.67")  # 100000.00 − 8333.33 (100000 / 12 = 8333.333…)
    assert second.interest == D("365.52")  # 91666.67 × 0.04785 / 12 = 365.520846… -> 365.52
    assert second.subsidy == D("229.17")  # 91666.67 × 0.03 / 12 = 229.166675 -> 229.17


# 7. due dates


def test_due_dates_are_anchored_on_the_disbursement_day() -> None:
    jan_31 = date(2026, 1, 31)
    assert [add_months(jan_31, k) for k in (1, 2, 3)] == [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)  # leap year
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)  # across the year end
    assert add_months(jan_31, 0) == jan_31

    rows = build_schedule(D("3000.00"), D("0.0435"), 3, "equal_principal", jan_31)
    assert [(row.start, row.due_on, row.days) for row in rows] == [
        (date(2026, 1, 31), date(2026, 2, 28), 28),
        (date(2026, 2, 28), date(2026, 3, 31), 31),  # back to the 31st, not chained from the 28th
        (date(2026, 3, 31), date(2026, 4, 30), 30),
    ]


# 8. rate 0


def test_equal_instalment_at_rate_zero() -> None:
    assert instalment_amount(D("10000.00"), D("0"), 12) == D("833.33")  # 10000 / 12 = 833.333… -> 833.33
    rows = build_schedule(D("10000.00"), D("0"), 12, "equal_instalment", JAN_15)
    assert [row.principal for row in rows[:-1]] == [D("833.33")] * 11
    assert rows[-1].principal == D("833.37")  # 10000.00 − 11 × 833.33 = 10000.00 − 9166.63
    assert all(row.interest == D("0.00") for row in rows)


def test_instalment_amount_rounds_an_exact_half_fen_up() -> None:
    # One month: A = P × (1 + r) = 178824 + 178824 × 0.0425 / 12 = 178824 + 633.335 = 179457.335 -> 179457.34
    assert instalment_amount(D("178824.00"), D("0.0425"), 1) == D("179457.34")


# 9. validation


@pytest.mark.parametrize(
    ("principal", "rate", "term", "subsidy", "message"),
    [
        (D("10000.00"), D("0.0435"), 0, D(0), "term_months must be between 1 and 36"),
        (D("10000.00"), D("0.0435"), 37, D(0), "term_months must be between 1 and 36"),
        (D("0"), D("0.0435"), 12, D(0), "principal must be a positive amount"),
        (D("-100.00"), D("0.0435"), 12, D(0), "principal must be a positive amount"),
        (D("100.001"), D("0.0435"), 12, D(0), "at most two decimal places"),
        (D("10000.00"), D("-0.01"), 12, D(0), "annual_rate must be a fraction"),
        (D("10000.00"), D("1"), 12, D(0), "annual_rate must be a fraction"),
        (D("10000.00"), D("0.0435"), 12, D("0.0436"), "subsidy_rate must be between 0 and annual_rate"),
        (D("10000.00"), D("0.0435"), 12, D("-0.01"), "subsidy_rate must be between 0 and annual_rate"),
    ],
)
def test_invalid_loans_are_refused(
    principal: Decimal, rate: Decimal, term: int, subsidy: Decimal, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_schedule(principal, rate, term, "equal_instalment", JAN_15, subsidy_rate=subsidy)


def test_trailing_zeros_are_not_extra_decimal_places() -> None:
    rows = build_schedule(D("100.000"), D("0.0435"), 1, "interest_only", JAN_15)
    assert rows[0].principal == D("100.00") and rows[0].principal.as_tuple().exponent == -2


def test_floats_and_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError, match="principal must be a Decimal"):
        build_schedule(10000.0, D("0.0435"), 12, "equal_instalment", JAN_15)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown repayment method"):
        build_schedule(D("10000.00"), D("0.0435"), 12, "balloon", JAN_15)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown day count"):
        build_schedule(
            D("10000.00"),
            D("0.0435"),
            12,
            "equal_principal",
            JAN_15,
            day_count="ACT/ACT",  # type: ignore[arg-type]
        )


# 10. properties

principals = st.integers(min_value=1, max_value=100_000_000).map(lambda fen: D(fen).scaleb(-2))  # 0.01..1,000,000.00
rates = st.integers(min_value=0, max_value=2000).map(lambda bp: D(bp).scaleb(-4))  # 0..0.2 by 0.0001
terms = st.integers(min_value=1, max_value=36)
methods = st.sampled_from(["equal_instalment", "equal_principal", "interest_only"])
day_counts = st.sampled_from(["30/360", "ACT/360", "ACT/365"])
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


@settings(max_examples=400, deadline=None)
@given(principals, rates, terms, methods, day_counts, starts, st.floats(min_value=0, max_value=1))
def test_schedule_invariants(
    principal: Decimal,
    rate: Decimal,
    term: int,
    method: Method,
    day_count: DayCount,
    start: date,
    subsidy_share: float,
) -> None:
    subsidy_rate = (rate * D(str(subsidy_share))).quantize(D("0.0001"), rounding=ROUND_DOWN)
    rows = build_schedule(principal, rate, term, method, start, day_count, subsidy_rate)

    assert [row.number for row in rows] == list(range(1, term + 1))
    assert sum(row.principal for row in rows) == principal
    assert rows[-1].closing_principal == D("0.00")
    assert all(_two_places(row) for row in rows)
    assert all(D(0) <= row.subsidy <= row.interest for row in rows)
    assert all(row.principal >= 0 and row.closing_principal >= 0 for row in rows)
    for row, following in pairwise(rows):
        assert following.opening_principal == row.closing_principal and following.start == row.due_on
    for row in rows:
        assert row.due_on == add_months(start, row.number) and row.days == (row.due_on - row.start).days
        fraction = {"30/360": Fraction(1, 12), "ACT/360": Fraction(row.days, 360), "ACT/365": Fraction(row.days, 365)}
        assert row.interest == _half_up(Fraction(row.opening_principal) * Fraction(rate) * fraction[day_count])


@settings(max_examples=300, deadline=None)
@given(principals, rates, terms, day_counts, starts)
def test_equal_instalments_pay_the_same_amount(
    principal: Decimal, rate: Decimal, term: int, day_count: DayCount, start: date
) -> None:
    payment = instalment_amount(principal, rate, term)
    r = Fraction(rate) / 12
    exact = principal / term if r == 0 else Fraction(principal) * r / (1 - (1 + r) ** -term)
    assert payment == _half_up(Fraction(exact))

    rows = build_schedule(principal, rate, term, "equal_instalment", start, day_count)
    # Only a balance cleared early by the rounding of A (loans of a few yuan) makes a payment smaller than A.
    assert all(row.total == payment or row.closing_principal == D("0.00") for row in rows[:-1])
    if principal >= 100:
        assert all(row.total == payment for row in rows[:-1])


@settings(max_examples=200, deadline=None)
@given(principals, rates, terms, methods, day_counts, starts)
def test_full_subsidy_cancels_the_interest(
    principal: Decimal, rate: Decimal, term: int, method: Method, day_count: DayCount, start: date
) -> None:
    rows = build_schedule(principal, rate, term, method, start, day_count, subsidy_rate=rate)
    assert all(row.subsidy == row.interest and row.net_due == row.principal for row in rows)
