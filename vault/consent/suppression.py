"""Suppression entries: keyed hashes of an erased person's identifiers, so that an old record
re-sent by a shop or a CRM cannot bring the person back.

An entry is ``HMAC-SHA256(K_kind, normalised value)`` with ``K_kind = HKDF-SHA256(suppression
key, "vault:suppression:v1:" + kind)``, and the time of the erasure. The suppression key is a
system key of its own (``suppression-key``), not the blind-index root: the entries outlive the
erased customer's index entries, and a leaked blind-index key says nothing about them (nor they
about the live indexes). Kinds: the searchable catalogue fields (``phone``, ``email``,
``id_number``, normalised as the catalogue normalises them) and ``identity:<platform>`` (an
external id, trimmed).

A record that matches an entry and was observed before that erasure is dropped (and counted as
suppressed); a record observed after it is a new customer, with no link to the old one. A
record with no observation time is treated as old: it is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, insert, select

from vault.crypto import BlindIndexer
from vault.errors import InvalidValue
from vault.records import NewCustomer
from vault.store.customers import IDENTITY_INDEX_PREFIX
from vault.store.engine import as_utc
from vault.store.schema import suppressions

if TYPE_CHECKING:
    from vault.fields import FieldCatalogue
    from vault.vault import Vault

SUPPRESSION_DOMAIN = b"vault:suppression:v1:"
Identifier = tuple[str, str]  # (kind, raw value)


class SuppressionIndex:
    """Keyed hashes of identifiers under the suppression key (kept apart from blind indexes)."""

    __slots__ = ("_catalogue", "_hasher")

    def __init__(self, key: bytes, catalogue: FieldCatalogue) -> None:
        self._hasher = BlindIndexer(key, domain=SUPPRESSION_DOMAIN)
        self._catalogue = catalogue

    def normalised(self, kind: str, raw: str) -> tuple[str, str] | None:
        """``(kind, normalised value)``, or ``None`` for a value that cannot identify anyone
        (masked, empty, not a valid value of its kind)."""
        if kind.startswith(IDENTITY_INDEX_PREFIX):
            value = raw.strip()
            platform = kind[len(IDENTITY_INDEX_PREFIX) :].strip().lower()
            return (IDENTITY_INDEX_PREFIX + platform, value) if value and platform else None
        spec = self._catalogue.get(kind)
        if spec is None or not spec.searchable:
            raise ValueError(
                f"{kind!r} is not an identifier kind (a searchable field or identity:P)"
            )
        try:
            normalised = spec.normalise(raw)
        except InvalidValue:
            return None
        if normalised.masked or not normalised.value:
            return None
        return kind, normalised.value

    def digests(self, identifiers: Iterable[Identifier]) -> list[tuple[str, bytes]]:
        found: dict[tuple[str, bytes], None] = {}
        for kind, raw in identifiers:
            pair = self.normalised(kind, raw)
            if pair is not None:
                found[(pair[0], self._hasher.digest(pair[0], pair[1]))] = None
        return list(found)


def identifiers_of(catalogue: FieldCatalogue, record: NewCustomer) -> list[Identifier]:
    """A new record's identifiers: its searchable fields and its platform identities."""
    found: list[Identifier] = [
        (name, raw)
        for name, raw in record.fields.items()
        if (spec := catalogue.get(name)) is not None and spec.searchable and raw
    ]
    found += [
        (IDENTITY_INDEX_PREFIX + platform, external) for platform, external in record.identities
    ]
    return found


def add_entries(
    connection: Connection, vault: Vault, identifiers: Iterable[Identifier], erased_at: datetime
) -> int:
    """Record the suppression entries of an erasure; returns how many."""
    rows = [
        {"kind": kind, "digest": digest, "erased_at": erased_at}
        for kind, digest in vault._suppression.digests(identifiers)
    ]
    if rows:
        connection.execute(insert(suppressions), rows)
    return len(rows)


def _any(connection: Connection) -> bool:
    return connection.execute(select(suppressions.c.id).limit(1)).first() is not None


def _lookup(
    connection: Connection, digests: Sequence[tuple[str, bytes]]
) -> dict[tuple[str, bytes], datetime]:
    """The latest erasure time of each matching (kind, digest)."""
    by_kind: dict[str, list[bytes]] = {}
    for kind, digest in digests:
        by_kind.setdefault(kind, []).append(digest)
    found: dict[tuple[str, bytes], datetime] = {}
    for kind, values in by_kind.items():
        for start in range(0, len(values), 500):
            for row in connection.execute(
                select(suppressions.c.digest, func.max(suppressions.c.erased_at))
                .where(
                    suppressions.c.kind == kind,
                    suppressions.c.digest.in_(values[start : start + 500]),
                )
                .group_by(suppressions.c.digest)
            ):
                found[(kind, bytes(row[0]))] = as_utc(row[1])
    return found


def erased_at(
    connection: Connection, vault: Vault, identifiers: Sequence[Identifier]
) -> datetime | None:
    """When a person matching any of ``identifiers`` was erased (the latest such erasure), or
    ``None``. ``identifiers`` are ``(kind, raw value)``: ``phone``, ``email``, ``id_number``
    (normalised here) or ``identity:<platform>`` with an external id. For the sync engine and
    every import: drop a matching record observed before the returned time."""
    digests = vault._suppression.digests(identifiers)
    if not digests:
        return None
    found = _lookup(connection, digests)
    return max(found.values(), default=None)


def is_suppressed(erased: datetime | None, observed_at: datetime | None) -> bool:
    """A matching record observed before the erasure (or at an unknown time) is suppressed."""
    if erased is None:
        return False
    return observed_at is None or as_utc(observed_at) <= erased


def filter_records(
    connection: Connection, vault: Vault, records: Sequence[NewCustomer]
) -> tuple[list[NewCustomer], int]:
    """The records an import may create, and how many were suppressed. One query per
    identifier kind per batch; none at all while nobody has been erased."""
    if not records or not _any(connection):
        return list(records), 0
    per_record = [
        vault._suppression.digests(identifiers_of(vault.catalogue, record)) for record in records
    ]
    found = _lookup(connection, [d for digests in per_record for d in digests])
    kept: list[NewCustomer] = []
    for record, digests in zip(records, per_record, strict=True):
        erased = max((found[d] for d in digests if d in found), default=None)
        if not is_suppressed(erased, record.observed_at):
            kept.append(record)
    return kept, len(records) - len(kept)
