"""Versioned master keys (KEKs), the data keys they wrap, and the per-customer field cipher.

Envelope encryption: a master key version (KEK) wraps one data key (DEK) per customer; the DEK
seals that customer's fields. Rotation makes a new KEK and rewraps DEKs, never touching field
ciphertexts. Which KEK wrapped a DEK is read from the wrapped value's header, not found by trying
each key (compare ``MultiFernet``, which tries them in turn).
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from vault.crypto._hazmat import (
    AeadKey,
    SealedValueInvalid,
    new_key,
    sealed_header,
)
from vault.errors import DecryptionFailed, KeyUnavailable

_VERSION = struct.Struct(">I")
_CHECK_DOMAIN = b"vault:kek-check:v1\x00"
_DEK_DOMAIN = b"vault:dek:v1\x00"
_SYSTEM_KEY_DOMAIN = b"vault:system-key:v1\x00"
_FIELD_DOMAIN = b"vault:field:v1\x00"


def key_check_value(kek: bytes, version: int) -> bytes:
    """A public fingerprint of a KEK: recognises a wrong key before anything is written."""
    return hmac.digest(kek, _CHECK_DOMAIN + _VERSION.pack(version), "sha256")


def _dek_context(customer_id: str, dek_version: int) -> bytes:
    return _DEK_DOMAIN + customer_id.encode() + b"\x00" + _VERSION.pack(dek_version)


def _field_context(customer_id: str, field: str) -> bytes:
    return _FIELD_DOMAIN + customer_id.encode() + b"\x00" + field.encode()


@dataclass(frozen=True, slots=True)
class MasterKeyVersion:
    """What the store records of one KEK version: never the key, only its check value."""

    version: int
    check_value: bytes
    salt: bytes | None = None
    retired: bool = False


class Keyring:
    """The loaded KEK versions: seals with the active one, opens with the one a header names."""

    def __init__(self, keks: Mapping[int, bytes], active_version: int) -> None:
        if active_version not in keks:
            raise KeyUnavailable(
                f"master key version {active_version} (the active one) is not loaded",
                version=active_version,
            )
        self._keys = {version: AeadKey(key) for version, key in keks.items()}
        self.active_version = active_version

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._keys))

    def _kek(self, version: int) -> AeadKey:
        try:
            return self._keys[version]
        except KeyError:
            raise KeyUnavailable(
                f"master key version {version} is not available (unknown or retired)",
                version=version,
                hint="Run `vault keys status` to see which versions are loaded and in use.",
            ) from None

    def wrap_data_key(self, customer_id: str, dek: bytes, dek_version: int) -> bytes:
        return self._kek(self.active_version).seal(
            dek, _dek_context(customer_id, dek_version), self.active_version
        )

    def unwrap_data_key(self, customer_id: str, wrapped: bytes, dek_version: int) -> bytes:
        try:
            _, kek_version = sealed_header(wrapped)
            return self._kek(kek_version).open(wrapped, _dek_context(customer_id, dek_version))
        except SealedValueInvalid:
            raise DecryptionFailed(
                customer_id=customer_id, field="<data key>", key_version=dek_version
            ) from None

    def rewrap_data_key(self, customer_id: str, wrapped: bytes, dek_version: int) -> bytes:
        """Unwrap under whichever KEK wrapped it, wrap under the active one."""
        return self.wrap_data_key(
            customer_id, self.unwrap_data_key(customer_id, wrapped, dek_version), dek_version
        )

    def wrap_system_key(self, name: str, key: bytes) -> bytes:
        return self._kek(self.active_version).seal(
            key, _SYSTEM_KEY_DOMAIN + name.encode(), self.active_version
        )

    def unwrap_system_key(self, name: str, wrapped: bytes) -> bytes:
        try:
            _, kek_version = sealed_header(wrapped)
            return self._kek(kek_version).open(wrapped, _SYSTEM_KEY_DOMAIN + name.encode())
        except SealedValueInvalid:
            raise DecryptionFailed(
                customer_id="<vault>", field=f"<system key {name}>", key_version=None
            ) from None

    @staticmethod
    def wrapped_version(wrapped: bytes) -> int:
        """The KEK version named in a wrapped key's header."""
        try:
            return sealed_header(wrapped)[1]
        except SealedValueInvalid:
            raise DecryptionFailed(
                customer_id="<vault>", field="<wrapped key>", key_version=None
            ) from None


class CustomerCipher:
    """Seals and opens one customer's fields with that customer's data key.

    The associated data binds each ciphertext to the customer id, the field name and the data key
    version (in the header), so a value copied into another row or field fails loudly.
    """

    __slots__ = ("_key", "customer_id", "dek_version")

    def __init__(self, customer_id: str, dek: bytes, dek_version: int) -> None:
        self.customer_id = customer_id
        self.dek_version = dek_version
        self._key = AeadKey(dek)

    @classmethod
    def create(cls, customer_id: str, dek_version: int = 1) -> tuple[CustomerCipher, bytes]:
        """A new customer's cipher with a fresh random data key; returns ``(cipher, dek)``."""
        dek = new_key()
        return cls(customer_id, dek, dek_version), dek

    def seal(self, field: str, plaintext: bytes) -> bytes:
        return self._key.seal(plaintext, _field_context(self.customer_id, field), self.dek_version)

    def open(self, field: str, sealed: bytes) -> bytes:
        try:
            return self._key.open(sealed, _field_context(self.customer_id, field))
        except SealedValueInvalid:
            version: int | None
            try:
                version = sealed_header(sealed)[1]
            except SealedValueInvalid:
                version = None
            raise DecryptionFailed(
                customer_id=self.customer_id, field=field, key_version=version
            ) from None
