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


class FileKeySource(KeySource):
    """A JSON key file (mode 0600) holding every master key version made for this vault."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[int, bytes]:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            raise KeyUnavailable(
                f"master key file {self.path} does not exist",
                hint="Run `vault init` to create a vault, or point VAULT_HOME at an existing one.",
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyUnavailable(
                f"master key file {self.path} is accessible by other users "
                f"(mode {stat.S_IMODE(mode):04o})",
                hint=f"Run `chmod 600 {self.path}`; the vault refuses a key others can read.",
            )
        try:
            data: Any = json.loads(self.path.read_text())
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
