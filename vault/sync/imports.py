"""``import_file``: a file through the file-import connector and the sync engine.

The reject report (``FILE.rejects.csv``, UTF-8 with BOM so spreadsheet programs open it) lists
each refused row by its number and the reason: field names and rules, never the row's values.
It is written as batches go in, in row order within a batch (a dry run writes none: its rejects
are in its report); an import resumed after a kill keeps the rejects of the rows before its
cursor and writes the rest again, so the report ends as an uninterrupted run's.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from vault.sync.report import Reject

REJECT_HEADER = ("row", "reason")


def reject_report_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


def _row_number(where: str) -> int:
    try:
        return int(where.removeprefix("row "))
    except ValueError:
        return 0


class RejectWriter:
    """Appends rejects to the report, keeping an earlier run's rows below ``resume_row``."""

    def __init__(self, path: Path, *, resume_row: int) -> None:
        self.path = path
        self.count = 0
        kept: list[list[str]] = []
        if resume_row and path.exists():
            with path.open("r", encoding="utf-8-sig", newline="") as handle:
                for row in csv.reader(handle):
                    if row and row[0].isdigit() and int(row[0]) <= resume_row:
                        kept.append(row)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._handle = os.fdopen(fd, "w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(REJECT_HEADER)
        self._writer.writerows(kept)
        self.count = len(kept)
        self._handle.flush()

    def write(self, rejects: Sequence[Reject]) -> None:
        """A batch's rejects, in row order (the file's and the normalisers' come apart)."""
        rows = sorted((_row_number(r.where), r.reason) for r in rejects)
        self._writer.writerows(rows)
        self.count += len(rejects)
        self._handle.flush()

    def close(self) -> str | None:
        """Close; returns the report's path, or None (and removes it) when nothing was refused."""
        self._handle.close()
        if self.count == 0:
            self.path.unlink(missing_ok=True)
            return None
        return str(self.path)
