"""A full pull of N orders from the Taobao sandbox into an empty vault, beside the sandbox floor.

The sandbox runs in a process of its own (``vault sandbox taobao --records N``), as the
platform would, so its CPU is not the client's. Both runs read the same seeded orders:

1. **Sandbox floor**: a :class:`~connectors.taobao.connector.TaobaoConnector` pulls the orders
   stream to its end with no vault at all: the same list and detail pages fetched, signed,
   parsed and turned into records, thrown away. This is what no vault can beat.
2. **Full pull into an empty vault**: ``Session.sync("taobao")`` in a fresh vault (SQLite by
   default, or ``--db-url``): the same fetches plus identity resolution, sealing, masks,
   platform handles, orders, cursors and audit events, per committed page.

Goal (issue 8): the vault's work adds no more than 50% to the floor (ratio <= 1.5x).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._table import Benchmark, Goal, Row, progress

GOALS: dict[str, Goal] = {"pull_ratio": Goal("<=", 1.5, "×")}
FULL = {"orders": 100_000}
QUICK = {"orders": 2_000}
SEED = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orders", type=int, default=None, help="orders in the sandbox")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--db-url", default=None, help="the vault's database (default: SQLite)")
    parser.add_argument("--workers", type=int, default=4, help="parallel detail calls")


def _start_sandbox(orders: int, seed: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vault.cli",
            "sandbox",
            "taobao",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--records",
            str(orders),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the sandbox did not start")
    return process, json.loads(line)


def _settings(announced: dict[str, Any], workers: int) -> dict[str, str]:
    return {
        **announced["credentials"],
        "base_url": announced["base_url"],
        "settle_seconds": "0",
        "detail_workers": str(workers),
    }


def _floor(settings: dict[str, str]) -> tuple[int, float]:
    from connectors.taobao.connector import TaobaoConnector

    connector = TaobaoConnector(settings)
    seen: set[str] = set()
    cursor = None
    started = time.perf_counter()
    try:
        while True:
            page = connector.fetch("orders", cursor)
            seen.update(r.order.order_id for r in page.records)  # type: ignore[union-attr]
            cursor = page.cursor
            if not page.more:
                break
    finally:
        connector.close()
    return len(seen), time.perf_counter() - started


def _vault_pull(settings: dict[str, str], db_url: str | None) -> tuple[int, float, dict[str, Any]]:
    from sqlalchemy import func, select

    from vault import Vault
    from vault.log import configure_logging
    from vault.store.schema import orders

    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory(prefix="bench-taobao-") as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'vault.db'}"
        vault, token = Vault.init(Path(folder) / "home", db_url=url)
        try:
            admin = vault.session(token, purpose="administration")
            admin.configure_connector("taobao", settings)
            started = time.perf_counter()
            report = admin.sync("taobao")
            elapsed = time.perf_counter() - started
            with vault._reader.connect() as connection:
                stored = connection.execute(select(func.count()).select_from(orders)).scalar_one()
            return int(stored), elapsed, report.counts.as_dict()
        finally:
            vault.close()


def run(args: argparse.Namespace) -> list[Row]:
    count: int = args.orders or (QUICK if args.quick else FULL)["orders"]
    progress(f"taobao: starting the sandbox with {count:,} orders (seed {args.seed}) …")
    process, announced = _start_sandbox(count, args.seed)
    try:
        settings = _settings(announced, args.workers)
        progress("taobao: sandbox floor (fetch and parse, no vault) …")
        floor_orders, floor_seconds = _floor(settings)
        progress(f"taobao: full pull into an empty vault ({floor_orders:,} orders) …")
        stored, vault_seconds, counts = _vault_pull(settings, args.db_url)
    finally:
        process.terminate()
        process.wait(timeout=30)
    if stored != count or floor_orders != count:
        raise RuntimeError(f"expected {count} orders, floor saw {floor_orders}, vault {stored}")
    floor_rate = floor_orders / floor_seconds
    vault_rate = stored / vault_seconds
    db = "PostgreSQL" if args.db_url and args.db_url.startswith("postgresql") else "SQLite"
    return [
        Row(
            f"full pull into an empty vault, sync ({count:,} orders, {db})",
            vault_rate,
            "orders/s",
            baseline=floor_rate,
            higher_is_better=True,
            ratio_goals=(GOALS["pull_ratio"],),
            note=f"baseline: the sandbox floor (same pages fetched and parsed, no vault); "
            f"{counts['created']:,} customers created"
            + ("; --quick: sizes too small to judge the goal" if args.quick else ""),
        ),
        Row(
            "  sandbox floor, TaobaoConnector.fetch to the end",
            floor_rate,
            "orders/s",
            higher_is_better=True,
            note=f"{args.workers} parallel detail calls; sandbox in its own process",
        ),
    ]


BENCHMARK = Benchmark(
    help="full pull of N Taobao orders from the sandbox into an empty vault vs the sandbox floor",
    add_arguments=add_arguments,
    run=run,
)
