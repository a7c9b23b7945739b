"""The NPL circuit breaker (004 §6(3), DOMAIN §4-5). Pure rules, no I/O.

A village whose NPL ratio *exceeds* the threshold (3%) gets no new credit; a township where
30% *or more* of the villages exceed it gets no lending at all. Civil Code art. 1259: 超过
excludes the number itself, 以上 includes it. Thresholds are configuration and passed in.

Comparisons are made on the exact figures, as integer numerators and denominators multiplied
across: a rounded ratio, or Decimal arithmetic limited to the context's 28 digits, could put a
village on the wrong side of the line. (Not ``Fraction``: its gcd after every operation made
these checks a visible share of the risk consumer's time, and cross-multiplying needs none.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

RATIO_PLACES = Decimal("0.0001")
_RATIO_DIGITS = 4

# A manual decision by the district, with a written reason kept by the caller (DOMAIN §5).
Override = Literal["frozen", "unfrozen"]
_OVERRIDES: frozenset[str] = frozenset({"frozen", "unfrozen"})


# An exact quotient as (numerator, denominator), the denominator positive; not reduced.
Exact = tuple[int, int]


def _round_half_up(numerator: int, denominator: int, digits: int) -> Decimal:
    """numerator / denominator (both >= 0, denominator > 0) to ``digits`` places, half up.
    Rounded in integers so the result is exact whatever the size of the inputs."""
    units = (numerator * 10**digits * 2 + denominator) // (denominator * 2)
    return Decimal(f"{units}E-{digits}")


def _amount(name: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite amount, got {value}")
    if value < 0:
        raise ValueError(f"{name} cannot be negative, got {value}")
    return value


def _principals(non_performing: Decimal, outstanding: Decimal) -> tuple[Exact, Exact]:
    # Decimal comparisons are exact whatever the context; only products and quotients are not.
    bad = _amount("non_performing", non_performing)
    total = _amount("outstanding", outstanding)
    if bad > total:
        raise ValueError(f"non-performing principal {non_performing} exceeds outstanding principal {outstanding}")
    return bad.as_integer_ratio(), total.as_integer_ratio()


def _unit_share(name: str, value: Decimal) -> Exact:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a ratio between 0 and 1, got {value}")
    return value.as_integer_ratio()


def _count(name: str, value: int) -> int:
    # bool is an int subclass; True villages is a caller bug, not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


# DOMAIN §4: NPL ratio = non-performing principal / outstanding principal; no loans: ratio 0
def npl_ratio(non_performing: Decimal, outstanding: Decimal) -> Decimal:
    """The NPL ratio for display and reports, four places, ROUND_HALF_UP."""
    (bad_n, bad_d), (total_n, total_d) = _principals(non_performing, outstanding)
    if total_n == 0:
        return Decimal("0E-4")
    # (bad_n / bad_d) / (total_n / total_d)
    return _round_half_up(bad_n * total_d, bad_d * total_n, _RATIO_DIGITS)


# 004 §6(3): 不良率超过3% (strictly greater, Civil Code art. 1259)
def exceeds(non_performing: Decimal, outstanding: Decimal, threshold: Decimal) -> bool:
    """Whether the NPL ratio is strictly above ``threshold``, decided on the exact figures.

    Not on ``npl_ratio``: 3.004% rounds to 0.0300 yet exceeds 3%.
    """
    (bad_n, bad_d), (total_n, total_d) = _principals(non_performing, outstanding)
    limit_n, limit_d = _unit_share("threshold", threshold)
    if total_n == 0:
        return False
    # bad_n / bad_d > (limit_n / limit_d) * (total_n / total_d), every denominator positive
    return bad_n * limit_d * total_d > limit_n * total_n * bad_d


def assess(non_performing: Decimal, outstanding: Decimal, threshold: Decimal) -> tuple[Decimal, bool]:
    """``npl_ratio`` and ``exceeds`` of the same figures, which the risk consumer asks of
    every loan event: the figures checked and made exact once instead of twice."""
    (bad_n, bad_d), (total_n, total_d) = _principals(non_performing, outstanding)
    limit_n, limit_d = _unit_share("threshold", threshold)
    if total_n == 0:
        return Decimal("0E-4"), False
    ratio = _round_half_up(bad_n * total_d, bad_d * total_n, _RATIO_DIGITS)
    return ratio, bad_n * limit_d * total_d > limit_n * total_n * bad_d


# 004 §6(3), DOMAIN §5: 30% or more of a township's villages over the threshold halts the township
def township_halted(villages: int, villages_over: int, share: Decimal) -> bool:
    """Whether ``villages_over`` of ``villages`` is at least ``share`` of them (以上 includes)."""
    total = _count("villages", villages)
    over = _count("villages_over", villages_over)
    limit_n, limit_d = _unit_share("share", share)
    if not 0 <= over <= total:
        raise ValueError(f"villages_over must be between 0 and villages ({villages}), got {villages_over}")
    if total == 0:
        return False
    return over * limit_d >= limit_n * total


# DOMAIN §5: the district may impose or lift a freeze by hand; its decision wins while it lasts
def effective_frozen(over: bool, override: Override | None) -> bool:
    """Whether new credit is frozen, given the automatic state and any manual override."""
    if override is None:
        return over
    if override not in _OVERRIDES:
        raise ValueError(f"override must be one of {sorted(_OVERRIDES)} or None, got {override!r}")
    return override == "frozen"


# (product choice) a manual override lasts until the automatic state changes
def override_survives(over_when_set: bool, over_now: bool) -> bool:
    """Whether an override set while the automatic state was ``over_when_set`` still applies.

    Once the ratio crosses the threshold either way the situation it answered is gone, and the
    automatic rule takes over again rather than a stale decision freezing or freeing a village.
    """
    return over_when_set == over_now
