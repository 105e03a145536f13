"""Segments on SQLite: a full recompute over the UCI Online Retail lines, and the cost of one
incremental order update in a store of 1,000,000 orders, each beside a plain baseline measured
in the same run.

1. **Full recompute** over the 541,909 Online Retail lines (25,900 invoices, 4,372 customers;
   ``../shared/datasets/online-retail/online_retail.csv.gz`` beside the repository, or
   ``--retail``). The store is
   filled first (not timed) with the importer's parser and driver-level bulk inserts: every
   invoice an order, every line an item. Three rule groups (a category, a province, a tier) make
   the recompute read the items and regions as a shop's groups would. Timed:
   ``Segmenter.recompute(rescore=True)`` in one transaction (read every order and the items'
   categories, build every purchase history, take quantile cut points, score, classify, evaluate
   groups, rewrite every row). Rate = lines / s. Baselines: (a) the plain aggregation in SQL, one
   ``GROUP BY customer_id`` over the same orders (count, distinct days, sum, min, max) plus the
   same items scan; (b) the same aggregation in plain Python over the 541,909 parsed rows held in
   memory (no database at all).
2. **Incremental update** at 1,000,000 orders (100,000 customers with a region each, one
   categorised item per order, the same three groups, a scoring run taken; built with bulk
   inserts). Each of ``--updates`` new orders for a random customer is timed alone: the segment
   update (``Segmenter.refresh`` of its customer: read its orders and categories, score against
   the stored cuts, classify, rewrite its row and memberships), and the whole
   ``CustomerStore.record_order`` (order write + segment update, in a transaction with its
   commit). Baselines: the order write alone (``record_order`` minus the segment update) and one
   indexed ``SELECT`` of the customer's orders.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._table import Benchmark, Goal, Row, percentile, progress, stopwatch
from vault import NewCustomer, Vault
from vault.records import Order
from vault.segments.importer import parse_online_retail
from vault.store._bulk import BulkInsert
from vault.store.schema import customer_regions, order_items, orders

GOALS: dict[str, Goal] = {
    "recompute_rate": Goal(">=", 500_000, "/s"),
    "update_p99": Goal("<", 1.0, "ms"),
}
DEFAULT_RETAIL = Path(
    os.environ.get("VAULT_DATASETS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "datasets",
    "online-retail",
    "online_retail.csv.gz",
)
FULL = {"orders": 1_000_000, "customers": 100_000, "updates": 2_000, "lines": None}
QUICK = {"orders": 20_000, "customers": 2_000, "updates": 200, "lines": 20_000}
GROUPS = {
    "tea_buyers": '"tea" in categories',
    "guangdong": 'province_code == "44"',
    "top": 'tier == "high_value"',
}
CATEGORIES = ("tea", "books", "shoes", "toys", "food")
PROVINCES = ("44", "11", "31", "33", "51")
ORDER_COLUMNS = (
    "id",
    "customer_id",
    "platform",
    "shop",
    "order_id",
    "status",
    "currency",
    "total_amount",
    "created_at",
    "paid_at",
    "updated_at",
    "refunded_at",
    "source",
)
ITEM_COLUMNS = (
    "order_pk",
    "line_no",
    "product_id",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "amount",
)
BATCH = 50_000
SEED = 20_250_630


def _quiet() -> None:
    from vault.log import configure_logging

    configure_logging(level="WARNING")


def _new_vault(folder: Path) -> tuple[Vault, str]:
    vault, token = Vault.init(folder / "home")
    return vault, token


def _bulk_orders(vault: Vault, rows: list[tuple[Any, ...]], items: list[tuple[Any, ...]]) -> None:
    """Orders and items straight to the driver, in batches; times bound once per value."""
    with vault._transaction() as connection:
        order_insert = BulkInsert(connection, orders, ORDER_COLUMNS)
        item_insert = BulkInsert(connection, order_items, ITEM_COLUMNS)
        bound: dict[datetime, Any] = {}

        def at(value: datetime) -> Any:
            if value not in bound:
                bound[value] = order_insert.bind("created_at", value)
            return bound[value]

        converted = [(*row[:8], at(row[8]), at(row[9]), at(row[10]), None, row[12]) for row in rows]
        for start in range(0, len(converted), BATCH):
            order_insert.execute(converted[start : start + BATCH])
        for start in range(0, len(items), BATCH):
            item_insert.execute(items[start : start + BATCH])


def _add_groups(vault: Vault, token: str) -> None:
    admin = vault.session(token, purpose="administration")
    for name, rule in GROUPS.items():
        admin.add_group(name, rule)


# --- 1. full recompute over Online Retail ---------------------------------------------------


def _load_retail(vault: Vault, path: Path, lines: int | None) -> tuple[int, list[tuple[Any, ...]]]:
    """Fill the store with the Online Retail invoices; returns (lines, plain rows) where a plain
    row is (customer, day, amount, cancelled) per line, for the Python baseline."""
    zone = vault.segments.rules.timezone
    source = path
    if lines is not None:  # --quick: the first N lines
        import gzip

        source = Path(tempfile.mkdtemp()) / "retail_head.csv"
        with (
            gzip.open(path, "rt", encoding="utf-8", newline="") as handle,
            source.open("w", encoding="utf-8", newline="") as out,
        ):
            for n, line in enumerate(handle):
                if n > lines:
                    break
                out.write(line)
    parsed = parse_online_retail(source, timezone=zone)
    externals = sorted({p.external_customer for p in parsed.orders if p.external_customer})
    with vault._transaction() as connection:
        ids = vault._customers.add_many(
            connection,
            [NewCustomer(fields={}, identities=[("online-retail", e)]) for e in externals],
            source="bench",
        )
    by_external = dict(zip(externals, ids, strict=True))
    rows: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    plain: list[tuple[Any, ...]] = []
    for pk, parsed_order in enumerate(parsed.orders, start=1):
        order = parsed_order.order
        customer = by_external.get(parsed_order.external_customer or "")
        at = order.created_at.astimezone(UTC)
        rows.append(
            (
                pk,
                customer,
                order.platform,
                order.shop,
                order.order_id,
                order.status,
                order.currency,
                order.total_amount,
                at,
                at,
                at,
                None,
                "bench",
            )
        )
        day = order.created_at.date()
        for line_no, item in enumerate(order.items, start=1):
            items.append(
                (
                    pk,
                    line_no,
                    item.product_id,
                    item.product_name,
                    None,
                    item.quantity,
                    item.unit_price,
                    item.amount,
                )
            )
            plain.append((customer, day, item.amount, order.status == "cancelled"))
    _bulk_orders(vault, rows, items)
    return parsed.lines, plain


def _sql_baseline(vault: Vault) -> None:
    with vault._engine.connect() as connection:
        connection.exec_driver_sql(
            "SELECT customer_id, COUNT(*), COUNT(DISTINCT substr(created_at, 1, 10)), "
            "SUM(total_amount), MIN(created_at), MAX(created_at) FROM orders "
            "WHERE customer_id IS NOT NULL AND refunded_at IS NULL "
            "AND lower(status) NOT IN ('cancelled', 'canceled', 'refunded', 'closed') "
            "GROUP BY customer_id"
        ).all()
        connection.exec_driver_sql(
            "SELECT DISTINCT order_pk, category FROM order_items WHERE category IS NOT NULL"
        ).all()


def _python_baseline(plain: list[tuple[Any, ...]]) -> int:
    days: dict[Any, set[Any]] = defaultdict(set)
    totals: dict[Any, int] = defaultdict(int)
    first: dict[Any, Any] = {}
    last: dict[Any, Any] = {}
    for customer, day, amount, cancelled in plain:
        if customer is None or cancelled:
            continue
        days[customer].add(day)
        totals[customer] += amount
        if customer not in first or day < first[customer]:
            first[customer] = day
        if customer not in last or day > last[customer]:
            last[customer] = day
    return len(totals)


def _recompute_rows(args: argparse.Namespace, folder: Path) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    vault, token = _new_vault(folder / "retail")
    try:
        progress(f"segments: loading Online Retail from {args.retail} (not timed) …")
        lines, plain = _load_retail(vault, args.retail, sizes["lines"])
        _add_groups(vault, token)
        progress(f"segments: full recompute over {lines:,} lines …")
        with stopwatch() as elapsed, vault._transaction() as connection:
            report = vault.segments.recompute(connection, rescore=True)
        with stopwatch() as sql_elapsed:
            _sql_baseline(vault)
        with stopwatch() as python_elapsed:
            _python_baseline(plain)
    finally:
        vault.close()
    rate = lines / elapsed[0]
    note = (
        f"{lines:,} lines, {report.orders:,} orders with a customer, {report.customers:,} "
        f"customers, {report.memberships:,} group memberships, {elapsed[0]:.2f} s"
    )
    return [
        Row(
            "full recompute, Online Retail",
            rate,
            "lines/s",
            baseline=lines / sql_elapsed[0],
            higher_is_better=True,
            goals=(GOALS["recompute_rate"],),
            note=note + f"; baseline: one GROUP BY + the items scan, {sql_elapsed[0]:.2f} s",
        ),
        Row(
            "  same, vs plain Python aggregation",
            rate,
            "lines/s",
            baseline=lines / python_elapsed[0],
            higher_is_better=True,
            note=f"baseline: a dict aggregation of the parsed lines in memory, "
            f"{python_elapsed[0]:.2f} s",
        ),
    ]


# --- 2. incremental update at 1,000,000 orders -------------------------------------------------


def _build_million(vault: Vault, token: str, orders_n: int, customers_n: int) -> list[str]:
    rng = random.Random(SEED)
    progress(f"segments: {customers_n:,} customers, {orders_n:,} orders (bulk, not timed) …")
    with vault._transaction() as connection:
        ids = vault._customers.add_many(
            connection, [NewCustomer(fields={}) for _ in range(customers_n)], source="bench"
        )
        BulkInsert(
            connection, customer_regions, ("customer_id", "province_code", "city_code")
        ).execute([(cid, rng.choice(PROVINCES), None) for cid in ids])
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    for pk in range(1, orders_n + 1):
        customer = ids[rng.randrange(customers_n)]
        at = start + timedelta(days=rng.randrange(540), hours=rng.randrange(24))
        amount = rng.randrange(100, 100_000)
        rows.append(
            (
                pk,
                customer,
                "youzan",
                "s",
                f"o{pk}",
                "paid",
                "CNY",
                amount,
                at,
                at,
                at,
                None,
                "bench",
            )
        )
        items.append((pk, 1, "p", "p", rng.choice(CATEGORIES), 1, amount, amount))
    _bulk_orders(vault, rows, items)
    _add_groups(vault, token)
    progress("segments: scoring run over the 1,000,000 orders (not timed) …")
    with vault._transaction() as connection:
        vault.segments.recompute(connection, rescore=True)
    return ids


def _update_rows(args: argparse.Namespace, folder: Path) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    orders_n: int = args.orders or sizes["orders"]
    customers_n: int = max(1, min(args.customers or sizes["customers"], orders_n))
    updates: int = args.updates or sizes["updates"]
    vault, _token = _new_vault(folder / "million")
    try:
        ids = _build_million(vault, _token, orders_n, customers_n)
        rng = random.Random(SEED + 1)
        store = vault._customers
        segmenter = vault.segments
        refresh_ms: list[float] = []
        write_ms: list[float] = []
        whole_ms: list[float] = []
        select_ms: list[float] = []
        select_sql = "SELECT id, created_at, total_amount FROM orders WHERE customer_id = ?"
        now = datetime.now(UTC)
        progress(f"segments: {updates:,} incremental updates …")
        for n in range(updates + 20):  # 20 untimed warm-up updates
            customer = ids[rng.randrange(customers_n)]
            order = Order(
                platform="youzan",
                shop="s",
                order_id=f"new{n}",
                status="paid",
                currency="CNY",
                total_amount=rng.randrange(100, 100_000),
                created_at=now,
                updated_at=now,
                customer_id=customer,
            )
            started = time.perf_counter_ns()
            with vault._transaction() as connection:
                store._write_order(connection, order, source="bench")
                written = time.perf_counter_ns()
                segmenter.refresh(connection, [customer])
                refreshed = time.perf_counter_ns()
            done = time.perf_counter_ns()
            with vault._engine.connect() as connection:
                before = time.perf_counter_ns()
                connection.exec_driver_sql(select_sql, (customer,)).all()
                after = time.perf_counter_ns()
            if n >= 20:
                write_ms.append((written - started) / 1e6)
                refresh_ms.append((refreshed - written) / 1e6)
                whole_ms.append((done - started) / 1e6)
                select_ms.append((after - before) / 1e6)
    finally:
        vault.close()
    for values in (refresh_ms, write_ms, whole_ms, select_ms):
        values.sort()
    note = f"{orders_n:,} orders, {customers_n:,} customers, {updates:,} updates"
    return [
        Row(
            "incremental segment update p50",
            percentile(refresh_ms, 50),
            "ms",
            baseline=percentile(select_ms, 50),
            note=note + "; baseline: one indexed SELECT of the customer's orders",
        ),
        Row(
            "incremental segment update p99",
            percentile(refresh_ms, 99),
            "ms",
            baseline=percentile(select_ms, 99),
            goals=(GOALS["update_p99"],),
        ),
        Row(
            "record_order with segments p50",
            percentile(whole_ms, 50),
            "ms",
            baseline=percentile(write_ms, 50),
            note="order write + segment update + commit; baseline: the order write alone",
        ),
        Row(
            "record_order with segments p99",
            percentile(whole_ms, 99),
            "ms",
            baseline=percentile(write_ms, 99),
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retail", type=Path, default=DEFAULT_RETAIL, help="online_retail.csv.gz")
    parser.add_argument(
        "--orders", type=int, default=None, help=f"orders in the store (default {FULL['orders']:,})"
    )
    parser.add_argument(
        "--customers", type=int, default=None, help=f"customers (default {FULL['customers']:,})"
    )
    parser.add_argument(
        "--updates", type=int, default=None, help=f"timed updates (default {FULL['updates']:,})"
    )
    parser.add_argument(
        "--only", choices=("recompute", "update"), default=None, help="run one part only"
    )


def run(args: argparse.Namespace) -> list[Row]:
    _quiet()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as folder:
        if args.only in (None, "recompute"):
            rows += _recompute_rows(args, Path(folder))
        if args.only in (None, "update"):
            rows += _update_rows(args, Path(folder))
    return rows


BENCHMARK = Benchmark(
    help="segments: full recompute (Online Retail lines/s), incremental update at 1M orders",
    add_arguments=add_arguments,
    run=run,
)
