"""Witnesses: checkpoints written where the database's writers cannot reach, by command and on
a schedule in ``vault serve``; verify uses all of them (issue 15, obs. 1)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import delete

from tests.audit.test_audit_log import drop_tail, fill
from vault import Vault
from vault.audit.keys import AUDIT_MEMORY_FILE
from vault.audit.log import read_witness
from vault.audit.witness import WitnessSchedule
from vault.cli import cli
from vault.store.schema import audit_checkpoints


def test_checkpoint_witness_file_catches_a_truncation_nothing_else_sees(
    initialised: tuple[Vault, str], home: Path, tmp_path: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 3)
    witness = tmp_path / "witness"
    run = CliRunner().invoke
    env = {"VAULT_TOKEN": token}
    done = run(
        cli, ["--home", str(home), "audit", "checkpoint", "--witness", str(witness)], env=env
    )
    assert done.exit_code == 0, done.output
    [path] = list(witness.iterdir())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [witnessed] = read_witness(witness)
    drop_tail(admin, witnessed.seq - 2)
    with vault._transaction() as connection:
        connection.execute(delete(audit_checkpoints))
    (home / AUDIT_MEMORY_FILE).unlink()
    assert run(cli, ["--home", str(home), "audit", "verify"], env=env).exit_code == 0
    caught = run(cli, ["--home", str(home), "audit", "verify", "--witness", str(witness)], env=env)
    assert caught.exit_code == 1 and "truncated" in caught.stderr
    refused = run(
        cli, ["--home", str(home), "audit", "checkpoint", "--witness", str(witness)], env=env
    )
    assert refused.exit_code == 1 and "checkpoint refused" in refused.stderr


def test_schedule_checkpoints_every_n_events_and_every_t_seconds(
    initialised: tuple[Vault, str], tmp_path: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    schedule = WitnessSchedule(vault, tmp_path / "w", every_events=10, every_seconds=60)
    start = time.monotonic()
    fill(admin, 1)  # 2 events: not yet
    assert schedule.run_once(now=start) is None
    fill(admin, 4)  # 10 events: due by count
    first = schedule.run_once(now=start + 1)
    assert first is not None and [c.seq for c in read_witness(tmp_path / "w")] == [first.seq]
    admin.find_customers("phone", "13900000001")  # one more event
    assert schedule.run_once(now=start + 30) is None
    second = schedule.run_once(now=start + 62)  # due by time
    assert second is not None and second.seq > first.seq
    assert schedule.run_once(now=start + 200) is None  # nothing new, nothing signed
    assert admin.audit_verify(read_witness(tmp_path / "w")).ok


def test_serve_runs_the_witness_schedule(initialised: tuple[Vault, str], tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from vault.service.app import create_app
    from vault.service.config import ServiceConfig

    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 1)
    witness = tmp_path / "served"
    config = ServiceConfig(
        witness_dir=str(witness), witness_every_events=1, witness_every_seconds=0.2
    )
    with TestClient(create_app(vault, config)):
        deadline = time.monotonic() + 20
        while not read_witness(witness) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert read_witness(witness), "no witnessed checkpoint within 20 s"
