"""Audited phone lookups over HTTP (``vault serve``, one worker and two) beside the same lookups
through the library in-process, measured in the same run.

1. A vault on SQLite in a temporary folder gets N synthetic customers (name, phone, email)
   through ``add_customers``; the phones to look up are drawn from them and written
   differently than at ingest (``+86 138-0013-8000``).
2. **In-process**, the baseline: ``session.find_customers("phone", ...)`` of the admin's
   session, one call at a time, each timed alone (authorised and audited, as any search).
   A second row opens a session per lookup (``vault.session(token)`` then the search): the work
   an HTTP request does at the door, without HTTP.
3. **HTTP**: ``vault serve --workers W --rate-limit 0`` as a real process on a free loopback
   port (its access log on, to /dev/null), and a bounded load generator on the same machine:
   ``--clients`` processes, each an ``httpx.Client`` (keep-alive) sending
   ``POST /v1/customers/search {"phone": ..., "records": false}`` one after the other, the
   lookups split between them. requests/s is the total over the wall time of the whole load;
   p50/p99 are of each request's latency as its client saw it. Every request is authenticated,
   authorised and audited (one audit event each).

Goals (``GOALS``): ≥ 2,000 audited lookups/s per worker; p99 < 10 ms; HTTP costs no more than 3×
the in-process lookup, judged on CPU time (the server's CPU per request, all its processes,
against the library's process CPU per lookup), which the load of a shared machine inflates far
less than wall-clock figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks._table import Benchmark, Goal, Row, percentile, progress, stopwatch
from vault import NewCustomer, Vault
from vault.synthetic import generate_customers

GOALS: dict[str, Goal] = {
    "rate_per_worker": Goal(">=", 2_000, "/s"),
    "p99": Goal("<", 10.0, "ms"),
    "http_ratio": Goal("<=", 3.0, "×"),
}
FULL = {"customers": 200_000, "lookups": 4_000}
QUICK = {"customers": 2_000, "lookups": 400}
CLIENTS = 4
SEED = 20_261_201
PURPOSE = "administration"
WARMUP = 50


def written_differently(phone: str) -> str:
    digits = phone.removeprefix("+86")
    return f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _client(
    url: str, token: str, phones: list[str], ready: Any, results: Any
) -> None:  # pragma: no cover - runs in a load-generator process
    """One load-generator process: warm up, wait for the others, then its share of lookups."""
    headers = {"Authorization": f"Bearer {token}", "X-Vault-Purpose": PURPOSE}
    latencies: list[float] = []
    failures = 0
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for phone in phones[:WARMUP]:
            http.post("/v1/customers/search", json={"phone": phone, "records": False})
        ready.wait()
        for phone in phones[WARMUP:]:
            started = time.perf_counter_ns()
            answer = http.post("/v1/customers/search", json={"phone": phone, "records": False})
            latencies.append((time.perf_counter_ns() - started) / 1e6)
            if answer.status_code != 200 or not answer.json()["ids"]:
                failures += 1
    results.put((latencies, failures, time.perf_counter()))


def http_load(
    url: str, token: str, phones: Sequence[str], clients: int
) -> tuple[float, list[float]]:
    """requests/s over the wall time from the moment every client is warm to the last one's
    end (process start-up and warm-up are not billed), and every request's latency."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(clients + 1)
    results = context.Queue()

    shares = [[*phones[:WARMUP], *phones[WARMUP + i :: clients]] for i in range(clients)]
    workers = [
        context.Process(target=_client, args=(url, token, share, ready, results))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    ready.wait(timeout=300)
    started = time.perf_counter()
    collected = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    wall = max(end for _, _, end in collected) - started
    latencies = sorted(value for values, _, _ in collected for value in values)
    failures = sum(failed for _, failed, _ in collected)
    if failures:
        raise RuntimeError(f"{failures} HTTP lookups failed or found nothing")
    return len(latencies) / wall, latencies


def serve(home: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "VAULT_HOME": str(home), "VAULT_LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("vault")),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--rate-limit",
            "0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("vault serve did not start")


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of the server process and its workers so far."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(args: argparse.Namespace) -> list[Row]:
    sizes = QUICK if args.quick else FULL
    count: int = args.customers or sizes["customers"]
    lookups: int = args.lookups or sizes["lookups"]
    clients: int = args.clients
    from vault.log import configure_logging

    configure_logging(level="WARNING")
    progress(f"service: generating {count:,} synthetic customers …")
    people = list(generate_customers(count, seed=args.seed))
    records = [
        NewCustomer(fields={"name": p.name, "phone": p.phone, "email": p.email}) for p in people
    ]
    rng = random.Random(args.seed)
    phones = [written_differently(p.phone) for p in rng.choices(people, k=lookups + WARMUP)]
    del people
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vault-bench-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp) / "vault"
        vault, token = Vault.init(home)
        with vault:
            admin = vault.session(token, purpose=PURPOSE)
            progress(f"service: ingest of {count:,} customers …")
            admin.add_customers(records, source="bench")
            del records

            progress(f"service: {lookups:,} in-process lookups …")
            for phone in phones[:WARMUP]:
                admin.find_customers("phone", phone)
            timed = phones[WARMUP:]
            latencies: list[float] = []
            cpu_started = time.process_time()
            with stopwatch() as elapsed:
                for phone in timed:
                    started = time.perf_counter_ns()
                    assert admin.find_customers("phone", phone)
                    latencies.append((time.perf_counter_ns() - started) / 1e6)
            library_rate = len(timed) / elapsed[0]
            library_cpu_ms = (time.process_time() - cpu_started) * 1000 / len(timed)
            latencies.sort()
            library_p50, library_p99 = percentile(latencies, 50), percentile(latencies, 99)

            door: list[float] = []
            with stopwatch() as elapsed:
                for phone in timed:
                    started = time.perf_counter_ns()
                    assert vault.session(token, purpose=PURPOSE).find_customers("phone", phone)
                    door.append((time.perf_counter_ns() - started) / 1e6)
            door_rate = len(timed) / elapsed[0]
        rows += [
            Row("in-process lookup rate (library)", library_rate, "/s", higher_is_better=True),
            Row("in-process lookup p50", library_p50, "ms"),
            Row("in-process lookup p99", library_p99, "ms"),
            Row(
                "in-process CPU per lookup",
                library_cpu_ms,
                "ms",
                note="process CPU time / lookups: what the machine's load does not inflate",
            ),
            Row(
                "in-process, a session per lookup",
                door_rate,
                "/s",
                baseline=library_rate,
                higher_is_better=True,
                note="vault.session(token) + find_customers: the door's work per HTTP request",
            ),
        ]
        for workers in (1, 2):
            progress(f"service: HTTP, {workers} worker(s), {clients} clients …")
            process, url = serve(home, workers)
            try:
                cpu_before = server_cpu_seconds(process.pid)
                rate, http_latencies = http_load(url, token, phones, clients)
                # warm-up requests included: a slight overestimate of the server's CPU
                cpu_ms = (server_cpu_seconds(process.pid) - cpu_before) * 1000 / len(phones)
            finally:
                stop(process)
            p50, p99 = percentile(http_latencies, 50), percentile(http_latencies, 99)
            rows += [
                Row(
                    f"HTTP lookup rate, {workers} worker(s)",
                    rate,
                    "/s",
                    baseline=library_rate,
                    higher_is_better=True,
                    goals=(Goal(">=", GOALS["rate_per_worker"].target * workers, "/s"),),
                    note=(
                        f"{clients} client processes, keep-alive, one audited search each; "
                        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
                    ),
                ),
                Row(f"HTTP lookup p50, {workers} worker(s)", p50, "ms", baseline=library_p50),
                Row(
                    f"server CPU per HTTP lookup, {workers} worker(s)",
                    cpu_ms,
                    "ms",
                    baseline=library_cpu_ms,
                    ratio_goals=(GOALS["http_ratio"],) if workers == 1 else (),
                    note="CPU of vault serve (all its processes) per request, warm-ups included",
                ),
                Row(
                    f"HTTP lookup p99, {workers} worker(s)",
                    p99,
                    "ms",
                    baseline=library_p99,
                    goals=(GOALS["p99"],),
                ),
            ]
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--customers",
        type=int,
        default=None,
        help=f"customers (default {FULL['customers']:,}; --quick {QUICK['customers']:,})",
    )
    parser.add_argument(
        "--lookups",
        type=int,
        default=None,
        help=f"timed lookups per run (default {FULL['lookups']:,}; --quick {QUICK['lookups']})",
    )
    parser.add_argument(
        "--clients", type=int, default=CLIENTS, help="load-generator processes (default 4)"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="synthetic data seed")


BENCHMARK = Benchmark(
    help="audited phone lookups over HTTP (1 and 2 workers) vs the library in-process (SQLite)",
    add_arguments=add_arguments,
    run=run,
)
