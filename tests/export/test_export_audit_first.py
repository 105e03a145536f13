"""Data leaves only after its audit event is committed: an export writes ``export started`` in a
transaction of its own before its first byte and ``export completed`` (with the manifest's hash)
after its last; an export that never completed is listed by ``incomplete_exports``. A file of
PII appears (0600) under its name only when complete."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from vault import Vault
from vault.cli import cli
from vault.errors import StoreError
from vault.export import manifest_path
from vault.session import Session

PURPOSE = "customer_service"  # no consent needed: every live customer is exported


def people(admin: Session, count: int) -> list[str]:
    return [
        admin.add_customer(
            {"name": f"顾客{n}号", "phone": f"1390013{n:04d}", "email": f"c{n}@example.cn"},
            source="test",
        )
        for n in range(count)
    ]


def export_events(db_url: str) -> list[dict[str, Any]]:
    """The export events as stored, read beside the vault (its own engine, no session)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT body FROM audit_events WHERE action = 'export' ORDER BY seq")
            ).all()
    finally:
        engine.dispose()
    return [
        json.loads(bytes(row.body) if not isinstance(row.body, str) else row.body) for row in rows
    ]


def phases(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["details"].get("phase")) for e in events]


@pytest.fixture
def audit_refuses_exports(db_url: str) -> Iterator[None]:
    """A trigger that makes every insert of an ``export`` audit event fail, as a full disk, a
    lost connection or a broken audit store would."""
    engine = create_engine(db_url)
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_export_audit BEFORE INSERT ON audit_events "
                    "WHEN NEW.action = 'export' BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_export_audit() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.action = 'export' THEN RAISE EXCEPTION 'audit store down'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_export_audit BEFORE INSERT ON audit_events "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_export_audit()"
                )
            )
    engine.dispose()
    yield


def test_an_export_whose_started_event_cannot_be_written_writes_nothing(
    admin: Session, db_url: str, audit_refuses_exports: None
) -> None:
    people(admin, 3)
    out = io.BytesIO()
    with pytest.raises(StoreError) as raised:
        admin.export(PURPOSE, out)
    assert out.getvalue() == b""
    message = str(raised.value)
    assert "\n" not in message and "nothing was exported" in message
    assert export_events(db_url) == []


class CutAfter(io.RawIOBase):
    """An output that breaks after ``writes`` writes, as a client hanging up would; on its first
    write it looks at what the audit log already holds."""

    def __init__(self, db_url: str, writes: int) -> None:
        self.db_url = db_url
        self.left = writes
        self.events_at_first_byte: list[dict[str, Any]] | None = None
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.events_at_first_byte is None:
            self.events_at_first_byte = export_events(self.db_url)
        if self.left <= 0:
            raise BrokenPipeError("the reader went away")
        self.left -= 1
        self.bytes += len(data)
        return len(data)


def test_the_started_event_is_committed_before_the_first_byte(admin: Session, db_url: str) -> None:
    ids = people(admin, 4)
    out = CutAfter(db_url, writes=1_000)
    manifest = admin.export(PURPOSE, out, fields=["email"])
    (started,) = out.events_at_first_byte or []
    assert started["details"]["phase"] == "started"
    assert started["purpose"] == PURPOSE and started["fields"] == ["email"]
    assert started["customers"]["count"] == 4 and sorted(started["customers"]["ids"]) == sorted(ids)
    assert started["request_id"] == admin.request_id
    started_ev, completed = export_events(db_url)
    assert phases([started_ev, completed]) == ["started", "completed"]
    assert completed["details"]["export_id"] == started["details"]["export_id"]
    assert completed["details"]["manifest_sha256"] == manifest.sha256
    assert completed["customers"]["digest"] == started["customers"]["digest"]
    assert admin.incomplete_exports() == []


def test_a_cut_export_leaves_its_started_event_and_is_listed_as_incomplete(
    admin: Session, db_url: str
) -> None:
    ids = people(admin, 12)
    out = CutAfter(db_url, writes=2)
    with pytest.raises(BrokenPipeError):
        admin.export(PURPOSE, out, batch_size=3)
    assert out.bytes > 0  # some rows did leave
    events = export_events(db_url)
    assert phases(events)[0] == "started"
    assert "completed" not in phases(events)
    (incomplete,) = admin.incomplete_exports()
    assert incomplete["export_id"] == events[0]["details"]["export_id"]
    assert incomplete["request_id"] == admin.request_id
    assert incomplete["actor"] == admin.principal.name and incomplete["purpose"] == PURPOSE
    assert incomplete["customers"]["count"] == 12
    assert incomplete["ended"] == "failed: BrokenPipeError"
    (recipient,) = admin.dsar_export(ids[-1])["recipients"]  # a subject access request shows it
    assert recipient["kind"] == "export" and recipient["complete"] is False
    assert admin.audit_verify().ok


