"""Export file formats: CSV (UTF-8 with BOM, formula injection neutralised), JSON Lines, and
xlsx (openpyxl write-only mode). Each writes rows as they come, holding none of them.

A format is an :class:`ExportWriter` subclass; plugins add formats through the
``vault_register_export_formats`` hook (:mod:`vault.hookspecs`).
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any, ClassVar, cast
from unicodedata import east_asian_width

from vault.serialise import neutralise

Cell = str | None
UTF8_BOM = b"\xef\xbb\xbf"
# A spreadsheet reads a cell starting with one of these as a formula (or a DDE call): =, +, -,
# @, and tab / carriage return before them (OWASP "CSV injection").


# Values of these field types were validated on the way in (vault/fields/normalise.py); one that
# also has its type's shape (below) is a phone number, an address or an ID, never a formula, and
# is exported as it is: `+8619906480894`, not `'+8619906480894`. Free text keeps the guard, and so
# does a typed value of another shape (an email whose local part starts with `=`, say).
_TYPED_SHAPES = {
    "phone": re.compile(r"\+?[0-9]+(?:\*+[0-9]*)*"),  # E.164, or the platform's masked form
    "email": re.compile(r"[a-z0-9][a-z0-9._%+*-]*@[a-z0-9*][a-z0-9.*-]*"),
    "id_number": re.compile(r"[0-9*]{17}[0-9X*]"),
    "date": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
}


def cell_text(value: str, field_type: str | None = None) -> str:
    """The text a spreadsheet cell gets: a typed value of its type's shape as it is, anything
    else through :func:`neutralise`."""
    shape = _TYPED_SHAPES.get(field_type or "")
    if shape is not None and shape.fullmatch(value):
        return value
    return neutralise(value)


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet's default font: CJK and other wide characters two."""
    return sum(2 if east_asian_width(c) in ("W", "F") else 1 for c in text)


