"""Master keys: a wrong key writes nothing; rotation rewraps and resumes after a kill."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from vault import KeyUnavailable, NewCustomer, Vault
from vault.config import VaultHome
from vault.crypto.keysource import FileKeySource
from vault.session import Session
from vault.store.engine import make_engine
from vault.store.keystore import SYSTEM_KEY_NAMES
from vault.store.schema import customer_fields, customers, metadata


def snapshot(admin: Session) -> dict[str, list[tuple[object, ...]]]:
    return snapshot_engine(admin._vault._engine)


def snapshot_engine(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
            for table in metadata.sorted_tables
        }


def load_customers(admin: Session, count: int) -> dict[str, str]:
    ids = admin.add_customers(
        (
            NewCustomer(fields={"name": f"客户{i}", "phone": f"1380000{i:04d}"})
            for i in range(count)
        ),
        source="t",
    )
    return {cid: admin.get_customer(cid).get("phone") or "" for cid in ids}


def test_wrong_master_key_is_refused_before_anything_is_written(admin: Session, home: Path) -> None:
    load_customers(admin, 3)
    before = snapshot(admin)
    admin._vault.close()
    os.unlink(home / "master.key")
    FileKeySource(home / "master.key").create(1)  # a different key, same version
    with pytest.raises(KeyUnavailable, match="wrong master key"):
        Vault.open(home)
    engine = make_engine(VaultHome.resolve(home).read_settings().db_url)
    try:
        assert snapshot_engine(engine) == before
    finally:
        engine.dispose()


def test_missing_key_file_is_a_clear_error(admin: Session, home: Path) -> None:
    admin._vault.close()
    os.unlink(home / "master.key")
    with pytest.raises(KeyUnavailable, match="does not exist"):
        Vault.open(home)


def test_key_file_readable_by_others_is_refused(admin: Session, home: Path) -> None:
    admin._vault.close()
    os.chmod(home / "master.key", 0o644)
    with pytest.raises(KeyUnavailable, match="accessible by other users") as caught:
        Vault.open(home)
    assert "chmod 600" in caught.value.diagnostics()


def test_key_file_is_created_0600(admin: Session, home: Path) -> None:
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600


def reopen(admin: Session, **kwargs: str) -> Session:
    """A new process's view: open the vault again and log in with the same token."""
    return Vault.open(admin._vault.home.path, **kwargs).session(
        TOKENS[admin], purpose="administration"
    )


TOKENS: dict[Session, str] = {}


@pytest.fixture
def admin_with_token(initialised: tuple[Vault, str]) -> Session:
    vault, token = initialised
    session = vault.session(token, purpose="administration")
    TOKENS[session] = token
    return session


def test_rotation_rewraps_every_data_key_and_leaves_fields_untouched(
    admin_with_token: Session,
) -> None:
    admin = admin_with_token
    phones = load_customers(admin, 23)
    with admin._vault._engine.connect() as connection:
        fields_before = sorted(connection.execute(select(customer_fields.c.value)).scalars())
    report = admin.rotate_keys(batch_size=5)
    assert (
        report.to_version == 2
        and report.rewrapped == 23 + len(SYSTEM_KEY_NAMES)
        and not report.resumed
    )
    with admin._vault._engine.connect() as connection:
        assert (
            sorted(connection.execute(select(customer_fields.c.value)).scalars()) == fields_before
        )
        assert set(connection.execute(select(customers.c.kek_version)).scalars()) == {2}
    reopened = reopen(admin)
    assert {cid: reopened.get_customer(cid).get("phone") for cid in phones} == phones
    status = reopened.key_status()
    assert status.active_version == 2 and not status.rotation_in_progress
    assert [v.data_keys for v in status.versions] == [0, 23]
    reopened.retire_key_version(1)
    assert reopen(admin).find_customers("phone", "13800000007")
    reopened._vault.close()


def test_retiring_the_active_or_a_used_version_is_refused(admin: Session) -> None:
    load_customers(admin, 2)
    with pytest.raises(KeyUnavailable, match="active"):
        admin.retire_key_version(1)


KILL_AFTER_FIRST_BATCH = """
import os, signal, sys
from vault import Vault
session = Vault.open(sys.argv[1]).session(sys.argv[2])
session.rotate_keys(batch_size=4, on_batch=lambda n: os.kill(os.getpid(), signal.SIGKILL))
"""


