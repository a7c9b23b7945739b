"""How much of an uploaded sheet is read at most (issue 21: 141 KB of XLSX held a million empty
rows, 48 MB of XML, and stalled every service for 30 s). The zip bombs are built here."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest

from services.registry.domain.sheet import SheetError, SheetTooLarge, parse_sheet
from services.registry.domain.sheet_limits import ArchiveBudget, BoundedZipFile, SheetLimits
from services.registry.settings import RegistrySettings
from tests.support.sheets import SHEET_ENTRY, row_xml, state_size, xlsx_with_rows

ID = "410101199001011234"
DEFAULTS = RegistrySettings().sheet_limits()
HEADER = row_xml(1, ["身份证号", "姓名"])


def limits(**changes: int) -> SheetLimits:
    return dataclasses.replace(DEFAULTS, **changes)


def million_empty_rows() -> bytes:
    # As the issue's file: a header, then a million rows with nothing in them.
    return xlsx_with_rows([HEADER, *(f'<row r="{n}"/>' for n in range(2, 1_000_002))], compresslevel=9)


def unzipped_size(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(info.file_size for info in archive.infolist())


def test_the_defaults_read_a_sheet_of_the_size_issue_3_promises() -> None:
    # 20,000 households (bench/registry_import.py), under a title row, with blank rows between.
    rows = [row_xml(1, ["东村农户信息采集表"]), row_xml(2, ["身份证号", "姓名"])]
    rows += [row_xml(n, [ID, f"农户{n}"]) for n in range(4, 20_004)]
    assert len(parse_sheet(xlsx_with_rows(rows), limits=DEFAULTS)) == 20_000


def test_a_million_empty_rows_are_refused_with_the_defaults() -> None:
    data = million_empty_rows()
    assert len(data) < 3_000_000 < 15_000_000 < unzipped_size(data)
    with pytest.raises(SheetTooLarge, match="more than 30,000 rows"):
        parse_sheet(data, limits=DEFAULTS)


def test_stated_sizes_past_the_limit_are_refused_before_anything_is_parsed() -> None:
    data = million_empty_rows()
    size = unzipped_size(data)
    # Had the rows been parsed, the row limit would have said so first.
    with pytest.raises(SheetTooLarge, match=f"decompresses to {size:,} bytes, more than 1,000,000"):
        parse_sheet(data, limits=limits(max_unzipped_bytes=1_000_000, max_rows=10))


def test_decompressed_bytes_are_counted_whatever_the_directory_states() -> None:
    data = million_empty_rows()
    with BoundedZipFile(io.BytesIO(data), ArchiveBudget(100_000)) as archive, archive.open(SHEET_ENTRY) as entry:
        read = 0
        with pytest.raises(SheetTooLarge, match="more than 100,000 bytes"):
            while chunk := entry.read(16 * 1024):
                read += len(chunk)
        assert read <= 100_000
    # And so when openpyxl reads: the budget is shared by all entries, reads of whole parts included.
    with BoundedZipFile(io.BytesIO(data), ArchiveBudget(100)) as archive, pytest.raises(SheetTooLarge):
        archive.read("[Content_Types].xml")


def test_an_entry_stating_a_small_size_is_refused_not_read_in_full() -> None:
    data = state_size(million_empty_rows(), SHEET_ENTRY, 5_000)
    assert unzipped_size(data) < 40_000
    # The directory passes the size check; the entry is then read only as far as it says
    # (zipfile stops there, and the budget would stop it at the limit), so its XML ends midway.
    with pytest.raises(SheetError, match="not a readable XLSX file"):
        parse_sheet(data, limits=limits(max_unzipped_bytes=40_000))


def test_too_many_entries_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(11):
            archive.writestr(f"part{n}.xml", "<x/>")
    with pytest.raises(SheetTooLarge, match="11 entries; a workbook has at most 10"):
        parse_sheet(buffer.getvalue(), limits=limits(max_zip_entries=10))


def csv_lines(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


@pytest.mark.parametrize("blank", ["", ",", " , "])
def test_csv_rows_past_the_limit_are_refused_blank_ones_counted(blank: str) -> None:
    lines = ["身份证号,姓名", f"{ID},张三"] + [blank] * 8
    assert len(parse_sheet(csv_lines(*lines), limits=limits(max_rows=10))) == 1
    with pytest.raises(SheetTooLarge, match="more than 10 rows"):
        parse_sheet(csv_lines(*lines, blank), limits=limits(max_rows=10))


def test_xlsx_rows_past_the_limit_are_refused_blank_ones_counted() -> None:
    rows = [HEADER, row_xml(2, [ID, "张三"]), row_xml(10, ["", ""])]
    assert len(parse_sheet(xlsx_with_rows(rows), limits=limits(max_rows=10))) == 1
    with pytest.raises(SheetTooLarge, match="more than 10 rows"):
        parse_sheet(xlsx_with_rows([*rows, row_xml(11, ["", ""])]), limits=limits(max_rows=10))


def test_a_row_far_below_the_data_counts_every_row_above_it() -> None:
    # A few bytes of XML, but the reader makes a row for each of the million before it.
    data = xlsx_with_rows([HEADER, row_xml(1_000_000, [ID, "张三"])])
    assert unzipped_size(data) < 20_000
    with pytest.raises(SheetTooLarge, match="more than 30,000 rows"):
        parse_sheet(data, limits=DEFAULTS)
