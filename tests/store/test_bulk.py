"""The bulk insert path writes the same rows SQLAlchemy Core would."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from vault.store import migrate
from vault.store._bulk import BulkInsert
from vault.store.engine import make_engine
from vault.store.schema import customers


def test_bulk_insert_rows_read_back_like_core_inserts(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    when = datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
    columns = ("id", "created_at", "updated_at", "dek_version", "wrapped_dek", "kek_version")
    try:
        with engine.begin() as connection:
            bulk = BulkInsert(connection, customers, columns)
            bound = bulk.bind("created_at", when)
            bulk.execute([("bulk", bound, bound, 1, b"\x00\x01", 1)])
            connection.execute(
                insert(customers),
                [dict(zip(columns, ("core", when, when, 1, b"\x00\x01", 1), strict=True))],
            )
        with engine.connect() as connection:
            rows = {row.id: row[1:] for row in connection.execute(select(customers))}
        assert rows["bulk"] == rows["core"]
    finally:
        engine.dispose()