def test_rotation_killed_halfway_completes_when_run_again(
    admin_with_token: Session, home: Path
) -> None:
    admin = admin_with_token
    phones = load_customers(admin, 17)
    result = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_BATCH, str(home), TOKENS[admin]],
        capture_output=True,
    )
    assert result.returncode == -9, result.stderr
    status = admin.key_status()
    assert status.rotation_in_progress and status.pending_rewrap == 17 + len(SYSTEM_KEY_NAMES) - 4
    reopened = reopen(admin)
    report = reopened.rotate_keys(batch_size=4)
    assert (
        report.resumed
        and report.to_version == 2
        and report.rewrapped == 17 + len(SYSTEM_KEY_NAMES) - 4
    )
    assert {cid: reopened.get_customer(cid).get("phone") for cid in phones} == phones
    with reopened._vault._engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count()).select_from(customers).where(customers.c.kek_version != 2)
            ).scalar_one()
            == 0
        )
    next_report = reopened.rotate_keys()
    assert next_report.to_version == 3 and not next_report.resumed
    assert reopened.audit_verify().ok
    reopened._vault.close()


def test_env_key_source_opens_and_rejects_a_wrong_key(
    home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("VAULT_MASTER_KEY", key)
    vault, token = Vault.init(home, db_url=db_url, key_source="env")
    cid = vault.session(token).add_customer({"name": "张三"}, source="t")
    vault.close()
    session = Vault.open(home).session(token, purpose="administration")
    assert session.get_customer(cid).get("name") == "张三"
    session._vault.close()
    monkeypatch.setenv("VAULT_MASTER_KEY", f"2:{key}")  # no version 1 any more
    with pytest.raises(KeyUnavailable, match="no master key version 1"):
        Vault.open(home)
    monkeypatch.setenv("VAULT_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(KeyUnavailable, match="wrong master key"):
        Vault.open(home)
    monkeypatch.setenv("VAULT_MASTER_KEY", "not base64!")
    with pytest.raises(KeyUnavailable, match="not valid base64"):
        Vault.open(home)


def test_env_rotation_uses_the_version_the_operator_added(
    home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("VAULT_MASTER_KEY", v1)
    vault, token = Vault.init(home, db_url=db_url, key_source="env")
    admin = vault.session(token)
    with pytest.raises(KeyUnavailable, match="no key version 2"):
        admin.rotate_keys()
    monkeypatch.setenv("VAULT_MASTER_KEY", f"1:{v1},2:{base64.b64encode(os.urandom(32)).decode()}")
    assert admin.rotate_keys().to_version == 2
    vault.close()


def test_passphrase_key_source_opens_and_rejects_a_wrong_passphrase(
    home: Path, db_url: str
) -> None:
    vault, token = Vault.init(
        home, db_url=db_url, key_source="passphrase", passphrase="correct horse"
    )
    cid = vault.session(token).add_customer({"name": "张三"}, source="t")
    vault.close()
    reopened = Vault.open(home, passphrase="correct horse")
    assert reopened.session(token, purpose="administration").get_customer(cid).get("name") == "张三"
    reopened.close()
    with pytest.raises(KeyUnavailable, match="wrong master key"):
        Vault.open(home, passphrase="battery staple")


def test_missing_blind_index_key_refuses_to_open_rather_than_remake_it(
    admin: Session, home: Path
) -> None:
    from sqlalchemy import delete

    from vault.store.schema import system_keys

    admin.add_customer({"phone": "13800138000"}, source="t")
    with admin._vault._transaction() as connection:
        connection.execute(delete(system_keys).where(system_keys.c.name == "blind-index-root"))
    with pytest.raises(KeyUnavailable, match="'blind-index-root' is missing"):
        Vault.open(home)


def test_retiring_an_unknown_version_is_an_error(admin: Session) -> None:
    with pytest.raises(KeyUnavailable, match="no active master key version 9"):
        admin.retire_key_version(9)


def test_plugin_key_of_the_wrong_length_is_refused() -> None:
    from vault.crypto.keysource import _checked_length

    with pytest.raises(KeyUnavailable, match="expected 32 bytes"):
        _checked_length(b"short", 2)
