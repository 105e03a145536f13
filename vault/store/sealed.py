"""The sealed gateway: the one module that opens, unwraps and reseals what the vault keeps sealed.

Every customer ciphertext (fields, identities, interaction texts, platform handles, merge
snapshots), every data key (DEK) and system key unwrapped from the master key, the connector
settings and the external ids an erasure request carries are opened here and nowhere else.
Everyone else holds a :class:`SealedGateway` (or calls a function below) and gets back bytes:
no data key or cipher leaves this module (a :class:`Sealer` can seal, not open). The system
keys are the exception: :func:`system_key` hands them to the vault, which builds its blind
indexer, audit signer and the other keyed objects from them when it opens.
``tests/store/test_sealed_gateway.py`` reads the source of ``vault/`` and ``connectors/`` and
fails on a cipher or key unwrapped anywhere else.

The gateway itself is reachable only through private attributes (``Vault._customers``): the one
public object that hands out plaintext is :class:`vault.Session`, which checks the principal,
role, purpose and consent and writes the audit event.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from vault.crypto import CustomerCipher, Keyring
from vault.crypto._hazmat import AeadKey, SealedValueInvalid
from vault.errors import DecryptionFailed, NotFound
from vault.store.schema import customers

DEK_VERSION = 1
CIPHER_CACHE_SIZE = 4096
ERASURE_CONTEXT = b"vault:erasure-request:v1\x00"
ERASURE_KEY_VERSION = 1
_SETTINGS_CONTEXT = "settings"

_HEAD = select(customers.c.wrapped_dek, customers.c.dek_version).where(
    customers.c.id == bindparam("customer_id"), customers.c.erased_at.is_(None)
)


class Sealer:
    """Seals one customer's values; it cannot open them."""

    __slots__ = ("_cipher",)

    def __init__(self, cipher: CustomerCipher) -> None:
        self._cipher = cipher

    @property
    def customer_id(self) -> str:
        return self._cipher.customer_id

    def seal(self, context: str, plaintext: bytes) -> bytes:
        return self._cipher.seal(context, plaintext)


class NewSealer(Sealer):
    """A new customer's sealer, with its fresh data key wrapped under the active master key."""

    __slots__ = ("dek_version", "kek_version", "wrapped_dek")

    def __init__(self, cipher: CustomerCipher, wrapped_dek: bytes, kek_version: int) -> None:
        super().__init__(cipher)
        self.wrapped_dek = wrapped_dek
        self.dek_version = cipher.dek_version
        self.kek_version = kek_version


class SealedBatch:
    """The data keys of a batch of customers (an export page, an erasure), unwrapped once and
    kept only as long as the batch: they do not enter the gateway's shared cache."""

    __slots__ = ("_ciphers",)

    def __init__(self, ciphers: dict[str, CustomerCipher]) -> None:
        self._ciphers = ciphers

    def open(self, customer_id: str, context: str, sealed: bytes) -> bytes:
        return self._ciphers[customer_id].open(context, bytes(sealed))


