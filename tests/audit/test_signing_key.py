"""The audit signing key is kept apart from the master key and the database (issue 15, obs. 4)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from tests.audit.test_audit_log import fill, rewrite_chain
from vault import Vault
from vault.audit import Checkpoint
from vault.audit.chain import event_mac, mac_key_for, sign_checkpoint
from vault.cli import cli
from vault.config import VaultHome
from vault.errors import KeyUnavailable
from vault.session import Session
from vault.store import keystore
from vault.store.schema import audit_checkpoints, audit_events


def resign_with_the_stored_key(admin: Session) -> None:
    """What a database owner who also holds master.key does: unwrap the signing key stored in
    the database, then re-sign every stored checkpoint and re-MAC every event."""
    vault = admin._vault
    with vault._transaction() as connection:
        seed = keystore.unwrap_system_keys(connection, vault._keyring)[keystore.AUDIT_SIGNING_KEY]
        mac_key = mac_key_for(seed)
        for row in connection.execute(select(audit_events.c.seq, audit_events.c.hash)).all():
            connection.execute(
                update(audit_events)
                .where(audit_events.c.seq == row.seq)
                .values(mac=event_mac(mac_key, bytes(row.hash)))
            )
        for row in connection.execute(select(audit_checkpoints)).all():
            head = connection.execute(
                select(audit_events.c.hash).where(audit_events.c.seq == row.seq)
            ).scalar_one()
            connection.execute(
                update(audit_checkpoints)
                .where(audit_checkpoints.c.seq == row.seq)
                .values(
                    head_hash=bytes(head),
                    signature=sign_checkpoint(seed, row.seq, bytes(head), row.at),
                )
            )


def test_a_database_owner_with_the_master_key_cannot_re_sign_the_log(admin: Session) -> None:
    fill(admin, 3)
    admin.audit_checkpoint()
    fill(admin, 1)
    rewrite_chain(admin, forge_checkpoints=False)
    resign_with_the_stored_key(admin)
    report = admin.audit_verify()
    # Every event's MAC and every checkpoint's signature is by a key this vault does not use.
    assert not report.ok and report.problems[0].kind in {"unauthenticated", "bad-signature"}
    with admin._vault._transaction() as connection:  # MACs dropped: the signature still fails
        connection.execute(update(audit_events).values(mac=None))
    assert admin.audit_verify().problems[0].kind == "bad-signature"
    with pytest.raises(Exception, match="checkpoint refused"):
        admin.audit_checkpoint()


def test_the_signing_key_is_its_own_0600_file_apart_from_the_master_key(
    initialised: tuple[Vault, str], home: Path
) -> None:
    vault, _ = initialised
    key_file = home / "audit-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text())["format"] == "vault-audit-signing-key/v1"
    settings = VaultHome.resolve(home).read_settings()
    assert settings.audit_key_source == "file"
    with vault._engine.connect() as connection:
        stored = keystore.unwrap_system_keys(connection, vault._keyring)[keystore.AUDIT_SIGNING_KEY]
    assert mac_key_for(stored) != mac_key_for(
        base64.b64decode(json.loads(key_file.read_text())["seed"])
    )


def test_signing_key_file_at_its_own_path_and_from_the_environment(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "signer" / "audit.key"
    vault, token = Vault.init(tmp_path / "a", db_url=db_url, audit_key_file=str(elsewhere))
    with vault:
        assert elsewhere.exists() and not (tmp_path / "a" / "audit-signing.key").exists()
        public = vault.session(token, purpose="administration").audit_public_key()
    elsewhere.unlink()
    with pytest.raises(KeyUnavailable, match="audit signing key file"):
        Vault.open(tmp_path / "a")
    seed = bytes(range(32))
    monkeypatch.setenv("VAULT_AUDIT_SIGNING_KEY", base64.b64encode(seed).decode())
    if db_url.startswith("sqlite"):  # a second vault needs a database of its own
        second, token2 = Vault.init(tmp_path / "b", audit_key_source="env")
        with second:
            admin = second.session(token2, purpose="administration")
            assert admin.audit_public_key() != public
            fill(admin, 1)
            assert admin.audit_checkpoint().seq > 0 and admin.audit_verify().ok
        monkeypatch.delenv("VAULT_AUDIT_SIGNING_KEY")
        with pytest.raises(KeyUnavailable, match="VAULT_AUDIT_SIGNING_KEY is not set"):
            Vault.open(tmp_path / "b")


def test_rotation_keeps_old_checkpoints_valid_and_signs_with_the_new_key(
    initialised: tuple[Vault, str], home: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    fill(admin, 2)
    old_saved = admin.audit_checkpoint()
    saved = Checkpoint.from_json(old_saved.to_json(admin.audit_public_key()))
    old, new = admin.audit_rotate_signing_key()
    assert old != new and admin.audit_public_key() == new
    fill(admin, 1)
    assert admin.audit_verify([saved]).ok
    assert admin.audit_checkpoint().seq > saved.seq
    with Vault.open(home) as reopened:
        again = reopened.session(token, purpose="administration")
        assert again.audit_public_key() == new
        report = again.audit_verify([saved])
        assert report.ok, report.problems
    [rotation] = [
        e
        for e in admin.audit_query(
            __import__("vault.audit", fromlist=["AuditQuery"]).AuditQuery(action="keys", limit=None)
        )
        if e["details"].get("operation") == "rotate-signing-key"
    ]
    assert rotation["details"]["old_key"] == old.hex()


def test_init_says_where_each_key_is_and_what_its_holder_can_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "v"), "init"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Master key: the file {tmp_path / 'v' / 'master.key'}" in out
    assert f"Audit signing key: the file {tmp_path / 'v' / 'audit-signing.key'}" in out
    assert "can sign audit checkpoints" in out and "reads every customer's data" in out
