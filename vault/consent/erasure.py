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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Column, Connection, Table, delete, func, insert, or_, select, update

from vault.errors import NotFound
from vault.store.customers import IDENTITY_INDEX_PREFIX
from vault.store.engine import as_utc, utcnow
from vault.store.schema import (
    customer_fields,
    customer_identities,
    customers,
    erasure_requests,
    metadata,
    order_items,
    orders,
    suppressions,
)

if TYPE_CHECKING:
    from vault.vault import Vault

log = structlog.get_logger("vault.erasure")

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
    reports = erase_many(connection, vault, [customer_id])
    if not reports:
        raise NotFound.customer(customer_id, "(never existed, or already erased)")
    return reports[0]


def erase_many(
    connection: Connection, vault: Vault, customer_ids: Sequence[str]
) -> list[ErasureReport]:
    """Crypto-shred the live ones of ``customer_ids`` in the caller's transaction, with a few
    set-based statements for the whole batch; returns one report per customer erased (ids
    unknown or already erased are skipped)."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return []
    heads_query = select(customers.c.id, customers.c.wrapped_dek, customers.c.dek_version).where(
        customers.c.id.in_(ids), customers.c.erased_at.is_(None)
    )
    if connection.dialect.name == "postgresql":
        heads_query = heads_query.with_for_update()
    heads = connection.execute(heads_query).all()
    if not heads:
        return []
    live = {head.id for head in heads}
    ids = [cid for cid in ids if cid in live]  # in the caller's order
    now = utcnow()
    keys = vault._customers.sealed.batch(
        (head.id, head.wrapped_dek, head.dek_version) for head in heads
    )
    reports = {cid: ErasureReport(customer_id=cid, erased_at=now) for cid in ids}
    searchable = list(vault.catalogue.searchable)
    identifiers: dict[str, list[tuple[str, str]]] = {cid: [] for cid in ids}
    for row in connection.execute(
        select(
            customer_fields.c.customer_id,
            customer_fields.c.field,
            customer_fields.c.value,
            customer_fields.c.masked,
        ).where(customer_fields.c.customer_id.in_(ids), customer_fields.c.field.in_(searchable))
    ):
        if row.masked:
            continue
        spec = vault.catalogue[row.field]
        raw = keys.open(row.customer_id, row.field, row.value) if spec.encrypted else row.value
        identifiers[row.customer_id].append((row.field, bytes(raw).decode()))
    requests: list[dict[str, object]] = []
    for row in connection.execute(
        select(
            customer_identities.c.customer_id,
            customer_identities.c.platform,
            customer_identities.c.external_id,
        )
        .where(customer_identities.c.customer_id.in_(ids))
        .order_by(customer_identities.c.id)
    ):
        external_id = keys.open(
            row.customer_id, IDENTITY_INDEX_PREFIX + row.platform, row.external_id
        ).decode()
        identifiers[row.customer_id].append((IDENTITY_INDEX_PREFIX + row.platform, external_id))
        requests.append(
            {
                "customer_id": row.customer_id,
                "system": row.platform,
                "external_id": vault._erasure_sealer.seal(
                    row.customer_id, row.platform, external_id
                ),
                "requested_at": now,
                "status": PENDING,
            }
        )
        report = reports[row.customer_id]
        report.identities += 1
        report.erasure_requests.append(row.platform)
    entries: list[dict[str, object]] = []
    for cid, found in identifiers.items():
        digests = vault._suppression.digests(found)
        reports[cid].suppression_entries = len(digests)
        entries += [{"kind": kind, "digest": digest, "erased_at": now} for kind, digest in digests]
    if entries:
        connection.execute(insert(suppressions), entries)
    if requests:
        connection.execute(insert(erasure_requests), requests)
    for cid, count in connection.execute(
        select(customer_fields.c.customer_id, func.count())
        .where(customer_fields.c.customer_id.in_(ids))
        .group_by(customer_fields.c.customer_id)
    ).tuples():
        reports[cid].fields = int(count)
    for cid, count in connection.execute(
        select(orders.c.customer_id, func.count())
        .where(orders.c.customer_id.in_(ids))
        .group_by(orders.c.customer_id)
    ).tuples():
        reports[str(cid)].orders = int(count)

    rows_deleted: dict[str, int] = {}
    order_pks = select(orders.c.id).where(orders.c.customer_id.in_(ids))
    connection.execute(delete(order_items).where(order_items.c.order_pk.in_(order_pks)))
    rows_deleted["orders"] = _delete(connection, orders, [orders.c.customer_id], ids)
    by_table: dict[str, list[Column[str]]] = {}
    tables: dict[str, Table] = {}
    for table, column in _customer_columns():
        by_table.setdefault(table.name, []).append(column)
        tables[table.name] = table
    for name, columns in by_table.items():
        deleted = _delete(connection, tables[name], columns, ids)
        if deleted:
            rows_deleted[name] = deleted
    connection.execute(
        update(customers)
        .where(customers.c.id.in_(ids))
        .values(wrapped_dek=None, kek_version=None, erased_at=now, updated_at=now)
    )
    for cid in ids:
        vault._customers.sealed.forget(cid)
    if len(ids) == 1:
        reports[ids[0]].rows_deleted = {k: v for k, v in rows_deleted.items() if v}
    return [reports[cid] for cid in ids]


def _delete(
    connection: Connection, table: Table, columns: list[Column[str]], customer_ids: list[str]
) -> int:
    result = connection.execute(delete(table).where(or_(*(c.in_(customer_ids) for c in columns))))
    return int(result.rowcount or 0)


def flush_deleted_pages(vault: Vault) -> None:
    """SQLite: checkpoint and truncate the WAL, so old page images (a wrapped data key) leave
    the files; freed cells are already zeroed (``secure_delete``). PostgreSQL keeps dead tuples
    until VACUUM (see SECURITY.md)."""
    if vault._engine.dialect.name != "sqlite":
        return
    with vault._engine.connect() as connection:
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
    id, clear external id)``, oldest first. For the sync engine; no door of its own.

    A request the platform refused (``failed``) is open too: the person's right to erasure
    does not lapse because a platform was down or refused once, so every sync asks again,
    until the platform confirms (``done``). ``vault dsar erasure-status`` shows its detail."""
    rows = connection.execute(
        select(
            erasure_requests.c.id, erasure_requests.c.customer_id, erasure_requests.c.external_id
        )
        .where(
            erasure_requests.c.system == system,
            erasure_requests.c.status.in_((PENDING, FAILED)),
        )
        .order_by(erasure_requests.c.id)
    ).all()
    return [
        (int(row.id), vault._erasure_sealer.open(row.customer_id, system, bytes(row.external_id)))
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


def requests_of(connection: Connection, customer_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": row.id,
            "system": row.system,
            "status": row.status,
            "requested_at": as_utc(row.requested_at),
            "done_at": as_utc(row.done_at) if row.done_at else None,
            "detail": row.detail,
        }
        for row in connection.execute(
            select(erasure_requests)
            .where(erasure_requests.c.customer_id == customer_id)
            .order_by(erasure_requests.c.id)
        )
    ]