def test_the_incomplete_exports_query_is_audited_and_needs_the_audit_action(
    admin: Session,
) -> None:
    from vault import AccessDenied, AuditQuery

    token = admin.add_principal("m", ["marketing"])
    marketer = admin._vault.session(token, purpose="marketing_sms")
    with pytest.raises(AccessDenied):
        marketer.incomplete_exports()
    admin.incomplete_exports()
    operations = [
        e["details"].get("operation") for e in admin.audit_query(AuditQuery(action="audit"))
    ]
    assert "incomplete-exports" in operations


def test_cli_export_files_and_manifests_are_0600(home: Path, db_url: str, tmp_path: Path) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        people(vault.session(token, purpose="administration"), 2)
    target = tmp_path / "out" / "all.csv"
    target.parent.mkdir()
    args = ["--home", str(home), "export", "--purpose", PURPOSE, "-o", str(target)]
    result = CliRunner().invoke(cli, args, env={"VAULT_TOKEN": token})
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(manifest_path(target).stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["all.csv", "all.csv.manifest.json"]


def test_cli_dsar_export_file_is_0600(home: Path, db_url: str, tmp_path: Path) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        (customer_id,) = people(vault.session(token, purpose="administration"), 1)
    target = tmp_path / "dsar.json"
    args = ["--home", str(home), "dsar", "export", customer_id, "-o", str(target)]
    args += ["--purpose", "administration"]
    result = CliRunner().invoke(cli, args, env={"VAULT_TOKEN": token})
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())["customer"]["id"] == customer_id
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# The CLI in a process of its own, whose export writes one batch and then hangs (as a large
# export would be mid-way when killed).
HANGING_EXPORT = """
import sys, time
from vault.export import writers
original = writers.CsvWriter.write_rows
def write_rows(self, rows):
    original(self, rows)
    self.out.flush()
    sys.stderr.write("rows written\\n")
    sys.stderr.flush()
    time.sleep(600)
writers.CsvWriter.write_rows = write_rows
from vault.cli import cli
cli(prog_name="vault")
"""


def test_kill_9_of_a_cli_export_leaves_no_file_of_pii_and_the_started_event(
    home: Path, db_url: str, tmp_path: Path
) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        admin = vault.session(token, purpose="administration")
        people(admin, 5)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    target = out_dir / "customers.csv"
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING_EXPORT, "export", "--purpose", PURPOSE, "-o", str(target)],
        env={**os.environ, "VAULT_HOME": str(home), "VAULT_TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line == "rows written\n", line + process.stderr.read()
        time.sleep(0.2)
        written = [p for p in out_dir.iterdir() if p.stat().st_size > 0]
        assert written, "the export wrote nothing before it was killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert not target.exists()
    assert not manifest_path(target).exists()
    for left in out_dir.iterdir():  # a temporary file may stay: never readable by others
        assert stat.S_IMODE(left.stat().st_mode) == 0o600, left.name
    events = export_events(db_url)
    assert phases(events) == ["started"]
    with Vault.open(home) as reopened:
        (incomplete,) = reopened.session(token, purpose="administration").incomplete_exports()
    assert incomplete["export_id"] == events[0]["details"]["export_id"]
    assert incomplete["ended"] is None
    listed = CliRunner().invoke(
        cli, ["--home", str(home), "audit", "incomplete-exports"], env={"VAULT_TOKEN": token}
    )
    assert listed.exit_code == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert incomplete["export_id"] in line and "customers=5" in line and "no end recorded" in line
    as_json = CliRunner().invoke(
        cli,
        ["--home", str(home), "audit", "incomplete-exports", "--json"],
        env={"VAULT_TOKEN": token},
    )
    assert [e["export_id"] for e in json.loads(as_json.stdout)] == [incomplete["export_id"]]


def test_cli_export_with_the_audit_store_failing_exits_1_in_one_line_and_writes_no_file(
    home: Path, initialised: tuple[Vault, str], tmp_path: Path, audit_refuses_exports: None
) -> None:
    vault, token = initialised
    people(vault.session(token, purpose="administration"), 2)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "all.csv"
    args = ["--home", str(home), "export", "--purpose", PURPOSE, "-o", str(target)]
    result = CliRunner().invoke(cli, args, env={"VAULT_TOKEN": token})
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: StoreError:") and "nothing was exported" in line
    assert "Traceback" not in result.output + result.stderr
    assert list(out_dir.iterdir()) == []
