from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vault import Conflict, InvalidValue, NewCustomer, NotFound, Order, OrderItem
from vault.session import Session
from vault.vault import Vault


def test_differently_written_phones_find_the_same_customer(admin: Session) -> None:
    cid = admin.add_customer({"name": "张三", "phone": "138 0013 8000"}, source="t")
    for written in ("138 0013 8000", "+86 138-0013-8000", "8613800138000"):
        assert admin.find_customers("phone", written) == [cid]


def test_find_by_email_and_id_number_uses_normalised_values(admin: Session) -> None:
    cid = admin.add_customer(
        {"email": "Zhang@QQ.com", "id_number": "11010519491231002x"}, source="t"
    )
    assert admin.find_customers("email", " zhang@qq.COM") == [cid]
    assert admin.find_customers("id_number", "11010519491231002X") == [cid]
    assert admin.find_customers("email", "other@qq.com") == []


def test_find_on_a_field_without_blind_index_is_refused(admin: Session) -> None:
    with pytest.raises(InvalidValue, match="not searchable"):
        admin.find_customers("name", "张三")


def test_get_returns_values_with_provenance(admin: Session) -> None:
    seen = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    cid = admin.add_customer(
        {"name": "张三", "phone": "13800138000"}, source="youzan", observed_at=seen
    )
    customer = admin.get_customer(cid)
    assert customer.fields["phone"].value == "+8613800138000"
    assert customer.fields["name"].source == "youzan"
    assert customer.fields["name"].observed_at == seen


def test_update_changes_value_and_provenance(admin: Session) -> None:
    cid = admin.add_customer({"name": "张三", "phone": "13800138000"}, source="import")
    assert admin.update_customer(
        cid, {"phone": "13900139000", "address": "北京市"}, source="cli"
    ) == ["phone", "address"]
    customer = admin.get_customer(cid)
    assert customer.fields["phone"].value == "+8613900139000"
    assert customer.fields["phone"].source == "cli"
    assert admin.find_customers("phone", "13800138000") == []
    assert admin.find_customers("phone", "13900139000") == [cid]


def test_masked_value_never_overwrites_a_full_one(admin: Session) -> None:
    address = "广东省深圳市南山区科技园路 1 号"
    cid = admin.add_customer(
        {"name": "张三", "phone": "13800138000", "address": address}, source="import"
    )
    masked = {"phone": "138****8000", "name": "张*", "address": "广东省深圳市南山区****"}
    assert admin.update_customer(cid, masked, source="taobao") == []
    customer = admin.get_customer(cid)
    assert customer.get("phone") == "+8613800138000" and customer.get("name") == "张三"
    assert customer.get("address") == address


def test_masked_value_is_stored_as_masked_and_not_indexed(admin: Session) -> None:
    cid = admin.add_customer({"phone": "138****8000"}, source="taobao")
    phone = admin.get_customer(cid).fields["phone"]
    assert phone.masked and phone.value == "138****8000"
    with pytest.raises(InvalidValue, match="masked"):
        admin.find_customers("phone", "138****8000")
    assert admin.update_customer(cid, {"phone": "13800138000"}, source="import") == ["phone"]
    assert admin.find_customers("phone", "13800138000") == [cid]


def test_invalid_value_rejects_the_whole_add(admin: Session) -> None:
    with pytest.raises(InvalidValue, match="'phone'"):
        admin.add_customer({"name": "张三", "phone": "not a phone"}, source="t")
    assert admin.list_customers().customer_ids == []


def test_unknown_field_is_refused(admin: Session) -> None:
    with pytest.raises(InvalidValue, match="not in the field catalogue"):
        admin.add_customer({"fax": "123"}, source="t")


def test_platform_identity_finds_its_customer(admin: Session) -> None:
    cid = admin.add_customer({"name": "张三"}, source="t", identities=[("youzan", "yz_abc")])
    admin.add_identity(cid, "taobao", "AAHk3x-oaid", source="taobao")
    assert admin.find_by_identity("youzan", "yz_abc") == cid
    assert admin.find_by_identity("taobao", "AAHk3x-oaid") == cid
    assert admin.find_by_identity("pinduoduo", "yz_abc") is None
    assert [(i.platform, i.external_id) for i in admin.get_customer(cid).identities] == [
        ("youzan", "yz_abc"),
        ("taobao", "AAHk3x-oaid"),
    ]


def test_an_identity_cannot_belong_to_two_customers(admin: Session) -> None:
    first = admin.add_customer({"name": "甲"}, source="t", identities=[("youzan", "yz_1")])
    second = admin.add_customer({"name": "乙"}, source="t")
    with pytest.raises(Conflict, match=first):
        admin.add_identity(second, "youzan", "yz_1", source="t")
    with pytest.raises(Conflict):
        admin.add_customer({"name": "丙"}, source="t", identities=[("youzan", "yz_1")])


def test_list_pages_through_every_customer_once(admin: Session) -> None:
    ids = admin.add_customers(
        (NewCustomer(fields={"name": f"客户{i}"}) for i in range(25)), source="t", batch_size=7
    )
    seen: list[str] = []
    after = None
    while True:
        page = admin.list_customers(limit=10, after=after)
        seen += page.customer_ids
        if page.next_after is None:
            break
        after = page.next_after
    assert sorted(seen) == sorted(ids) and len(seen) == 25


