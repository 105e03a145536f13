"""``vault serve`` as real processes: two API processes on one PostgreSQL keep one audit chain
under concurrent writes; SIGTERM shuts down cleanly; a public bind without TLS warns."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from vault import Vault
from vault.audit import AuditQuery
from vault.cli import cli

VAULT = str(Path(sys.executable).with_name("vault"))
LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    log: list[str]
    reader: threading.Thread


def start(home: Path, *extra: str) -> Served:
    env = {**os.environ, "VAULT_HOME": str(home), "VAULT_LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [VAULT, "serve", "--port", "0", "--rate-limit", "0", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    for line in process.stderr:
        log.append(line)
        found = LISTENING.search(line)
        if found:
            break
    else:
        process.wait(timeout=10)
        pytest.fail("vault serve did not start:\n" + "".join(log))

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    return Served(process, found.group(1), log, reader)


def stop(served: Served) -> bool:
    """SIGTERM, then whether the server shut down gracefully: uvicorn finishes the requests in
    flight, runs the application's shutdown (closing the vault), then re-raises the signal."""
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
    code = served.process.wait(timeout=30)
    served.reader.join(timeout=10)  # the rest of its log, up to the end of the pipe
    log = "".join(served.log)
    return code in (0, -signal.SIGTERM) and "Application shutdown complete" in log


@pytest.fixture
def pg_home(tmp_path: Path, pg_schema_url: str) -> Iterator[tuple[Path, str, str]]:
    home = tmp_path / "home"
    vault, token = Vault.init(home, db_url=pg_schema_url)
    vault.close()
    yield home, token, pg_schema_url


def test_two_api_processes_on_one_postgresql_keep_one_audit_chain(
    pg_home: tuple[Path, str, str],
) -> None:
    home, token, url = pg_home
    first = start(home)
    second = start(home, "--db", url)  # the same database, named on the command line
    servers = [first, second]
    try:
        headers = {"Authorization": f"Bearer {token}", "X-Vault-Purpose": "administration"}

        def write(n: int) -> str:
            with httpx.Client(base_url=servers[n % 2].url, timeout=60) as http:
                created = http.post(
                    "/v1/customers",
                    json={"fields": {"name": f"客户{n}", "phone": f"139{n:08d}"}},
                    headers=headers,
                )
                assert created.status_code == 201, created.text
                customer_id = created.json()["id"]
                changed = http.patch(
                    f"/v1/customers/{customer_id}",
                    json={"fields": {"nickname": f"n{n}"}, "source": "concurrent"},
                    headers=headers,
                )
                assert changed.status_code == 200, changed.text
                return str(customer_id)

        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(write, range(40)))
        assert len(set(ids)) == 40
        verify = httpx.post(f"{second.url}/v1/audit/verify", headers=headers, timeout=60).json()
        assert verify["ok"] is True, verify["problems"]
    finally:
        stopped = [stop(served) for served in servers]
    assert stopped == [True, True]
    with Vault.open(home) as vault:
        admin = vault.session(token, purpose="administration")
        report = admin.audit_verify()
        assert report.ok, report.problems
        writes = admin.audit_query(AuditQuery(action="write", limit=None))
        assert len(writes) == 80
        seqs = [e["seq"] for e in admin.audit_query(AuditQuery(limit=None))]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len({e["request_id"] for e in writes}) == 80  # one request, one id, one event


def test_sigterm_shuts_the_service_down_cleanly(initialised: tuple[Vault, str]) -> None:
    vault, _ = initialised
    served = start(vault.location)
    answer = httpx.get(f"{served.url}/v1/health", timeout=30)
    assert answer.status_code == 200
    assert stop(served)
    log = "".join(served.log)
    assert "request" in log and '"route": "/v1/health"' in log


def test_serving_beyond_loopback_without_tls_warns(initialised: tuple[Vault, str]) -> None:
    vault, _ = initialised
    # 192.0.2.1 (TEST-NET-1) is never this machine's: the bind fails after the warning
    result = CliRunner().invoke(
        cli, ["--home", str(vault.location), "serve", "--host", "192.0.2.1", "--port", "8200"]
    )
    assert "WARNING: serving on 192.0.2.1 without TLS" in result.output
    assert result.exit_code != 0
