"""Consent-filtered export and erasure on SQLite, each beside the same work done in plain SQL,
measured in the same run.

1. **Consent-filtered export** of N synthetic customers (name, phone, email sealed; consent for
   ``marketing_email`` granted to all, then withdrawn by every tenth) through the admin's
   ``Session.export`` to a CSV file: the consent join, keyset paging, data-key unwrap and field
   decryption per page, the writer, the manifest and the audit event (which indexes every
   exported id). Baseline: the same rows (id, name, email of the same consented customers) in a
   plain database, read by one ``SELECT ... JOIN ... ORDER BY id`` and written by
   ``csv.writer`` to a file.
2. **Peak RSS** of the export, each in a fresh subprocess, at the small and the full size: the
   memory must stay flat as rows grow (the ratio is the full size's peak over the small one's).
3. **Erasure** of E customers through ``Session.erase_customers`` (suppression entries,
   erasure requests, every row deleted, data keys destroyed, audited per batch). Baseline: a
   plain ``DELETE`` of the same customers' rows (fields, then customers), batch by batch.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from benchmarks._table import Benchmark, Goal, Row, progress, stopwatch
from vault import NewCustomer, Vault
from vault.consent.ledger import ConsentEntry, record
from vault.store.engine import make_engine, utcnow
from vault.store.schema import metadata
from vault.synthetic import generate_customers

GOALS: dict[str, Goal] = {
    "export_rate": Goal(">=", 40_000, "/s"),
    "rss_flat": Goal("<=", 1.15, "×"),
    "erase_rate": Goal(">=", 2_000, "/s"),
}
FULL = {"customers": 200_000, "small": 20_000, "erase": 10_000}
QUICK = {"customers": 4_000, "small": 1_000, "erase": 500}
BATCH = 5_000
ERASE_BATCH = 500
SEED = 20_261_201
PURPOSE = "marketing_email"
WITHDRAW_EVERY = 10

_EXPORT = """
import json, resource, sys
from vault import Vault
home, token, target = sys.argv[1], sys.argv[2], sys.argv[3]
with Vault.open(home) as vault:
    session = vault.session(token, purpose=sys.argv[4])
    with open(target, "wb") as out:
        manifest = session.export(sys.argv[4], out)


def peak_kib():
    # VmHWM: this process's own high-water mark. (ru_maxrss would report the parent's size
    # too: Linux carries the pre-exec peak of a forked child over into it.)
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


print(json.dumps({"rows": manifest.rows, "peak_kib": peak_kib()}))
"""


def build_vault(home: Path, count: int) -> tuple[Vault, str, list[str], list[dict[str, str]]]:
    """A vault of ``count`` customers with consent for PURPOSE (every tenth withdrawn); returns
    it, the admin token, the consented ids and their (id, name, email) rows, in id order."""
    vault, token = Vault.init(home)
    admin = vault.session(token, purpose="administration")
    people = [
        {"name": p.name, "phone": p.phone, "email": p.email}
        for p in generate_customers(count, seed=SEED)
    ]
    ids = admin.add_customers(
        (NewCustomer(fields=fields) for fields in people), source="bench", batch_size=BATCH
    )
    now = utcnow()
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        entries = [
            ConsentEntry(customer_id=cid, purpose=PURPOSE, state="granted", at=now, channel="b")
            for cid in batch
        ]
        entries += [
            ConsentEntry(customer_id=cid, purpose=PURPOSE, state="withdrawn", at=now, channel="b")
            for n, cid in enumerate(batch, start=start)
            if n % WITHDRAW_EVERY == 0
        ]
        with vault._transaction() as connection:
            record(connection, vault.policy, entries, recorded_by="bench")
    kept = [
        (cid, fields)
        for n, (cid, fields) in enumerate(zip(ids, people, strict=True))
        if n % WITHDRAW_EVERY
    ]
    kept.sort()
    rows = [{"id": cid, "name": f["name"], "email": f["email"]} for cid, f in kept]
    return vault, token, [cid for cid, _ in kept], rows


def plain_database(path: Path, rows: Sequence[dict[str, str]]) -> Engine:
    """The exported rows, in clear, in the vault's own tables (no crypto, no consent)."""
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO customers (id, created_at, updated_at, dek_version, wrapped_dek, "
            "kek_version) VALUES (?, ?, ?, 1, NULL, 1)",
            [(r["id"], now, now) for r in rows],
        )
        connection.exec_driver_sql(
            "INSERT INTO customer_fields (customer_id, field, value, blind_index, masked, source,"
            " observed_at, updated_at) VALUES (?, ?, ?, NULL, 0, 'bench', ?, ?)",
            [(r["id"], f, r[f].encode(), now, now) for r in rows for f in ("name", "email")],
        )
    return engine


