"""The only module that imports ``cryptography.hazmat``: every algorithm choice is fixed here.

Sealed value layout (SECURITY.md, "Ciphertext format")::

    suite (1 byte) | key_version (4 bytes, big-endian) | nonce (12 bytes) | ciphertext | tag (16)

The AEAD's associated data is ``header || context``, where ``header`` is the first five bytes
above and ``context`` names what the ciphertext belongs to (customer, field, ...). A ciphertext
moved to another row, another field or relabelled with another key version fails to open.

Suites: ``0x01`` = AES-256-GCM with a random 96-bit nonce. A new suite (e.g. SM4-GCM) gets a new
byte; old data keeps opening under its own suite.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SUITE_AES256_GCM = 0x01
SUPPORTED_SUITES = frozenset({SUITE_AES256_GCM})

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER = struct.Struct(">BI")
HEADER_BYTES = HEADER.size  # 5
MIN_SEALED_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


class SealedValueInvalid(Exception):
    """Internal: a sealed value does not open. Callers turn it into ``DecryptionFailed``."""


class AeadKey:
    """An AES-256-GCM key ready for use (the cipher object is built once, not per call)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-256 key is {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: bytes, key_version: int) -> bytes:
        return self._seal_with_nonce(plaintext, context, key_version, os.urandom(NONCE_BYTES))

    def _seal_with_nonce(
        self, plaintext: bytes, context: bytes, key_version: int, nonce: bytes
    ) -> bytes:
        header = HEADER.pack(SUITE_AES256_GCM, key_version)
        return header + nonce + self._aead.encrypt(nonce, plaintext, header + context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        if len(sealed) < MIN_SEALED_BYTES or sealed[0] != SUITE_AES256_GCM:
            raise SealedValueInvalid
        header = sealed[:HEADER_BYTES]
        nonce = sealed[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[HEADER_BYTES + NONCE_BYTES :], header + context)
        except InvalidTag:
            raise SealedValueInvalid from None


def sealed_header(sealed: bytes) -> tuple[int, int]:
    """Return ``(suite, key_version)`` of a sealed value, without opening it."""
    if len(sealed) < MIN_SEALED_BYTES:
        raise SealedValueInvalid
    suite, version = HEADER.unpack_from(sealed)
    if suite not in SUPPORTED_SUITES:
        raise SealedValueInvalid
    return int(suite), int(version)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def hkdf_sha256(root: bytes, info: bytes) -> bytes:
    """Derive a 32-byte subkey; ``info`` separates the domains (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(root)


def scrypt_key(passphrase: bytes, salt: bytes) -> bytes:
    """Stretch a passphrase into a 32-byte key (scrypt, N=2**15, r=8, p=1)."""
    return Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase
    )


# --- Ed25519 (audit checkpoints) -----------------------------------------------------------------


def ed25519_public_key(private_seed: bytes) -> bytes:
    """The 32-byte raw public key of a 32-byte Ed25519 private seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(private_seed)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_sign(private_seed: bytes, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(private_seed).sign(message)


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