class HashingStream:
    """Writes through to ``out`` and keeps the SHA-256 and the byte count of what passed.

    Deliberately not seekable (no ``seek``): a zip writer then streams with data descriptors
    rather than going back to patch headers, so the hash is of the bytes as finally written.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        self._out.write(data)
        self.bytes += len(data)
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        self._out.flush()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class ExportWriter(ABC):
    """One export file being written: the header at construction, rows as they come, the
    trailer at :meth:`close`. ``out`` is never closed by the writer.

    Subclasses set ``name`` (the ``--format`` value), ``extension`` and ``media_type``.
    Values are strings, or ``None`` for a field the customer has no value for.

    ``headers`` are the texts of the header row (default: the column names, e.g. Chinese
    labels with ``vault export --headers zh``); ``types`` maps a column to its field type
    (``phone``, ``email``, ...), which decides how a spreadsheet cell is guarded.
    """

    name: ClassVar[str]
    extension: ClassVar[str]
    media_type: ClassVar[str]

    def __init__(
        self,
        out: IO[bytes] | HashingStream,
        columns: Sequence[str],
        *,
        headers: Sequence[str] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> None:
        self.out = out
        self.columns = list(columns)
        self.headers = list(headers) if headers is not None else list(self.columns)
        if len(self.headers) != len(self.columns):
            raise ValueError("one header per column")
        self.types: list[str | None] = [(types or {}).get(c) for c in self.columns]

    @classmethod
    def create(
        cls,
        out: IO[bytes] | HashingStream,
        columns: Sequence[str],
        *,
        headers: Sequence[str] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> ExportWriter:
        """A writer of this format. A plugin's writer whose constructor takes only ``(out,
        columns)`` (the interface before headers and types) still works, with the column
        names as headers."""
        accepted = inspect.signature(cls.__init__).parameters
        if "headers" in accepted and "types" in accepted:
            return cls(out, columns, headers=headers, types=types)
        return cls(out, columns)

    @abstractmethod
    def write_rows(self, rows: Iterable[Sequence[Cell]]) -> None:
        """Write a batch of rows, each with one value per column."""

    def close(self) -> None:  # noqa: B027  (most formats have no trailer)
        """Finish the file (a format's trailer)."""


class CsvWriter(ExportWriter):
    """UTF-8 with a byte-order mark (Excel then reads Chinese text right), CRLF rows, and every
    cell that a spreadsheet would run as a formula prefixed with ``'``."""

    name = "csv"
    extension = "csv"
    media_type = "text/csv; charset=utf-8"

    def __init__(
        self,
        out: IO[bytes] | HashingStream,
        columns: Sequence[str],
        *,
        headers: Sequence[str] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(out, columns, headers=headers, types=types)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        self.out.write(UTF8_BOM)
        self._csv.writerow([neutralise(c) for c in self.headers])
        self._flush()

    def _flush(self) -> None:
        self.out.write(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def write_rows(self, rows: Iterable[Sequence[Cell]]) -> None:
        types = self.types
        self._csv.writerows(
            [
                cell_text(value, kind) if value else ""
                for value, kind in zip(row, types, strict=True)
            ]
            for row in rows
        )
        self._flush()


class JsonlWriter(ExportWriter):
    """One JSON object per line, keys in column order; no formula concerns (not a sheet)."""

    name = "jsonl"
    extension = "jsonl"
    media_type = "application/x-ndjson"

    def write_rows(self, rows: Iterable[Sequence[Cell]]) -> None:
        columns = self.columns
        lines = [
            json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False) for row in rows
        ]
        if lines:
            self.out.write(("\n".join(lines) + "\n").encode("utf-8"))


_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class XlsxWriter(ExportWriter):
    """An xlsx workbook of one sheet, through openpyxl's write-only mode.

    openpyxl's write-only sheet normally spools its XML to a temporary file, which would put
    clear PII on disk; here the sheet XML streams straight into the zip entry of the output
    (``WorksheetWriter(ws, out=entry)``), and openpyxl writes the rest of the package after it.
    Every string cell is written as a string (``data_type = "s"``), so ``=…`` stays text and is
    never a formula.
    """

    name = "xlsx"
    extension = "xlsx"
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    SHEET_PATH = "xl/worksheets/sheet1.xml"

    MIN_WIDTH = 8
    MAX_WIDTH = 60

    def __init__(
        self,
        out: IO[bytes] | HashingStream,
        columns: Sequence[str],
        *,
        headers: Sequence[str] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> None:
        from zipfile import ZIP_DEFLATED, ZipFile

        from openpyxl import Workbook
        from openpyxl.worksheet._writer import WorksheetWriter

        super().__init__(out, columns, headers=headers, types=types)
        self._workbook = Workbook(write_only=True)
        self._sheet: Any = self._workbook.create_sheet("export")
        self._archive = ZipFile(cast("IO[bytes]", out), "w", ZIP_DEFLATED, allowZip64=True)
        self._entry = self._archive.open(self.SHEET_PATH, "w", force_zip64=True)
        self._sheet._writer = WorksheetWriter(self._sheet, out=self._entry)
        self._started = False

    def _start(self, first_rows: Sequence[Sequence[Cell]]) -> None:
        """Write the sheet's head: the column widths go before any row, so they are sized to
        the header and the first batch of rows (the file streams; later rows are not seen)."""
        from openpyxl.utils import get_column_letter

        widths = [display_width(h) for h in self.headers]
        for row in first_rows:
            for n, value in enumerate(row):
                if value:
                    widths[n] = max(widths[n], display_width(value))
        for n, width in enumerate(widths, start=1):
            dimension = self._sheet.column_dimensions[get_column_letter(n)]
            dimension.width = min(self.MAX_WIDTH, max(self.MIN_WIDTH, width + 2))
        self._sheet._writer.write_top()
        self._started = True
        append = self._sheet.append
        append([self._cell(h) for h in self.headers])

    def _cell(self, value: Cell) -> Any:
        from openpyxl.cell import WriteOnlyCell

        if value is None or value == "":
            return None
        cell = WriteOnlyCell(self._sheet, value=_ILLEGAL_XML.sub("\ufffd", value))
        cell.data_type = "s"
        return cell

    def write_rows(self, rows: Iterable[Sequence[Cell]]) -> None:
        if not self._started:
            rows = list(rows)
            self._start(rows)
        append = self._sheet.append
        for row in rows:
            append([self._cell(value) for value in row])

    def close(self) -> None:
        from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
        from openpyxl.writer.excel import ExcelWriter

        if not self._started:
            self._start([])
        self._sheet.close()
        self._entry.close()

        class _Package(ExcelWriter):  # type: ignore[misc]
            """openpyxl's package writer, minus the sheet: it is already in the archive."""

            def write_worksheet(self, ws: Any) -> None:
                ws._drawing = SpreadsheetDrawing()
                ws._drawing.charts = ws._charts
                ws._drawing.images = ws._images
                ws._rels = ws._writer._rels
                self.manifest.append(ws)

        self._workbook.properties.modified = datetime.now(UTC).replace(tzinfo=None)
        _Package(self._workbook, self._archive).save()


BUILTIN_WRITERS: tuple[type[ExportWriter], ...] = (CsvWriter, JsonlWriter, XlsxWriter)
