"""Reading one cell of a village's collection sheet (采集表): yes/no words, amounts (200,000.00,
20万), counts, ID numbers that a spreadsheet may have turned into floats, certificate and
equipment lists, honour levels in Chinese. Each reader returns the value as the JSON body of
``POST /v1/households`` would carry it, or raises ``CellError`` with the reason for the
collector. Whether a value makes sense is judged later, with the API's own models
(``services/registry/imports.py``).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, NoReturn

from services.registry.domain.identifiers import InvalidIdentifier, normalise_identifier
from shared.jsonbody import duplicate_key_path


class CellError(ValueError):
    """A cell whose content cannot be read; the row is reported with this reason."""


_YES_NO: Final = "expected yes/no (是/否)"
_ID_LOST_DIGITS: Final = "ID number stored as a number lost digits; format the column as text"
_AMOUNT: Final = "expected an amount such as 200000, 200,000.00 or 20万"
_WHOLE_NUMBER: Final = "expected a whole number"

_TRUE: Final = frozenset({"true", "yes", "y", "1", "是", "有", "对", "√", "✓", "✔"})
_FALSE: Final = frozenset({"false", "no", "n", "0", "否", "无", "错", "×", "✗", "✘"})
# "None" for a list column is a statement (the household has none), unlike a blank cell.
_NONE_WORDS: Final = frozenset({"无", "没有", "none"})

_PLAIN_NUMBER: Final = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_GROUPED_NUMBER: Final = re.compile(r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")
_WHOLE: Final = re.compile(r"[+-]?[0-9]+(\.0*)?")
# What Excel writes into a CSV for a long number in a General-formatted cell: 4.10101E+17.
_SCIENTIFIC: Final = re.compile(r"[0-9](\.[0-9]+)?E\+?[0-9]+", re.IGNORECASE)
_LIST_SEPARATORS: Final = re.compile(r"[;；,，、/／\s]+")
# In an equipment list a comma followed by exactly three digits groups thousands (80,000).
_EQUIPMENT_SEPARATORS: Final = re.compile(r"[;；、/／\s]+|[,，](?![0-9]{3}(?![0-9]))")
# Excel counts up to 15 significant digits; an integral float above that may have lost some.
_EXACT_FLOAT_LIMIT: Final = 1e15

_CERTIFICATES: Final[Mapping[str, str]] = {
    "forest": "forest",
    "林权证": "forest",
    "林权": "forest",
    "land_contract": "land_contract",
    "土地承包经营权证": "land_contract",
    "承包证": "land_contract",
    "土地承包": "land_contract",
    "homestead": "homestead",
    "宅基地证": "homestead",
    "宅基地使用权证": "homestead",
    "宅基地": "homestead",
}
_HONOUR_LEVELS: Final = frozenset({"district", "township", "village"})
_CHINESE_HONOUR_LEVELS: Final[Mapping[str, str]] = {
    # The scorecard's top tier is "district level or above".
    "区级": "district",
    "县级": "district",
    "区县级": "district",
    "市级": "district",
    "省级": "district",
    "国家级": "district",
    "乡级": "township",
    "镇级": "township",
    "乡镇级": "township",
    "村级": "village",
}


def fold(text: str) -> str:
    # NFKC turns the full-width forms a Chinese IME produces (１, ＹＥＳ, ，) into ASCII.
    return unicodedata.normalize("NFKC", text).strip().casefold()


def is_blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _plain(amount: Decimal) -> str:
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def read_text(cell: object) -> str:
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, bool):
        raise CellError("expected text, not a yes/no value")
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < _EXACT_FLOAT_LIMIT:
        return str(int(cell))
    raise CellError("expected text")


def read_id_number(cell: object) -> str:
    if isinstance(cell, float):
        raise CellError(_ID_LOST_DIGITS)
    # Not read_text(): its str.strip() would also drop a no-break space, which the one
    # normalisation refuses in a JSON body too.
    text = cell if isinstance(cell, str) else read_text(cell)
    # The one normalisation of identifiers.py, as the API applies it; what it cannot fold
    # goes to the API's model as it is, which refuses it with the same reason as a JSON body.
    try:
        folded = normalise_identifier(text)
    except InvalidIdentifier:
        return text
    if _SCIENTIFIC.fullmatch(folded):
        raise CellError(_ID_LOST_DIGITS)
    return folded


def read_boolean(cell: object) -> bool:
    if isinstance(cell, bool):
        return cell
    if isinstance(cell, int | float) and cell in (0, 1):
        return bool(cell)
    if isinstance(cell, str):
        word = fold(cell)
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise CellError(_YES_NO)


def read_money(cell: object) -> str:
    if isinstance(cell, bool):
        raise CellError(_AMOUNT)
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        if not math.isfinite(cell):
            raise CellError(_AMOUNT)
        # repr is the shortest text that reads back as the same float, so 1234.5 stays 1234.5;
        # more than two places there means the sheet holds a computed or binary-rounded number.
        text = _plain(Decimal(repr(cell)))
        if len(text.partition(".")[2]) > 2:
            raise CellError("amount has more than two decimal places; round it to the fen")
        return text
    if not isinstance(cell, str):
        raise CellError(_AMOUNT)
    text = fold(cell).removesuffix("元").strip()
    scale = 1
    if text.endswith("万"):
        text = text.removesuffix("万").strip()
        scale = 10_000
    if "," in text:
        # Only proper thousands grouping: "1,5" is one and a half in much of Europe, not fifteen.
        if not _GROUPED_NUMBER.fullmatch(text):
            raise CellError(_AMOUNT)
        text = text.replace(",", "")
    if not _PLAIN_NUMBER.fullmatch(text):
        raise CellError(_AMOUNT)
    return _plain(Decimal(text) * scale)


def read_count(cell: object) -> int:
    if isinstance(cell, bool):
        raise CellError(_WHOLE_NUMBER)
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    if isinstance(cell, str):
        text = fold(cell).removesuffix("次").strip()
        if _WHOLE.fullmatch(text):
            return int(text.partition(".")[0])
    raise CellError(_WHOLE_NUMBER)


def read_honour_level(cell: object) -> str:
    text = read_text(cell)
    word = fold(text)
    if word in _HONOUR_LEVELS:
        return word
    return _CHINESE_HONOUR_LEVELS.get(word.removesuffix("荣誉").removesuffix("以上"), text)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


def read_json_array(cell: object) -> list[Any]:
    if not isinstance(cell, str) or not cell.strip().startswith("["):
        raise CellError("expected a JSON array such as [{...}]")
    try:
        # Floats are kept as their digits: money and areas must not pass through binary floats,
        # and the API's Money type refuses JSON numbers with a fraction for that reason.
        parsed = json.loads(cell, parse_float=str, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CellError(f"invalid JSON: {exc.msg} at character {exc.pos + 1}") from None
    except ValueError as exc:
        raise CellError(f"invalid JSON: {exc}") from None
    if not isinstance(parsed, list):
        raise CellError("expected a JSON array such as [{...}]")
    # As in a JSON body (shared/jsonbody.py): json.loads keeps the last of two equal keys.
    if (path := duplicate_key_path(cell)) is not None:
        raise CellError(f"invalid JSON: the key {path!r} appears more than once in one object")
    return parsed


def read_certificates(cell: object) -> list[str]:
    text = read_text(cell)
    if fold(text) in _NONE_WORDS:
        return []
    tokens = [token for token in _LIST_SEPARATORS.split(text) if token]
    return [_CERTIFICATES.get(fold(token), token) for token in tokens]


def read_equipment(cell: object) -> list[Any]:
    if isinstance(cell, str) and cell.strip().startswith("["):
        return read_json_array(cell)
    if not isinstance(cell, str):
        return [{"registered": True, "value": read_money(cell)}]
    if fold(cell) in _NONE_WORDS:
        return []
    tokens = [token for token in _EQUIPMENT_SEPARATORS.split(cell.strip()) if token]
    items: list[Any] = []
    for token in tokens:
        try:
            items.append({"registered": True, "value": read_money(token)})
        except CellError:
            raise CellError(f"{token!r}: {_AMOUNT}") from None
    return items
