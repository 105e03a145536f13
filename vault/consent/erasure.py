"""Erasure: crypto-shredding a customer, and the erasure requests for connected systems.

:func:`erase` (called by ``Session.erase_customer``, in one transaction):

1. reads the customer's identifiers (searchable fields, platform identities) and records their
   suppression entries (:mod:`vault.consent.suppression`);
2. writes one ``erasure_requests`` row per platform identity (``system`` = the platform, the
   external id sealed under the erasure key), for the sync engine to carry out;
3. deletes every row about the customer: fields and their blind-index entries, identities,
   interactions, tags, groups, orders and their items, the consent ledger and state, and every
   other table with a foreign key to ``customers.id`` (what later migrations add is covered
   without a change here), plus the sync engine's tables that name customers without one;
4. destroys the data key (``wrapped_dek`` set to NULL) and marks the row erased: the id stays
   as a tombstone, which the audit log goes on naming, and nothing else.

SQLite runs with ``secure_delete`` on (deleted content is overwritten with zeros) and the WAL
is checkpointed and truncated after an erasure, so the wrapped key does not linger in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Column, Connection, Table, delete, insert, or_, select, update

from vault.consent import suppression
from vault.crypto._hazmat import AeadKey, SealedValueInvalid
from vault.errors import DecryptionFailed, NotFound
from vault.store.customers import IDENTITY_INDEX_PREFIX
from vault.store.engine import utcnow
from vault.store.schema import (
    customer_fields,
    customer_identities,
    customers,
    erasure_requests,
    metadata,
    order_items,
    orders,
)

if TYPE_CHECKING:
    from vault.vault import Vault

log = structlog.get_logger("vault.erasure")

ERASURE_CONTEXT = b"vault:erasure-request:v1\x00"
ERASURE_KEY_VERSION = 1
PENDING, DONE, FAILED = "pending", "done", "failed"
DETAIL_MAX = 256
# Tables that name a customer without a foreign key (their rows go too). The audit index and
# the erasure requests themselves are kept: they name the tombstone id, never a value.
_NAMED_WITHOUT_FK = {
    "duplicate_reviews": ("customer_a", "customer_b"),
    "merge_records": ("survivor_id", "merged_id"),
    "consent_events": ("customer_id",),
    "consent_state": ("customer_id",),
}
_KEPT = frozenset({"customers", "audit_event_customers", "erasure_requests", "orders"})


@dataclass(slots=True, kw_only=True)
class ErasureReport:
    customer_id: str
    erased_at: datetime
    fields: int = 0
    identities: int = 0
    orders: int = 0
    suppression_entries: int = 0
    erasure_requests: list[str] = field(default_factory=list)  # systems asked to erase
    rows_deleted: dict[str, int] = field(default_factory=dict)  # table -> rows

    def to_json(self) -> dict[str, object]:
        return {
            "customer_id": self.customer_id,
            "erased_at": self.erased_at.isoformat(),
            "fields": self.fields,
            "identities": self.identities,
            "orders": self.orders,
            "suppression_entries": self.suppression_entries,
            "erasure_requests": self.erasure_requests,
            "rows_deleted": self.rows_deleted,
        }


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


def _customer_columns() -> list[tuple[Table, Column[str]]]:
    """Every (table, column) naming a customer, except the ones an erasure keeps."""
    found: list[tuple[Table, Column[str]]] = []
    for table in metadata.sorted_tables:
        if table.name in _KEPT:
            continue
        for column in table.columns:
            if any(fk.column is customers.c.id for fk in column.foreign_keys):
                found.append((table, column))
        for name in _NAMED_WITHOUT_FK.get(table.name, ()):
            found.append((table, table.c[name]))
    return found


def erase(connection: Connection, vault: Vault, customer_id: str) -> ErasureReport:
    """Crypto-shred one customer in the caller's transaction (see the module docstring)."""
    locked = select(customers.c.id).where(
        customers.c.id == customer_id, customers.c.erased_at.is_(None)
    )
    if connection.dialect.name == "postgresql":
        locked = locked.with_for_update()
    if connection.execute(locked).first() is None:
        raise NotFound(f"no customer {customer_id} (never existed, or already erased)")
    person = vault.customers.get(connection, customer_id)
    now = utcnow()
    report = ErasureReport(customer_id=customer_id, erased_at=now)
    identifiers = [
        (name, value.value)
        for name, value in person.fields.items()
        if (spec := vault.catalogue.get(name)) is not None and spec.searchable and not value.masked
    ]
    identifiers += [(IDENTITY_INDEX_PREFIX + i.platform, i.external_id) for i in person.identities]
    report.suppression_entries = suppression.add_entries(connection, vault, identifiers, now)
    requests = [
        {
            "customer_id": customer_id,
            "system": identity.platform,
            "external_id": vault.erasure_sealer.seal(
                customer_id, identity.platform, identity.external_id
            ),
            "requested_at": now,
            "status": PENDING,
        }
        for identity in person.identities
    ]
    if requests:
        connection.execute(insert(erasure_requests), requests)
    report.erasure_requests = [str(r["system"]) for r in requests]
    report.fields = len(person.fields)
    report.identities = len(person.identities)

    order_pks = select(orders.c.id).where(orders.c.customer_id == customer_id)
    connection.execute(delete(order_items).where(order_items.c.order_pk.in_(order_pks)))
    report.orders = _delete(connection, orders, [orders.c.customer_id], customer_id)
    report.rows_deleted["orders"] = report.orders
    by_table: dict[str, list[Column[str]]] = {}
    tables: dict[str, Table] = {}
    for table, column in _customer_columns():
        by_table.setdefault(table.name, []).append(column)
        tables[table.name] = table
    for name, columns in by_table.items():
        deleted = _delete(connection, tables[name], columns, customer_id)
        if deleted:
            report.rows_deleted[name] = deleted
    assert (
        connection.execute(
            select(customer_fields.c.field).where(customer_fields.c.customer_id == customer_id)
        ).first()
        is None
    )
    assert (
        connection.execute(
            select(customer_identities.c.id).where(customer_identities.c.customer_id == customer_id)
        ).first()
        is None
    )
    connection.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(wrapped_dek=None, kek_version=None, erased_at=now, updated_at=now)
    )
    vault.customers.forget_cipher(customer_id)
    return report


