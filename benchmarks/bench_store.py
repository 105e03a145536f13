"""The customer store on SQLite: encrypted ingest, phone lookup and key rotation, each beside the
same work done in plain SQL, measured in the same run.

1. **Encrypted ingest**: N synthetic customers (name, phone, email, id_number, address; all five
   sealed under the customer's own data key, three blind indexes) through ``add_customers`` of
   the admin's session (``Vault.session(token, purpose=...)``: authorised and audited, as any
   import is) in a fresh vault. The records are generated before the clock starts.
2. **Plain ingest**, the baseline: the same rows (one ``customers`` row and five
   ``customer_fields`` rows per customer, every column filled, the same three index entries per
   customer) inserted with SQLAlchemy Core ``conn.execute(table.insert(), rows)`` into a fresh
   database made by ``metadata.create_all`` on ``make_engine`` (WAL, synchronous=NORMAL), one
   transaction per batch of the same size. Values are the raw UTF-8 bytes, the index entry of a
   searchable field is its raw value, ``wrapped_dek`` is a constant of a wrapped key's length.
   A second plain run hands the same rows straight to the driver's ``executemany`` (what the
   vault's own bulk path does): the floor for any SQLite ingest from Python.
3. **Lookup latency** at N customers: random existing customers looked up by a phone written
   differently than at ingest (``+86 138-0013-8000``), each ``find_customers`` timed alone; then
   ``find_customers`` + ``get_customer`` (decrypt); baseline: the same indexed ``SELECT`` on the
   plain database by the stored value.
4. **Rewrap rate** of ``rotate_keys`` over the N customers; baseline: the same batched
   ``SELECT`` + ``UPDATE`` of every ``wrapped_dek`` on the plain database, without crypto.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, select, update

from benchmarks._table import Benchmark, Goal, Row, percentile, progress, stopwatch
from vault import Customer, NewCustomer, Vault
from vault.store.engine import make_engine, reader
from vault.store.schema import customer_fields, customers, metadata
from vault.synthetic import SyntheticCustomer, generate_customers

GOALS: dict[str, Goal] = {
    "ingest_rate": Goal(">=", 40_000, "/s"),
    "ingest_ratio": Goal("<=", 4.0, "×"),
    "lookup_p99": Goal("<", 2.0, "ms"),
    "rewrap_rate": Goal(">=", 50_000, "/s"),
}

FULL = {"customers": 200_000, "lookups": 2_000}
QUICK = {"customers": 2_000, "lookups": 200}
BATCH_SIZE = 2_000
ROTATE_BATCH_SIZE = 5_000
SEED = 20_240_601
WARMUP_LOOKUPS = 20
FIELDS = ("name", "phone", "email", "id_number", "address")
SEARCHABLE = frozenset({"phone", "email", "id_number"})
SOURCE = "bench"
PURPOSE = "administration"
# A wrapped data key: suite (1) + key version (4) + nonce (12) + 32-byte key + tag (16).
PLAIN_WRAPPED_DEK = bytes(65)


class StoreFront(Protocol):
    """The part of the vault's API this benchmark drives."""

    def add_customers(
        self, records: Iterable[NewCustomer], *, source: str, batch_size: int = ...
    ) -> list[str]: ...
    def find_customers(self, field: str, value: str) -> list[str]: ...
    def get_customer(self, customer_id: str) -> Customer: ...
    def rotate_keys(self, *, batch_size: int = ...) -> Any: ...


def _front(vault: Vault, token: str, purpose: str) -> StoreFront:
    """The admin's session (every call authorised and audited, as in production); the vault
    itself where a version of it still takes customer operations directly."""
    if hasattr(vault, "session"):
        session: StoreFront = vault.session(token, purpose=purpose)
        return session
    return vault  # type: ignore[return-value]


# --- data ----------------------------------------------------------------------------------------


def generate_people(count: int, seed: int) -> list[SyntheticCustomer]:
    return list(generate_customers(count, seed=seed))


def as_fields(person: SyntheticCustomer) -> dict[str, str]:
    return {name: getattr(person, name) for name in FIELDS}


_NON_DIGITS = re.compile(r"\D")


def written_differently(phone: str) -> str | None:
    """``13800138000`` (any writing) → ``+86 138-0013-8000``; ``None`` if not a CN mobile."""
    digits = _NON_DIGITS.sub("", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) != 11 or not digits.startswith("1") or "*" in phone:
        return None
    return f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}"