def test_get_unknown_customer_is_not_found(admin: Session) -> None:
    with pytest.raises(NotFound):
        admin.get_customer("00000000-0000-4000-8000-000000000000")


def order(status: str, *, updated: datetime, customer_id: str | None) -> Order:
    return Order(
        platform="taobao",
        shop="旗舰店",
        order_id="T1001",
        status=status,
        currency="CNY",
        total_amount=19_900,
        created_at=updated - timedelta(days=1),
        updated_at=updated,
        items=[
            OrderItem(
                product_id="sku-1",
                product_name="绿茶",
                quantity=2,
                unit_price=9_950,
                category="tea",
            )
        ],
        customer_id=customer_id,
    )


def test_order_is_idempotent_and_status_changes_update_it(admin: Session) -> None:
    cid = admin.add_customer({"name": "张三"}, source="t")
    now = datetime(2025, 5, 1, tzinfo=UTC)
    first = admin.record_order(order("paid", updated=now, customer_id=cid), source="taobao")
    again = admin.record_order(
        order("refunded", updated=now + timedelta(hours=2), customer_id=cid), source="taobao"
    )
    assert first == again
    orders = admin.orders_of(cid)
    assert len(orders) == 1 and orders[0].status == "refunded"
    assert orders[0].total_amount == 19_900 and orders[0].items[0].amount == 19_900


def test_interaction_text_round_trips(admin: Session) -> None:
    cid = admin.add_customer({"name": "张三"}, source="t")
    admin.record_interaction(
        cid,
        kind="review",
        channel="taobao",
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        text="很好 👍",
        source="taobao",
    )
    [interaction] = admin.interactions_of(cid)
    assert interaction.text == "很好 👍" and interaction.kind == "review"


def test_tags_are_added_once_and_shown(admin: Session) -> None:
    cid = admin.add_customer({"name": "张三"}, source="t")
    assert admin.tag_customers([cid], "vip", source="t") == 1
    assert admin.tag_customers([cid], "vip", source="t") == 0
    assert admin.get_customer(cid).tags == ["vip"]
    assert admin.untag_customer(cid, "vip")
    assert admin.get_customer(cid).tags == []


@pytest.mark.parametrize("name", ["", "x" * 129, "a\x00b", "line\nbreak"])
def test_a_tag_name_that_cannot_be_stored_is_refused_on_both_databases(
    admin: Session, name: str
) -> None:
    cid = admin.add_customer({"name": "张三"}, source="t")
    with pytest.raises(InvalidValue, match="tag"):
        admin.tag_customers([cid], name, source="t")
    with pytest.raises(InvalidValue, match="tag"):
        admin.untag_customer(cid, name)
    assert admin.get_customer(cid).tags == []


def test_a_platform_name_longer_than_the_store_holds_is_refused(admin: Session) -> None:
    with pytest.raises(InvalidValue, match="platform"):
        admin.add_customer({"name": "张三"}, source="t", identities=[("p" * 33, "e1")])


def test_get_many_reads_what_get_reads_for_each_customer(admin: Session, vault: Vault) -> None:
    first = admin.add_customer(
        {"name": "张三", "phone": "13800138000"}, source="t", identities=[("youzan", "yz_9")]
    )
    second = admin.add_customer({"name": "李四", "email": "li@example.com"}, source="t")
    admin.tag_customers([second], "vip", source="t")
    store = vault._customers
    with vault._reader.connect() as connection:
        many = store.get_many(connection, [second, first])
        assert list(many) == [second, first]
        assert many == {cid: store.get(connection, cid) for cid in (second, first)}
        narrow = store.get_many(connection, [first, second], only_fields={"name"})
        assert {cid: set(c.fields) for cid, c in narrow.items()} == {
            first: {"name"},
            second: {"name"},
        }
        assert store.get_many(connection, [first], only_fields=set())[first].fields == {}
        with pytest.raises(NotFound):
            store.get_many(connection, [first, "00000000-0000-4000-8000-000000000000"])


def test_add_identities_skips_those_held_and_refuses_another_customers(
    admin: Session, vault: Vault
) -> None:
    first = admin.add_customer({"name": "甲"}, source="t", identities=[("zoho", "z-1")])
    second = admin.add_customer({"name": "乙"}, source="t")
    store = vault._customers
    with vault._transaction() as connection:
        store.add_identities(
            connection, [(first, "zoho", "z-1"), (second, "zoho", "z-2")], source="zoho"
        )
    assert admin.find_by_identity("zoho", "z-2") == second
    assert [i.external_id for i in admin.get_customer(first).identities] == ["z-1"]
    for clash in ([(second, "zoho", "z-1")], [(first, "zoho", "z-3"), (second, "zoho", "z-3")]):
        with pytest.raises(Conflict), vault._transaction() as connection:
            store.add_identities(connection, clash, source="zoho")
    assert admin.find_by_identity("zoho", "z-3") is None
