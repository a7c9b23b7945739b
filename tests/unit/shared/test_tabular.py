"""shared/tabular.py: the CSV and the XLSX read back, by the csv module and by openpyxl, to the
values given, to the fen."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from openpyxl import load_workbook

from shared.tabular import Column, Sheet, to_csv, to_xlsx

SHEET = Sheet(
    name="贴息清单",
    columns=[Column("name", "借款人"), Column("days", "天数", "int"), Column("amount", "贴息金额", "money")],
    rows=[{"name": "张*", "days": 92, "amount": Decimal("1234567.89")}, {"name": "李*", "days": 1, "amount": "0.01"}],
    totals={"name": "合计", "amount": Decimal("1234567.90")},
    heading=[("期间", "2026-07-01 至 2026-09-30"), ("日期", date(2026, 10, 8))],
)


def test_csv_has_a_bom_keys_lines_and_totals() -> None:
    raw = to_csv(SHEET)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [
        ["row", "name", "days", "amount"],
        ["line", "张*", "92", "1234567.89"],
        ["line", "李*", "1", "0.01"],
        ["totals", "合计", "", "1234567.90"],
    ]
    assert raw.count(b"\r\n") == 4


def test_xlsx_reads_back_to_the_fen_with_titles_heading_and_totals() -> None:
    book = load_workbook(io.BytesIO(to_xlsx([SHEET])))
    ws = book["贴息清单"]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0] == ["期间", "2026-07-01 至 2026-09-30", None]
    assert values[1] == ["日期", "2026-10-08", None]
    assert values[3] == ["借款人", "天数", "贴息金额"]
    assert values[4][:2] == ["张*", 92]
    assert Decimal(str(values[4][2])) == Decimal("1234567.89")
    assert Decimal(str(values[5][2])) == Decimal("0.01")
    assert values[6][0] == "合计"
    assert Decimal(str(values[6][2])) == Decimal("1234567.90")
    assert ws.cell(row=5, column=3).number_format == "#,##0.00"
