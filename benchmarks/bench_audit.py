"""The audit log on SQLite: what auditing a read costs, how fast the chain verifies, and how fast
an auditor's per-customer query answers at a million events; each beside a plain baseline
measured in the same run.

1. **Audited read**: ``get_customer`` of random customers through the admin's session, each
   timed alone; baseline: the *same* call with the session's audit append replaced by a no-op
   (same authorisation, transaction, decryption and field views; only the event is missing).
   Goal: auditing costs at most 1.5× the read without it.
2. **Verify**: ``AuditLog.verify`` over the whole log of N events (the chain, the stored
   checkpoints' signatures, the customer index); baseline: the same rows streamed from the
   driver and hashed once each with SHA-256 (``prev || body``), no checks — the floor of any
   verifier in Python. Goal: ≥ 200,000 events/s.
3. **Query by customer** at N events spread over C customers: ``AuditLog.query`` with
   ``AuditQuery(customer=...)`` (what ``vault audit query --customer`` runs, without the
   query's own audit event), and the same through the auditor's session (audited); baseline:
   the same index join as one plain SQL statement on the same database. Goal: p99 < 20 ms.

The log is filled with ``AuditLog.append`` itself (in transactions of 5,000 events), so the
chain, the checkpoints and the index are exactly what the vault writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks._table import Benchmark, Goal, Row, percentile, progress, stopwatch
from vault import AuditEvent, AuditQuery, NewCustomer, Vault
from vault.session import Session
from vault.synthetic import generate_customers

GOALS: dict[str, Goal] = {
    "read_ratio": Goal("<=", 1.5, "×"),
    "find_ratio": Goal("<=", 1.5, "×"),
    "pg_p99_ratio": Goal("<=", 3.0, "×"),
    "verify_rate": Goal(">=", 200_000, "/s"),
    "query_p99": Goal("<", 20.0, "ms"),
}

FULL = {
    "events": 1_000_000,
    "customers": 100_000,
    "reads": 2_000,
    "queries": 500,
    "pg_customers": 200_000,
    "finds": 2_000,
}
QUICK = {
    "events": 20_000,
    "customers": 2_000,
    "reads": 200,
    "queries": 100,
    "pg_customers": 2_000,
    "finds": 200,
}
PG_URL = os.environ.get("VAULT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FILL_BATCH = 5_000
READ_CUSTOMERS = 2_000
SEED = 4_242


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return percentile(ordered, 50) * 1000, percentile(ordered, 99) * 1000


def _time_each(calls: list[str], operation: object) -> list[float]:
    assert callable(operation)
    samples = []
    for customer_id in calls:
        started = time.perf_counter()
        operation(customer_id)
        samples.append(time.perf_counter() - started)
    return samples


def audited_read_rows(session: Session, customer_ids: list[str], reads: int) -> list[Row]:
    rng = random.Random(SEED)
    picks = [rng.choice(customer_ids) for _ in range(reads)]
    for customer_id in picks[:20]:  # warm caches and the connection pool
        session.get_customer(customer_id)
    progress(f"audit: {reads:,} audited reads, then the same without their event …")
    # Interleave the two so that machine noise falls on both alike.
    with_audit: list[float] = []
    without: list[float] = []
    real_append = session._append
    for start in range(0, reads, 100):
        chunk = picks[start : start + 100]
        with_audit += _time_each(chunk, session.get_customer)
        session._append = lambda connection, event: 0  # type: ignore[method-assign]
        try:
            without += _time_each(chunk, session.get_customer)
        finally:
            session._append = real_append  # type: ignore[method-assign]
    p50, p99 = _ms(with_audit)
    b50, b99 = _ms(without)
    return [
        Row(
            "audited read p50, get_customer",
            p50,
            "ms",
            baseline=b50,
            ratio_goals=(GOALS["read_ratio"],),
            note="baseline: the same call with the audit append replaced by a no-op",
        ),
        Row("audited read p99, get_customer", p99, "ms", baseline=b99),
    ]


def _no_append(session: Session) -> Any:
    real = session._append
    session._append = lambda connection, event: 0  # type: ignore[method-assign]
    return real


def find_ratio_rows(db: str, session: Session, phones: list[str], finds: int) -> list[Row]:
    """Audited ``find_customers`` by phone ÷ the same call with the audit append a no-op."""
    rng = random.Random(SEED + 3)
    picks = [rng.choice(phones) for _ in range(finds)]
    for phone in picks[:20]:
        session.find_customers("phone", phone)
    progress(f"audit: {finds:,} audited finds on {db}, then the same without their event …")
    with_audit: list[float] = []
    without: list[float] = []
    for start in range(0, finds, 100):
        chunk = picks[start : start + 100]
        with_audit += _time_each(chunk, lambda p: session.find_customers("phone", p))
        real = _no_append(session)
        try:
            without += _time_each(chunk, lambda p: session.find_customers("phone", p))
        finally:
            session._append = real  # type: ignore[method-assign]
    p50, _ = _ms(with_audit)
    b50, _ = _ms(without)
    return [
        Row(
            f"audited find p50 ({db})",
            p50,
            "ms",
            baseline=b50,
            ratio_goals=(GOALS["find_ratio"],),
            note="baseline: the same find with the audit append replaced by a no-op",
        )
    ]


def find_and_read_rows(vault: Vault, session: Session, phones: list[str], finds: int) -> list[Row]:
    """Audited find-by-phone then read (two events) beside the store's own lookup and decrypt
    of the same rows on one connection: no door, no policy, no audit."""
    rng = random.Random(SEED + 4)
    picks = [rng.choice(phones) for _ in range(finds)]
    progress(f"audit: {finds:,} audited find+read on PostgreSQL, then bare lookup+decrypt …")

    def audited(phone: str) -> None:
        for customer_id in session.find_customers("phone", phone):
            session.get_customer(customer_id)

    store = vault._customers
    with vault._reader.connect() as connection:

        def bare(phone: str) -> None:
            for customer_id in store.find(connection, "phone", phone):
                store.get(connection, customer_id)

        for phone in picks[:20]:
            audited(phone)
            bare(phone)
        audited_samples: list[float] = []
        bare_samples: list[float] = []
        for start in range(0, finds, 100):
            chunk = picks[start : start + 100]
            audited_samples += _time_each(chunk, audited)
            bare_samples += _time_each(chunk, bare)
    p50, p99 = _ms(audited_samples)
    b50, b99 = _ms(bare_samples)
    return [
        Row("audited find-by-phone + read p50 (PostgreSQL)", p50, "ms", baseline=b50),
        Row(
            "audited find-by-phone + read p99 (PostgreSQL)",
            p99,
            "ms",
            baseline=b99,
            ratio_goals=(GOALS["pg_p99_ratio"],),
            note="baseline: store.find + store.get (lookup and decrypt) on one connection",
        ),
    ]


def _customers_with_phones(admin: Session, count: int) -> list[str]:
    people = list(generate_customers(count, seed=SEED + 5))
    admin.add_customers(
        (NewCustomer(fields={"name": p.name, "phone": p.phone}) for p in people), source="bench"
    )
    return [p.phone for p in people if p.phone]


def postgres_rows(pg_url: str, customers: int, finds: int) -> list[Row]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"bench_audit_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(pg_url)
    with admin_engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        with tempfile.TemporaryDirectory(prefix="vault-bench-audit-pg-") as folder:
            vault, token = Vault.init(
                Path(folder) / "home", db_url=url.render_as_string(hide_password=False)
            )
            with vault:
                admin = vault.session(token, purpose="administration")
                progress(f"audit: adding {customers:,} customers on PostgreSQL …")
                phones = _customers_with_phones(admin, customers)
                rows = find_ratio_rows("PostgreSQL", admin, phones, finds)
                rows += find_and_read_rows(vault, admin, phones, finds)
    finally:
        with admin_engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()
    return rows


def fill_log(vault: Vault, customer_ids: list[str], events: int) -> None:
    rng = random.Random(SEED + 1)
    progress(f"audit: appending {events:,} events over {len(customer_ids):,} customers …")
    written = 0
    while written < events:
        with vault._transaction() as connection:
            for _ in range(min(FILL_BATCH, events - written)):
                vault.audit.append(
                    connection,
                    AuditEvent(
                        action="read",
                        purpose="customer_service",
                        customer_ids=[rng.choice(customer_ids)],
                        fields=["name", "phone"],
                    ),
                    actor="bench-agent",
                    roles=("support",),
                    request_id=f"{written:032x}",
                )
                written += 1


def verify_rows(vault: Vault) -> list[Row]:
    progress("audit: verifying the whole chain …")
    with vault._reader.connect() as connection, stopwatch() as elapsed:
        report = vault.audit.verify(connection)
    if not report.ok:
        raise SystemExit(f"the benchmark's own log does not verify: {report.problems[0]}")
    progress("audit: plain walk (stream the rows, one SHA-256 each) …")
    with vault._reader.connect() as connection, stopwatch() as plain_elapsed:
        result = connection.exec_driver_sql(
            "SELECT seq, body, prev_hash, hash FROM audit_events ORDER BY seq",
            execution_options={"stream_results": True},
        )
        sha256 = hashlib.sha256
        walked = 0
        for _seq, body, prev, _digest in result:
            sha256(bytes(prev) + bytes(body)).digest()
            walked += 1
    rate = report.events / elapsed[0]
    return [
        Row(
            f"verify, AuditLog.verify ({report.events:,} events)",
            rate,
            "events/s",
            baseline=walked / plain_elapsed[0],
            higher_is_better=True,
            goals=(GOALS["verify_rate"],),
            note="baseline: the same rows streamed from the driver, one SHA-256 each, no checks",
        )
    ]


def query_rows(vault: Vault, auditor: Session, customer_ids: list[str], queries: int) -> list[Row]:
    rng = random.Random(SEED + 2)
    picks = [rng.choice(customer_ids) for _ in range(queries)]
    plain_sql = (
        "SELECT e.seq, e.body, e.prev_hash, e.hash FROM audit_events e "
        "JOIN audit_event_customers c ON c.seq = e.seq WHERE c.customer_id = ? ORDER BY e.seq"
    )
    progress(f"audit: {queries:,} queries by customer (log layer, session, plain SQL) …")
    log_layer: list[float] = []
    plain: list[float] = []
    sessions: list[float] = []
    with vault._reader.connect() as connection:
        for customer_id in picks[:10]:
            vault.audit.query(connection, AuditQuery(customer=customer_id))
        for customer_id in picks:
            started = time.perf_counter()
            found = vault.audit.query(connection, AuditQuery(customer=customer_id))
            log_layer.append(time.perf_counter() - started)
            started = time.perf_counter()
            rows = connection.exec_driver_sql(plain_sql, (customer_id,)).fetchall()
            plain.append(time.perf_counter() - started)
            if len(rows) != len(found):
                raise SystemExit("the plain query and the log disagree")
    for customer_id in picks:
        started = time.perf_counter()
        auditor.audit_query(AuditQuery(customer=customer_id))
        sessions.append(time.perf_counter() - started)
    p50, p99 = _ms(log_layer)
    s50, s99 = _ms(sessions)
    b50, b99 = _ms(plain)
    return [
        Row("query --customer p50, AuditLog.query", p50, "ms", baseline=b50),
        Row(
            "query --customer p99, AuditLog.query",
            p99,
            "ms",
            baseline=b99,
            goals=(GOALS["query_p99"],),
            note="baseline: the same index join as one plain SQL statement",
        ),
        Row("  same through the auditor's session (audited) p50", s50, "ms", baseline=b50),
        Row("  same through the auditor's session (audited) p99", s99, "ms", baseline=b99),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    events: int = args.events or sizes["events"]
    customer_count: int = args.customers or sizes["customers"]
    from vault.log import configure_logging

    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory(prefix="vault-bench-audit-") as folder:
        vault, token = Vault.init(Path(folder) / "home")
        with vault:
            admin = vault.session(token, purpose="administration")
            progress(f"audit: adding {READ_CUSTOMERS:,} customers to read …")
            people = list(generate_customers(READ_CUSTOMERS, seed=SEED))
            readable = admin.add_customers(
                (NewCustomer(fields={"name": p.name, "phone": p.phone}) for p in people),
                source="bench",
            )
            rows = audited_read_rows(admin, readable, args.reads or sizes["reads"])
            finds = args.finds or sizes["finds"]
            phones = [p.phone for p in people if p.phone]
            rows += find_ratio_rows("SQLite", admin, phones, finds)
            # Customer ids for the bulk log need not be real customers: the index is by id.
            ids = [f"00000000-0000-7000-8000-{n:012d}" for n in range(customer_count)]
            fill_log(vault, ids, events)
            rows += verify_rows(vault)
            auditor_token = admin.add_principal("bench-auditor", ["auditor"])
            auditor = vault.session(auditor_token, purpose="compliance")
            rows += query_rows(vault, auditor, ids, args.queries or sizes["queries"])
    if not args.no_postgres:
        rows += postgres_rows(args.pg_url, args.pg_customers or sizes["pg_customers"], finds)
    if args.json:
        print(json.dumps(_ratios(rows), indent=2))
    return rows


def _ratios(rows: list[Row]) -> dict[str, Any]:
    """The issue's figures, as ratios measured in this run (``--json``)."""
    return {
        row.measurement: {
            "value": round(row.value, 3),
            "unit": row.unit,
            "baseline": None if row.baseline is None else round(row.baseline, 3),
            "ratio": None if row.ratio is None else round(row.ratio, 3),
        }
        for row in rows
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=int, default=None, help=f"events in the log (default {FULL['events']:,})"
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=None,
        help=f"customers the events refer to (default {FULL['customers']:,})",
    )
    parser.add_argument("--reads", type=int, default=None, help="audited reads to time")
    parser.add_argument("--queries", type=int, default=None, help="customer queries to time")
    parser.add_argument("--finds", type=int, default=None, help="finds to time per database")
    parser.add_argument(
        "--pg-customers", type=int, default=None, help="customers on PostgreSQL (default 200,000)"
    )
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL to run in (a new schema)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", action="store_true", help="also print the ratios as JSON")


BENCHMARK = Benchmark(
    help="audited read and find cost (SQLite, PostgreSQL), verify rate, audit query by customer",
    add_arguments=add_arguments,
    run=run,
)
