"""Reading a village's household collection sheet (采集表), uploaded as CSV or XLSX.

Each data row becomes a dict shaped like the JSON body of ``POST /v1/households``. Nothing here
judges whether a value makes sense (a negative amount, an unknown certificate kind, a 17-digit
ID number): the caller validates every row with the same pydantic models as the API, so a sheet
and a JSON client are held to one set of rules. This module reports only what it could not *read*.

A blank cell means "not known" and leaves the field out, exactly as an absent JSON key does.

This module knows the sheet's layout: its columns and their Chinese headers, the header row,
the data rows, and the two file formats. How one cell's content is read is ``sheet_cells.py``;
how much of a file is read at most, ``sheet_limits.py``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from openpyxl.reader.excel import ExcelReader  # type: ignore[import-untyped, unused-ignore]

from services.registry.domain.sheet_cells import (
    CellError,
    fold,
    is_blank,
    read_boolean,
    read_certificates,
    read_count,
    read_equipment,
    read_honour_level,
    read_id_number,
    read_json_array,
    read_money,
    read_text,
)
from services.registry.domain.sheet_limits import BoundedZipFile, SheetLimits, SheetTooLarge

__all__ = ["COLUMNS", "REQUIRED_COLUMNS", "SheetError", "SheetLimits", "SheetRow", "SheetTooLarge", "parse_sheet"]


class SheetError(ValueError):
    """The file as a whole cannot be read, so no row of it can be imported."""


@dataclass(frozen=True)
class SheetRow:
    number: int  # as Excel shows it: the header is row 1 in a sheet without a title, blank rows count
    values: dict[str, Any]
    errors: list[tuple[str, str]]  # (field, reason) for cells that could not be read; values omits them


_Row = Sequence[object]

_ZIP_MAGIC: Final = b"PK\x03\x04"
# Excel 97-2003 (.xls) is an OLE compound file. Not detected by name or content type: browsers
# send application/vnd.ms-excel for plain .csv files on machines where Excel is installed.
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DELIMITERS: Final = (",", "\t", ";")


@dataclass(frozen=True)
class _Column:
    key: str
    aliases: tuple[str, ...]
    read: Callable[[object], Any]
    in_profile: bool


def _top(key: str, aliases: tuple[str, ...], read: Callable[[object], Any]) -> _Column:
    return _Column(key, aliases, read, in_profile=False)


def _profile(key: str, aliases: tuple[str, ...], read: Callable[[object], Any]) -> _Column:
    return _Column(key, aliases, read, in_profile=True)


_COLUMNS: Final = (
    _top("id_number", ("身份证号", "户主身份证号", "身份证号码"), read_id_number),
    _top("name", ("姓名", "户主姓名"), read_text),
    _top("village_code", ("村代码", "行政村代码"), read_text),
    _top("poor_household", ("贫困户", "建档立卡贫困户", "是否贫困户"), read_boolean),
    _profile("head_party_member", ("党员", "户主党员"), read_boolean),
    _profile("head_college_or_above", ("大专以上", "户主大专以上学历"), read_boolean),
    _profile("head_healthy", ("身体健康", "户主身体健康"), read_boolean),
    _profile("military_service_in_family", ("服过兵役", "家庭成员服兵役"), read_boolean),
    _profile("homestead_house_value", ("宅基地房屋价值", "自建房价值"), read_money),
    _profile("income_project", ("增收项目", "有增收项目"), read_boolean),
    _profile("business_entity_scale", ("经营主体规模",), read_money),
    _profile("certificates", ("证书", "权证"), read_certificates),
    _profile("equipment", ("设备",), read_equipment),
    _profile("honour_level", ("荣誉", "荣誉级别"), read_honour_level),
    _profile("family_harmony", ("家庭和睦",), read_boolean),
    _profile("neighbour_harmony", ("邻里和睦",), read_boolean),
    _profile("illegal_petitions_last_year", ("非法上访次数",), read_count),
    _profile("urban_properties", ("城镇房产",), read_json_array),
    _profile("commercial_insurance", ("商业保险",), read_boolean),
    _profile("guarantees_given_total", ("对外担保总额",), read_money),
    _profile("mortgages_given_total", ("对外抵押总额",), read_money),
    _profile("court_enforcement_within_3y", ("三年内被执行",), read_boolean),
    _profile("currently_under_enforcement", ("正在被执行",), read_boolean),
    _profile("vice_record", ("黄赌毒",), read_boolean),
    _profile("guarantee_currently_overdue", ("担保逾期",), read_boolean),
    _top("members", ("家庭成员",), read_json_array),
)

COLUMNS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({c.key: c.aliases for c in _COLUMNS})
"""Every column the sheet may have: English key → Chinese headers, the first being the usual one."""
REQUIRED_COLUMNS: Final = ("id_number", "name")


def _header_name(text: str) -> str:
    name = re.sub(r"[\s_-]+", "", fold(text)).rstrip("*")
    # Templates mark headers as "姓名*" or "身份证号（必填）", or give the unit: "自建房价值（元）".
    # A 万元 unit is deliberately not stripped: its cells would be read as yuan.
    for suffix in ("(必填)", "(选填)", "(元)"):
        name = name.removesuffix(suffix)
    return name.rstrip("*")


_BY_HEADER: Final[Mapping[str, _Column]] = {
    _header_name(name): column for column in _COLUMNS for name in (column.key, *column.aliases)
}


def _column_letter(index: int) -> str:
    letters = ""
    number = index + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _header_label(cell: object) -> str:
    return cell.strip() if isinstance(cell, str) else str(cell)


def _read_header(cells: _Row) -> list[_Column | None]:
    columns: list[_Column | None] = []
    unknown: list[str] = []
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    for index, cell in enumerate(cells):
        if is_blank(cell):
            columns.append(None)
            continue
        label = _header_label(cell)
        column = _BY_HEADER.get(_header_name(label))
        columns.append(column)
        if column is None:
            unknown.append(f"{_column_letter(index)} {label!r}")
        elif column.key in seen:
            first = seen[column.key]
            duplicates.append(
                f"{_column_letter(first)} {_header_label(cells[first])!r} and "
                f"{_column_letter(index)} {label!r} are both {column.key}"
            )
        else:
            seen[column.key] = index
    if unknown:
        raise SheetError(f"unknown column(s): {', '.join(unknown)}")
    if duplicates:
        raise SheetError(f"duplicate column(s): {'; '.join(duplicates)}")
    missing = [f"{COLUMNS[key][0]} ({key})" for key in REQUIRED_COLUMNS if key not in seen]
    if missing:
        raise SheetError(f"missing required column(s): {', '.join(missing)}")
    return columns


def _is_title(cells: _Row) -> bool:
    # Village templates often carry a merged title row ("XX村农户信息采集表") above the header.
    filled = [cell for cell in cells if not is_blank(cell)]
    return len(filled) == 1 and _header_name(_header_label(filled[0])) not in _BY_HEADER


def _read_row(number: int, cells: _Row, columns: list[_Column | None]) -> SheetRow:
    values: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for index, cell in enumerate(cells):
        if is_blank(cell):
            continue
        column = columns[index] if index < len(columns) else None
        if column is None:
            # Dropping it silently would lose whatever the collector meant to record.
            errors.append((f"column {_column_letter(index)}", "value in a column without a header"))
            continue
        try:
            value = column.read(cell)
        except CellError as exc:
            errors.append((column.key, str(exc)))
            continue
        (profile if column.in_profile else values)[column.key] = value
    if profile:
        values["profile"] = profile
    return SheetRow(number=number, values=values, errors=errors)


def _within(rows: Iterable[_Row], max_rows: int) -> Iterator[_Row]:
    # Every row counts, blank ones too: a file of a million empty rows is a million rows of
    # work. Raised on the first row past the limit, before the rest is read.
    for number, cells in enumerate(rows, start=1):
        if number > max_rows:
            raise SheetTooLarge(
                f"the sheet has more than {max_rows:,} rows (blank rows count: delete the empty rows below the data)"
            )
        yield cells


def _read_rows(rows: Iterable[_Row]) -> list[SheetRow]:
    columns: list[_Column | None] | None = None
    result: list[SheetRow] = []
    for number, cells in enumerate(rows, start=1):
        if all(is_blank(cell) for cell in cells):
            continue
        if columns is None:
            if not _is_title(cells):
                columns = _read_header(cells)
            continue
        result.append(_read_row(number, cells, columns))
    if columns is None:
        raise SheetError(f"no header row: expected columns such as {COLUMNS['id_number'][0]} and {COLUMNS['name'][0]}")
    return result


def _open_workbook(data: bytes, limits: SheetLimits) -> tuple[Any, BoundedZipFile]:
    try:
        archive = BoundedZipFile.checked(data, limits)
    except SheetTooLarge:
        raise
    except Exception as exc:  # zipfile raises BadZipFile, but also OSError, EOFError... for a damaged one
        raise SheetError(f"not a readable XLSX file ({type(exc).__name__})") from exc
    try:
        # openpyxl's load_workbook, but reading through the bounded archive: the reader opens
        # its own, which is swapped before anything is read from it.
        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
        reader.archive.close()
        reader.archive = archive
        reader.read()
    except Exception as exc:  # openpyxl and zipfile raise a wide variety for a damaged file
        archive.close()
        if archive.budget.exceeded:
            raise SheetTooLarge(f"the XLSX file decompresses to more than {limits.max_unzipped_bytes:,} bytes") from exc
        raise SheetError(f"not a readable XLSX file ({type(exc).__name__})") from exc
    return reader.wb, archive


def _xlsx_rows(data: bytes, limits: SheetLimits) -> list[_Row]:
    workbook, archive = _open_workbook(data, limits)
    try:
        sheets: list[Any] = list(workbook.worksheets)
        if not sheets:
            raise SheetError("the workbook has no worksheet")
        sheet = sheets[0]
        # The stored dimension is often wrong in files from other tools; without it every row
        # is read in full.
        sheet.reset_dimensions()
        # Read everything now: rows are parsed lazily and the archive is closed below.
        rows: list[_Row] = [tuple(row) for row in _within(sheet.iter_rows(values_only=True), limits.max_rows)]
    except (SheetError, SheetTooLarge):
        raise
    except Exception as exc:
        if archive.budget.exceeded:
            raise SheetTooLarge(f"the XLSX file decompresses to more than {limits.max_unzipped_bytes:,} bytes") from exc
        raise SheetError(f"not a readable XLSX file ({type(exc).__name__})") from exc
    finally:
        workbook.close()
    return rows


def _decode(data: bytes) -> str:
    # Excel's "Unicode text" export is UTF-16 with a BOM; its CSV export on a Chinese Windows is GBK.
    encodings = ("utf-16",) if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetError("not an XLSX file, nor CSV text in UTF-8 or GBK")


def _delimiter(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _csv_rows(data: bytes, limits: SheetLimits) -> list[_Row]:
    text = _decode(data)
    if _CONTROL_CHARS.search(text):
        raise SheetError("not an XLSX file, nor CSV text (the file contains binary data)")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        # One record per row even when a quoted cell spans lines, as Excel numbers them.
        return list(_within(reader, limits.max_rows))
    except csv.Error as exc:
        raise SheetError(f"not a readable CSV file: {exc}") from exc


def _is_xlsx(data: bytes, filename: str | None, content_type: str | None) -> bool:
    if data.startswith(_ZIP_MAGIC):
        return True
    if filename is not None and filename.lower().endswith((".xlsx", ".xlsm")):
        return True
    return content_type is not None and "spreadsheetml" in content_type.lower()


def parse_sheet(
    data: bytes, filename: str | None = None, content_type: str | None = None, *, limits: SheetLimits
) -> list[SheetRow]:
    """Read an uploaded collection sheet into one ``SheetRow`` per non-blank data row.

    Raises ``SheetError`` when the file as a whole cannot be read: neither XLSX nor CSV, no
    header row, an unknown or duplicate column, or a required column missing; and
    ``SheetTooLarge`` when it is past ``limits``, as soon as that is known.
    """
    if data.startswith(_OLE_MAGIC):
        raise SheetError("Excel 97-2003 (.xls) files are not supported; save the sheet as .xlsx or CSV")
    rows = _xlsx_rows(data, limits) if _is_xlsx(data, filename, content_type) else _csv_rows(data, limits)
    return _read_rows(rows)
