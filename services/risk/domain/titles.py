"""Yearly credit titles and the credit-household coverage indicator. Pure rules, no I/O.

004 §6(4) and 004 §7(4) "双评": credit households (信用户), credit villages (信用村); seed 000 §4
and 000 §5: the credit community (信用社区), its criteria and its yearly award; seed 003 annex 1:
coverage of households rated A or better.
Civil Code art. 1259: 以上/以内 include the number, 超过 excludes it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction

from services.risk.domain.breaker import exceeds

# DOMAIN §2: the graded levels that carry credit; "NONE" (无信) and anything else is below A.
CREDIT_GRADES = ("AAA+", "AAA", "AA", "A")

# seed 000 §4(6): 本息回收率达到90%以上; 不良贷款率控制在5%以内; 利息回收率在95%以上
LOAN_RECOVERY_MIN = Decimal("0.90")
NPL_MAX = Decimal("0.05")
INTEREST_RECOVERY_MIN = Decimal("0.95")

# seed 003 annex 1: 信用农户面达30%以上的得满分,每低1个百分点扣0.1分,扣完为止
COVERAGE_FULL_SHARE = Decimal("0.30")
COVERAGE_FULL_POINTS = Decimal("3")
COVERAGE_POINTS_PER_PERCENTAGE_POINT = Decimal("0.1")

_SHARE_DIGITS = 4
_POINTS_DIGITS = 2


def _round_half_up(value: Fraction, digits: int) -> Decimal:
    # Rounded in integers so the result is exact whatever the size of the inputs.
    magnitude = abs(value) * 10**digits
    units = (magnitude.numerator * 2 + magnitude.denominator) // (magnitude.denominator * 2)
    return Decimal(f"{'-' if value < 0 else ''}{units}E-{digits}")


def _ratio(name: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a ratio between 0 and 1, got {value}")
    return value


def _count(name: str, value: int) -> int:
    # bool is an int subclass; True households is a caller bug, not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


# DOMAIN §2: grades AAA+ / AAA / AA / A carry credit, none (无信) does not
def grade_at_least_a(grade: str | None) -> bool:
    return grade in CREDIT_GRADES


# 004 §6(4)2: 当年信用贷款不良率未超过3%的, 授予"信用村"
def credit_village(non_performing: Decimal, outstanding: Decimal, threshold: Decimal) -> bool:
    """Whether the village's NPL ratio for the year is not above ``threshold`` (at it still earns the title)."""
    return not exceeds(non_performing, outstanding, threshold)


# 004 §6(4)1 (product choice: 诚实守信 read as graded A or better and no overdue in the year)
def credit_household(grade: str | None, overdue_in_year: bool) -> bool:
    return grade_at_least_a(grade) and not overdue_in_year


@dataclass(frozen=True)
class CommunityAssessment:
    """One community's figures for the year (seed 000 §4(6)); ratios are 0..1."""

    # principal and interest recovery ratio of the laid-off workers' small guaranteed loans
    loan_recovery: Decimal
    # NPL ratio of the financial institutions in the community
    npl_ratio: Decimal
    # interest recovery ratio on the year's new loans
    new_loan_interest_recovery: Decimal
    malicious_evasion: bool

    def __post_init__(self) -> None:
        # Refused at construction so that no out-of-range figure can reach an award decision.
        for field in fields(self):
            if field.name != "malicious_evasion":
                _ratio(field.name, getattr(self, field.name))
        if not isinstance(self.malicious_evasion, bool):
            raise TypeError(f"malicious_evasion must be a bool, got {type(self.malicious_evasion).__name__}")


# seed 000 §4(6): every criterion must hold; all failures are reported, not just the first
def credit_community(a: CommunityAssessment) -> list[str]:
    """The codes of the criteria the community fails, in the seed's order; empty means awarded."""
    failed: list[str] = []
    if a.loan_recovery < LOAN_RECOVERY_MIN:
        failed.append("LOAN_RECOVERY_BELOW_90")
    if a.npl_ratio > NPL_MAX:
        failed.append("NPL_ABOVE_5")
    if a.new_loan_interest_recovery < INTEREST_RECOVERY_MIN:
        failed.append("INTEREST_RECOVERY_BELOW_95")
    if a.malicious_evasion:
        failed.append("MALICIOUS_EVASION")
    return failed


# seed 003 annex 1: credit-household coverage = households rated A or better / all households
def coverage(rated_a_or_better: int, households: int) -> Decimal:
    """The coverage share, four places, ROUND_HALF_UP; 0 when there are no households."""
    rated = _count("rated_a_or_better", rated_a_or_better)
    total = _count("households", households)
    if not 0 <= rated <= total:
        raise ValueError(f"rated_a_or_better must be between 0 and households ({households}), got {rated_a_or_better}")
    if total == 0:
        return Decimal("0E-4")
    return _round_half_up(Fraction(rated, total), _SHARE_DIGITS)


# seed 003 annex 1 (product choice: the deduction is proportional to the shortfall, not per whole point)
def coverage_points(share: Decimal) -> Decimal:
    """Points for the coverage indicator: 3.00 at 30% or more, 0.1 less per percentage point below."""
    value = _ratio("share", share)
    if value >= COVERAGE_FULL_SHARE:
        return _round_half_up(Fraction(COVERAGE_FULL_POINTS), _POINTS_DIGITS)
    shortfall_points = (Fraction(COVERAGE_FULL_SHARE) - Fraction(value)) * 100
    points = Fraction(COVERAGE_FULL_POINTS) - Fraction(COVERAGE_POINTS_PER_PERCENTAGE_POINT) * shortfall_points
    # 扣完为止: the deduction stops at zero.
    return _round_half_up(max(points, Fraction(0)), _POINTS_DIGITS)
