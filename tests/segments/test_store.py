"""Segments in the store: groups over regions and purchases, members queries, the analyst's
view, the CLI and the Online Retail importer."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from vault import AccessDenied, NewCustomer, Vault
from vault.cli import cli
from vault.records import Order, OrderItem
from vault.segments import Segmenter, members_query
from vault.segments.region import region_of
from vault.session import Session

NOW = datetime(2025, 6, 30, 4, tzinfo=UTC)
DATASETS = Path(
    os.environ.get("VAULT_DATASETS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
)
RETAIL = DATASETS / "online-retail" / "online_retail.csv.gz"
ADDRESS_SZ = "广东省深圳市南山区科技园科苑路8号3栋1502室"
ADDRESS_BJ = "北京市朝阳区建国路88号"


def order(
    customer_id: str,
    n: int,
    days_ago: int,
    amount: int,
    category: str | None = None,
    platform: str = "youzan",
) -> Order:
    at = NOW - timedelta(days=days_ago)
    return Order(
        platform=platform,
        shop="s",
        order_id=f"{customer_id}-{n}",
        status="paid",
        currency="CNY",
        total_amount=amount,
        created_at=at,
        updated_at=at,
        items=[
            OrderItem(
                product_id="p", product_name="茶", quantity=1, unit_price=amount, category=category
            )
        ],
        customer_id=customer_id,
    )


@pytest.fixture
def fixed_clock(vault: Vault) -> Vault:
    segmenter = Segmenter(vault.segments.rules, clock=lambda: NOW)
    vault.segments = segmenter
    vault._customers.segmenter = segmenter
    return vault


def test_region_is_derived_from_the_address_start() -> None:
    shenzhen = region_of(ADDRESS_SZ)
    assert shenzhen is not None and (shenzhen.province_code, shenzhen.city_code) == ("44", "4403")
    beijing = region_of(ADDRESS_BJ)
    assert beijing is not None and (beijing.province_code, beijing.city_code) == ("11", "1101")
    short = region_of("浙江 杭州 西湖区文三路")
    assert short is not None and (short.province_code, short.city_code) == ("33", "3301")
    assert region_of("somewhere else") is None


def test_rule_groups_follow_orders_and_address_changes(fixed_clock: Vault, admin: Session) -> None:
    vault = fixed_clock
    admin.add_group("sz_tea", 'city == "深圳市" and "tea" in categories')
    admin.add_group("cantonese", 'province_code == "44"')
    sz, bj = admin.add_customers(
        [NewCustomer(fields={"address": ADDRESS_SZ}), NewCustomer(fields={"address": ADDRESS_BJ})],
        source="t",
    )
    with vault._engine.connect() as connection:
        # The derived codes only: the address itself stays sealed.
        rows = connection.execute(select(vault_schema().customer_regions)).all()
        assert sorted((r.province_code, r.city_code) for r in rows) == [
            ("11", "1101"),
            ("44", "4403"),
        ]
    assert admin.segment_of(sz).groups == ["cantonese"]  # every customer, not only buyers
    admin.record_order(order(sz, 1, 3, 5000, "tea"), source="t")
    admin.record_order(order(bj, 1, 3, 5000, "tea"), source="t")
    assert admin.segment_of(sz).groups == ["cantonese", "sz_tea"]
    assert admin.segment_of(bj).groups == []
    admin.update_customer(bj, {"address": "广东省深圳市福田区深南大道1号"}, source="t")
    assert admin.segment_of(bj).groups == ["cantonese", "sz_tea"]
    assert admin.segment_members("sz_tea").customer_ids == sorted([sz, bj])
    with vault._engine.connect() as connection:
        members = set(connection.execute(members_query("group:sz_tea")).scalars())
    assert members == {sz, bj}


def test_members_query_selects_tiers_stages_tags_and_prospects(
    fixed_clock: Vault, admin: Session
) -> None:
    vault = fixed_clock
    buyer, prospect = admin.add_customers([NewCustomer(fields={}) for _ in range(2)], source="t")
    for n in range(4):
        admin.record_order(order(buyer, n, 10 + n * 20, 10_000), source="t")
    admin.recompute_segments()
    admin.tag_customers([prospect], "vip", source="t")
    segment = admin.segment_of(buyer)
    assert segment.stage == "loyal" and segment.tier is not None

    def members(name: str) -> set[str]:
        query = members_query(name, segmenter=vault.segments)
        with vault._engine.connect() as connection:
            return set(connection.execute(query).scalars())

    assert members("loyal") == members("stage:loyal") == {buyer}
    assert members("prospect") == {prospect}
    assert members(f"tier:{segment.tier}") == {buyer}
    assert members("tag:vip") == {prospect}
    assert members("group:nothing") == set()
    assert admin.list_segments(tag="vip", stage="prospect").customer_ids == [prospect]


def test_the_analyst_reads_segments_but_no_personal_data(
    fixed_clock: Vault, admin: Session
) -> None:
    vault = fixed_clock
    customer = admin.add_customer({"name": "张三", "phone": "13800138000"}, source="t")
    admin.record_order(order(customer, 1, 3, 1200), source="t")
    token = admin.add_principal("ana", ["analyst"])
    analyst = vault.session(token, purpose="analytics")
    segment = analyst.segment_of(customer)
    assert segment.stage == "first_purchase"
    assert analyst.list_segments(stage="first_purchase").customer_ids == [customer]
    assert analyst.get_customer(customer).fields == {}
    with pytest.raises(AccessDenied):
        analyst.recompute_segments()
    with pytest.raises(AccessDenied):
        analyst.add_group("g", "orders > 0")
    with pytest.raises(AccessDenied):
        vault.session(token, purpose="marketing_sms").segment_of(customer)


def test_cli_segments_and_groups_print_ids_and_counts_only(
    vault: Vault, initialised: tuple[Vault, str], home: Path
) -> None:
    _, token = initialised
    admin = vault.session(token, purpose="administration")
    customer = admin.add_customer({"name": "李四", "phone": "13900139000"}, source="t")
    admin.record_order(order(customer, 1, 2, 4200, "tea"), source="t")

    def run(*args: str) -> str:
        result = CliRunner().invoke(
            cli, ["--home", str(home), "--token", token, *args], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert "李四" not in result.output and "13900139000" not in result.output
        return result.output

    recompute = json.loads(run("segments", "recompute", "--json"))
    assert recompute["customers"] == 1 and recompute["rescored"] is True
    added = json.loads(run("group", "add", "tea_lovers", "--rule", '"tea" in categories', "--json"))
    assert added == {"name": "tea_lovers", "members": 1}
    shown = json.loads(run("segments", "show", customer, "--json", "--purpose", "administration"))
    assert shown["groups"] == ["tea_lovers"] and shown["history"]["total_amount"] == 4200
    listing = json.loads(
        run("segments", "list", "--group", "tea_lovers", "--json", "--purpose", "analytics")
    )
    assert listing["customer_ids"] == [customer]
    assert listing["counts"]["group"] == {"tea_lovers": 1}
    members = json.loads(
        run("segments", "members", "tea_lovers", "--json", "--purpose", "analytics")
    )
    assert members["customer_ids"] == [customer]
    groups = json.loads(run("group", "list", "--json", "--purpose", "analytics"))
    assert groups[0]["rule"] == '"tea" in categories'
    bad = CliRunner().invoke(
        cli,
        ["--home", str(home), "--token", token, "group", "add", "x", "--rule", "open('f')"],
    )
    assert bad.exit_code == 1 and "Call is not allowed" in bad.stderr


@pytest.mark.skipif(not RETAIL.exists(), reason=f"no Online Retail data at {RETAIL}")
def test_online_retail_invoices_import_as_orders_with_identity_only_customers(
    vault: Vault, admin: Session, tmp_path: Path
) -> None:
    with gzip.open(RETAIL, "rt", encoding="utf-8", newline="") as handle:
        head = [next(handle) for _ in range(3001)]
    part = tmp_path / "retail_part.csv"
    part.write_text("".join(head), encoding="utf-8")
    report = admin.import_orders(part, fmt="online-retail")
    assert report.lines == 3000
    assert report.customers_created > 0 and report.orders > 0
    with vault._engine.connect() as connection:
        customer = vault._customers.find_identity(connection, "online-retail", "17850")
        assert customer is not None
        stored = vault._customers.get(connection, customer)
    assert stored.fields == {}  # no invented personal data
    orders = admin.orders_of(customer)
    first = next(o for o in orders if o.order_id == "536365")
    # 7 lines: 6×2.55 + 6×3.39 + 8×2.75 + 6×3.39 + 6×3.39 + 2×7.65 + 6×4.25 = £139.12
    assert first.total_amount == 13912 and len(first.items) == 7
    summary = admin.rfm_summaries(customer_ids=[customer])[customer]
    assert summary.total_amount == sum(  # type: ignore[union-attr]
        o.total_amount for o in orders if o.status != "cancelled"
    )


def test_a_malformed_order_file_is_refused_before_anything_is_written(
    vault: Vault, admin: Session, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(" 00001 0001 19970101  1   11.77\n 00002 0002 19971301  1   9.99\n")
    with pytest.raises(Exception, match="line 2") as raised:
        admin.import_orders(bad, fmt="cdnow")
    assert "9.99" not in str(raised.value)
    assert admin.list_customers().customer_ids == []


def vault_schema():  # type: ignore[no-untyped-def]
    from vault.store import schema

    return schema


def test_erasure_removes_the_segment_state_and_the_derived_region(
    fixed_clock: Vault, admin: Session
) -> None:
    vault = fixed_clock
    admin.add_group("cantonese", 'province_code == "44"')
    customer = admin.add_customer({"address": ADDRESS_SZ}, source="t")
    admin.record_order(order(customer, 1, 3, 5000), source="t")
    assert admin.segment_of(customer).groups == ["cantonese"]
    admin.erase_customer(customer, reason="customer request")
    schema = vault_schema()
    with vault._engine.connect() as connection:
        for table in (schema.customer_segments, schema.customer_regions, schema.group_members):
            assert connection.execute(select(table)).first() is None, table.name
        assert list(connection.execute(members_query("prospect")).scalars()) == []


def test_merging_customers_moves_their_purchases_into_the_survivors_segments(
    fixed_clock: Vault, admin: Session
) -> None:
    survivor, merged = admin.add_customers([NewCustomer(fields={}) for _ in range(2)], source="t")
    admin.record_order(order(survivor, 1, 3, 1000), source="t")
    admin.record_order(order(merged, 1, 40, 2000), source="t")
    admin.record_order(order(merged, 2, 80, 3000), source="t")
    admin.merge_customers(survivor, merged)
    history = admin.segment_of(survivor).history
    assert history is not None and (history.orders, history.total_amount) == (3, 6000)
    assert admin.segment_of(survivor).stage == "repeat"
    admin.unmerge(merged)
    history = admin.segment_of(survivor).history
    assert history is not None and (history.orders, history.total_amount) == (1, 1000)
    moved_back = admin.segment_of(merged).history
    assert moved_back is not None and moved_back.orders == 2