def plain_export(engine: Engine, target: Path) -> int:
    """One plain SELECT of the same rows, pivoted per customer, written by csv.writer."""
    count = 0
    with engine.connect() as connection, target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "name", "email"])
        result = connection.exec_driver_sql(
            "SELECT c.id, f.field, f.value FROM customers c JOIN customer_fields f "
            "ON f.customer_id = c.id WHERE f.field IN ('name', 'email') ORDER BY c.id, f.field",
            execution_options={"stream_results": True},
        )
        current: str | None = None
        row: dict[str, str] = {}
        for customer_id, field, value in result:
            if customer_id != current:
                if current is not None:
                    writer.writerow([current, row.get("name", ""), row.get("email", "")])
                    count += 1
                current, row = customer_id, {}
            row[field] = bytes(value).decode()
        if current is not None:
            writer.writerow([current, row.get("name", ""), row.get("email", "")])
            count += 1
    return count


def plain_delete(engine: Engine, ids: Sequence[str]) -> None:
    for start in range(0, len(ids), ERASE_BATCH):
        batch = list(ids[start : start + ERASE_BATCH])
        marks = ", ".join("?" * len(batch))
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"DELETE FROM customer_fields WHERE customer_id IN ({marks})",  # noqa: S608
                tuple(batch),
            )
            connection.exec_driver_sql(
                f"DELETE FROM customers WHERE id IN ({marks})",  # noqa: S608
                tuple(batch),
            )


def export_peak_mib(home: Path, token: str, target: Path) -> tuple[int, float]:
    done = subprocess.run(
        [sys.executable, "-c", _EXPORT, str(home), token, str(target), PURPOSE],
        check=True,
        capture_output=True,
        text=True,
    )
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return int(measured["rows"]), measured["peak_kib"] / 1024


def _spread(ids: Sequence[str], count: int) -> Iterator[str]:
    step = max(1, len(ids) // count)
    yield from list(ids[::step])[:count]


def run(args: argparse.Namespace) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    count: int = args.customers or sizes["customers"]
    small: int = min(args.small or sizes["small"], count)
    erase: int = args.erase or sizes["erase"]
    from vault.log import configure_logging

    configure_logging(level="WARNING")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        base = Path(tmp)
        progress(f"export: building a vault of {small:,} customers …")
        vault_small, token_small, _, _ = build_vault(base / "small", small)
        vault_small.close()
        progress(f"export: building a vault of {count:,} customers …")
        vault, token, consented, plain_rows = build_vault(base / "full", count)
        plain = plain_database(base / "plain.db", plain_rows)
        del plain_rows

        admin = vault.session(token, purpose="administration")
        progress("export: consent-filtered export to CSV …")
        with (base / "export.csv").open("wb") as out, stopwatch() as elapsed:
            manifest = admin.export(PURPOSE, out)
        assert manifest.rows == len(consented)
        with stopwatch() as plain_elapsed:
            plain_count = plain_export(plain, base / "plain.csv")
        assert plain_count == manifest.rows
        rows.append(
            Row(
                measurement=f"consent-filtered export, {manifest.rows:,} of {count:,} rows",
                value=manifest.rows / elapsed[0],
                unit="/s",
                baseline=plain_count / plain_elapsed[0],
                higher_is_better=True,
                goals=(GOALS["export_rate"],),
                note="decrypt 2 fields + unwrap 1 data key per row; baseline: plain SELECT + csv",
            )
        )

        progress("export: peak RSS of the export in fresh subprocesses …")
        small_rows, small_peak = export_peak_mib(base / "small", token_small, base / "s.csv")
        full_rows, full_peak = export_peak_mib(base / "full", token, base / "f.csv")
        rows.append(
            Row(
                measurement=f"export peak RSS at {small_rows:,} rows",
                value=small_peak,
                unit="MiB",
            )
        )
        rows.append(
            Row(
                measurement=f"export peak RSS at {full_rows:,} rows (baseline: {small_rows:,})",
                value=full_peak,
                unit="MiB",
                baseline=small_peak,
                ratio_goals=(GOALS["rss_flat"],),
            )
        )

        victims = list(_spread(consented, erase))
        progress(f"export: erasing {len(victims):,} customers …")
        with stopwatch() as erase_elapsed:
            reports = admin.erase_customers(victims, reason="bench", batch_size=ERASE_BATCH)
        assert len(reports) == len(victims)
        with stopwatch() as delete_elapsed:
            plain_delete(plain, victims)
        rows.append(
            Row(
                measurement=f"erasure of {len(victims):,} customers",
                value=len(victims) / erase_elapsed[0],
                unit="/s",
                baseline=len(victims) / delete_elapsed[0],
                higher_is_better=True,
                goals=(GOALS["erase_rate"],),
                note="suppression, erasure requests, every row, data key; baseline: DELETE",
            )
        )
        plain.dispose()
        vault.close()
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, help=f"default {FULL['customers']:,}")
    parser.add_argument("--small", type=int, help=f"the small size, default {FULL['small']:,}")
    parser.add_argument("--erase", type=int, help=f"customers to erase, default {FULL['erase']:,}")


BENCHMARK = Benchmark(
    help="consent-filtered export (rows/s, peak RSS at two sizes) and erasure, vs plain SQL",
    add_arguments=add_arguments,
    run=run,
)
