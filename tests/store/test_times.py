"""Every stored time is an instant: the same moment comes back on SQLite and PostgreSQL,
whatever offset it arrived with (issue 19, item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select

from connectors.youzan.sandbox import YouzanSandbox
from vault.session import Session
from vault.store.engine import make_engine
from vault.store.migrate import upgrade
from vault.store.schema import (
    consent_events,
    customer_fields,
    customer_identities,
    customers,
    orders,
)
from vault.store.types import UTCDateTime
from vault.sync.retry import SyncPolicy

CHINA = timezone(timedelta(hours=8))
FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)

# Whole minutes from -14:00 to +14:00, as real zones have; microseconds as the drivers keep them.
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
)


def people(admin: Session, count: int) -> list[str]:
    return [admin.add_customer({"name": f"顾客{n}"}, source="test") for n in range(count)]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


# --- the three observations ---------------------------------------------------------------------


def test_a_consent_imported_with_plus_eight_keeps_its_instant(
    admin: Session, tmp_path: Path
) -> None:
    (a,) = people(admin, 1)
    path = tmp_path / "consent.csv"
    path.write_text(
        "customer,purpose,state,at,source,evidence\n"
        f"{a},marketing_sms,granted,2026-11-01T10:00:00+08:00,web-form,ref-1\n"
    )
    admin.import_consent(path)
    summary = admin.consent_of(a)
    (entry,) = summary.ledger
    assert entry.at == datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    assert entry.at.utcoffset() == timedelta(0)
    assert summary.purposes["marketing_sms"].at == datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def test_a_withdrawal_at_0800z_given_as_plus_eight_sorts_before_a_grant_at_0900z(
    admin: Session, vault: object
) -> None:
    (a,) = people(admin, 1)
    admin.withdraw_consent(
        a, "marketing_sms", source="phone", at=datetime(2026, 11, 1, 16, 0, tzinfo=CHINA)
    )
    admin.grant_consent(
        a, "marketing_sms", source="web-form", at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    )
    summary = admin.consent_of(a)
    assert [(r.state, r.at) for r in summary.ledger] == [
        ("withdrawn", datetime(2026, 11, 1, 8, 0, tzinfo=UTC)),
        ("granted", datetime(2026, 11, 1, 9, 0, tzinfo=UTC)),
    ]
    assert summary.purposes["marketing_sms"].state == "granted"
    assert summary.purposes["marketing_sms"].active


def test_youzan_observed_at_and_order_times_are_the_platforms_instants_over_http(
    admin: Session,
) -> None:
    """Youzan sends China time (``yyyy-MM-dd HH:mm:ss``, UTC+8): nothing stored may lie in the
    future, and each order's created time is the sandbox's own instant."""
    admin._vault.sync_policy = FAST
    with YouzanSandbox(seed=19, records=60, span_days=1) as sandbox:
        assert isinstance(sandbox, YouzanSandbox)
        admin.configure_connector(
            "youzan", {**sandbox.credentials(), "base_url": sandbox.url, "history_days": "2"}
        )
        before = datetime.now(UTC)
        report = admin.sync("youzan")
        assert report.error is None
        truth = {
            tid: datetime.fromtimestamp(int(trade.created), UTC)
            for tid, trade in sandbox.trades.items()
        }
    with admin._vault._engine.connect() as connection:
        stored = dict(
            connection.execute(  # type: ignore[arg-type]  # (order id, created) pairs
                select(orders.c.order_id, orders.c.created_at).where(orders.c.platform == "youzan")
            ).all()
        )
        observed = [
            *connection.execute(
                select(customer_fields.c.observed_at).where(
                    customer_fields.c.source.like("youzan%")
                )
            ).scalars(),
            *connection.execute(
                select(customer_identities.c.observed_at).where(
                    customer_identities.c.platform == "youzan"
                )
            ).scalars(),
        ]
    assert stored and observed
    assert stored == truth
    assert max(observed) <= before + timedelta(seconds=5)
    assert all(moment.utcoffset() == timedelta(0) for moment in [*stored.values(), *observed])


# --- the property: any offset, both databases ---------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(instant=instants, zone=offsets)
def test_any_offset_round_trips_to_the_same_instant_in_utc(
    engine: Engine, instant: datetime, zone: timezone
) -> None:
    arrived = instant.astimezone(zone)
    with engine.begin() as connection:
        connection.execute(delete(customers))
        connection.execute(
            insert(customers).values(
                id="c-1", created_at=arrived, updated_at=arrived, dek_version=1
            )
        )
        back = connection.execute(select(customers.c.created_at)).scalar_one()
        earlier = connection.execute(
            select(customers.c.id).where(customers.c.created_at < arrived)
        ).all()
        same = connection.execute(
            select(customers.c.id).where(customers.c.created_at == arrived)
        ).all()
    assert back == instant
    assert back.utcoffset() == timedelta(0)
    assert earlier == [] and len(same) == 1  # comparisons in SQL see the instant too


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    entries=st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(2020, 1, 1),
                max_value=datetime(2026, 1, 1),
                timezones=st.just(UTC),
            ),
            offsets,
            st.sampled_from(["granted", "withdrawn"]),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda e: e[0],
    )
)
def test_ledger_entries_with_any_offsets_are_ordered_by_their_instants(
    admin: Session, entries: list[tuple[datetime, timezone, str]]
) -> None:
    """The ledger lists grants and withdrawals in instant order and the current state is the
    latest instant's, whatever offsets they were given with, on both databases."""
    (a,) = people(admin, 1)
    for instant, zone, state in entries:
        change = admin.grant_consent if state == "granted" else admin.withdraw_consent
        change(a, "marketing_sms", source="test", at=instant.astimezone(zone))
    summary = admin.consent_of(a)
    ordered = sorted(entries, key=lambda e: e[0])
    assert [(r.at, r.state) for r in summary.ledger] == [(i, s) for i, _, s in ordered]
    assert summary.purposes["marketing_sms"].state == ordered[-1][2]
    assert summary.purposes["marketing_sms"].at == ordered[-1][0]
    with admin._vault._engine.connect() as connection:
        latest = connection.execute(
            select(consent_events.c.state)
            .where(consent_events.c.customer_id == a)
            .order_by(consent_events.c.at.desc())
            .limit(1)
        ).scalar_one()
    assert latest == ordered[-1][2]


# --- the type itself ----------------------------------------------------------------------------


def test_a_naive_time_is_refused_rather_than_guessed(engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as connection:
        connection.execute(
            insert(customers).values(
                id="c-1",
                created_at=datetime(2026, 1, 1, 10, 0),
                updated_at=datetime(2026, 1, 1, 10, 0),
                dek_version=1,
            )
        )


def test_every_time_column_of_the_schema_is_an_instant() -> None:
    from sqlalchemy import DateTime, String

    from vault.store.schema import metadata

    plain = [
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, DateTime)
        or (
            (column.name == "at" or column.name.endswith("_at"))
            and not isinstance(column.type, UTCDateTime)
            and not isinstance(column.type, String)  # audit_checkpoints.at: the signed text
        )
    ]
    assert plain == []
