"""Zoho CRM against its sandbox on loopback: a full pull into an empty vault and a full push,
each beside the sandbox floor measured in the same run.

1. **Pull**: ``admin.sync("zoho", streams=["customers"])`` of N seeded contacts into a fresh
   SQLite vault (every page fetched over HTTP, parsed, resolved, sealed, indexed, audited and
   committed with its cursor). **Floor**: the same pages fetched and parsed by the same
   connector (``fetch`` until ``more`` is False), with no vault work. The sandbox has built its
   ordered view before either clock starts, so both see the same server.
2. **Push**: ``admin.sync("zoho")`` of N customers who consented to sharing with a CRM (the
   customers and their consent are written before the clock starts) to an empty sandbox in the
   CN data centre: consent gating, decryption, ``POST /crm/v8/Contacts/upsert`` of 100 at a
   time with every per-record result read, ids mapped, push state kept. **Floor**: the same
   customers pushed by the connector's ``push_customers`` in batches of 100 to another empty
   sandbox, with no vault work.
"""

from __future__ import annotations

import argparse
import csv
import gc
import tempfile
from pathlib import Path

from benchmarks._table import Benchmark, Goal, Row, progress, stopwatch
from connectors.zoho import ZohoConnector
from connectors.zoho.sandbox import ZohoSandbox
from vault import NewCustomer
from vault.sync import OutboundCustomer
from vault.synthetic import generate_customers
from vault.vault import Vault

GOALS: dict[str, Goal] = {
    "pull_ratio": Goal("<=", 1.5, "×"),  # the vault adds at most 50% to the floor
    "push_ratio": Goal("<=", 1.5, "×"),
}
FULL = {"contacts": 50_000}
QUICK = {"contacts": 2_000}
SEED = 17


def _quiet() -> None:
    try:
        from vault.log import configure_logging
    except ImportError:  # pragma: no cover
        return
    configure_logging(level="WARNING")


def pull_floor(sandbox: ZohoSandbox) -> int:
    connector = ZohoConnector(sandbox.settings())
    try:
        cursor = None
        pulled = 0
        while True:
            page = connector.fetch("customers", cursor)
            pulled += len(page.records)
            cursor = page.cursor
            if not page.more:
                return pulled
    finally:
        connector.close()


def push_floor(sandbox: ZohoSandbox, records: list[OutboundCustomer]) -> int:
    connector = ZohoConnector(sandbox.settings())
    try:
        done = 0
        for start in range(0, len(records), 100):
            outcomes = connector.push_customers(records[start : start + 100])
            done += sum(1 for o in outcomes if o.ok)
        return done
    finally:
        connector.close()


def run(args: argparse.Namespace) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    count: int = args.contacts or sizes["contacts"]
    _quiet()
    rows: list[Row] = []
    progress(f"zoho: seeding a sandbox with {count:,} contacts (seed {args.seed}) …")
    with ZohoSandbox(seed=args.seed, records=count) as sandbox:
        assert isinstance(sandbox, ZohoSandbox)
        warm = ZohoConnector(sandbox.settings())
        warm.fetch("customers", None)  # the sandbox's ordered view, built once
        warm.close()

        progress("zoho: pull floor (fetch and parse every page, no vault) …")
        with stopwatch() as elapsed:
            floor_count = pull_floor(sandbox)
        floor_rate = floor_count / elapsed[0]

        with tempfile.TemporaryDirectory(prefix="vault-bench-", ignore_cleanup_errors=True) as tmp:
            vault, token = Vault.init(Path(tmp) / "vault")
            try:
                admin = vault.session(token, purpose="administration")
                admin.configure_connector("zoho", sandbox.settings())
                progress(f"zoho: admin.sync of {count:,} contacts into an empty vault …")
                gc.collect()
                with stopwatch() as elapsed:
                    report = admin.sync("zoho", streams=["customers"])
                vault_rate = report.pulled / elapsed[0]
                assert report.pulled == floor_count == count, (report.pulled, floor_count)
            finally:
                vault.close()
    rows.append(
        Row(
            f"full pull into an empty vault, admin.sync (N={count:,})",
            vault_rate,
            "customers/s",
            baseline=floor_rate,
            higher_is_better=True,
            ratio_goals=(GOALS["pull_ratio"],),
            note="baseline: the same pages fetched and parsed by the connector, no vault work"
            + ("; --quick: too small to judge" if args.quick else ""),
        )
    )

    synthetic = list(generate_customers(count, seed=args.seed + 1))
    fields = [
        {"name": p.name, "phone": p.phone, "email": p.email, "address": p.address}
        for p in synthetic
    ]
    people = [
        OutboundCustomer(customer_id=f"c{index:07d}", external_id=None, fields=f)
        for index, f in enumerate(fields)
    ]
    with ZohoSandbox(seed=args.seed, records=0) as sandbox:
        assert isinstance(sandbox, ZohoSandbox)
        progress(f"zoho: push floor, {count:,} customers in batches of 100 …")
        with stopwatch() as elapsed:
            pushed = push_floor(sandbox, people)
        push_floor_rate = pushed / elapsed[0]
        assert pushed == count

    with (
        ZohoSandbox(seed=args.seed, records=0) as sandbox,
        tempfile.TemporaryDirectory(prefix="vault-bench-", ignore_cleanup_errors=True) as tmp,
    ):
        assert isinstance(sandbox, ZohoSandbox)
        vault, token = Vault.init(Path(tmp) / "vault")
        try:
            admin = vault.session(token, purpose="administration")
            progress(f"zoho: {count:,} customers with consent to share, untimed …")
            ids = admin.add_customers([NewCustomer(fields=f) for f in fields], source="bench")
            consent = Path(tmp) / "consent.csv"
            with consent.open("w", encoding="utf-8", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["customer", "purpose", "state", "at", "source"])
                for customer_id in ids:
                    writer.writerow(
                        [customer_id, "crm_sharing", "granted", "2026-01-01T00:00:00Z", "bench"]
                    )
            admin.import_consent(consent)
            admin.configure_connector("zoho", sandbox.settings(data_centre="CN"))
            progress(f"zoho: admin.sync pushing {count:,} customers …")
            gc.collect()
            with stopwatch() as elapsed:
                report = admin.sync("zoho")
            push_rate = report.pushed / elapsed[0]
            assert report.pushed == count and len(sandbox.stored()) == count, report.counts
        finally:
            vault.close()
    rows.append(
        Row(
            f"full push from the vault, admin.sync (N={count:,}, CN, consent to share)",
            push_rate,
            "customers/s",
            baseline=push_floor_rate,
            higher_is_better=True,
            ratio_goals=(GOALS["push_ratio"],),
            note="baseline: the same customers pushed by connector.push_customers in batches of "
            "100 to an empty sandbox, no vault work (consent, decryption, push state)",
        )
    )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--contacts",
        type=int,
        default=None,
        help=f"contacts to pull and push (default {FULL['contacts']:,}; --quick "
        f"{QUICK['contacts']:,})",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="sandbox seed")


BENCHMARK = Benchmark(
    help="Zoho CRM: full pull into an empty vault and full push, beside the sandbox floor",
    add_arguments=add_arguments,
    run=run,
)
