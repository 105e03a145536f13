"""Column types that keep their promise on both databases.

:class:`UTCDateTime` is the type of every time column. A stored time is an instant: whatever
offset a time arrives with (``+08:00`` from a Chinese shop, ``+05:30`` from a CRM, ``Z``), the
same moment comes back, as an aware UTC ``datetime``, from SQLite and from PostgreSQL.

Why it is needed: SQLAlchemy's ``DateTime(timezone=True)`` on SQLite writes the wall-clock
digits and drops the offset, so ``10:00+08:00`` was stored as ``10:00`` and read back as
``10:00Z``, eight hours late (PostgreSQL's ``timestamptz`` kept the instant). Normalising to UTC
here, on the way in, means no caller can get it wrong; the stored form is unchanged for every
time that already was UTC (SQLite: ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, which also sorts in
time order; PostgreSQL: ``timestamptz``).

A naive ``datetime`` has no instant: binding one raises ``ValueError`` (developer misuse), so
a parser that loses the offset fails loudly instead of shifting evidence silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def to_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is refused (it names no instant)."""
    if not isinstance(value, datetime):
        raise TypeError(f"a time column takes a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive datetime names no instant: give it a zone (UTC if in doubt)")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: aware datetimes in (any offset), aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        moment = to_utc(value)
        # SQLite's DATETIME writes the digits of the wall clock: they must be UTC's.
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = (  # SQLite hands an untyped expression back as text
            datetime.fromisoformat(value) if isinstance(value, str) else value
        )
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime
