"""Engines for the embedded default (SQLite, WAL) and for PostgreSQL (a URL is all it takes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from vault.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Concurrent writers wait (busy_timeout) rather than fail; WAL lets readers run beside them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted content is overwritten with zeros: an erased customer's wrapped data key (or a key
    # rewrapped by rotation) must not linger in free pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


READ_ONLY = "vault_read_only"


def _sqlite_begin(connection: Any) -> None:
    # A writer takes the write lock up front (BEGIN IMMEDIATE), so two writers queue on
    # busy_timeout rather than deadlock on a lock upgrade; readers (``reader(engine)``) don't
    # take it, and under WAL they run beside the writer.
    # Straight to the driver: this runs for every transaction, and SQLAlchemy's execution path
    # costs more than the statement.
    driver = connection.connection.driver_connection
    driver.execute(
        "BEGIN" if connection.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
    )


def reader(engine: Engine) -> Engine:
    """The same engine (and pool) for read-only work: no write lock on SQLite."""
    return engine.execution_options(**{READ_ONLY: True})


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "the database URL is not valid (expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"isolation_level": None, "check_same_thread": False},
            hide_parameters=True,  # a driver error must not carry row values into a traceback
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        try:
            # No ping on every checkout (a round trip per audited call): a connection the server
            # dropped fails its statement once, and SQLAlchemy then invalidates the pool.
            return create_engine(parsed, pool_pre_ping=False, hide_parameters=True)
        except ImportError as error:  # the driver installs with the package; a broken venv lacks it
            raise ConfigError(
                f"the PostgreSQL driver ({error.name or 'psycopg'}) is not installed: run "
                "`pip install 'psycopg[binary]'`"
            ) from None
    raise ConfigError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://"
    )


def as_utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything the vault stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
