"""Identity resolution on blind indexes and identities; merge rules; masked values; review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sync_static import plugged, static_connector

from vault.session import Session
from vault.store.schema import customer_fields, customer_sources, duplicate_reviews
from vault.sync import ExternalCustomer
from vault.vault import Vault

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def person(external_id: str, minutes: int, **fields: str) -> ExternalCustomer:
    return ExternalCustomer(
        external_id=external_id, observed_at=T0 + timedelta(minutes=minutes), fields=fields
    )


def test_one_person_from_three_sources_becomes_one_customer_with_full_values_and_provenance(
    admin: Session, vault: Vault
) -> None:
    crm = static_connector(
        "crm",
        [
            [
                person(
                    "crm-1",
                    0,
                    name="张伟",
                    phone="+86 138-0013-8000",
                    email="zhang.wei@example.com",
                )
            ]
        ],
    )
    shop = static_connector(
        "shop",
        [
            [
                person(
                    "buyer-77",
                    10,
                    name="张*",
                    phone="138****8000",
                    email=" Zhang.Wei@Example.com ",
                    address="浙江省杭州市西湖区文三路 1 号",
                )
            ]
        ],
    )
    sheet = static_connector(
        "sheet", [[person("row-1", 20, phone="8613800138000", birthday="1990-04-01")]]
    )
    with plugged(crm, shop, sheet):
        assert admin.sync("crm").created == 1
        assert admin.sync("shop").merged == 1  # joined by email: the phone is masked
        assert admin.sync("sheet").merged == 1  # joined by phone, written another way
    found = admin.find_customers("phone", "13800138000", purpose="administration")
    assert len(found) == 1
    customer = admin.get_customer(found[0], purpose="administration")
    assert customer.get("name") == "张伟" and not customer.fields["name"].masked
    assert customer.get("phone") == "+8613800138000" and not customer.fields["phone"].masked
    assert customer.get("address") == "浙江省杭州市西湖区文三路 1 号"
    assert customer.get("birthday") == "1990-04-01"
    assert customer.fields["name"].source == "crm"
    assert customer.fields["address"].source == "shop"
    assert {i.platform for i in customer.identities} == {"crm", "shop", "sheet"}
    with vault._engine.connect() as connection:
        sources = dict(
            connection.execute(
                select(customer_sources.c.source, customer_sources.c.fields).where(
                    customer_sources.c.customer_id == found[0]
                )
            ).all()
        )
    assert sources == {
        "crm": "email,name,phone",
        "shop": "address,email,name,phone",
        "sheet": "birthday,phone",
    }
    assert admin.sync_status()  # the runs are recorded


def test_a_masked_value_alone_is_stored_as_masked_and_never_indexed(
    admin: Session, vault: Vault
) -> None:
    shop = static_connector("shop", [[person("buyer-1", 0, name="李*", phone="139****1234")]])
    with plugged(shop):
        admin.sync("shop")
    customer_id = admin.find_by_identity("shop", "buyer-1")
    assert customer_id is not None
    customer = admin.get_customer(customer_id, purpose="administration")
    assert customer.get("phone") == "139****1234" and customer.fields["phone"].masked
    with vault._engine.connect() as connection:
        index = connection.execute(
            select(customer_fields.c.blind_index).where(
                customer_fields.c.customer_id == customer_id, customer_fields.c.field == "phone"
            )
        ).scalar_one()
    assert index is None


def test_a_lower_ranked_newer_source_does_not_overwrite_and_a_masked_one_never_does(
    admin: Session, vault: Vault
) -> None:
    ranking = vault.home.path / "policies" / "sources.toml"
    ranking.write_text(
        ranking.read_text(encoding="utf-8").replace(
            "\n[sources]\n", "\n[sources]\ncrm_hi = 90\nshop_lo = 10\n"
        ),
        encoding="utf-8",
    )
    crm = static_connector("crm_hi", [[person("z1", 0, phone="13900001111", name="王芳")]])
    shop = static_connector(
        "shop_lo", [[person("t1", 60, phone="13900001111", name="王小芳", address="上海市")]]
    )
    with plugged(crm, shop):
        admin.sync("crm_hi")
        admin.sync("shop_lo")
    customer_id = admin.find_customers("phone", "13900001111", purpose="administration")[0]
    customer = admin.get_customer(customer_id, purpose="administration")
    assert customer.get("name") == "王芳" and customer.fields["name"].source == "crm_hi"
    assert customer.get("address") == "上海市"


def test_one_phone_on_two_customers_is_queued_for_review_not_merged(
    admin: Session, vault: Vault
) -> None:
    first = admin.add_customer({"name": "甲", "phone": "13700001111"}, source="cli")
    second = admin.add_customer({"name": "乙", "phone": "13700001111"}, source="cli")
    shop = static_connector("shop", [[person("b1", 0, phone="+86 137 0000 1111")]])
    with plugged(shop):
        report = admin.sync("shop")
    assert report.created == 1 and report.merged == 0 and report.counts.queued_for_review == 3
    newcomer = admin.find_by_identity("shop", "b1")
    with vault._engine.connect() as connection:
        pairs = {
            frozenset(row)
            for row in connection.execute(
                select(duplicate_reviews.c.customer_a, duplicate_reviews.c.customer_b)
            ).all()
        }
    assert pairs == {
        frozenset({first, second}),
        frozenset({first, newcomer}),
        frozenset({second, newcomer}),
    }
    for name in ("甲", "乙"):
        assert name in {
            admin.get_customer(c, purpose="administration").get("name") for c in (first, second)
        }


def test_the_same_person_twice_in_one_batch_makes_one_customer(admin: Session) -> None:
    shop = static_connector(
        "shop",
        [[person("b1", 0, phone="13600001111"), person("b2", 5, phone="136-0000-1111")]],
    )
    with plugged(shop):
        report = admin.sync("shop")
    assert (report.created, report.merged) == (1, 1)
    assert admin.find_by_identity("shop", "b1") == admin.find_by_identity("shop", "b2")


def test_a_connector_that_never_advances_fails_clearly_instead_of_looping(admin: Session) -> None:
    import pytest
    from sync_static import plugged

    from vault.errors import PlatformProtocolError
    from vault.sync import Connector, ConnectorInfo, Cursor, Page

    class Stuck(Connector):
        info = ConnectorInfo(
            name="stuck",
            platform="stuck",
            description="never advances",
            pulls=frozenset({"customers"}),
        )

        def fetch(self, stream: str, cursor: Cursor | None) -> Page:
            return Page(records=[], cursor={"at": 1}, more=True)

    with plugged(Stuck), pytest.raises(PlatformProtocolError, match="never end"):
        admin.sync("stuck")