def _delete(
    connection: Connection, table: Table, columns: list[Column[str]], customer_id: str
) -> int:
    result = connection.execute(delete(table).where(or_(*(c == customer_id for c in columns))))
    return int(result.rowcount or 0)


def flush_deleted_pages(vault: Vault) -> None:
    """SQLite: checkpoint and truncate the WAL, so old page images (a wrapped data key) leave
    the files; freed cells are already zeroed (``secure_delete``). PostgreSQL keeps dead tuples
    until VACUUM (see SECURITY.md)."""
    if vault.engine.dialect.name != "sqlite":
        return
    with vault.engine.connect() as connection:
        # Straight to the driver (autocommit): a checkpoint cannot run inside a transaction.
        driver = connection.connection.driver_connection
        assert driver is not None
        busy = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy is None or busy[0]:
        # A reader still holds an old snapshot; the next checkpoint (SQLite runs one every
        # 1000 pages, or the next erasure) removes the old pages.
        log.warning("erasure_checkpoint_busy")


def pending(connection: Connection, vault: Vault, system: str) -> list[tuple[int, str]]:
    """The open erasure requests for ``system`` (a connector's ``info.platform``): ``(request
    id, clear external id)``, oldest first. For the sync engine; no door of its own."""
    rows = connection.execute(
        select(
            erasure_requests.c.id, erasure_requests.c.customer_id, erasure_requests.c.external_id
        )
        .where(erasure_requests.c.system == system, erasure_requests.c.status == PENDING)
        .order_by(erasure_requests.c.id)
    ).all()
    return [
        (int(row.id), vault.erasure_sealer.open(row.customer_id, system, bytes(row.external_id)))
        for row in rows
        if row.external_id is not None
    ]


def complete(connection: Connection, request_id: int, *, ok: bool, detail: str | None) -> None:
    """Mark a request done (``ok``) or failed, with a short detail (never a value). A done
    request's sealed external id is removed: nothing is left to erase."""
    values: dict[str, object] = {
        "status": DONE if ok else FAILED,
        "done_at": utcnow(),
        "detail": (detail or None) and str(detail)[:DETAIL_MAX],
    }
    if ok:
        values["external_id"] = None
    result = connection.execute(
        update(erasure_requests).where(erasure_requests.c.id == request_id).values(**values)
    )
    if not result.rowcount:
        raise NotFound(f"no erasure request {request_id}")


def requests_of(connection: Connection, customer_id: str) -> list[dict[str, object]]:
    return [
        {
            "id": row.id,
            "system": row.system,
            "status": row.status,
            "requested_at": row.requested_at,
            "done_at": row.done_at,
            "detail": row.detail,
        }
        for row in connection.execute(
            select(erasure_requests)
            .where(erasure_requests.c.customer_id == customer_id)
            .order_by(erasure_requests.c.id)
        )
    ]
