"""Incremental segment updates after random orders equal a full recompute.

Random orders (new, re-recorded with another status or amount, moved to another customer,
cancelled, refunded, in several categories and on several platforms) land one at a time through
``CustomerStore.record_order`` — which updates only that order's customers — and the stored state
(summary rows, scores, tiers, stages, rule-group memberships) must then equal what a full
recompute writes. About 5,000 orders per scoring method on SQLite (10,000 in all), 750 on
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from vault import NewCustomer, Vault
from vault.records import Order, OrderItem
from vault.segments import Segmenter, SegmentRules, default_rules
from vault.session import Session
from vault.store.schema import customer_segments, group_members

NOW = datetime(2025, 6, 30, 12, tzinfo=UTC)
START = date(2023, 1, 1)
CATEGORIES = ("books", "tea", "shoes", None)
PLATFORMS = ("taobao", "youzan", "pinduoduo")
STATUSES = ("paid", "completed", "cancelled", "refunded", "TRADE_CLOSED", "shipped")
ADDRESSES = (
    "广东省深圳市南山区科技园路1号",
    "北京市朝阳区建国路2号",
    "浙江杭州西湖区文三路3号",
    None,
)
GROUPS = {
    "big_tea": 'm >= 4 and "tea" in categories',
    "cantonese": 'province == "广东省"',
    "shenzhen_repeat": 'city_code == "4403" and stage in ("repeat", "loyal")',
    "taobao_loyal": '"taobao" in platforms and tier == "high_value"',
    "not_lapsed": 'not stage == "lapsed" and recency_days <= 400',
}
POOL = 12


def fixed_rules() -> SegmentRules:
    text = files("policies").joinpath("segments.toml").read_text(encoding="utf-8")
    return SegmentRules.parse(text.replace('method = "quantiles"', 'method = "fixed"'))


def snapshot(connection: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    columns = [c for c in customer_segments.c if c.name != "updated_at"]
    rows = [tuple(r) for r in connection.execute(select(*columns).order_by(columns[0]))]
    members = [
        tuple(r)
        for r in connection.execute(
            select(group_members.c.group_id, group_members.c.customer_id).order_by(
                group_members.c.group_id, group_members.c.customer_id
            )
        )
    ]
    return rows, members


order_plan = st.tuples(
    st.integers(0, POOL - 1),  # customer
    st.integers(0, 60),  # order number: a repeat re-records (updates) an order
    st.integers(0, 900),  # day offset
    st.integers(0, 2),  # orders per day (hour spread)
    st.integers(0, 200_000),  # amount
    st.sampled_from(STATUSES),
    st.booleans(),  # refunded_at set
    st.sampled_from(CATEGORIES),
    st.sampled_from(PLATFORMS),
    st.integers(0, 9),  # 0: order without customer
)


def make_order(plan: tuple[Any, ...], customers: list[str], serial: int) -> Order:
    who, number, day, hour, amount, status, refunded, category, platform, anonymous = plan
    at = datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC) + timedelta(
        hours=hour * 9
    )
    items = (
        [
            OrderItem(
                product_id="p", product_name="p", quantity=1, unit_price=amount, category=category
            )
        ]
        if category is not None
        else []
    )
    return Order(
        platform=platform,
        shop="s",
        order_id=f"{serial}-{number}",
        status=status,
        currency="CNY",
        total_amount=amount,
        created_at=at,
        updated_at=at,
        refunded_at=at if refunded else None,
        items=items,
        customer_id=None if anonymous == 0 else customers[who],
    )


@pytest.mark.parametrize("method", ["quantiles", "fixed"])
def test_incremental_updates_after_random_orders_equal_a_full_recompute(
    vault: Vault, admin: Session, db_url: str, method: str
) -> None:
    rules = default_rules() if method == "quantiles" else fixed_rules()
    segmenter = Segmenter(rules, clock=lambda: NOW)
    vault.segments = segmenter
    vault._customers.segmenter = segmenter
    for name, rule in GROUPS.items():
        admin.add_group(name, rule)
    examples = 100 if db_url.startswith("sqlite") else 15
    serial = [0]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        st.lists(order_plan, min_size=40, max_size=60),
        st.lists(st.sampled_from(ADDRESSES), min_size=POOL, max_size=POOL),
    )
    def run(plans: list[tuple[Any, ...]], addresses: list[str | None]) -> None:
        serial[0] += 1
        with vault._transaction() as connection:
            customers = vault._customers.add_many(
                connection,
                [NewCustomer(fields={"address": a} if a else {}) for a in addresses],
                source="test",
            )
            if method == "quantiles":
                # Take a cut-point snapshot over the base as it is, then go incremental.
                segmenter.recompute(connection, rescore=True)
        with vault._transaction() as connection:
            for plan in plans:  # each record_order updates its customers' segments
                vault._customers.record_order(
                    connection, make_order(plan, customers, serial[0]), source="test"
                )
        with vault._transaction() as connection:
            incremental = snapshot(connection)
            segmenter.recompute(connection, rescore=False)
            assert snapshot(connection) == incremental
            if method == "fixed":
                segmenter.recompute(connection, rescore=True)
                assert snapshot(connection) == incremental

    run()
