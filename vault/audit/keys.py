"""Custody of the audit signing key: which source holds it, the earlier public keys that keep
old checkpoints valid, rotation, and what ``vault init`` says about each key.

The seed signs checkpoints and keys each event's MAC (``chain.mac_key_for``). Kept apart from
the master key and the database (its own file, an environment variable or a plugin), it makes a
database writer who also holds the master key unable to sign or MAC: a rewritten log then fails
``verify`` even with every stored checkpoint re-made.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from vault.audit.log import AuditLog
from vault.config import Settings, VaultHome
from vault.crypto.keysource import SigningKeySource, signing_key_source
from vault.errors import ConfigError

if TYPE_CHECKING:
    from vault.vault import Vault

AUDIT_MEMORY_FILE = "audit-last-checkpoint.json"  # the newest checkpoint signed here (§5.6)


def source_for(home: VaultHome, settings: Settings) -> SigningKeySource:
    return signing_key_source(settings.audit_key_source, home.audit_key_file(settings))


def earlier_public_keys(home: VaultHome) -> list[bytes]:
    path = home.audit_public_keys_file
    if not path.exists():
        return []
    keys = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError(f"{path} line {number} is not a 32-byte public key in hex")
        keys.append(key)
    return keys


def open_audit_log(
    engine: Engine, home: VaultHome, settings: Settings, stored_seed: bytes
) -> AuditLog:
    """The audit log with the seed from the configured source (the store's only for
    ``audit_key_source = "store"``) and every earlier public key."""
    seed = source_for(home, settings).load() or stored_seed
    return AuditLog(
        engine,
        seed,
        memory=home.path / AUDIT_MEMORY_FILE,
        old_public_keys=earlier_public_keys(home),
    )


def create_signing_key(home: VaultHome, settings: Settings) -> None:
    """At ``vault init``: make the file key (env and plugin keys are the operator's to set)."""
    source = source_for(home, settings)
    if source.kind == "file":
        source.create()


def rotate_signing_key(vault: Vault) -> tuple[bytes, bytes]:
    """Make a new signing key at its source and switch this vault to it; the old public key is
    kept (``audit-public-keys.txt``) first, so old checkpoints stay valid whatever happens next.
    A vault whose key is in the store moves it to its own file. Returns (old, new) public keys.
    """
    settings = vault.settings
    if settings.audit_key_source == "store":
        settings = replace(settings, audit_key_source="file")
    source = source_for(vault.home, settings)
    if source.kind != "file":
        raise ConfigError(
            f"the audit signing key comes from {source.describe()}: put the new key there, keep "
            f"the old public key in {vault.home.audit_public_keys_file}, and restart the vault",
        )
    old = vault.audit.public_key
    path = vault.home.audit_public_keys_file
    known = earlier_public_keys(vault.home)
    if old not in known:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{old.hex()}\n")
    source.create()
    if settings != vault.settings:
        vault.home.write_settings(settings)
        vault.settings = settings
    vault.audit = open_audit_log(vault._engine, vault.home, settings, b"")
    return old, vault.audit.public_key


def custody_notes(home: VaultHome, settings: Settings) -> list[str]:
    """What ``vault init`` prints: where each key is and what its holder can do."""
    master = (
        f"the file {home.key_file}"
        if settings.key_source == "file"
        else {
            "passphrase": "your passphrase (scrypt)",
            "env": "the environment variable VAULT_MASTER_KEY",
            "plugin": "a key-provider plugin",
        }.get(settings.key_source, settings.key_source)
    )
    signing = source_for(home, settings).describe()
    database = settings.db_url.split("@")[-1] if "@" in settings.db_url else settings.db_url
    return [
        f"Master key: {master}. With it and the database, anyone reads every customer's data "
        "and can compute search indexes. Keep it out of database backups.",
        f"Audit signing key: {signing}. With it, anyone can sign audit checkpoints and write "
        "events that verify: a rewritten log then passes `vault audit verify` (only checkpoints "
        "kept apart, `--witness`, still expose it). Keep it where the database's operators "
        "cannot read it, apart from the master key.",
        f"Database: {database}. Its writers can delete or edit audit events and checkpoints; "
        "without the signing key each change is named by `vault audit verify` or refused by "
        "the next `vault audit checkpoint`.",
    ]
