"""Cryptography for the vault: a small safe API over ``cryptography.hazmat``.

Only :mod:`vault.crypto._hazmat` imports hazmat; everything else uses :class:`Keyring`
(master key versions wrapping data keys), :class:`CustomerCipher` (one customer's fields) and
:class:`BlindIndexer` (keyed hashes for exact-match search).
"""

from vault.crypto.blind_index import BlindIndexer
from vault.crypto.keyring import CustomerCipher, Keyring, MasterKeyVersion, key_check_value

__all__ = ["BlindIndexer", "CustomerCipher", "Keyring", "MasterKeyVersion", "key_check_value"]
