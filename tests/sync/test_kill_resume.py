"""Kill -9 of a sync or an import halfway, then run it again: the store ends as an
uninterrupted run's, and the audit log verifies."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sync_toyshop
from sqlalchemy import func, select
from sync_dist import make_distribution, on_path

from vault import Vault
from vault.store.schema import customers, orders, sync_cursors

HERE = Path(__file__).parent


def canonical(vault: Vault) -> list[Any]:
    """The store's content, independent of generated ids, nonces and write times."""
    with vault._engine.connect() as connection:
        ids = list(connection.execute(select(customers.c.id)).scalars())
        result = []
        for customer_id in ids:
            customer = vault._customers.get(connection, customer_id)
            order_rows = connection.execute(
                select(orders.c.order_id, orders.c.status, orders.c.total_amount)
                .where(orders.c.customer_id == customer_id)
                .order_by(orders.c.order_id)
            ).all()
            result.append(
                (
                    sorted(
                        (n, v.value, v.source, v.observed_at.isoformat(), v.masked)
                        for n, v in customer.fields.items()
                    ),
                    sorted((i.platform, i.external_id, i.source) for i in customer.identities),
                    [tuple(r) for r in order_rows],
                )
            )
    return sorted(result, key=repr)


KILL_IMPORT_AT = """
import os, signal, sys
from vault import Vault
home, token, path, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def progress(report):
    if report.batches >= kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
session = Vault.open(home).session(token, purpose="administration")
session.import_file(path, batch_size=100, on_progress=progress)
"""


def batches_committed(vault: Vault, connector: str) -> int:
    with vault._engine.connect() as connection:
        return int(
            connection.execute(
                select(func.sum(sync_cursors.c.batches)).where(
                    sync_cursors.c.connector == connector
                )
            ).scalar()
            or 0
        )


def kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed (status {process.returncode})")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the run made no progress")
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def vault_process(
    home: Path, token: str, *args: str, pythonpath: str = ""
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VAULT_HOME": str(home),
        "VAULT_TOKEN": token,
        "PYTHONPATH": pythonpath,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "vault.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def toyshop_installed(tmp_path: Path) -> Any:
    """The toy connector as an installed distribution, for this process and subprocesses."""
    root = make_distribution(tmp_path / "site", "toyshop_plugin", {"toyshop": "sync_toyshop"}, {})
    with on_path(root):
        yield f"{root}{os.pathsep}{HERE}"


def test_a_sync_killed_at_a_random_batch_resumes_to_the_uninterrupted_result(
    initialised: tuple[Vault, str], tmp_path: Path, toyshop_installed: str
) -> None:
    vault, token = initialised
    rng = random.Random()
    with sync_toyshop.ToyShopSandbox(seed=5, records=200) as sandbox:
        assert isinstance(sandbox, sync_toyshop.ToyShopSandbox)
        settings = {**sandbox.settings(), "page_size": "10"}
        reference, reference_token = Vault.init(tmp_path / "reference")
        with reference:
            admin = reference.session(reference_token, purpose="administration")
            admin.configure_connector("toyshop", settings)
            admin.sync("toyshop")
            expected = canonical(reference)
        admin = vault.session(token, purpose="administration")
        admin.configure_connector("toyshop", settings)
        sandbox.delay = 0.01
        kill_at = rng.randint(2, 27)  # of 30 batches (20 of customers, 10 of orders)
        process = vault_process(
            vault.home.path, token, "sync", "toyshop", pythonpath=toyshop_installed
        )
        kill_when(process, lambda: batches_committed(vault, "toyshop") >= kill_at)
        assert canonical(vault) != expected, f"killed at batch {kill_at}: nothing was left to do"
        sandbox.delay = 0
        report = admin.sync("toyshop")
        assert report.ok
        assert canonical(vault) == expected, f"killed after batch {kill_at}"
        assert admin.audit_verify().ok


def test_an_import_killed_at_a_random_batch_resumes_to_the_uninterrupted_result(
    initialised: tuple[Vault, str], tmp_path: Path
) -> None:
    vault, token = initialised
    rng = random.Random()
    from vault.synthetic import generate_customers

    path = tmp_path / "客户导出.csv"
    lines = ["姓名,手机号码,电子邮箱,生日"]
    for n, person in enumerate(generate_customers(2000, seed=9)):
        phone = person.phone if n % 97 else "not-a-phone"
        lines.append(f"{person.name},{phone},{person.email},{person.birthday}")
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))
    os.utime(path, (1_700_000_000, 1_700_000_000))

    reference, reference_token = Vault.init(tmp_path / "reference")
    with reference:
        copy = tmp_path / "copy" / path.name
        copy.parent.mkdir()
        copy.write_bytes(path.read_bytes())
        os.utime(copy, (1_700_000_000, 1_700_000_000))
        done = reference.session(reference_token, purpose="administration").import_file(
            copy, batch_size=100
        )
        expected = canonical(reference)
        expected_rejects = Path(str(done.reject_report)).read_text(encoding="utf-8-sig")

    kill_at = rng.randint(2, 17)  # of 20 batches
    # The import kills itself right after committing batch `kill_at`: on a fast machine a
    # watcher polling from outside can arrive after the whole file is in.
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILL_IMPORT_AT,
            str(vault.home.path),
            token,
            str(path),
            str(kill_at),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    assert batches_committed(vault, "file_import") == kill_at
    assert canonical(vault) != expected
    admin = vault.session(token, purpose="administration")
    report = admin.import_file(path, batch_size=100)
    assert canonical(vault) == expected, f"killed after batch {kill_at}"
    assert Path(str(report.reject_report)).read_text(encoding="utf-8-sig") == expected_rejects
    assert admin.audit_verify().ok
    json.dumps(report.as_dict())
