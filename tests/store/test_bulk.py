"""The bulk insert path (executemany; COPY on PostgreSQL) writes the same rows SQLAlchemy Core
would, and a failing batch is the store's own error with nothing of it written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, insert, select

from vault.errors import Conflict
from vault.store import migrate
from vault.store._bulk import COPY_FROM, BulkInsert
from vault.store._errors import mapped_store_errors
from vault.store.engine import make_engine
from vault.store.schema import customers

WHEN = datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
COLUMNS = ("id", "created_at", "updated_at", "dek_version", "wrapped_dek", "kek_version")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.mark.parametrize("batch", [1, COPY_FROM + 5])
def test_bulk_insert_rows_read_back_like_core_inserts(engine: Engine, batch: int) -> None:
    with engine.begin() as connection:
        bulk = BulkInsert(connection, customers, COLUMNS)
        bound = bulk.bind("created_at", WHEN)
        bulk.execute([(f"bulk-{n}", bound, bound, 1, b"\x00\x01", 1) for n in range(batch)])
        connection.execute(
            insert(customers),
            [dict(zip(COLUMNS, ("core", WHEN, WHEN, 1, b"\x00\x01", 1), strict=True))],
        )
    with engine.connect() as connection:
        rows = {row.id: row[1:] for row in connection.execute(select(customers))}
    assert len(rows) == batch + 1
    assert all(rows[f"bulk-{n}"] == rows["core"] for n in range(batch))


def test_a_batch_with_a_duplicate_key_is_a_conflict_and_writes_nothing(engine: Engine) -> None:
    rows = [(f"c-{n}", WHEN, WHEN, 1, b"\x01", 1) for n in range(COPY_FROM + 5)]
    rows.append(rows[3])  # the same id twice: the whole batch is refused
    with pytest.raises(Conflict, match="adding customers"), engine.begin() as connection:
        bulk = BulkInsert(connection, customers, COLUMNS)
        bound = bulk.bind("created_at", WHEN)
        with mapped_store_errors("adding customers"):
            bulk.execute([(r[0], bound, bound, *r[3:]) for r in rows])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(customers)).scalar_one() == 0
