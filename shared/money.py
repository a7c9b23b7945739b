"""Money: ``Decimal`` yuan, exact to the fen, written as a string with two places (API.md).

Floats are refused on input: 0.1 + 0.2 is not 0.3, and a client that sends money as a JSON
number with a fraction has already lost precision before we see it. Integers are exact and
accepted.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

FEN = Decimal("0.01")
MAX_MONEY = Decimal("1e13")


def to_fen(amount: Decimal) -> Decimal:
    """Round to the fen, half up (the Chinese banking convention, 四舍五入)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def parse_money(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError('money must be a decimal string such as "50000.00", not a JSON number with a fraction')
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal amount") from None
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
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["50000.00"]}),
]
