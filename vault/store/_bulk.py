"""Bulk inserts straight to the driver's ``executemany``, for ingest-sized batches.

SQLAlchemy Core's executemany processes every parameter of every row in Python; at 200,000
customers × 6 rows that is most of the ingest time. Here the statement is compiled once per
(table, columns, dialect), each column's bind processor (SQLite stores datetimes as text) runs
once per distinct value, and the rows go to the driver as tuples. The result is the same rows
SQLAlchemy would write (``tests/store/test_bulk.py`` compares them).

On PostgreSQL a batch goes in with ``COPY ... FROM STDIN`` (psycopg's ``Cursor.copy``), in the
connection's transaction: one round trip for the rows instead of one per row. A failure there
is raised as SQLAlchemy's own error class, so the store maps it like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, exc
from sqlalchemy.engine import Dialect

_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":{n}"}


COPY_FROM = 20  # rows: below this a plain executemany costs no more


@cache
def _copy_statement(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    return f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"


@cache
def _statement(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    style = _PLACEHOLDER.get(dialect.paramstyle)
    if style is None:
        raise NotImplementedError(f"bulk insert for paramstyle {dialect.paramstyle!r}")
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    marks = ", ".join(style.format(n=n + 1) for n in range(len(columns)))
    # Identifiers come from the schema and are quoted by the dialect; values are bound.
    sql = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({marks})"  # noqa: S608
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    )
    return sql, processors


class BulkInsert:
    """One table's INSERT, compiled for the connection's dialect, fed rows of driver values.

    ``bind(column, value)`` turns a Python value into what the driver takes (SQLite: datetimes as
    text); callers bind values shared by a whole batch (``now``, the source) once, not per row.
    """

    def __init__(self, connection: Connection, table: Table, columns: tuple[str, ...]) -> None:
        self._connection = connection
        self._sql, processors = _statement(table, columns, connection.dialect)
        self._processors = dict(zip(columns, processors, strict=True))
        self._copy = (
            _copy_statement(table, columns, connection.dialect)
            if connection.dialect.driver == "psycopg"
            else None
        )

    def bind(self, column: str, value: Any) -> Any:
        processor = self._processors[column]
        return value if processor is None or value is None else processor(value)

    def execute(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self._copy is not None and len(rows) >= COPY_FROM:
            self._copy_rows(rows)
        elif len(rows) == 1:
            self._connection.exec_driver_sql(self._sql, rows[0])
        elif rows:
            self._connection.exec_driver_sql(self._sql, list(rows))

    def _copy_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        import psycopg

        assert self._copy is not None
        driver = self._connection.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(self._copy) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            raise exc.DBAPIError.instance(
                self._copy, None, error, psycopg.Error, hide_parameters=True
            ) from error
