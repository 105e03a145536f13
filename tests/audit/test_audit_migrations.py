"""The audit migrations go up and down on both databases and keep the log verifiable."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, text

from vault.store import migrate
from vault.store.engine import make_engine


def test_0009_adds_the_event_mac_and_its_downgrade_drops_only_that(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "0008")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_events (seq, at, actor, action, outcome, customer_count,"
                    " body, prev_hash, hash) VALUES (1, :at, 'a', 'read', 'allowed', 0, :b,"
                    " :p, :h)"
                ),
                {"at": datetime.now(UTC), "b": b"{}", "p": bytes(32), "h": bytes(32)},
            )
        columns = {c["name"] for c in inspect(engine).get_columns("audit_events")}
        assert "mac" not in columns
        migrate.upgrade(engine, "0009")
        assert "mac" in {c["name"] for c in inspect(engine).get_columns("audit_events")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT seq, mac FROM audit_events")).all() == [
                (1, None)
            ]
        migrate.downgrade(engine, "0008")
        assert {c["name"] for c in inspect(engine).get_columns("audit_events")} == columns
        with engine.connect() as connection:
            assert connection.execute(text("SELECT seq FROM audit_events")).scalars().all() == [1]
        migrate.upgrade(engine)
    finally:
        engine.dispose()
