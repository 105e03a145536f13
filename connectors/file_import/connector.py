"""The file-import connector: pages of customer rows from one CSV or xlsx file.

The whole file is read once before the first page (:meth:`FileImportConnector.check`): a file
that cannot be read to its end (an encoding that stops decoding, broken CSV, a limit of
:mod:`vault.textfile` or :mod:`connectors.file_import.xlsx` passed) is refused, in one line,
before anything is written. A row is refused, with its number and the reason and never a value,
when a cell is too long or holds control characters, when it has more cells than the header,
when it has no key (none of the catalogue's searchable fields and no platform identity has a
value: such a row could never be matched again, and a re-import would duplicate it), or when
a value does not pass its field's normaliser. Blank rows are counted (``empty_rows``).

Its cursor is ``{"file": fingerprint, "row": last row read, "done": bool}``: an import killed
halfway resumes after the last committed batch of the same file; a finished or different file
starts from the top (upserts make a re-import of the same rows change nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as MappingType
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.file_import.mapping import IDENTITY, IGNORE, OBSERVED_AT, Mapping, load_mapping
from connectors.file_import.reader import FileUnreadable, Row, RowReader, fingerprint, iso_date
from vault.errors import ConfigError, ConnectorError
from vault.sync import Connector, ConnectorInfo, Cursor, ExternalCustomer, Page, Setting

DATE_FIELDS = frozenset({"birthday"})
KEY_FIELDS = frozenset({"phone", "email", "id_number"})  # the catalogue's searchable fields
# Cells may hold line breaks and tabs (a quoted note); other control characters (C0, DEL, C1),
# and the bidirectional overrides that make text display other than it is, are refused.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def has_control_characters(text: str) -> bool:
    return _CONTROLS.search(text) is not None


class FileImportConnector(Connector):
    info = ConnectorInfo(
        name="file_import",
        platform="file_import",
        description="CSV and Excel (xlsx) files: UTF-8, UTF-8 with BOM, GB18030/GBK; Chinese or "
        "English headers through a mapping",
        pulls=frozenset({"customers"}),
        settings=(
            Setting("path", "the file to import"),
            Setting("mapping", "a TOML column mapping over the default", required=False),
            Setting("encoding", "the file's encoding (detected if not given)", required=False),
            Setting("batch_size", "rows per committed batch", required=False, default="1000"),
        ),
    )
    sandbox = None
    # The library reaches this plugin through the plugin manager only: ``Session.import_file``
    # loads a mapping through the class it was given, never by importing this package.
    load_mapping = staticmethod(load_mapping)

    def __init__(
        self,
        settings: MappingType[str, str],
        *,
        mapping: Mapping | None = None,
        keys: Iterable[str] = KEY_FIELDS,
    ) -> None:
        super().__init__(settings)
        self.keys = frozenset(keys)
        self.path = Path(self.settings["path"])
        if not self.path.is_file():
            raise ConfigError(f"no file {self.path}")
        self.mapping = mapping or load_mapping(self.settings.get("mapping") or None)
        self.batch_size = max(1, int(self.settings.get("batch_size") or 1000))
        self.fingerprint = fingerprint(self.path)
        try:
            self.reader = RowReader(self.path, encoding=self.settings.get("encoding") or None)
        except FileUnreadable as error:
            raise ConnectorError(str(error), connector=self.info.name) from None
        self.encoding = self.reader.encoding
        self.encoding_detected = self.reader.detected
        self.rows_in_file = 0
        self.empty_rows = 0
        self.header: list[str] = []
        self.targets: list[str | None] = []
        self.ignored_columns: list[str] = []
        self.mtime = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        self._rows: Iterator[Row] | None = None
        self._position = 0  # the last row number handed out

    # --- reading ------------------------------------------------------------------------------

    def _open(self) -> None:
        self.reader.close()
        self._rows = self._checked(self.reader.rows())
        header = next(self._rows, None)
        if header is None:
            raise ConnectorError("the file is empty (no header row)", connector=self.info.name)
        self.header = header.cells
        self.targets = [self.mapping.target(h) if h else None for h in self.header]
        self.ignored_columns = [
            h for h, t in zip(self.header, self.targets, strict=True) if h and t is None
        ]
        if not any(t not in (None, IGNORE, OBSERVED_AT) for t in self.targets):
            raise ConnectorError(
                "no column of the header maps to a field (give --mapping MAP.toml)",
                connector=self.info.name,
            )
        if not any(t in self.keys or (t or "").startswith(IDENTITY) for t in self.targets):
            raise ConnectorError(
                "no column of the header is a key (one of "
                f"{', '.join(sorted(self.keys))} or identity:<platform>), so no row could be "
                "matched again; give --mapping MAP.toml",
                connector=self.info.name,
            )
        self._position = header.number

    def check(self) -> None:
        """Read the whole file once, before anything is written: a file that cannot be read to
        its end is refused now (``ConnectorError``, one line), not after some batches went in.
        Counts the rows (``rows_in_file``) and the blank ones (``empty_rows``)."""
        self._open()
        assert self._rows is not None
        rows = 0
        for _ in self._rows:
            rows += 1
        self.rows_in_file = rows
        self.empty_rows = self.reader.empty_rows
        self._rows = None

    def _checked(self, rows: Iterator[Row]) -> Iterator[Row]:
        try:
            yield from rows
        except FileUnreadable as error:
            raise ConnectorError(str(error), connector=self.info.name) from None

    def _seek(self, row: int) -> None:
        """Skip to just after row number ``row`` of a freshly opened file."""
        assert self._rows is not None
        while self._position < row:
            item = next(self._rows, None)
            if item is None:
                return
            self._position = item.number

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        start = 0
        if cursor and cursor.get("file") == self.fingerprint and not cursor.get("done"):
            start = int(cursor.get("row", 0))
        if self._rows is None or self._position != start or start == 0:
            self._open()
            if start:
                self._seek(start)
        assert self._rows is not None
        records: list[ExternalCustomer] = []
        rejects: list[tuple[str, str]] = []
        more = True
        while len(records) + len(rejects) < self.batch_size:
            row = next(self._rows, None)
            if row is None:
                more = False
                break
            self._position = row.number
            record = self._record(row, rejects)
            if record is not None:
                records.append(record)
        return Page(
            records=records,
            cursor={"file": self.fingerprint, "row": self._position, "done": not more},
            more=more,
            rejects=rejects,
        )

    def _record(self, row: Row, rejects: list[tuple[str, str]]) -> ExternalCustomer | None:
        where = f"row {row.number}"
        if len(row.cells) > len(self.header) and any(row.cells[len(self.header) :]):
            rejects.append(
                (where, f"{len(row.cells)} cells under a header of {len(self.header)} columns")
            )
            return None
        for target, cell in zip(self.targets, row.cells, strict=False):
            if cell and target is not None and target != IGNORE and has_control_characters(cell):
                rejects.append((where, f"{target}: control characters"))
                return None
        fields: dict[str, str] = {}
        identities: list[tuple[str, str]] = []
        observed = self.mtime
        for target, cell in zip(self.targets, row.cells, strict=False):
            if not cell or target is None or target == IGNORE:
                continue
            if len(cell) > 10_000:
                rejects.append((where, f"{target}: longer than 10000 characters"))
                return None
            if target == OBSERVED_AT:
                try:
                    observed = _when(cell)
                except ValueError:
                    rejects.append((where, "observed_at: not a date or time"))
                    return None
            elif target.startswith(IDENTITY):
                identities.append((target.removeprefix(IDENTITY), cell))
            elif target in fields:
                continue  # two columns of one field: the first that has a value
            else:
                fields[target] = iso_date(cell) if target in DATE_FIELDS else cell
        if not identities and not any(fields.get(key) for key in self.keys):
            rejects.append(
                (where, f"no key: none of {', '.join(sorted(self.keys))} or a platform id")
            )
            return None
        return ExternalCustomer(
            external_id="",
            observed_at=observed,
            fields=fields,
            identities=identities,
            ref=where,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "encoding_detected": self.encoding_detected,
            "empty_rows": self.empty_rows,
            "header": self.header,
            "ignored_columns": self.ignored_columns,
        }

    def close(self) -> None:
        self.reader.close()


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(iso_date(text) if len(text) <= 11 else text.replace("/", "-"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
