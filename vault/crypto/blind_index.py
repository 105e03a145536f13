"""Blind indexes: a keyed hash of a normalised value, for exact-match search without decrypting.

Each searchable field gets its own key, derived by HKDF-SHA256 from a blind-index root key with
``info = b"vault:blind-index:v1:" + field``. The root key is random, made at ``vault init``, kept
wrapped by the master key, and is not derived from any encryption key: a leaked data key says
nothing about the indexes, and an index reveals only equality within its own field.
"""

from __future__ import annotations

import hmac

from vault.crypto._hazmat import hkdf_sha256

INDEX_DOMAIN = b"vault:blind-index:v1:"
INDEX_BYTES = 32


class BlindIndexer:
    """HMAC-SHA256 over a normalised value under a key of the value's own field."""

    __slots__ = ("_domain", "_keys", "_root")

    def __init__(self, root_key: bytes, *, domain: bytes = INDEX_DOMAIN) -> None:
        self._root = root_key
        self._domain = domain
        self._keys: dict[str, bytes] = {}

    def key_for(self, field: str) -> bytes:
        key = self._keys.get(field)
        if key is None:
            key = self._keys[field] = hkdf_sha256(self._root, self._domain + field.encode())
        return key

    def digest(self, field: str, normalised: str) -> bytes:
        """The index entry for an already normalised value of ``field``."""
        return hmac.digest(self.key_for(field), normalised.encode(), "sha256")
