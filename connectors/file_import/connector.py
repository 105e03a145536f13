"""The file-import connector: pages of customer rows from one CSV or xlsx file.

Its cursor is ``{"file": fingerprint, "row": last row read, "done": bool}``: an import killed
halfway resumes after the last committed batch of the same file; a finished or different file
starts from the top (upserts make a re-import of the same rows change nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping as MappingType
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.file_import.mapping import IDENTITY, IGNORE, OBSERVED_AT, Mapping, load_mapping
from connectors.file_import.reader import FileUnreadable, Row, RowReader, fingerprint, iso_date
from vault.errors import ConfigError, ConnectorError
from vault.sync import Connector, ConnectorInfo, Cursor, ExternalCustomer, Page, Setting

DATE_FIELDS = frozenset({"birthday"})


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

    def __init__(self, settings: MappingType[str, str], *, mapping: Mapping | None = None) -> None:
        super().__init__(settings)
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
        self._position = header.number

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
            "header": self.header,
            "ignored_columns": self.ignored_columns,
        }

    def close(self) -> None:
        self.reader.close()


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(iso_date(text) if len(text) <= 11 else text.replace("/", "-"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
