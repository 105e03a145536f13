"""Reading rows from CSV and xlsx files as a stream: encodings, cells, row numbers, limits.

Encodings are detected by :func:`vault.textfile.detect_encoding` (UTF-8 or GB18030/GBK, with a
check that GBK text which happens to be valid UTF-8 is not read as UTF-8 mojibake); a file that
stops decoding later is a clear error naming the encoding and the row, and ``--encoding``
overrides the guess. CSV is read a bounded line at a time (:mod:`vault.textfile` lists the
limits), xlsx by :mod:`connectors.file_import.xlsx` (its limits are listed there): no file,
however made, is read whole into memory.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from connectors.file_import.xlsx import XlsxReader, XlsxUnreadable
from vault.textfile import (
    TextUnreadable,
    bounded_lines,
    check_encoding,
    csv_error,
    detect_encoding,
    sniff_delimiter,
)

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
MAX_CELL = 10_000  # characters; longer is not a customer field (and csv's own limit is 128 KiB)
_CHINESE_DATE = re.compile(r"(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*日?")


class FileUnreadable(Exception):
    """Internal: the file cannot be read as the format or encoding says (no value inside)."""


def fingerprint(path: Path) -> str:
    """Identifies a file's content cheaply (size, head and tail), so that an interrupted import
    resumes only on the same file."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(65536))
        if size > 65536:
            handle.seek(max(65536, size - 65536))
            digest.update(handle.read(65536))
    return digest.hexdigest()[:32]


def is_excel(path: Path) -> bool:
    return path.suffix.lower() in EXCEL_SUFFIXES


def cell_text(value: Any) -> str:
    """A cell as text: Excel numbers without a trailing ``.0`` (phones stored as numbers),
    dates as ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def iso_date(text: str) -> str:
    """``1990/4/1``, ``1990.04.01``, ``1990年4月1日`` -> ``1990-04-01``; anything else as is
    (and then refused by the field's normaliser if it is no date)."""
    match = _CHINESE_DATE.fullmatch(text.strip())
    if match:
        year, month, day = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return text


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    cells: list[str]


class RowReader:
    """The header and then the rows of a file. ``empty_rows`` counts the blank rows read so far
    (they are skipped, not lost: the import reports how many there were)."""

    def __init__(self, path: Path, *, encoding: str | None) -> None:
        self.path = path
        self.excel = is_excel(path)
        self.detected = not self.excel and not encoding
        try:
            if self.excel:
                self.encoding = "xlsx"
            elif encoding:
                self.encoding = check_encoding(encoding)
            else:
                self.encoding = detect_encoding(path)
        except TextUnreadable as error:
            raise FileUnreadable(str(error)) from None
        self.empty_rows = 0
        self._close: list[Any] = []
        self._workbook: XlsxReader | None = None

    def rows(self) -> Iterator[Row]:
        """Every row, the header first (row 1); empty rows are skipped (and counted)."""
        self.empty_rows = 0
        if self.excel:
            yield from self._excel_rows()
            return
        source = self._csv_rows()
        number = 0
        while True:
            try:
                cells = next(source)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise FileUnreadable(
                    f"row {number + 1} does not decode as {self.encoding}; pass --encoding"
                ) from None
            except csv.Error as error:
                raise FileUnreadable(str(csv_error(error, f"row {number + 1}"))) from None
            except TextUnreadable as error:
                raise FileUnreadable(f"{error} (row {number + 1})") from None
            number += 1
            if any(cells):
                yield Row(number, cells)
            else:
                self.empty_rows += 1

    def _csv_rows(self) -> Iterator[list[str]]:
        handle = self.path.open("r", encoding=self.encoding, newline="")
        self._close.append(handle)
        delimiter = sniff_delimiter(handle)
        for cells in csv.reader(bounded_lines(handle), delimiter=delimiter):
            yield [cell.strip() for cell in cells]

    def _excel_rows(self) -> Iterator[Row]:
        try:
            if self._workbook is None:
                self._workbook = XlsxReader(self.path, cell_text)
                self._close.append(self._workbook)
            previous = 0
            for number, cells in self._workbook.rows():
                if number <= previous:
                    raise FileUnreadable(f"row {number} comes after row {previous} in the sheet")
                self.empty_rows += number - previous - 1
                previous = number
                if any(cells):
                    yield Row(number, cells)
                else:
                    self.empty_rows += 1
        except XlsxUnreadable as error:
            raise FileUnreadable(str(error)) from None

    def close(self) -> None:
        for handle in self._close:
            handle.close()
        self._close.clear()
        self._workbook = None
