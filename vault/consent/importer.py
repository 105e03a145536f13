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
import with the line number and the column, and nothing is recorded. Rows whose customer is not
found (or was erased) are counted and their line numbers reported; the others are recorded in
one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vault.consent.ledger import GRANTED, WITHDRAWN
from vault.errors import InvalidValue

REQUIRED = ("customer", "purpose", "state", "at", "source")
OPTIONAL = ("evidence", "policy_version")
STATE_WORDS = {
    "granted": GRANTED,
    "grant": GRANTED,
    "withdrawn": WITHDRAWN,
    "withdraw": WITHDRAWN,
}
ENCODINGS = ("utf-8-sig", "gb18030")


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


def _decode(data: bytes, path: Path) -> str:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidValue(field="file", reason=f"{path.name} is neither UTF-8 nor GB18030 text")


def _time(text: str, line: int) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue(field="at", reason=f"line {line}: not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_rows(path: Path) -> list[ConsentRow]:
    """Parse and check the whole file; raises ``InvalidValue`` naming the first bad line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidValue(
            field="file", reason=f"cannot read {path.name}: {error.strerror}"
        ) from None
    reader = csv.DictReader(io.StringIO(_decode(data, path), newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidValue(field="file", reason=f"the header lacks column(s) {', '.join(missing)}")
    reader.fieldnames = header
    rows: list[ConsentRow] = []
    for record in reader:
        line = reader.line_num
        if None in record:
            raise InvalidValue(field="file", reason=f"line {line}: more cells than the header")
        values = {k: (v or "").strip() for k, v in record.items()}
        for name in REQUIRED:
            if not values.get(name):
                raise InvalidValue(field=name, reason=f"line {line}: empty")
        state = STATE_WORDS.get(values["state"].lower())
        if state is None:
            raise InvalidValue(field="state", reason=f"line {line}: granted or withdrawn")
        version_text = values.get("policy_version") or ""
        if version_text and not version_text.isdigit():
            raise InvalidValue(field="policy_version", reason=f"line {line}: a whole number")
        rows.append(
            ConsentRow(
                line=line,
                reference=values["customer"],
                purpose=values["purpose"],
                state=state,
                at=_time(values["at"], line),
                source=values["source"],
                evidence=values.get("evidence") or None,
                policy_version=int(version_text) if version_text else None,
            )
        )
    return rows
