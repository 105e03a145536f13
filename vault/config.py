"""The vault home: where a vault's database, master key, settings and policies live.

``VAULT_HOME`` (default ``./.vault``) holds ``vault.db`` (the embedded SQLite store),
``master.key`` (mode 0600, when the key source is a file), ``settings.toml`` and ``policies/``.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from vault.errors import ConfigError

DEFAULT_HOME = ".vault"
SETTINGS_FILE = "settings.toml"
POLICY_FILES = ("fields.toml", "purposes.toml", "roles.toml", "sources.toml", "segments.toml")


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str
    key_source: str = "file"
    # The audit signing key's own source (vault/crypto/keysource.py): "store" for vaults made
    # before it had one; ``vault init`` writes "file" and a path of its own.
    audit_key_source: str = "store"
    audit_key_file: str | None = None


@dataclass(frozen=True, slots=True)
class VaultHome:
    path: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> VaultHome:
        chosen = path if path is not None else os.environ.get("VAULT_HOME", DEFAULT_HOME)
        return cls(Path(chosen).expanduser().resolve())

    @property
    def settings_file(self) -> Path:
        return self.path / SETTINGS_FILE

    @property
    def key_file(self) -> Path:
        return self.path / "master.key"

    @property
    def default_db_url(self) -> str:
        return f"sqlite:///{self.path / 'vault.db'}"

    def policy_file(self, name: str) -> Path:
        """The home's own copy of a policy file if it has one, else the packaged default."""
        own = self.path / "policies" / name
        if own.exists():
            return own
        return Path(str(files("policies").joinpath(name)))

    def exists(self) -> bool:
        return self.settings_file.exists()

    def read_settings(self) -> Settings:
        try:
            data = tomllib.loads(self.settings_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"no vault at {self.path} (no {SETTINGS_FILE})",
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.settings_file} is not valid TOML: {exc}") from None
        db_url = data.get("db_url") or self.default_db_url
        key_source = data.get("key_source", "file")
        audit_key_source = data.get("audit_key_source", "store")
        audit_key_file = data.get("audit_key_file")
        if not all(isinstance(v, str) for v in (db_url, key_source, audit_key_source)) or not (
            audit_key_file is None or isinstance(audit_key_file, str)
        ):
            raise ConfigError(
                f"{self.settings_file}: db_url, key_source, audit_key_source and audit_key_file "
                "must be strings"
            )
        return Settings(
            db_url=db_url,
            key_source=key_source,
            audit_key_source=audit_key_source,
            audit_key_file=audit_key_file,
        )

    @property
    def default_audit_key_file(self) -> Path:
        return self.path / "audit-signing.key"

    def audit_key_file(self, settings: Settings) -> Path:
        return (
            Path(settings.audit_key_file)
            if settings.audit_key_file
            else self.default_audit_key_file
        )

    @property
    def audit_public_keys_file(self) -> Path:
        """Earlier audit public keys (one hex per line), kept after a signing-key rotation."""
        return self.path / "audit-public-keys.txt"

    def write_settings(self, settings: Settings) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        lines = [
            "# Written by `vault init`. The database URL may hold a password: keep this 0600.",
            f"db_url = {json.dumps(settings.db_url)}",
            f"key_source = {json.dumps(settings.key_source)}",
            f"audit_key_source = {json.dumps(settings.audit_key_source)}",
        ]
        if settings.audit_key_file:
            lines.append(f"audit_key_file = {json.dumps(settings.audit_key_file)}")
        fd = os.open(self.settings_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def install_default_policies(self) -> None:
        target = self.path / "policies"
        target.mkdir(parents=True, exist_ok=True)
        for name in POLICY_FILES:
            destination = target / name
            if not destination.exists():
                destination.write_text(
                    files("policies").joinpath(name).read_text(encoding="utf-8"), encoding="utf-8"
                )
