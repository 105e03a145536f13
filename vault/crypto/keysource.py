"""Where master keys come from: a key file, a passphrase, an environment variable or a plugin.

A key source hands out the master key (KEK) for a version. The store keeps, per version, only a
check value (and for a passphrase, the scrypt salt); a key that does not match its check value is
refused before anything is written.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.crypto._hazmat import KEY_BYTES, new_key, scrypt_key
from vault.errors import ConfigError, KeyUnavailable

KEY_FILE_FORMAT = "vault-master-key/v1"
SALT_BYTES = 16
KEY_SOURCES = ("file", "passphrase", "env", "plugin")


@dataclass(frozen=True, slots=True)
class NewMasterKey:
    key: bytes
    salt: bytes | None = None


class KeySource(ABC):
    """Hands out master key versions. ``create`` is used by ``vault init`` and rotation."""

    kind: str

    @abstractmethod
    def load(self, version: int, salt: bytes | None) -> bytes | None:
        """The KEK of ``version``, or ``None`` if this source does not hold it."""

    @abstractmethod
    def create(self, version: int) -> NewMasterKey:
        """Make (or, for an interrupted rotation, return again) the KEK of a new version."""


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnavailable(f"{where} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyUnavailable(f"{where} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _read_private(path: Path, what: str, *, missing_hint: str) -> str:
    """The text of a key file that exists and that only its owner may read (mode 0600)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyUnavailable(f"{what} {path} does not exist", hint=missing_hint) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyUnavailable(
            f"{what} {path} is accessible by other users (mode {stat.S_IMODE(mode):04o})",
            hint=f"Run `chmod 600 {path}`; the vault refuses a key others can read.",
        )
    return path.read_text()


