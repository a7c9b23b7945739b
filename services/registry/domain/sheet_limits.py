"""How much of an uploaded collection sheet is read at most (issue 21): rows, and for an XLSX
file (a zip archive) its entries and the bytes they decompress to.

The upload limit (shared/bodylimit.py) bounds the bytes received, not the work they make: 141 KB
of XLSX can hold a million empty rows, 48 MB of XML. These limits are checked before that work
where the file allows it (the zip's central directory states every entry's size) and again
while it is done, since what a file states may be false: decompressed bytes are counted as
they are read, rows as they are parsed, and the first one past a limit stops the reading.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["ArchiveBudget", "BoundedZipFile", "SheetLimits", "SheetTooLarge"]


@dataclass(frozen=True)
class SheetLimits:
    # Defaults and why: services/registry/settings.py (VCREDIT_REGISTRY_IMPORT_*).
    max_rows: int  # rows as a spreadsheet numbers them: header, title and blank rows count
    max_unzipped_bytes: int  # all entries of an XLSX archive together, decompressed
    max_zip_entries: int


class SheetTooLarge(Exception):
    """The file is past one of the limits: nothing of it is imported.

    Not a ValueError: openpyxl wraps a ValueError raised while it reads in one of its own,
    and this must reach the caller as itself."""


class ArchiveBudget:
    """Decompressed bytes left to read, shared by every entry opened from one archive."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.read = 0

    def spend(self, n: int) -> None:
        self.read += n
        if self.read > self.max_bytes:
            raise SheetTooLarge(f"the XLSX file decompresses to more than {self.max_bytes:,} bytes")

    @property
    def exceeded(self) -> bool:
        return self.read > self.max_bytes


class _CountedEntry(io.RawIOBase):
    """One entry of the archive, read through the budget."""

    def __init__(self, entry: IO[bytes], budget: ArchiveBudget) -> None:
        super().__init__()
        self._entry = entry
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._entry.read(len(buffer))
        self._budget.spend(len(data))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._entry.close()
        super().close()


class BoundedZipFile(zipfile.ZipFile):
    """A zip archive whose entries, however they are opened, are read within ``budget``.

    Python's zipfile stops an entry at its stated size, so today the stated sizes bound the
    bytes; the count does not rely on that, nor on the statement being true."""

    def __init__(self, file: IO[bytes], budget: ArchiveBudget) -> None:
        super().__init__(file)
        self.budget = budget

    def open(self, name: Any, mode: Any = "r", pwd: bytes | None = None, *, force_zip64: bool = False) -> IO[bytes]:
        entry = super().open(name, mode, pwd, force_zip64=force_zip64)
        if mode != "r":
            return entry
        return io.BufferedReader(_CountedEntry(entry, self.budget))

    @classmethod
    def checked(cls, data: bytes, limits: SheetLimits) -> BoundedZipFile:
        """The archive, once its directory states no more entries and bytes than ``limits``
        allow. Raises what zipfile raises for what is not a zip archive."""
        archive = cls(io.BytesIO(data), ArchiveBudget(limits.max_unzipped_bytes))
        try:
            entries = archive.infolist()
            if len(entries) > limits.max_zip_entries:
                raise SheetTooLarge(
                    f"the XLSX file has {len(entries):,} entries; a workbook has at most {limits.max_zip_entries:,}"
                )
            stated = sum(entry.file_size for entry in entries)
            if stated > limits.max_unzipped_bytes:
                raise SheetTooLarge(
                    f"the XLSX file decompresses to {stated:,} bytes, more than {limits.max_unzipped_bytes:,}"
                )
        except BaseException:
            archive.close()
            raise
        return archive
