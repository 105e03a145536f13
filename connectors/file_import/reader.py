"""Reading rows from CSV and xlsx files as a stream: encodings, cells, row numbers.

Encodings: a UTF-8 or UTF-16 byte-order mark decides; otherwise the first
:data:`SAMPLE_BYTES` must decode as UTF-8, or else as GB18030 (a superset of GBK and GB2312,
which Chinese spreadsheet exports use). A file that stops decoding later is a clear error
naming the encoding and the row, and ``--encoding`` overrides the guess.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

SAMPLE_BYTES = 4 * 1024 * 1024
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
MAX_CELL = 10_000  # characters; longer is not a customer field (and csv's own limit is 128 KiB)
_CHINESE_DATE = re.compile(r"(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*日?")


class FileUnreadable(Exception):
    """Internal: the file cannot be read as the format or encoding says (no value inside)."""


def detect_encoding(path: Path) -> str:
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for candidate in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(candidate)().decode(
                sample, final=len(sample) < SAMPLE_BYTES
            )
            return candidate
        except UnicodeDecodeError:
            continue
    raise FileUnreadable("the file is neither UTF-8 nor GB18030/GBK; pass --encoding")


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
    """The header and then the rows of a file, from row ``start`` on."""

    def __init__(self, path: Path, *, encoding: str | None) -> None:
        self.path = path
        self.excel = is_excel(path)
        self.encoding = "xlsx" if self.excel else (encoding or detect_encoding(path))
        if not self.excel:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise FileUnreadable(f"unknown encoding {self.encoding!r}") from None
        self._close: list[Any] = []

    def rows(self) -> Iterator[Row]:
        """Every row, the header first (row 1); empty rows are skipped."""
        source = self._excel_rows() if self.excel else self._csv_rows()
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
                raise FileUnreadable(f"row {number + 1} is not valid CSV ({error})") from None
            number += 1
            if any(cell for cell in cells):
                yield Row(number, cells)

    def _csv_rows(self) -> Iterator[list[str]]:
        handle = self.path.open("r", encoding=self.encoding, newline="")
        self._close.append(handle)
        first = handle.readline()
        handle.seek(0)
        delimiter = max(",\t;", key=first.count)  # the header's most frequent separator
        for cells in csv.reader(handle, delimiter=delimiter):
            yield [cell.strip() for cell in cells]

    def _excel_rows(self) -> Iterator[list[str]]:
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds for a broken file
            raise FileUnreadable(f"not a readable xlsx workbook ({type(error).__name__})") from None
        self._close.append(workbook)
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [cell_text(value) for value in values]

    def close(self) -> None:
        for handle in self._close:
            handle.close()
        self._close.clear()