def new_id() -> str:
    """A UUIDv7, like the vault's own ids: time-ordered, so inserts append to the B-tree."""
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --- plain baseline ------------------------------------------------------------------------------


def plain_engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    return engine


def _batches(items: Sequence[dict[str, str]], size: int) -> Iterator[Sequence[dict[str, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def plain_ingest_core(
    engine: Engine, records: Sequence[dict[str, str]], batch_size: int
) -> list[str]:
    """The same rows as the vault writes, through SQLAlchemy Core executemany."""
    ids: list[str] = []
    for batch in _batches(records, batch_size):
        now = datetime.now(UTC)
        customer_rows: list[dict[str, Any]] = []
        field_rows: list[dict[str, Any]] = []
        for fields in batch:
            customer_id = new_id()
            customer_rows.append(
                {
                    "id": customer_id,
                    "created_at": now,
                    "updated_at": now,
                    "dek_version": 1,
                    "wrapped_dek": PLAIN_WRAPPED_DEK,
                    "kek_version": 1,
                }
            )
            for name, raw in fields.items():
                value = raw.encode()
                field_rows.append(
                    {
                        "customer_id": customer_id,
                        "field": name,
                        "value": value,
                        "blind_index": value if name in SEARCHABLE else None,
                        "masked": False,
                        "source": SOURCE,
                        "observed_at": now,
                        "updated_at": now,
                    }
                )
            ids.append(customer_id)
        with engine.begin() as connection:
            connection.execute(customers.insert(), customer_rows)
            connection.execute(customer_fields.insert(), field_rows)
    return ids


def plain_ingest_driver(
    engine: Engine, records: Sequence[dict[str, str]], batch_size: int
) -> list[str]:
    """The same rows handed to the driver's executemany as tuples: the floor."""
    customer_sql = (
        "INSERT INTO customers (id, created_at, updated_at, dek_version, wrapped_dek, "
        "kek_version) VALUES (?, ?, ?, ?, ?, ?)"
    )
    field_sql = (
        "INSERT INTO customer_fields (customer_id, field, value, blind_index, masked, source, "
        "observed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    ids: list[str] = []
    for batch in _batches(records, batch_size):
        # SQLite stores DateTime as text; bind it the way SQLAlchemy's processor does, once.
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        customer_rows: list[tuple[Any, ...]] = []
        field_rows: list[tuple[Any, ...]] = []
        for fields in batch:
            customer_id = new_id()
            customer_rows.append((customer_id, now, now, 1, PLAIN_WRAPPED_DEK, 1))
            for name, raw in fields.items():
                value = raw.encode()
                field_rows.append(
                    (
                        customer_id,
                        name,
                        value,
                        value if name in SEARCHABLE else None,
                        0,
                        SOURCE,
                        now,
                        now,
                    )
                )
            ids.append(customer_id)
        with engine.begin() as connection:
            connection.exec_driver_sql(customer_sql, customer_rows)
            connection.exec_driver_sql(field_sql, field_rows)
    return ids


_PLAIN_FIND = (
    select(customer_fields.c.customer_id)
    .where(
        customer_fields.c.field == bindparam("field"),
        customer_fields.c.blind_index == bindparam("value"),
    )
    .order_by(customer_fields.c.customer_id)
)


def plain_find(engine: Engine, field: str, value: bytes) -> list[str]:
    """The vault's find query, on the plain table, by the stored value (read-only connection)."""
    with reader(engine).connect() as connection:
        return list(connection.execute(_PLAIN_FIND, {"field": field, "value": value}).scalars())


def plain_rewrap(engine: Engine, batch_size: int) -> int:
    """``keystore.rotate``'s batched SELECT + UPDATE of every data key, with no crypto."""
    target = 2
    done = 0
    statement = (
        update(customers)
        .where(customers.c.id == bindparam("b_id"))
        .values(wrapped_dek=bindparam("b_wrapped"), kek_version=target)
    )
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                select(customers.c.id, customers.c.dek_version, customers.c.wrapped_dek)
                .where(customers.c.wrapped_dek.is_not(None), customers.c.kek_version < target)
                .limit(batch_size)
            ).all()
            if not rows:
                return done
            connection.execute(
                statement, [{"b_id": row.id, "b_wrapped": row.wrapped_dek} for row in rows]
            )
        done += len(rows)


# --- measurements --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    p50_ms: float
    p99_ms: float


def store_find(vault: Vault, phone: str) -> Callable[[], object]:
    """The store layer's find alone: no session, no authorisation, no audit event."""
    store = vault._customers
    value = written_differently(phone)

    def call() -> object:
        with reader(vault._engine).connect() as connection:
            return store.find(connection, "phone", value or phone)

    return call


def time_each(calls: Sequence[Callable[[], object]]) -> Latency:
    """Time every call alone (``perf_counter_ns``); warm up on the first few, untimed."""
    for call in calls[:WARMUP_LOOKUPS]:
        call()
    samples: list[float] = []
    for call in calls:
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    return Latency(percentile(samples, 50), percentile(samples, 99))


def profile_report(profiler: cProfile.Profile, top: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _configure_quiet_logging() -> None:
    try:
        from vault.log import configure_logging
    except ImportError:  # pragma: no cover - logging moved; the benchmark still runs
        return
    configure_logging(level="WARNING")


def run(args: argparse.Namespace) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    count: int = args.customers or sizes["customers"]
    lookups: int = min(args.lookups or sizes["lookups"], count)
    batch_size: int = args.batch_size
    _configure_quiet_logging()

    progress(f"store: generating {count:,} synthetic customers (seed {args.seed}) …")
    people = generate_people(count, args.seed)
    fields = [as_fields(person) for person in people]
    records = [NewCustomer(fields=f) for f in fields]
    del people
    # The pre-generated input is long-lived: keep the collector from rescanning it in every
    # timed run (a streaming import would not hold it at all).
    gc.collect()
    gc.freeze()

    try:
        rng = random.Random(args.seed)
        candidates = [
            i for i, f in enumerate(fields) if written_differently(f["phone"]) is not None
        ]
        sample = rng.sample(candidates, min(lookups, len(candidates)))

        with tempfile.TemporaryDirectory(prefix="vault-bench-", ignore_cleanup_errors=True) as tmp:
            root = Path(tmp)

            # 1. encrypted ingest, in a fresh vault
            vault, token = Vault.init(root / "vault")
            try:
                front = _front(vault, token, args.purpose)
                progress(f"store: encrypted ingest of {count:,} customers …")
                profiler = cProfile.Profile() if args.profile else None
                with stopwatch() as elapsed:
                    if profiler is not None:
                        profiler.enable()
                    ids = front.add_customers(records, source=SOURCE, batch_size=batch_size)
                    if profiler is not None:
                        profiler.disable()
                encrypted_rate = count / elapsed[0]
                assert len(ids) == count
                if profiler is not None:
                    progress(
                        "store: cProfile of the encrypted ingest (it slows the rate in the table)"
                    )
                    print(profile_report(profiler))

                # 2. plain ingest: SQLAlchemy Core, then straight to the driver; each a fresh db
                progress("store: plain ingest (SQLAlchemy Core executemany) …")
                core = plain_engine(root / "plain-core.db")
                with stopwatch() as elapsed:
                    core_ids = plain_ingest_core(core, fields, batch_size)
                core_rate = count / elapsed[0]

                progress("store: plain ingest (driver executemany) …")
                driver = plain_engine(root / "plain-driver.db")
                try:
                    with stopwatch() as elapsed:
                        plain_ingest_driver(driver, fields, batch_size)
                    driver_rate = count / elapsed[0]
                finally:
                    driver.dispose()

                # 3. lookups at N customers
                progress(f"store: {len(sample):,} phone lookups …")
                missing = 0

                def find(i: int) -> Callable[[], object]:
                    phone = written_differently(fields[i]["phone"])
                    assert phone is not None

                    def call() -> object:
                        nonlocal missing
                        found = front.find_customers("phone", phone)
                        if ids[i] not in found:
                            missing += 1
                        return found

                    return call

                def find_and_get(i: int) -> Callable[[], object]:
                    phone = written_differently(fields[i]["phone"])
                    assert phone is not None

                    def call() -> object:
                        return [
                            front.get_customer(cid) for cid in front.find_customers("phone", phone)
                        ]

                    return call

                def plain(i: int) -> Callable[[], object]:
                    value = fields[i]["phone"].encode()
                    return lambda: plain_find(core, "phone", value)

                find_latency = time_each([find(i) for i in sample])
                if missing:
                    raise AssertionError(f"{missing} phone lookups did not find their customer")
                store_latency = time_each([store_find(vault, fields[i]["phone"]) for i in sample])
                get_latency = time_each([find_and_get(i) for i in sample])
                plain_latency = time_each([plain(i) for i in sample])
                assert all(
                    core_ids[i] in plain_find(core, "phone", fields[i]["phone"].encode())
                    for i in sample[:10]
                )

                # 4. key rotation over the N customers
                progress(f"store: rotate_keys over {count:,} data keys …")
                with stopwatch() as elapsed:
                    report = front.rotate_keys(batch_size=args.rotate_batch_size)
                rewrap_rate = int(report.rewrapped) / elapsed[0]
                progress("store: plain rewrap (batched SELECT + UPDATE, no crypto) …")
                with stopwatch() as elapsed:
                    plain_done = plain_rewrap(core, args.rotate_batch_size)
                plain_rewrap_rate = plain_done / elapsed[0]
                core.dispose()
            finally:
                vault.close()
    finally:
        gc.unfreeze()

    n = f"N={count:,}"
    return [
        Row(
            f"encrypted ingest, add_customers ({n}, batch {batch_size})",
            encrypted_rate,
            "customers/s",
            baseline=core_rate,
            higher_is_better=True,
            goals=(GOALS["ingest_rate"],),
            ratio_goals=(GOALS["ingest_ratio"],),
            note="baseline: the same rows through SQLAlchemy Core executemany"
            + ("; --quick: sizes too small to judge the goals" if args.quick else ""),
        ),
        Row(
            "  same, vs plain driver executemany (floor)",
            encrypted_rate,
            "customers/s",
            baseline=driver_rate,
            higher_is_better=True,
        ),
        Row(
            f"phone lookup p50, find_customers ({n})",
            find_latency.p50_ms,
            "ms",
            baseline=plain_latency.p50_ms,
            note="baseline: the same indexed SELECT on the plain table by the stored value",
        ),
        Row(
            f"phone lookup p99, find_customers ({len(sample):,} lookups)",
            find_latency.p99_ms,
            "ms",
            baseline=plain_latency.p99_ms,
            goals=(GOALS["lookup_p99"],),
        ),
        Row(
            "  find, store layer only (no authz, no audit) p50",
            store_latency.p50_ms,
            "ms",
            baseline=plain_latency.p50_ms,
        ),
        Row(
            "  find, store layer only (no authz, no audit) p99",
            store_latency.p99_ms,
            "ms",
            baseline=plain_latency.p99_ms,
        ),
        Row(
            "find + get_customer (decrypt) p50",
            get_latency.p50_ms,
            "ms",
            baseline=plain_latency.p50_ms,
        ),
        Row(
            "find + get_customer (decrypt) p99",
            get_latency.p99_ms,
            "ms",
            baseline=plain_latency.p99_ms,
        ),
        Row(
            f"rewrap, rotate_keys (batch {args.rotate_batch_size})",
            rewrap_rate,
            "keys/s",
            baseline=plain_rewrap_rate,
            higher_is_better=True,
            goals=(GOALS["rewrap_rate"],),
            note="baseline: the same batched SELECT + UPDATE of wrapped_dek, no crypto",
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--customers",
        type=int,
        default=None,
        help=f"customers to ingest (default {FULL['customers']:,}; --quick {QUICK['customers']:,})",
    )
    parser.add_argument(
        "--lookups",
        type=int,
        default=None,
        help=f"phone lookups to time (default {FULL['lookups']:,}; --quick {QUICK['lookups']})",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="ingest batch size")
    parser.add_argument(
        "--rotate-batch-size", type=int, default=ROTATE_BATCH_SIZE, help="rotation batch size"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="synthetic data seed")
    parser.add_argument(
        "--purpose", default=PURPOSE, help="the admin session's purpose (default %(default)s)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the encrypted ingest and print the top functions (slows it down)",
    )


BENCHMARK = Benchmark(
    help="encrypted ingest, phone lookup and key rotation vs plain SQL (SQLite)",
    add_arguments=add_arguments,
    run=run,
)