class SealedGateway:
    """Customers' data keys, unwrapped on demand under the keyring and kept in a small cache.

    ``head`` arguments are a customer row already read (with ``wrapped_dek`` and
    ``dek_version``), to spare the read of it.
    """

    def __init__(self, keyring: Keyring, *, cache_size: int = CIPHER_CACHE_SIZE) -> None:
        self._keyring = keyring
        self._cache_size = cache_size
        self._ciphers: OrderedDict[str, CustomerCipher] = OrderedDict()

    def use_keyring(self, keyring: Keyring) -> None:
        """After a rotation: wrap new data keys under the new active version."""
        self._keyring = keyring

    @property
    def active_version(self) -> int:
        return self._keyring.active_version

    def _cipher(self, connection: Connection, customer_id: str, head: Any = None) -> CustomerCipher:
        cipher = self._ciphers.get(customer_id)
        if cipher is not None:
            self._ciphers.move_to_end(customer_id)
            return cipher
        row = head or connection.execute(_HEAD, {"customer_id": customer_id}).first()
        if row is None or row.wrapped_dek is None:
            raise NotFound.customer(customer_id)
        dek = self._keyring.unwrap_data_key(customer_id, row.wrapped_dek, row.dek_version)
        cipher = CustomerCipher(customer_id, dek, row.dek_version)
        self._ciphers[customer_id] = cipher
        if len(self._ciphers) > self._cache_size:
            self._ciphers.popitem(last=False)
        return cipher

    # --- sealing -----------------------------------------------------------------------------

    def new_customer(self, customer_id: str) -> NewSealer:
        """A fresh data key for a new customer (or one recreated by an unmerge)."""
        cipher, dek = CustomerCipher.create(customer_id, DEK_VERSION)
        wrapped = self._keyring.wrap_data_key(customer_id, dek, DEK_VERSION)
        return NewSealer(cipher, wrapped, self._keyring.active_version)

    def sealer(self, connection: Connection, customer_id: str, head: Any = None) -> Sealer:
        return Sealer(self._cipher(connection, customer_id, head))

    def seal(
        self,
        connection: Connection,
        customer_id: str,
        context: str,
        plaintext: bytes,
        head: Any = None,
    ) -> bytes:
        return self._cipher(connection, customer_id, head).seal(context, plaintext)

    # --- opening -----------------------------------------------------------------------------

    def open(
        self,
        connection: Connection,
        customer_id: str,
        context: str,
        sealed: bytes,
        head: Any = None,
    ) -> bytes:
        """Open one of the customer's values sealed under ``context`` (a field name,
        ``identity:<platform>``, ``interaction:<id>``, ``handle:<platform>:<field>``, ...)."""
        return self._cipher(connection, customer_id, head).open(context, bytes(sealed))

    def reseal(
        self,
        connection: Connection,
        source_id: str,
        target_id: str,
        context: str,
        sealed: bytes,
    ) -> bytes:
        """A value sealed under ``source_id``'s key, sealed under ``target_id``'s (a merge moves
        it); the clear value never leaves this method."""
        clear = self.open(connection, source_id, context, sealed)
        return self.seal(connection, target_id, context, clear)

    def batch(self, heads: Iterable[Sequence[Any]]) -> SealedBatch:
        """Unwrap the data keys of ``(customer id, wrapped DEK, DEK version)`` rows; a row
        without a key (an erased customer) is left out."""
        return SealedBatch(
            {
                customer_id: CustomerCipher(
                    customer_id,
                    self._keyring.unwrap_data_key(customer_id, wrapped, dek_version),
                    dek_version,
                )
                for customer_id, wrapped, dek_version in heads
                if wrapped is not None
            }
        )

    def forget(self, customer_id: str) -> None:
        """Drop a customer's cached data key (erased, merged away)."""
        self._ciphers.pop(customer_id, None)


# --- master key rotation ----------------------------------------------------------------------


def rewrapped_data_key(
    keyring: Keyring, customer_id: str, wrapped: bytes, dek_version: int
) -> bytes:
    """A data key unwrapped under whichever master key version wrapped it, wrapped under the
    active one."""
    return keyring.rewrap_data_key(customer_id, wrapped, dek_version)


def system_key(keyring: Keyring, name: str, wrapped: bytes) -> bytes:
    """A system key (blind index root, audit signing, ...) unwrapped by the master key."""
    return keyring.unwrap_system_key(name, wrapped)


def rewrapped_system_key(keyring: Keyring, name: str, wrapped: bytes) -> bytes:
    return keyring.wrap_system_key(name, keyring.unwrap_system_key(name, wrapped))


# --- connector settings -----------------------------------------------------------------------


def _settings_cipher(key: bytes, name: str) -> CustomerCipher:
    return CustomerCipher(f"connector:{name}", key, 1)


def seal_connector_settings(key: bytes, name: str, plaintext: bytes) -> bytes:
    """Connector ``name``'s settings sealed under the connector-settings system key, bound to
    the name: a blob moved to another connector's row fails to open."""
    return _settings_cipher(key, name).seal(_SETTINGS_CONTEXT, plaintext)


def open_connector_settings(key: bytes, name: str, sealed: bytes) -> bytes:
    return _settings_cipher(key, name).open(_SETTINGS_CONTEXT, bytes(sealed))


# --- erasure requests -------------------------------------------------------------------------


class ErasureSealer:
    """Seals the external ids that an erasure request must delete, under the erasure key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = AeadKey(key)

    @staticmethod
    def _context(customer_id: str, system: str) -> bytes:
        return ERASURE_CONTEXT + customer_id.encode() + b"\x00" + system.encode()

    def seal(self, customer_id: str, system: str, external_id: str) -> bytes:
        return self._key.seal(
            external_id.encode(), self._context(customer_id, system), ERASURE_KEY_VERSION
        )

    def open(self, customer_id: str, system: str, sealed: bytes) -> str:
        try:
            return self._key.open(sealed, self._context(customer_id, system)).decode()
        except SealedValueInvalid:
            raise DecryptionFailed(
                customer_id=customer_id, field=f"<erasure request {system}>", key_version=None
            ) from None
