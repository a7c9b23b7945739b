"""Money: ``Decimal`` yuan, exact to the fen, written as a string with two places (API.md).

On input a money field takes exactly what the published schema says, and nothing looser:

* a JSON string matching ``^[0-9]+(\\.[0-9]{1,2})?$``: ASCII digits, then optionally a point and
  one or two digits: ``"50000"``, ``"50000.00"``, ``"0.01"``, ``"01.00"`` (a leading zero is
  allowed, as the pattern allows it). No sign, no exponent (``"1e3"``), no ``_`` separators,
  no surrounding spaces, no ``"1."`` or ``".5"``, no digits of other scripts (full-width,
  Arabic-Indic, Devanagari: Python's ``Decimal()`` and ``\\d`` accept them, the contract does not);
* a JSON integer (exact), ``0`` or more;
* never a JSON number with a fraction or exponent (``12.5``, ``1e3``): it is a binary float
  and may have lost the fen before we see it; never ``true``/``false``.

Anything else is a 422 naming the field. Amounts of 10^13 yuan or more are out of range.
Python callers (events, the ledger) may also pass a ``Decimal`` with at most two places.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

FEN = Decimal("0.01")
MAX_MONEY = Decimal("1e13")


def to_fen(amount: Decimal) -> Decimal:
    """Round to the fen, half up (the Chinese banking convention, 四舍五入)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


# The contract's pattern, with explicit ASCII classes: ``\\d`` matches every script's digits
# in Python's re and in pydantic's Rust regex alike.
MONEY_PATTERN = r"^[0-9]+(\.[0-9]{1,2})?$"
_MONEY = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
# Past this many characters a string cannot be below MAX_MONEY unless padded with zeros;
# refused before Decimal() reads a megabyte of digits.
_MAX_TEXT = 64


def parse_money(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError('money must be a decimal string such as "50000.00", not a JSON number with a fraction')
    if isinstance(value, int):
        if value < 0:
            raise ValueError("money cannot be negative")
        value = Decimal(value)
    elif isinstance(value, str):
        if len(value) > _MAX_TEXT or not _MONEY.fullmatch(value):
            raise ValueError(
                'money is a string of ASCII digits with at most two decimal places, such as "50000.00" '
                f"(pattern {MONEY_PATTERN}); not {value[:40]!r}"
            )
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError("money must be a finite decimal amount")
    if value < 0:
        raise ValueError("money cannot be negative")
    # Before quantize: past 28 digits (the decimal context's precision) it raises instead
    # of answering.
    if value >= MAX_MONEY:
        raise ValueError("amount out of range")
    if value != value.quantize(FEN):
        raise ValueError("money has at most two decimal places (fen)")
    return to_fen(value)


def format_money(value: Decimal) -> str:
    return f"{to_fen(value):.2f}"


Money = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN, "examples": ["50000.00"]}),
]


# Ratios (API.md: "decimal strings with four places", e.g. "0.0312") on input: the same rule
# as money, with up to four places. The range (0 to 1, or what else) is the field's to check.
RATIO_PATTERN = r"^[0-9]+(\.[0-9]{1,4})?$"
_RATIO = re.compile(r"[0-9]+(\.[0-9]{1,4})?")


def parse_ratio(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError('a ratio is a decimal string such as "0.9500", not a JSON number with a fraction')
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        if len(value) > _MAX_TEXT or not _RATIO.fullmatch(value):
            raise ValueError(
                f'a ratio is a string of ASCII digits with at most four decimal places, such as "0.9500" '
                f"(pattern {RATIO_PATTERN}); not {value[:40]!r}"
            )
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError("a ratio must be a finite decimal")
    return value


RatioText = Annotated[
    Decimal,
    BeforeValidator(parse_ratio),
    WithJsonSchema({"type": "string", "pattern": RATIO_PATTERN, "examples": ["0.9500"]}),
]
