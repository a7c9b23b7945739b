"""domain/subsidy_claims.py: the periods a claim covers, a line as the difference of two
month-end snapshots, the review's and the payment's checks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.loans.domain.subsidy_claims import (
    ClaimRefused,
    Cumulative,
    PartLine,
    check_payment,
    check_period,
    is_month_end,
    line_of,
    masked_subject,
    period_of,
    policy_text,
    review,
)

D = Decimal


@pytest.mark.parametrize(
    ("day", "period", "expected"),
    [
        (date(2027, 2, 14), "quarter", (date(2027, 1, 1), date(2027, 3, 31))),
        (date(2027, 12, 31), "quarter", (date(2027, 10, 1), date(2027, 12, 31))),
        (date(2028, 2, 1), "month", (date(2028, 2, 1), date(2028, 2, 29))),  # a leap year
        (date(2027, 7, 9), "year", (date(2027, 1, 1), date(2027, 12, 31))),
    ],
)
def test_the_period_holding_a_day(day: date, period: str, expected: tuple[date, date]) -> None:
    assert period_of(day, period) == expected  # type: ignore[arg-type]


def test_month_ends() -> None:
    assert [is_month_end(d) for d in (date(2027, 2, 28), date(2028, 2, 28), date(2028, 2, 29))] == [True, False, True]


def test_a_claim_covers_one_whole_closed_period() -> None:
    check_period(date(2027, 1, 1), date(2027, 3, 31), "quarter", date(2027, 4, 1))  # closed the day before
    with pytest.raises(ClaimRefused) as refused:
        check_period(date(2027, 1, 1), date(2027, 3, 31), "quarter", date(2027, 3, 31))  # its last day still open
    assert (refused.value.status, refused.value.code) == (422, "SUBSIDY_PERIOD_NOT_CLOSED")
    for start, end in [
        (date(2027, 1, 1), date(2027, 2, 28)),  # two months, not a quarter
        (date(2027, 2, 1), date(2027, 4, 30)),  # three months, not a calendar quarter
        (date(2027, 1, 2), date(2027, 3, 31)),
    ]:
        with pytest.raises(ClaimRefused) as refused:
            check_period(start, end, "quarter", date(2028, 1, 1))
        assert (refused.value.status, refused.value.code) == (422, "SUBSIDY_PERIOD_INVALID"), (start, end)
    check_period(date(2027, 2, 1), date(2027, 2, 28), "month", date(2027, 3, 1))


def test_a_line_is_the_difference_of_two_snapshots() -> None:
    """Snapshot at 03-31 less the one at 12-31: 130.50 - 43.50 = 87.00 claimed; 7.77 forfeited
    on 9 black-list days; 2.40 - 0.40 = 2.00 penalty; 90 - 31 = 59 days."""
    end = Cumulative(D("130.50"), D("7.77"), D("2.40"), 90, 9)
    before = Cumulative(D("43.50"), D("0.00"), D("0.40"), 31, 0)
    line = line_of(end, before)
    assert (line.subsidy, line.forfeited, line.penalty, line.days, line.forfeited_days) == (
        D("87.00"),
        D("7.77"),
        D("2.00"),
        59,
        9,
    )
    assert line.claimed and line.excluded and not line.empty
    # No snapshot before the period (drawn in it, or before snapshots were kept): from 0.
    assert line_of(end, None).subsidy == D("130.50")
    assert line_of(before, before).empty
    with pytest.raises(ValueError, match="fell"):
        line_of(before, end)


CLAIMED = {"a": D("130.50"), "b": D("57.48"), "c": D("750.00")}


def test_approve_all() -> None:
    decided = review("approve", CLAIMED, [], None)
    assert (decided.status, decided.total, decided.reasons) == ("approved", D("937.98"), {})


def test_approve_part_reduces_the_named_lines_only() -> None:
    decided = review("approve_part", CLAIMED, [PartLine("c", D("500.00"), "企业带贫人数不足")], None)
    assert decided.status == "part_approved"
    assert decided.approved == {"a": D("130.50"), "b": D("57.48"), "c": D("500.00")}
    assert decided.total == D("687.98")
    assert decided.reasons == {"c": "企业带贫人数不足"}


@pytest.mark.parametrize(
    ("decision", "parts", "reasons"),
    [
        ("approve_part", [PartLine("x", D("1.00"), "why")], None),  # not a line of the claim
        ("approve_part", [PartLine("a", D("130.50"), "why")], None),  # not reduced
        ("approve_part", [PartLine("a", D("-0.01"), "why")], None),
        ("approve_part", [PartLine("a", D("1.00"), None)], None),  # no reason
        ("approve_part", [PartLine("a", D("1.00"), "x"), PartLine("a", D("2.00"), "y")], None),  # twice
        ("approve_part", [], None),  # reduces nothing
        ("approve", [PartLine("a", D("1.00"), "why")], None),
        ("return", [], None),  # without reasons
    ],
)
def test_a_review_the_rules_refuse(decision: str, parts: list[PartLine], reasons: str | None) -> None:
    with pytest.raises(ClaimRefused) as refused:
        review(decision, CLAIMED, parts, reasons)  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (422, "SUBSIDY_REVIEW_INVALID")


def test_return_approves_nothing() -> None:
    decided = review("return", CLAIMED, [], "名单未经乡镇审核")
    assert (decided.status, decided.approved, decided.total) == ("returned", {}, D("0.00"))


def test_payments_never_pass_what_was_approved() -> None:
    check_payment(D("300.00"), D("687.98"), D("387.98"))
    with pytest.raises(ClaimRefused) as refused:
        check_payment(D("300.01"), D("687.98"), D("387.98"))
    assert (refused.value.status, refused.value.code) == (409, "SUBSIDY_OVERPAID")


def test_the_borrower_and_policy_as_the_sheet_shows_them() -> None:
    assert masked_subject("1b2c3d4e-0000-0000-0000-00000000a9f0") == "1b2c****a9f0"
    assert policy_text(D("0.0435"), D("0.0435"), "2027-01-01..2027-03-31=1") == "全额贴息"
    assert policy_text(D("0.04785"), D("0.03"), "2027-01-01..2027-03-31=1") == "年贴息率3%"
    shares = "2027-01-01..2027-01-31=1;2027-02-01..2027-03-31=0.7"
    assert policy_text(D("0.0435"), D("0.0435"), shares) == f"全额贴息; 份额 {shares}"
