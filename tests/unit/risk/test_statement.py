"""A fund's statement over a period (services/risk/domain/statement.py): the period asked for,
the running balance, the totals by kind and opening + movements = closing, to the fen."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.risk.domain.statement import Period, PeriodError, Span, period_of, state

D = Decimal
TODAY = date(2026, 5, 16)
FUND = ("opening", "top_up", "loss", "recovery")


def test_the_default_period_is_the_year_to_the_business_date() -> None:
    assert period_of(None, None, TODAY) == Period(date(2026, 1, 1), TODAY)
    # Only to given: from 1 January of to's year, not of the business date's.
    assert period_of(None, date(2025, 8, 31), TODAY) == Period(date(2025, 1, 1), date(2025, 8, 31))
    assert period_of(date(2025, 12, 1), None, TODAY) == Period(date(2025, 12, 1), TODAY)
    # A period of one day, the business date itself, is a period.
    assert period_of(TODAY, TODAY, TODAY) == Period(TODAY, TODAY)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (date(2026, 5, 2), date(2026, 5, 1), "from"),  # from after to
        (None, date(9999, 12, 31), "to"),  # a mistyped year: after the business date
        (None, date(2026, 5, 17), "to"),  # tomorrow has not happened
        (date(2026, 5, 17), None, "from"),  # from after the default to (the business date)
    ],
)
def test_a_period_that_cannot_be_stated_is_refused_naming_the_parameter(
    start: date | None, end: date | None, field: str
) -> None:
    with pytest.raises(PeriodError) as refused:
        period_of(start, end, TODAY)
    assert refused.value.field == field


def test_opening_plus_the_movements_is_closing_with_the_balance_after_each() -> None:
    # A fund of 10,000,000.00 before the period; in it a 50,000.00 top-up, the government's
    # 30% of a 12,345.67 loss (3,703.70), its 30% of another net of the mutual guarantee
    # (7,299.99), and 1,500.00 of a recovery back:
    #   10,000,000.00 + 50,000.00 = 10,050,000.00
    #   10,050,000.00 - 3,703.70 = 10,046,296.30
    #   10,046,296.30 - 7,299.99 = 10,038,996.31
    #   10,038,996.31 + 1,500.00 = 10,040,496.31
    made = state(
        D("10000000.00"),
        [("top_up", D("50000.00")), ("loss", D("-3703.70")), ("loss", D("-7299.99")), ("recovery", D("1500.00"))],
        FUND,
    )
    assert made.opening == D("10000000.00")
    assert made.balances == (D("10050000.00"), D("10046296.30"), D("10038996.31"), D("10040496.31"))
    assert made.closing == D("10040496.31")
    # Totals by kind, every kind named even when nothing of it moved: losses -3,703.70 - 7,299.99.
    assert made.totals == {
        "opening": D("0.00"),
        "top_up": D("50000.00"),
        "loss": D("-11003.69"),
        "recovery": D("1500.00"),
    }
    assert made.counts == {"opening": 0, "top_up": 1, "loss": 2, "recovery": 1}
    assert made.opening + sum(made.totals.values()) == made.closing


def test_a_period_without_movements_closes_at_its_opening() -> None:
    made = state(D("123.45"), [], FUND)
    assert (made.balances, made.closing) == ((), D("123.45"))
    assert set(made.totals.values()) == {D("0.00")}


def test_a_balance_may_go_below_zero_and_back() -> None:
    # An overdrawn fund (docs/risk.md): 100.00 - 250.00 = -150.00, + 200.00 = 50.00.
    made = state(D("100.00"), [("loss", D("-250.00")), ("top_up", D("200.00"))], FUND)
    assert made.balances == (D("-150.00"), D("50.00"))


def test_a_movement_of_an_unknown_kind_is_refused_not_left_out_of_the_totals() -> None:
    with pytest.raises(ValueError, match="'fee'"):
        state(D("0.00"), [("top_up", D("1.00")), ("fee", D("-1.00"))], FUND)


@pytest.mark.parametrize(
    ("span", "start"), [("year", date(2026, 1, 1)), ("quarter", date(2026, 4, 1)), ("month", date(2026, 5, 1))]
)
def test_the_default_start_follows_the_configured_span(span: Span, start: date) -> None:
    assert period_of(None, None, TODAY, span) == Period(start, TODAY)
    # The span of to's date, not of the business date: 30 Sep's quarter starts on 1 Jul.
    assert (
        period_of(None, date(2025, 9, 30), TODAY, span).start
        == {
            "year": date(2025, 1, 1),
            "quarter": date(2025, 7, 1),
            "month": date(2025, 9, 1),
        }[span]
    )
