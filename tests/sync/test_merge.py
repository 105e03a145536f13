"""`merge A B` folds B into A and keeps what undoing it needs; `unmerge` gives both back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from vault.errors import Conflict, NotFound
from vault.records import Order
from vault.session import Session
from vault.store.schema import merge_records
from vault.vault import Vault

WHEN = datetime(2026, 4, 1, tzinfo=UTC)


View = tuple[dict[str, tuple[str, str]], set[str], list[str]]


def view(admin: Session, customer_id: str) -> View:
    customer = admin.get_customer(customer_id, purpose="administration")
    fields = {name: (v.value, v.source) for name, v in customer.fields.items()}
    identities = {f"{i.platform}:{i.external_id}" for i in customer.identities}
    orders = sorted(o.order_id for o in admin.orders_of(customer_id, purpose="administration"))
    return fields, identities, orders


def test_merge_then_unmerge_restores_both_customers(admin: Session, vault: Vault) -> None:
    a = admin.add_customer(
        {"name": "张*", "phone": "13800138000"}, source="taobao", identities=[("taobao", "tb-1")]
    )
    b = admin.add_customer(
        {"name": "张伟", "email": "zw@example.cn", "phone": "13900139000"},
        source="zoho",
        identities=[("zoho", "z-9")],
    )
    admin.record_order(
        Order(
            platform="zoho",
            shop="main",
            order_id="o-1",
            status="paid",
            currency="CNY",
            total_amount=100,
            created_at=WHEN,
            updated_at=WHEN,
            customer_id=b,
        ),
        source="zoho",
    )
    admin.tag_customers([b], "vip", source="cli")
    before_a, before_b = view(admin, a), view(admin, b)

    result = admin.merge_customers(a, b)
    assert "name" in result.fields_taken  # full 张伟 beats masked 张*
    with pytest.raises(NotFound):
        admin.get_customer(b, purpose="administration")
    fields, identities, orders = view(admin, a)
    assert fields["name"] == ("张伟", "zoho") and fields["email"] == ("zw@example.cn", "zoho")
    assert identities == {"taobao:tb-1", "zoho:z-9"} and orders == ["o-1"]
    assert admin.find_by_identity("zoho", "z-9") == a
    assert "vip" in admin.get_customer(a, purpose="administration").tags
    with vault._engine.connect() as connection:
        snapshot = connection.execute(select(merge_records.c.snapshot)).scalar_one()
    assert "张伟".encode() not in snapshot and b"zw@example.cn" not in snapshot

    undone = admin.unmerge(b)
    assert undone.merge_id == result.merge_id
    assert view(admin, a) == before_a
    assert view(admin, b) == before_b
    assert admin.find_by_identity("zoho", "z-9") == b
    assert "vip" in admin.get_customer(b, purpose="administration").tags
    assert admin.find_customers("phone", "13900139000", purpose="administration") == [b]
    with pytest.raises(Conflict):
        admin.unmerge(result.merge_id)
    assert admin.audit_verify().ok


def test_merging_into_itself_or_an_unknown_customer_is_refused(admin: Session) -> None:
    a = admin.add_customer({"name": "甲"}, source="cli")
    with pytest.raises(Conflict):
        admin.merge_customers(a, a)
    with pytest.raises(NotFound):
        admin.merge_customers(a, "00000000-0000-0000-0000-000000000000")


def test_duplicates_lists_open_pairs_and_a_merge_resolves_them(admin: Session) -> None:
    first = admin.add_customer({"name": "甲", "phone": "13700001111"}, source="cli")
    second = admin.add_customer({"name": "乙", "phone": "13700001111"}, source="cli")
    from sync_static import plugged, static_connector

    from vault.sync import ExternalCustomer

    shop = static_connector(
        "shop",
        [[ExternalCustomer(external_id="b1", observed_at=WHEN, fields={"phone": "13700001111"})]],
    )
    with plugged(shop):
        admin.sync("shop")
    pairs = admin.duplicates()
    assert len(pairs) == 3 and all("phone" in p["reason"] for p in pairs)
    newcomer = admin.find_by_identity("shop", "b1")
    assert newcomer is not None
    admin.merge_customers(first, newcomer)
    admin.merge_customers(first, second)
    assert admin.duplicates() == []
