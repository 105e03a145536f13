"""Fenxiang Xiaoke: a full pull of N contacts from the sandbox into an empty vault, beside the
sandbox floor, measured in the same run.

1. **Floor, raw pages**: the same ``/cgi/crm/v2/data/query`` pages the connector asks for
   (offsets 0-10,000, then the ``_id`` cursor), fetched over HTTP from the same sandbox with the
   connector's client (token, body auth, errorCode check) and parsed from JSON; no vault work.
   Measured after one untimed warm-up pass over the same pages.
2. **Floor, connector**: the connector's own ``fetch`` loop (pages parsed into
   ``ExternalCustomer`` records), still with no vault work.
3. **Full pull into the vault**: ``admin.sync("fxiaoke")`` into a fresh SQLite vault in a
   temporary folder: resolve, encrypt, blind-index, store, cursor per page, audit per page.

Every figure is customers per second. The sandbox is seeded (and its data generated) before
any clock starts; its per-endpoint limit and the client's pacing are off, so the floor is the
HTTP and JSON cost alone.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._table import Benchmark, Goal, Row, progress, stopwatch
from connectors.fxiaoke import FxiaokeConnector
from connectors.fxiaoke.sandbox import FxiaokeSandbox
from vault import Vault

GOALS: dict[str, Goal] = {
    "pull_ratio": Goal("<=", 1.5, "×"),  # the vault's work adds at most 50% to the floor
}
FULL = {"records": 50_000}
QUICK = {"records": 2_000}
SEED = 20_261_201


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=int, default=None, help="contacts in the sandbox")


def _settings(sandbox: FxiaokeSandbox) -> dict[str, str]:
    return {**sandbox.credentials(), **sandbox.urls(), "calls_per_20s": "0"}


def _raw_pages(sandbox: FxiaokeSandbox, connector: FxiaokeConnector) -> int:
    """The connector's page requests, answered and parsed, without building records."""
    client = connector.client
    path = "/cgi/crm/v2/data/query"
    projection = connector._projection()
    seen = 0
    offset = 0
    after: str | None = None
    while True:
        info: dict[str, Any] = {
            "limit": 100,
            "offset": offset if after is None else 0,
            "filters": []
            if after is None
            else [{"field_name": "_id", "field_values": [after], "operator": "GT"}],
            "orders": [{"fieldName": "_id", "isAsc": True}],
            "fieldProjection": projection,
        }
        answer = client.call(
            path,
            {
                "dataObjectApiName": "ContactObj",
                "find_explicit_total_num": False,
                "search_query_info": info,
            },
        )
        rows = answer["data"]["dataList"]
        seen += len(rows)
        if len(rows) < 100:
            return seen
        if after is None and offset + 100 <= 10_000:
            offset += 100
        else:
            after = rows[-1]["_id"]


def _connector_pages(connector: FxiaokeConnector) -> int:
    seen = 0
    cursor = None
    while True:
        page = connector.fetch("customers", cursor)
        seen += len(page.records)
        cursor = page.cursor
        if not page.more:
            return seen


def run(args: argparse.Namespace) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    n = args.records or sizes["records"]
    progress(f"fxiaoke: seeding a sandbox with {n:,} contacts")
    with FxiaokeSandbox(seed=SEED, records=n, endpoint_limit=None) as sandbox:
        connector = FxiaokeConnector(_settings(sandbox))
        connector.field_types()
        progress("fxiaoke: floor (raw pages, then the connector's fetch)")
        _raw_pages(sandbox, connector)  # a warm-up pass: the sandbox's and httpx's first calls
        with stopwatch() as raw_elapsed:
            raw = _raw_pages(sandbox, connector)
        with stopwatch() as fetch_elapsed:
            fetched = _connector_pages(connector)
        connector.close()
        assert raw == fetched == n, (raw, fetched, n)
        with tempfile.TemporaryDirectory(prefix="bench-fxiaoke-") as folder:
            vault, token = Vault.init(
                Path(folder) / "home", db_url=f"sqlite:///{Path(folder) / 'vault.db'}"
            )
            try:
                admin = vault.session(token, purpose="administration")
                admin.configure_connector("fxiaoke", _settings(sandbox))
                progress(f"fxiaoke: full pull of {n:,} into an empty vault")
                with stopwatch() as sync_elapsed:
                    report = admin.sync("fxiaoke")
                assert report.created == n, report.counts
            finally:
                vault.close()
    raw_rate = n / raw_elapsed[0]
    fetch_rate = n / fetch_elapsed[0]
    sync_rate = n / sync_elapsed[0]
    small = "; --quick: sizes too small to judge the goal" if args.quick else ""
    return [
        Row(
            f"full pull into the vault, admin.sync ({n:,} contacts, SQLite)",
            sync_rate,
            "customers/s",
            baseline=raw_rate,
            higher_is_better=True,
            ratio_goals=(GOALS["pull_ratio"],),
            note="baseline: the same query pages fetched over HTTP and parsed, no vault work"
            + small,
        ),
        Row(
            "  same, vs the connector's fetch loop (records built, no vault work)",
            sync_rate,
            "customers/s",
            baseline=fetch_rate,
            higher_is_better=True,
        ),
        Row("floor: raw pages fetched and parsed", raw_rate, "customers/s"),
        Row("floor: connector fetch loop", fetch_rate, "customers/s"),
    ]


BENCHMARK = Benchmark(
    help="Fenxiang: full pull of 50,000 contacts from the sandbox into an empty vault",
    add_arguments=add_arguments,
    run=run,
)