class FileKeySource(KeySource):
    """A JSON key file (mode 0600) holding every master key version made for this vault."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[int, bytes]:
        text = _read_private(
            self.path,
            "master key file",
            missing_hint="Run `vault init` to create a vault, or point VAULT_HOME at an "
            "existing one.",
        )
        try:
            data: Any = json.loads(text)
            if data.get("format") != KEY_FILE_FORMAT or not isinstance(data.get("keys"), dict):
                raise ValueError
            return {
                int(version): _decode_key(text, f"key version {version} in {self.path}")
                for version, text in data["keys"].items()
            }
        except (ValueError, AttributeError, TypeError):
            raise KeyUnavailable(
                f"master key file {self.path} is not a {KEY_FILE_FORMAT} file"
            ) from None

    def load(self, version: int, salt: bytes | None) -> bytes | None:
        return self._read().get(version)

    def create(self, version: int) -> NewMasterKey:
        keys = self._read() if self.path.exists() else {}
        if version in keys:  # an interrupted rotation already wrote it
            return NewMasterKey(keys[version])
        keys[version] = new_key()
        self._write(keys)
        return NewMasterKey(keys[version])

    def _write(self, keys: dict[int, bytes]) -> None:
        payload = {
            "format": KEY_FILE_FORMAT,
            "keys": {str(v): encode_key(k) for v, k in sorted(keys.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".master.key.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class EnvKeySource(KeySource):
    """``VAULT_MASTER_KEY``: one base64 key (version 1) or ``1:<base64>,2:<base64>``."""

    kind = "env"
    variable = "VAULT_MASTER_KEY"

    def __init__(self, value: str | None = None) -> None:
        self._given = value

    @property
    def _value(self) -> str | None:
        # Read at each use: an operator adds a new version to the environment, then rotates.
        return self._given if self._given is not None else os.environ.get(self.variable)

    def _keys(self) -> dict[int, bytes]:
        if not self._value:
            raise KeyUnavailable(
                f"{self.variable} is not set",
                hint=f"This vault takes its master key from {self.variable}; export it first.",
            )
        keys: dict[int, bytes] = {}
        for part in self._value.split(","):
            version_text, sep, text = part.strip().partition(":")
            if not sep:
                version_text, text = "1", version_text
            if not version_text.isdigit():
                raise KeyUnavailable(f"{self.variable} has a malformed entry (expected N:<base64>)")
            keys[int(version_text)] = _decode_key(text, f"{self.variable} version {version_text}")
        return keys

    def load(self, version: int, salt: bytes | None) -> bytes | None:
        return self._keys().get(version)

    def create(self, version: int) -> NewMasterKey:
        key = self._keys().get(version)
        if key is None:
            raise KeyUnavailable(
                f"{self.variable} has no key version {version}",
                version=version,
                hint=f"Add `{version}:<base64 of 32 random bytes>` to {self.variable} "
                "(keep the old versions) and run the command again.",
            )
        return NewMasterKey(_checked_length(key, version))


def _checked_length(key: object, version: int) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise KeyUnavailable(
            f"the key-provider plugin returned an unusable master key version {version} "
            f"(expected {KEY_BYTES} bytes)",
            version=version,
        )
    return key


class PassphraseKeySource(KeySource):
    """A passphrase stretched by scrypt; each version has its own random salt in the store."""

    kind = "passphrase"

    def __init__(self, passphrase: str | None) -> None:
        if not passphrase:
            raise KeyUnavailable(
                "no passphrase given",
                hint="Set VAULT_PASSPHRASE or run the command on a terminal to be asked for it.",
            )
        self._passphrase = passphrase.encode()

    def load(self, version: int, salt: bytes | None) -> bytes | None:
        if salt is None:
            raise ConfigError(f"master key version {version} has no scrypt salt in the store")
        return scrypt_key(self._passphrase, salt)

    def create(self, version: int) -> NewMasterKey:
        salt = os.urandom(SALT_BYTES)
        return NewMasterKey(scrypt_key(self._passphrase, salt), salt)


class PluginKeySource(KeySource):
    """Asks the ``vault_master_key`` / ``vault_create_master_key`` hooks (a KMS or HSM plugin)."""

    kind = "plugin"

    def load(self, version: int, salt: bytes | None) -> bytes | None:
        from vault.plugins import get_plugin_manager

        key: bytes | None = get_plugin_manager().hook.vault_master_key(version=version)
        return None if key is None else _checked_length(key, version)

    def create(self, version: int) -> NewMasterKey:
        from vault.plugins import get_plugin_manager

        key = get_plugin_manager().hook.vault_create_master_key(version=version)
        if key is None:
            raise KeyUnavailable(
                f"no key-provider plugin could create master key version {version}",
                version=version,
                hint="Install and configure a key-provider plugin (`vault plugins list`).",
            )
        return NewMasterKey(key)


# --- the audit signing key: kept apart from the master key and the database ---------------------

SIGNING_KEY_FILE_FORMAT = "vault-audit-signing-key/v1"
SIGNING_KEY_SOURCES = ("file", "env", "plugin", "store")
SIGNING_KEY_VARIABLE = "VAULT_AUDIT_SIGNING_KEY"


class SigningKeySource(ABC):
    """Hands out the Ed25519 seed that signs audit checkpoints (and keys the events' MACs).

    ``store`` is the layout of vaults made before this source existed: the seed is a system key
    in the database, wrapped under the master key. Every other source keeps it out of both."""

    kind: str

    @abstractmethod
    def load(self) -> bytes | None:
        """The 32-byte seed, or ``None`` for ``store`` (the caller unwraps the system key)."""

    def create(self) -> bytes:
        """Make and keep a new seed (``vault init``, ``vault audit rotate-signing-key``)."""
        raise ConfigError(
            f"the audit signing key comes from {self.describe()}: the vault cannot write it there",
        )

    @abstractmethod
    def describe(self) -> str:
        """Where the key is, for ``vault init`` and errors."""


class FileSigningKey(SigningKeySource):
    """A JSON file (mode 0600) holding the seed, at its own path (setting ``audit_key_file``)."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"the file {self.path}"

    def load(self) -> bytes:
        text = _read_private(
            self.path,
            "audit signing key file",
            missing_hint="Restore it from where you keep it, or set audit_key_file in "
            "settings.toml.",
        )
        try:
            data: Any = json.loads(text)
            if data.get("format") != SIGNING_KEY_FILE_FORMAT:
                raise ValueError
            return _decode_key(str(data["seed"]), f"the seed in {self.path}")
        except (ValueError, AttributeError, TypeError, KeyError):
            raise KeyUnavailable(
                f"audit signing key file {self.path} is not a {SIGNING_KEY_FILE_FORMAT} file"
            ) from None

    def create(self) -> bytes:
        seed = new_key()
        payload = {"format": SIGNING_KEY_FILE_FORMAT, "seed": encode_key(seed)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".audit-signing.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return seed


class EnvSigningKey(SigningKeySource):
    """``VAULT_AUDIT_SIGNING_KEY``: the base64 of the 32-byte seed."""

    kind = "env"

    def describe(self) -> str:
        return f"the environment variable {SIGNING_KEY_VARIABLE}"

    def load(self) -> bytes:
        value = os.environ.get(SIGNING_KEY_VARIABLE)
        if not value:
            raise KeyUnavailable(
                f"{SIGNING_KEY_VARIABLE} is not set",
                hint=f"This vault takes its audit signing key from {SIGNING_KEY_VARIABLE}.",
            )
        return _decode_key(value, SIGNING_KEY_VARIABLE)


class PluginSigningKey(SigningKeySource):
    """Asks the ``vault_audit_signing_key`` hook (an HSM or KMS plugin)."""

    kind = "plugin"

    def describe(self) -> str:
        return "a key-provider plugin (hook vault_audit_signing_key)"

    def load(self) -> bytes:
        from vault.plugins import get_plugin_manager

        seed = get_plugin_manager().hook.vault_audit_signing_key()
        if not isinstance(seed, bytes) or len(seed) != KEY_BYTES:
            raise KeyUnavailable(
                "no key-provider plugin returned a 32-byte audit signing key",
                hint="Install and configure a plugin implementing vault_audit_signing_key.",
            )
        return seed


class StoreSigningKey(SigningKeySource):
    """The seed is the system key ``audit-signing-key`` in the database, wrapped under the KEK:
    whoever holds the database and the master key can sign (vaults made before 0009)."""

    kind = "store"

    def describe(self) -> str:
        return "the database (system key audit-signing-key, wrapped under the master key)"

    def load(self) -> None:
        return None


def signing_key_source(kind: str, path: Path) -> SigningKeySource:
    if kind == "file":
        return FileSigningKey(path)
    if kind == "env":
        return EnvSigningKey()
    if kind == "plugin":
        return PluginSigningKey()
    if kind == "store":
        return StoreSigningKey()
    raise ConfigError(
        f"unknown audit signing key source {kind!r}: one of {', '.join(SIGNING_KEY_SOURCES)}"
    )
