"""The first sheet of an xlsx workbook as a stream of rows, within limits.

openpyxl, even in read-only mode, loads every shared string before the first row (an xlsx of
776 KB holding 3 million empty shared strings took 712 MB) and trusts the sizes in the zip. This
reader parses the parts it needs itself, with expat, a chunk at a time, and counts what it
inflates; a file past a limit stops with an error naming the limit:

=========================  ==============  ==================================================
``MAX_SHARED_STRINGS``     1,000,000       strings in the shared-strings table
``MAX_SHARED_CHARS``       64 Mi           characters in all shared strings together
``MAX_CELL_CHARS``         32,767          characters in one cell (Excel's own limit)
``MAX_SHEET_BYTES``        1 GiB           inflated bytes of the sheet's XML
``MAX_PART_BYTES``         256 MiB         inflated bytes of the shared strings (and 16 MiB
                                           for the workbook, its relations and the styles)
``MAX_COLUMNS``            16,384          columns of a row (Excel's own limit)
=========================  ==============  ==================================================

A document type declaration (the way to entity-expansion bombs) is refused. Cells are read as
openpyxl reads them with ``data_only=True``: the cached result of a formula, numbers as numbers,
numbers under a date format as dates (1900 or 1904 date system), booleans, inline strings.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from xml.parsers import expat

MAX_SHARED_STRINGS = 1_000_000
MAX_SHARED_CHARS = 64 * 1024 * 1024
MAX_CELL_CHARS = 32_767
MAX_SHEET_BYTES = 1024 * 1024 * 1024
MAX_PART_BYTES = 256 * 1024 * 1024
MAX_SMALL_PART_BYTES = 16 * 1024 * 1024
MAX_COLUMNS = 16_384
CHUNK = 64 * 1024

# Built-in number formats that are dates or times (ECMA-376 §18.8.30, with the East Asian ids).
_DATE_FORMAT_IDS = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)])
_QUOTED = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')
_DATE_CODES = re.compile(r"[dmyhs]", re.IGNORECASE)
_COLUMN = re.compile(r"([A-Za-z]{1,3})(\d*)")


class XlsxUnreadable(Exception):
    """The workbook cannot be read within the limits (the message names which)."""


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def _column(reference: str | None) -> int | None:
    """``"C7"`` -> 2 (columns counted from 0)."""
    if not reference:
        return None
    match = _COLUMN.fullmatch(reference)
    if match is None:
        return None
    index = 0
    for letter in match.group(1).upper():
        index = index * 26 + ord(letter) - 64
    return index - 1


def _is_date_format(code: str) -> bool:
    return bool(_DATE_CODES.search(_QUOTED.sub("", code)))


class _Parser:
    """expat over one zip member, fed a chunk at a time, with the inflated bytes counted."""

    def __init__(self, archive: zipfile.ZipFile, member: str, limit: int, what: str) -> None:
        self.archive = archive
        self.member = member
        self.limit = limit
        self.what = what
        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.buffer_text = True
        self.parser.StartDoctypeDeclHandler = self._refuse
        self.parser.EntityDeclHandler = self._refuse

    def _refuse(self, *_: Any) -> None:
        raise XlsxUnreadable(f"the workbook's {self.what} declares a document type (refused)")

    def chunks(self) -> Iterator[None]:
        """Feed the member; yields after each chunk so the caller can take what was parsed."""
        read = 0
        try:
            with self.archive.open(self.member) as stream:
                while True:
                    chunk = stream.read(CHUNK)
                    read += len(chunk)
                    if read > self.limit:
                        raise XlsxUnreadable(
                            f"the workbook's {self.what} inflates to more than "
                            f"{self.limit // (1024 * 1024):,} MiB (the limit)"
                        )
                    self.parser.Parse(chunk, not chunk)
                    yield
                    if not chunk:
                        return
        except expat.ExpatError as error:
            raise XlsxUnreadable(
                f"the workbook's {self.what} is not well-formed XML "
                f"({expat.ErrorString(error.code)})"
            ) from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
            raise XlsxUnreadable(f"the workbook is a broken zip ({type(error).__name__})") from None
        except NotImplementedError:
            raise XlsxUnreadable("the workbook uses a compression this reader lacks") from None

    def run(self) -> None:
        for _ in self.chunks():
            pass


class XlsxReader:
    """The rows of the first worksheet: ``(row number, cells as text)``."""

    def __init__(self, path: Path, cell_text: Callable[[Any], str]) -> None:
        self.cell_text = cell_text
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError):
            raise XlsxUnreadable("not a readable xlsx workbook (not a zip file)") from None
        self.names = set(self.archive.namelist())
        self.epoch = datetime(1899, 12, 30)
        self.sheet = self._first_sheet()
        self.date_styles = self._date_styles()
        self._shared: list[str] | None = None

    def close(self) -> None:
        self.archive.close()

    # --- the workbook's parts -----------------------------------------------------------------

    def _first_sheet(self) -> str:
        sheets: list[str] = []
        targets: dict[str, str] = {}
        if "xl/workbook.xml" not in self.names:
            raise XlsxUnreadable("not a readable xlsx workbook (no xl/workbook.xml)")
        parser = _Parser(self.archive, "xl/workbook.xml", MAX_SMALL_PART_BYTES, "workbook part")

        def start(name: str, attributes: dict[str, str]) -> None:
            local = _local(name)
            if local == "workbookPr":
                if attributes.get("date1904", "").lower() in ("1", "true"):
                    self.epoch = datetime(1904, 1, 1)
            elif local == "sheet":
                for key, value in attributes.items():
                    if _local(key) == "id" and key != "id":  # r:id, not a plain id
                        sheets.append(value)

        parser.parser.StartElementHandler = start
        parser.run()
        rels = "xl/_rels/workbook.xml.rels"
        if rels in self.names:
            relations = _Parser(self.archive, rels, MAX_SMALL_PART_BYTES, "relations")

            def relation(name: str, attributes: dict[str, str]) -> None:
                if _local(name) == "Relationship" and "Id" in attributes:
                    targets[attributes["Id"]] = attributes.get("Target", "")

            relations.parser.StartElementHandler = relation
            relations.run()
        for sheet in sheets[:1]:
            target = targets.get(sheet, "")
            member = (
                target.lstrip("/")
                if target.startswith("/")
                else posixpath.normpath(posixpath.join("xl", target))
            )
            if member in self.names:
                return member
        if "xl/worksheets/sheet1.xml" in self.names:
            return "xl/worksheets/sheet1.xml"
        raise XlsxUnreadable("not a readable xlsx workbook (no worksheet)")

    def _date_styles(self) -> frozenset[int]:
        """The cell styles (``s`` of a cell) whose number format is a date or a time."""
        if "xl/styles.xml" not in self.names:
            return frozenset()
        formats: dict[int, str] = {}
        styles: list[int] = []
        depth: list[str] = []
        parser = _Parser(self.archive, "xl/styles.xml", MAX_SMALL_PART_BYTES, "styles")

        def start(name: str, attributes: dict[str, str]) -> None:
            local = _local(name)
            if local == "numFmt" and attributes.get("numFmtId", "").isdigit():
                formats[int(attributes["numFmtId"])] = attributes.get("formatCode", "")
            elif local == "xf" and depth and depth[-1] == "cellXfs":
                number = attributes.get("numFmtId", "0")
                styles.append(int(number) if number.isdigit() else 0)
            depth.append(local)

        def end(name: str) -> None:
            depth.pop()

        parser.parser.StartElementHandler = start
        parser.parser.EndElementHandler = end
        parser.run()
        dated = set()
        for index, number in enumerate(styles):
            code = formats.get(number)
            if (code is None and number in _DATE_FORMAT_IDS) or (code and _is_date_format(code)):
                dated.add(index)
        return frozenset(dated)

    def shared_strings(self) -> list[str]:
        """The shared-strings table, counted as it is read (and read once)."""
        if self._shared is not None:
            return self._shared
        shared: list[str] = []
        member = next((n for n in self.names if n.lower() == "xl/sharedstrings.xml"), None)
        if member is None:
            self._shared = shared
            return shared
        parser = _Parser(self.archive, member, MAX_PART_BYTES, "shared strings")
        state = {"chars": 0, "in_t": False, "phonetic": 0}
        pieces: list[str] = []
        interned: dict[str, str] = {}

        def start(name: str, attributes: dict[str, str]) -> None:
            local = _local(name)
            if local == "si":
                pieces.clear()
                if len(shared) >= MAX_SHARED_STRINGS:
                    raise XlsxUnreadable(
                        f"the workbook has more than {MAX_SHARED_STRINGS:,} shared strings "
                        "(the limit)"
                    )
            elif local == "rPh":
                state["phonetic"] += 1
            elif local == "t" and not state["phonetic"]:
                state["in_t"] = True

        def end(name: str) -> None:
            local = _local(name)
            if local == "si":
                text = "".join(pieces)
                if len(text) > MAX_CELL_CHARS:
                    raise XlsxUnreadable(
                        f"shared string {len(shared)} is longer than {MAX_CELL_CHARS:,} "
                        "characters (the limit for one cell)"
                    )
                shared.append(interned.setdefault(text, text) if len(text) < 16 else text)
            elif local == "rPh":
                state["phonetic"] -= 1
            elif local == "t":
                state["in_t"] = False

        def data(text: str) -> None:
            if state["in_t"]:
                state["chars"] += len(text)
                if state["chars"] > MAX_SHARED_CHARS:
                    raise XlsxUnreadable(
                        f"the workbook's shared strings hold more than "
                        f"{MAX_SHARED_CHARS // (1024 * 1024)} Mi characters (the limit)"
                    )
                pieces.append(text)

        parser.parser.StartElementHandler = start
        parser.parser.EndElementHandler = end
        parser.parser.CharacterDataHandler = data
        parser.run()
        self._shared = shared
        return shared

    # --- the sheet ----------------------------------------------------------------------------

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Every row that has a cell, with its number as the sheet gives it (from 1)."""
        shared = self.shared_strings()
        parser = _Parser(self.archive, self.sheet, MAX_SHEET_BYTES, "sheet")
        done: list[tuple[int, list[str]]] = []
        row: dict[int, str] = {}
        cell: dict[str, Any] = {}
        pieces: list[str] = []
        where = {"row": 0, "column": -1, "text": False}

        def start(name: str, attributes: dict[str, str]) -> None:
            local = _local(name)
            if local == "row":
                number = attributes.get("r", "")
                where["row"] = int(number) if number.isdigit() else int(where["row"]) + 1
                where["column"] = -1
                row.clear()
            elif local == "c":
                column = _column(attributes.get("r"))
                where["column"] = int(where["column"]) + 1 if column is None else column
                if int(where["column"]) >= MAX_COLUMNS:
                    raise XlsxUnreadable(
                        f"row {where['row']} has more than {MAX_COLUMNS:,} columns (the limit)"
                    )
                cell.clear()
                cell.update(type=attributes.get("t", "n"), style=attributes.get("s", "0"))
                pieces.clear()
            elif local in ("v", "t"):
                where["text"] = True

        def end(name: str) -> None:
            local = _local(name)
            if local in ("v", "t"):
                where["text"] = False
            elif local == "c":
                row[int(where["column"])] = self._value(cell, "".join(pieces), shared, where)
            elif local == "row" and row:
                cells = [""] * (max(row) + 1)
                for column, text in row.items():
                    cells[column] = text
                done.append((int(where["row"]), cells))

        def data(text: str) -> None:
            if where["text"]:
                pieces.append(text)
                if sum(map(len, pieces)) > MAX_CELL_CHARS:
                    raise XlsxUnreadable(
                        f"row {where['row']}: a cell is longer than {MAX_CELL_CHARS:,} "
                        "characters (the limit for one cell)"
                    )

        parser.parser.StartElementHandler = start
        parser.parser.EndElementHandler = end
        parser.parser.CharacterDataHandler = data
        for _ in parser.chunks():
            yield from done
            done.clear()

    def _value(self, cell: dict[str, Any], text: str, shared: list[str], where: Any) -> str:
        kind = cell["type"]
        if kind == "s":
            if not text.strip().isdigit() or int(text) >= len(shared):
                raise XlsxUnreadable(
                    f"row {where['row']}: a cell refers to a shared string the workbook lacks"
                )
            return self.cell_text(shared[int(text)])
        if kind in ("inlineStr", "str", "e"):
            return self.cell_text(text)
        if kind == "b":
            return self.cell_text(text.strip() in ("1", "true"))
        if not text.strip():
            return ""
        if kind == "d":
            try:
                return self.cell_text(datetime.fromisoformat(text.strip()))
            except ValueError:
                return self.cell_text(text)
        try:
            number: int | float = int(text) if text.strip().lstrip("-").isdigit() else float(text)
        except ValueError:
            return self.cell_text(text)
        style = cell["style"]
        if style.isdigit() and int(style) in self.date_styles:
            return self.cell_text(self._date(float(number)))
        return self.cell_text(number)

    def _date(self, serial: float) -> datetime | time:
        """An Excel serial as openpyxl's ``from_excel`` reads it (a time of day below 1)."""
        day, fraction = divmod(serial, 1)
        part = timedelta(milliseconds=round(fraction * 86_400_000))
        if 0 <= serial < 1 and part.days == 0:
            return (datetime.min + part).time()
        if 0 < serial < 60 and self.epoch.year == 1899:
            day += 1  # Excel's 1900 leap-year bug, as openpyxl undoes it
        try:
            return self.epoch + timedelta(days=day) + part
        except OverflowError:
            raise XlsxUnreadable("a date cell is out of range") from None
