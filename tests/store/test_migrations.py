"""The schema changes only through migrations: they build it, tear it down, and match the models."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from vault.store import migrate
from vault.store.engine import make_engine
from vault.store.schema import metadata


def test_upgrade_head_then_downgrade_base_then_upgrade_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_autogenerate_finds_no_difference_between_models_and_migrations(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_0007_adds_pushed_values_and_its_downgrade_drops_only_that(db_url: str) -> None:
    """0006 -> 0007 -> 0006 on a database holding a customer: the table comes and goes, its
    rows go with the customer (ON DELETE CASCADE), and nothing else is touched."""
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    try:
        migrate.upgrade(engine, "0006")
        assert "pushed_values" not in inspect(engine).get_table_names()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customers (id, created_at, updated_at, dek_version) "
                    "VALUES ('c-1', :now, :now, 1)"
                ),
                {"now": now},
            )
        migrate.upgrade(engine, "0007")
        assert migrate.current_revision(engine) == "0007"
        columns = {c["name"] for c in inspect(engine).get_columns("pushed_values")}
        assert columns == {"customer_id", "connector", "field", "digest", "pushed_at"}
        assert inspect(engine).get_pk_constraint("pushed_values")["constrained_columns"] == [
            "customer_id",
            "connector",
            "field",
        ]
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO pushed_values (customer_id, connector, field, digest, pushed_at)"
                    " VALUES ('c-1', 'zoho', 'email', :digest, :now)"
                ),
                {"digest": b"\x01" * 32, "now": now},
            )
        migrate.downgrade(engine, "0006")
        assert migrate.current_revision(engine) == "0006"
        assert "pushed_values" not in inspect(engine).get_table_names()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT id FROM customers")).scalars().all() == ["c-1"]
        migrate.upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM pushed_values")).scalar() == 0
    finally:
        engine.dispose()


def test_0008_adds_segment_logs_and_its_downgrade_drops_only_that(db_url: str) -> None:
    """0007 -> 0008 -> 0007: the closed-log as-of table comes and goes; nothing else moves."""
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "0007")
        before = set(inspect(engine).get_table_names())
        assert "segment_logs" not in before
        migrate.upgrade(engine, "0008")
        columns = {c["name"] for c in inspect(engine).get_columns("segment_logs")}
        assert columns == {"source", "last_day", "as_of", "recorded_at"}
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO segment_logs (source, last_day, as_of, recorded_at) "
                    "VALUES ('import:cdnow', '1998-06-30', '1998-07-01', :now)"
                ),
                {"now": datetime.now(UTC)},
            )
        migrate.downgrade(engine, "0007")
        assert set(inspect(engine).get_table_names()) == before
        migrate.upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM segment_logs")).scalar_one() == 0
    finally:
        engine.dispose()
