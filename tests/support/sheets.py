"""Collection sheets built byte by byte: XLSX files whose worksheet XML is written here, so a
test can make a million rows in a second, or a zip whose directory lies about a size."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape

import openpyxl  # type: ignore[import-untyped, unused-ignore]

SHEET_ENTRY = "xl/worksheets/sheet1.xml"


def _column(index: int) -> str:
    letters = ""
    number = index + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def row_xml(number: int, cells: Sequence[str]) -> str:
    """One worksheet row of text cells (inline strings, as some tools write them)."""
    inner = "".join(
        f'<c r="{_column(i)}{number}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
        for i, value in enumerate(cells)
        if value
    )
    return f'<row r="{number}">{inner}</row>'


def xlsx_with_rows(rows: Iterable[str], *, compresslevel: int = 6) -> bytes:
    """A real workbook (openpyxl's parts) whose first worksheet holds exactly ``rows``, each an
    XML ``<row>`` element (``row_xml``, or anything a test wants to try)."""
    workbook = openpyxl.Workbook()
    workbook.active.append(["placeholder"])
    written = io.BytesIO()
    workbook.save(written)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(written) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as target,
    ):
        for item in source.infolist():
            content = source.read(item)
            if item.filename == SHEET_ENTRY:
                text = content.decode()
                start, end = text.index("<sheetData>"), text.index("</sheetData>") + len("</sheetData>")
                content = (text[:start] + "<sheetData>" + "".join(rows) + "</sheetData>" + text[end:]).encode()
            target.writestr(item.filename, content)
    return out.getvalue()


def state_size(data: bytes, entry: str, size: int) -> bytes:
    """The same zip, but its central directory and local header state ``size`` as ``entry``'s
    uncompressed size: a lie that a reader must not trust."""
    patched = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(entry)
        local = info.header_offset
    # Local file header: signature, then the uncompressed size at offset 22.
    assert patched[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", patched, local + 22, size)
    # Central directory entry for it: signature PK\x01\x02, uncompressed size at offset 24,
    # local header offset at offset 42.
    position = patched.find(b"PK\x01\x02")
    while position != -1:
        if struct.unpack_from("<I", patched, position + 42)[0] == local:
            struct.pack_into("<I", patched, position + 24, size)
            return bytes(patched)
        position = patched.find(b"PK\x01\x02", position + 4)
    raise AssertionError(f"{entry} not found in the central directory")
