"""Bulk consent from a CSV file: customer reference, purpose, state, time, source.

Columns (a header row is required; order does not matter):

``customer``
    a customer id, or ``phone:VALUE``, ``email:VALUE``, ``id_number:VALUE`` (matched through
    the blind index, so any writing of the value works), or ``PLATFORM:EXTERNAL_ID`` (a platform
    identity, e.g. ``youzan:yz_open_id``).
``purpose``, ``state`` (``granted``/``withdrawn``, or ``grant``/``withdraw``), ``at`` (ISO 8601;
UTC when no zone is given), ``source`` (the channel), and optionally ``evidence`` (a reference,
never a copy of PII) and ``policy_version``.

The whole file is read and checked before anything is written: a malformed row stops the
import with the line number and the column, and nothing is recorded. The file is read as
untrusted input (:mod:`vault.textfile`): its encoding detected (UTF-8 or GB18030/GBK), a line at
most 1 Mi characters, a cell at most 128 Ki characters, at most :data:`MAX_ROWS` rows; past a
limit, or not CSV, is one ``InvalidValue`` naming the line and the limit. Rows whose customer is not
found (or was erased) are counted and their line numbers reported; the others are recorded in
one transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from vault.consent.ledger import GRANTED, WITHDRAWN
from vault.errors import InvalidValue
from vault.textfile import (
    SAMPLE_BYTES,
    TextUnreadable,
    bounded_lines,
    csv_error,
    detect_encoding_of,
)

REQUIRED = ("customer", "purpose", "state", "at", "source")
OPTIONAL = ("evidence", "policy_version")
STATE_WORDS = {
    "granted": GRANTED,
    "grant": GRANTED,
    "withdrawn": WITHDRAWN,
    "withdraw": WITHDRAWN,
}
MAX_ROWS = 1_000_000  # rows of one file (all are held until the one transaction)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRow:
    line: int
    reference: str
    purpose: str
    state: str
    at: datetime
    source: str
    evidence: str | None
    policy_version: int | None


@dataclass(slots=True, kw_only=True)
class ConsentImportReport:
    rows: int = 0
    recorded: int = 0
    granted: int = 0
    withdrawn: int = 0
    unmatched: int = 0
    unmatched_lines: list[int] = field(default_factory=list)
    encoding: str = ""  # as detected


def _unreadable(reason: str) -> InvalidValue:
    return InvalidValue(field="file", reason=reason)


def _time(text: str, line: int) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue(field="at", reason=f"line {line}: not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_rows(path: Path) -> list[ConsentRow]:
    """Parse and check the whole file; raises ``InvalidValue`` naming the first bad line."""
    return read_file(path)[0]


def read_file(path: Path) -> tuple[list[ConsentRow], str]:
    """The file's rows and its encoding; raises ``InvalidValue`` naming the first bad line."""
    try:
        with path.open("rb") as raw:
            sample = raw.read(SAMPLE_BYTES)
        encoding = detect_encoding_of(sample, complete=len(sample) < SAMPLE_BYTES)
        if encoding == "utf-8":
            encoding = "utf-8-sig"  # (no BOM; same decoding)
        with path.open("r", encoding=encoding, newline="") as handle:
            return list(_rows(handle)), encoding.removesuffix("-sig")
    except OSError as error:
        raise _unreadable(f"cannot read {path.name}: {error.strerror}") from None
    except TextUnreadable as error:
        raise _unreadable(str(error)) from None
    except UnicodeDecodeError:
        raise _unreadable(f"{path.name} stops decoding as {encoding} part way") from None


def _rows(handle: TextIO) -> Iterator[ConsentRow]:
    reader = csv.DictReader(bounded_lines(handle))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as error:
        raise _unreadable(str(csv_error(error, "line 1"))) from None
    header = [name.strip().lower() for name in fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidValue(field="file", reason=f"the header lacks column(s) {', '.join(missing)}")
    reader.fieldnames = header
    count = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _unreadable(str(csv_error(error, f"line {reader.reader.line_num}"))) from None
        count += 1
        if count > MAX_ROWS:
            raise _unreadable(f"more than {MAX_ROWS:,} rows (the limit for one file)")
        yield _row(record, reader.line_num)


def _row(record: dict[str | None, str | list[str] | None], line: int) -> ConsentRow:
    if None in record:
        raise InvalidValue(field="file", reason=f"line {line}: more cells than the header")
    values = {str(k): str(v or "").strip() for k, v in record.items()}
    for name in REQUIRED:
        if not values.get(name):
            raise InvalidValue(field=name, reason=f"line {line}: empty")
    state = STATE_WORDS.get(values["state"].lower())
    if state is None:
        raise InvalidValue(field="state", reason=f"line {line}: granted or withdrawn")
    version_text = values.get("policy_version") or ""
    if version_text and not version_text.isdigit():
        raise InvalidValue(field="policy_version", reason=f"line {line}: a whole number")
    return ConsentRow(
        line=line,
        reference=values["customer"],
        purpose=values["purpose"],
        state=state,
        at=_time(values["at"], line),
        source=values["source"],
        evidence=values.get("evidence") or None,
        policy_version=int(version_text) if version_text else None,
    )
