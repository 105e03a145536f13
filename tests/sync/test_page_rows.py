"""A page of updates to known customers reads their fields, source rows and platform handles in
a few queries, not one per record; a value seen again from its own source is not sealed again,
only its time moves on; a platform ciphertext seen again is not rewritten."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, event, select
from sync_static import plugged, static_connector

from vault.session import Session
from vault.store.schema import customer_fields, platform_handles
from vault.sync import ExternalCustomer, Record
from vault.sync.report import SyncReport
from vault.vault import Vault

COUNT = 60
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def shop_page(at: datetime, street: str, handle: str) -> list[Record]:
    return [
        ExternalCustomer(
            external_id=f"buyer-{n}",
            observed_at=at,
            fields={
                "name": f"钱{n}",
                "address": f"浙江省杭州市西湖区{street}{n}号",
                "preferred_language": "zh",  # a field stored as text, not sealed
            },
            platform_ciphertexts={"phone": f"~{handle}{n}~"},
        )
        for n in range(COUNT)
    ]


@pytest.fixture
def page() -> list[Record]:
    return []


@pytest.fixture
def shop(admin: Session, page: list[Record]) -> Iterator[None]:
    with plugged(static_connector("shop", [page])):
        page.extend(shop_page(T0, "文三路", "a"))
        assert admin.sync("shop").created == COUNT
        yield


def sealed_fields(connection: Connection) -> dict[tuple[str, str], bytes]:
    query = select(customer_fields.c.customer_id, customer_fields.c.field, customer_fields.c.value)
    return {(row.customer_id, row.field): bytes(row.value) for row in connection.execute(query)}


def statements_by_table(vault: Vault, admin: Session) -> tuple[Counter[str], SyncReport]:
    seen: Counter[str] = Counter()

    def count(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        verb = sql.split()[0].upper()
        for table in ("customer_fields", "customer_sources", "platform_handles"):
            if table in sql:
                seen[f"{verb} {table}"] += 1

    event.listen(vault._engine, "before_cursor_execute", count)
    try:
        report = admin.sync("shop", full=True)
    finally:
        event.remove(vault._engine, "before_cursor_execute", count)
    return seen, report


def test_a_page_of_updates_costs_a_few_statements_not_one_per_record(
    admin: Session, vault: Vault, page: list[Record], shop: None
) -> None:
    page[:] = shop_page(T0 + timedelta(days=1), "天目山路", "b")
    seen, report = statements_by_table(vault, admin)
    assert report.updated == COUNT
    # reads: the page's lookup by blind index and the preload; writes: one executemany each
    assert seen["SELECT customer_fields"] <= 3
    assert seen["SELECT customer_sources"] == 1
    assert seen["SELECT platform_handles"] == 1
    assert seen["UPDATE customer_sources"] == 1
    assert seen["UPDATE platform_handles"] == 1
    assert seen["INSERT platform_handles"] == 0
    customer = admin.get_customer(admin.find_by_identity("shop", "buyer-7") or "")
    assert customer.fields["address"].value == "浙江省杭州市西湖区天目山路7号"


def test_the_same_values_seen_again_are_not_sealed_again_only_their_time_moves(
    admin: Session, vault: Vault, page: list[Record], shop: None
) -> None:
    with vault._reader.connect() as connection:
        sealed = sealed_fields(connection)
        handles = set(connection.execute(select(platform_handles.c.handle)).scalars())
    later = T0 + timedelta(days=2)
    page[:] = shop_page(later, "文三路", "a")
    seen, report = statements_by_table(vault, admin)
    assert report.updated == 0 and report.skipped == COUNT
    assert seen["UPDATE platform_handles"] == 0 and seen["INSERT platform_handles"] == 0
    with vault._reader.connect() as connection:
        assert sealed_fields(connection) == sealed
        assert set(connection.execute(select(platform_handles.c.handle)).scalars()) == handles
    customer = admin.get_customer(admin.find_by_identity("shop", "buyer-3") or "")
    assert customer.fields["address"].observed_at == later
