"""Yearly titles (004 §6(4), §7(4); seed 000 §5) and credit-household coverage (seed 003 annex 1)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from decimal import Decimal
from typing import Any

import pytest

from services.risk.domain.titles import (
    CREDIT_GRADES,
    CommunityAssessment,
    coverage,
    coverage_points,
    credit_community,
    credit_household,
    credit_village,
    grade_at_least_a,
)

D = Decimal
THREE_PERCENT = D("0.03")

PASSING = CommunityAssessment(
    loan_recovery=D("0.90"),
    npl_ratio=D("0.05"),
    new_loan_interest_recovery=D("0.95"),
    malicious_evasion=False,
)


def test_credit_grades() -> None:
    assert CREDIT_GRADES == ("AAA+", "AAA", "AA", "A")


@pytest.mark.parametrize(
    ("grade", "expected"),
    [
        ("AAA+", True),
        ("AAA", True),
        ("AA", True),
        ("A", True),
        ("NONE", False),
        ("none", False),
        ("无信", False),
        ("", False),
        (None, False),
        ("a", False),  # grades are exact codes, not free text
        (" A", False),
        ("B", False),
        ("AAAA", False),
    ],
)
def test_grade_at_least_a(grade: str | None, expected: bool) -> None:
    assert grade_at_least_a(grade) is expected


@pytest.mark.parametrize(
    ("grade", "overdue_in_year", "expected"),
    [
        ("AAA+", False, True),
        ("A", False, True),
        ("A", True, False),
        ("AAA+", True, False),
        ("NONE", False, False),
        (None, False, False),
        ("无信", True, False),
    ],
)
def test_credit_household(grade: str | None, overdue_in_year: bool, expected: bool) -> None:
    assert credit_household(grade, overdue_in_year) is expected


@pytest.mark.parametrize(
    ("non_performing", "outstanding", "expected"),
    [
        (D("300.00"), D("10000.00"), True),  # 3% exactly: 未超过 includes it
        (D("300.40"), D("10000.00"), False),  # 3.004% is over, though it rounds to 0.0300
        (D("301.00"), D("10000.00"), False),
        (D("0.00"), D("10000.00"), True),
        (D("0.00"), D("0.00"), True),  # no loans: ratio 0
    ],
)
def test_credit_village(non_performing: Decimal, outstanding: Decimal, expected: bool) -> None:
    assert credit_village(non_performing, outstanding, THREE_PERCENT) is expected


def test_credit_village_refuses_invalid_figures() -> None:
    with pytest.raises(ValueError, match="exceeds outstanding"):
        credit_village(D("2.00"), D("1.00"), THREE_PERCENT)
    with pytest.raises(ValueError, match="threshold"):
        credit_village(D("0.00"), D("1.00"), D("1.5"))


def test_community_at_every_boundary_is_awarded() -> None:
    # 以上 and 以内 include the number itself.
    assert credit_community(PASSING) == []


def test_community_with_perfect_figures_is_awarded() -> None:
    perfect = CommunityAssessment(
        loan_recovery=D("1"), npl_ratio=D("0"), new_loan_interest_recovery=D("1"), malicious_evasion=False
    )
    assert credit_community(perfect) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"loan_recovery": D("0.8999")}, ["LOAN_RECOVERY_BELOW_90"]),
        ({"loan_recovery": D("0.89999999")}, ["LOAN_RECOVERY_BELOW_90"]),
        ({"loan_recovery": D("0.9000")}, []),
        ({"npl_ratio": D("0.0501")}, ["NPL_ABOVE_5"]),
        ({"npl_ratio": D("0.05000001")}, ["NPL_ABOVE_5"]),
        ({"npl_ratio": D("0.0500")}, []),
        ({"new_loan_interest_recovery": D("0.9499")}, ["INTEREST_RECOVERY_BELOW_95"]),
        ({"new_loan_interest_recovery": D("0.9500")}, []),
        ({"malicious_evasion": True}, ["MALICIOUS_EVASION"]),
    ],
)
def test_community_criteria_boundaries(change: dict[str, Any], expected: list[str]) -> None:
    assert credit_community(replace(PASSING, **change)) == expected


def test_community_lists_every_failure_in_the_seed_order() -> None:
    failing = CommunityAssessment(
        loan_recovery=D("0.5"),
        npl_ratio=D("0.2"),
        new_loan_interest_recovery=D("0.5"),
        malicious_evasion=True,
    )
    assert credit_community(failing) == [
        "LOAN_RECOVERY_BELOW_90",
        "NPL_ABOVE_5",
        "INTEREST_RECOVERY_BELOW_95",
        "MALICIOUS_EVASION",
    ]
    assert credit_community(replace(failing, npl_ratio=D("0.01"), malicious_evasion=False)) == [
        "LOAN_RECOVERY_BELOW_90",
        "INTEREST_RECOVERY_BELOW_95",
    ]


@pytest.mark.parametrize("field", ["loan_recovery", "npl_ratio", "new_loan_interest_recovery"])
@pytest.mark.parametrize("bad", [D("-0.0001"), D("1.0001"), D("90"), D("NaN"), D("Infinity")])
def test_community_ratios_outside_zero_to_one_are_refused(field: str, bad: Decimal) -> None:
    change: dict[str, Any] = {field: bad}
    with pytest.raises(ValueError, match=f"{field} must be a ratio between 0 and 1"):
        credit_community(replace(PASSING, **change))


@pytest.mark.parametrize("field", ["loan_recovery", "npl_ratio", "new_loan_interest_recovery"])
def test_community_ratios_must_be_decimal(field: str) -> None:
    change: dict[str, Any] = {field: 0.95}
    with pytest.raises(TypeError, match="must be a Decimal"):
        replace(PASSING, **change)


def test_community_malicious_evasion_must_be_bool() -> None:
    zero: Any = 0
    with pytest.raises(TypeError, match="malicious_evasion must be a bool"):
        replace(PASSING, malicious_evasion=zero)


def test_community_assessment_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        PASSING.npl_ratio = D("0.5")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("rated", "households", "expected"),
    [
        (0, 0, D("0.0000")),  # no households: 0
        (0, 100, D("0.0000")),
        (30, 100, D("0.3000")),
        (29, 100, D("0.2900")),
        (100, 100, D("1.0000")),
        (1, 3, D("0.3333")),
        (2, 3, D("0.6667")),
        (1, 8, D("0.1250")),
        (1, 20000, D("0.0001")),  # 0.00005 exactly: ROUND_HALF_UP
        (1, 20001, D("0.0000")),
        (2999, 10000, D("0.2999")),
        (57, 200, D("0.2850")),
    ],
)
def test_coverage(rated: int, households: int, expected: Decimal) -> None:
    share = coverage(rated, households)
    assert share == expected
    assert share.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("rated", "households"),
    [(101, 100), (-1, 100), (0, -1), (1, 0)],
)
def test_invalid_coverage_counts_are_refused(rated: int, households: int) -> None:
    with pytest.raises(ValueError, match="rated_a_or_better must be between 0 and households"):
        coverage(rated, households)


@pytest.mark.parametrize(("rated", "households"), [(True, 10), (1, 10.0), ("1", 10), (1, None)])
def test_non_int_coverage_counts_are_refused(rated: Any, households: Any) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        coverage(rated, households)


@pytest.mark.parametrize(
    ("share", "points"),
    [
        (D("1"), D("3.00")),
        (D("0.5"), D("3.00")),
        (D("0.30"), D("3.00")),  # 30% 以上 includes 30%: full marks
        (D("0.3000"), D("3.00")),
        (D("0.29"), D("2.90")),  # 1 point short: -0.1
        (D("0.285"), D("2.85")),  # 1.5 points short: -0.15 (proportional)
        (D("0.25"), D("2.50")),
        (D("0.20"), D("2.00")),
        (D("0.10"), D("1.00")),
        (D("0.01"), D("0.10")),
        (D("0.0"), D("0.00")),
        (D("0"), D("0.00")),
        (D("0.2995"), D("3.00")),  # 2.995 rounds half up
        (D("0.2994"), D("2.99")),
        (D("0.1235"), D("1.24")),  # 1.235: half up
        (D("0.1234"), D("1.23")),
        (D("0.0005"), D("0.01")),  # 0.005: half up
        (D("0.0004"), D("0.00")),
    ],
)
def test_coverage_points(share: Decimal, points: Decimal) -> None:
    result = coverage_points(share)
    assert result == points
    assert result.as_tuple().exponent == -2


def test_coverage_feeds_coverage_points() -> None:
    assert coverage_points(coverage(57, 200)) == D("2.85")
    assert coverage_points(coverage(300, 1000)) == D("3.00")
    assert coverage_points(coverage(0, 0)) == D("0.00")


@pytest.mark.parametrize("share", [D("-0.01"), D("1.01"), D("30"), D("NaN"), D("-Infinity")])
def test_invalid_coverage_share_is_refused(share: Decimal) -> None:
    with pytest.raises(ValueError, match="share must be a ratio between 0 and 1"):
        coverage_points(share)


@pytest.mark.parametrize("share", [0.3, 1, "0.30", None])
def test_non_decimal_coverage_share_is_refused(share: Any) -> None:
    with pytest.raises(TypeError, match="share must be a Decimal"):
        coverage_points(share)
