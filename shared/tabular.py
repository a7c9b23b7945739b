"""Tables the programme's parties download: CSV for machines, XLSX (openpyxl) for people.

One ``Sheet`` is the single description of a report: its columns (a stable machine ``key`` and
the district's column ``title``), its rows, a totals row and heading lines (the period, who
filed it). Both renderings come from it, so a CSV and its XLSX never disagree.

- CSV: UTF-8 with a byte order mark (Excel in a Chinese locale reads a CSV without one as GBK
  and garbles the names), CRLF line ends (RFC 4180), header = the keys; a first ``row`` column
  says ``line`` or ``totals``. Money as fen-exact decimal strings, dates ISO 8601.
- XLSX: one worksheet per sheet; heading lines, then the titles, the rows and a 合计 row;
  money cells are numbers formatted ``#,##0.00`` (a ``Decimal`` is stored as its exact
  decimal text, so it reads back to the fen), dates are dates.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

Kind = Literal["text", "money", "int", "date", "rate"]
Format = Literal["csv", "xlsx"]
BOM = "\ufeff"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_NUMBER_FORMATS: dict[Kind, str] = {"money": "#,##0.00", "int": "0", "date": "yyyy-mm-dd", "rate": "0.0000##"}


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: Kind = "text"


@dataclass(frozen=True)
class Sheet:
    name: str  # the worksheet's name (31 characters at most, Excel's limit)
    columns: Sequence[Column]
    rows: Sequence[Mapping[str, object]]
    totals: Mapping[str, object] | None = None
    heading: Sequence[tuple[str, object]] = field(default_factory=tuple)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(sheet: Sheet) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", *(c.key for c in sheet.columns)])
    for row in sheet.rows:
        writer.writerow(["line", *(_text(row.get(c.key)) for c in sheet.columns)])
    if sheet.totals is not None:
        writer.writerow(["totals", *(_text(sheet.totals.get(c.key)) for c in sheet.columns)])
    return (BOM + buffer.getvalue()).encode("utf-8")


def _cell(value: object, kind: Kind) -> object:
    if value is None:
        return None
    if kind in ("money", "rate") and isinstance(value, str):
        return Decimal(value)
    return value


def to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    book = Workbook()
    book.remove(book.active)  # a new workbook has one empty sheet
    bold = Font(bold=True)
    for sheet in sheets:
        ws = book.create_sheet(sheet.name[:31])
        for label, value in sheet.heading:
            ws.append([label, _text(value)])
        if sheet.heading:
            ws.append([])
        ws.append([c.title for c in sheet.columns])
        for cell in ws[ws.max_row]:
            cell.font = bold
        lines = [*sheet.rows, *([sheet.totals] if sheet.totals is not None else [])]
        for row in lines:
            ws.append([_cell(row.get(c.key), c.kind) for c in sheet.columns])
            for cell, column in zip(ws[ws.max_row], sheet.columns, strict=True):
                if column.kind in _NUMBER_FORMATS:
                    cell.number_format = _NUMBER_FORMATS[column.kind]
        if sheet.totals is not None:
            for cell in ws[ws.max_row]:
                cell.font = bold
        for i, column in enumerate(sheet.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, 2 * len(column.title) + 4))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download(sheets: Sequence[Sheet], fmt: Format, filename: str) -> Response:
    """The sheets as an attachment: CSV carries the first sheet (CSV has one table), XLSX all."""
    if fmt == "csv":
        content, media_type = to_csv(sheets[0]), "text/csv; charset=utf-8"
    else:
        content, media_type = to_xlsx(sheets), XLSX
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )


# For an endpoint's OpenAPI ``responses``: the two file types beside its JSON.
FILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX: {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
