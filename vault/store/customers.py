"""Customers, their fields, identities, orders, interactions and tags in the store.

Every personal field is sealed under the customer's own data key before it reaches SQL, and
searchable fields carry a blind index of their normalised value; the sealing and opening happen
in :mod:`vault.store.sealed`, the one module that holds the keys. This module knows nothing of
principals or policy: it is reached only through :class:`vault.Session`, by way of the private
``Vault._customers``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BindParameter, Connection, Engine, bindparam, delete, insert, select, update

from vault.crypto import BlindIndexer
from vault.errors import Conflict, InvalidValue, NotFound
from vault.fields import FieldCatalogue
from vault.fields.region import region_of
from vault.records import (
    Customer,
    FieldValue,
    Identity,
    Interaction,
    NewCustomer,
    Order,
    OrderItem,
    Page,
)
from vault.store._bulk import BulkInsert
from vault.store._errors import mapped_store_errors
from vault.store.engine import as_utc, utcnow
from vault.store.schema import (
    customer_fields,
    customer_identities,
    customer_regions,
    customer_tags,
    customers,
    interactions,
    order_items,
    orders,
    tags,
)
from vault.store.sealed import SealedGateway, Sealer

IDENTITY_INDEX_PREFIX = "identity:"
IDENTITY_FIELD = "platform_id"  # the catalogue entry that stands for platform identities
INTERACTION_KINDS = frozenset({"consultation", "review", "complaint", "feedback"})
_CUSTOMER_COLUMNS = ("id", "created_at", "updated_at", "dek_version", "wrapped_dek", "kek_version")
_FIELD_COLUMNS = (
    "customer_id",
    "field",
    "value",
    "blind_index",
    "masked",
    "source",
    "observed_at",
    "updated_at",
)
_REGION_COLUMNS = ("customer_id", "province_code", "city_code")
REGION_FIELD = "address"  # the field whose province and city are kept, derived, for segments
_IDENTITY_COLUMNS = (
    "customer_id",
    "platform",
    "external_index",
    "external_id",
    "source",
    "observed_at",
)


# Statements on the hot read path, built once: building and cache-keying a statement costs more
# than running it on SQLite.
_LIVE = customers.c.erased_at.is_(None)
_CUSTOMER_HEAD = select(
    customers.c.created_at, customers.c.updated_at, customers.c.dek_version, customers.c.wrapped_dek
).where(customers.c.id == bindparam("customer_id"), _LIVE)
_CUSTOMER_EXISTS = select(customers.c.id).where(customers.c.id == bindparam("customer_id"), _LIVE)
_CUSTOMER_FIELDS = select(
    customer_fields.c.field,
    customer_fields.c.value,
    customer_fields.c.masked,
    customer_fields.c.source,
    customer_fields.c.observed_at,
).where(customer_fields.c.customer_id == bindparam("customer_id"))
_CUSTOMER_IDENTITIES = (
    select(
        customer_identities.c.platform,
        customer_identities.c.external_id,
        customer_identities.c.source,
        customer_identities.c.observed_at,
    )
    .where(customer_identities.c.customer_id == bindparam("customer_id"))
    .order_by(customer_identities.c.id)
)
_CUSTOMER_TAGS = (
    select(tags.c.name)
    .join(customer_tags, customer_tags.c.tag_id == tags.c.id)
    .where(customer_tags.c.customer_id == bindparam("customer_id"))
    .order_by(tags.c.name)
)
# The same reads for many customers at once (``get_many``), one chunk of ids per IN (...) list.
_IDS: BindParameter[str] = bindparam("ids", expanding=True)
_MANY_HEADS = select(
    customers.c.id,
    customers.c.created_at,
    customers.c.updated_at,
    customers.c.dek_version,
    customers.c.wrapped_dek,
).where(customers.c.id.in_(_IDS), _LIVE)
_MANY_FIELDS = select(
    customer_fields.c.customer_id,
    customer_fields.c.field,
    customer_fields.c.value,
    customer_fields.c.masked,
    customer_fields.c.source,
    customer_fields.c.observed_at,
).where(customer_fields.c.customer_id.in_(_IDS))
_MANY_IDENTITIES = (
    select(
        customer_identities.c.customer_id,
        customer_identities.c.platform,
        customer_identities.c.external_id,
        customer_identities.c.source,
        customer_identities.c.observed_at,
    )
    .where(customer_identities.c.customer_id.in_(_IDS))
    .order_by(customer_identities.c.id)
)
_MANY_TAGS = (
    select(customer_tags.c.customer_id, tags.c.name)
    .join(tags, customer_tags.c.tag_id == tags.c.id)
    .where(customer_tags.c.customer_id.in_(_IDS))
    .order_by(tags.c.name)
)
_IDENTITIES_BY_INDEX = select(
    customer_identities.c.external_index, customer_identities.c.customer_id
).where(
    customer_identities.c.platform == bindparam("platform"),
    customer_identities.c.external_index.in_(bindparam("digests", expanding=True)),
)
_IDENTITY_INSERT = insert(customer_identities)
MANY_CHUNK = 400  # customer ids per IN (...) list
_ORDER_LOOKUP = select(orders.c.id, orders.c.customer_id).where(
    orders.c.platform == bindparam("platform"),
    orders.c.shop == bindparam("shop"),
    orders.c.order_id == bindparam("order_id"),
)
_ORDER_INSERT = insert(orders)
# The SET clause takes the columns of the parameters given; the key is bound under another name.
_ORDER_UPDATE = update(orders).where(orders.c.id == bindparam("order_pk"))
_ORDER_ITEMS_DELETE = delete(order_items).where(order_items.c.order_pk == bindparam("order_pk"))
_ORDER_ITEMS_INSERT = insert(order_items)
_FIND_BY_INDEX = (
    select(customer_fields.c.customer_id)
    .where(
        customer_fields.c.field == bindparam("field"),
        customer_fields.c.blind_index == bindparam("digest"),
    )
    .order_by(customer_fields.c.customer_id)
)


def _check_currency(currency: str) -> None:
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidValue(field="currency", reason="an ISO 4217 code such as CNY")


def _order_values(order: Order, source: str) -> dict[str, Any]:
    """An order's columns but its key (platform, shop, order id)."""
    return {
        "customer_id": order.customer_id,
        "status": order.status,
        "currency": order.currency.upper(),
        "total_amount": order.total_amount,
        # In UTC: SQLite keeps a datetime's wall-clock digits and drops its offset.
        "created_at": as_utc(order.created_at),
        "paid_at": as_utc(order.paid_at) if order.paid_at else None,
        "updated_at": as_utc(order.updated_at),
        "refunded_at": as_utc(order.refunded_at) if order.refunded_at else None,
        "source": source,
    }


def _item_row(order_pk: int, line_no: int, item: OrderItem) -> dict[str, Any]:
    return {
        "order_pk": order_pk,
        "line_no": line_no,
        "product_id": item.product_id,
        "product_name": item.product_name,
        "category": item.category,
        "quantity": item.quantity,
        "unit_price": item.unit_price,
        "amount": item.amount,
    }


def new_customer_id() -> str:
    """A UUIDv7 (RFC 9562): random, but time-ordered, so inserts append to the primary key's
    B-tree instead of landing all over it. It reveals the creation time to the millisecond,
    which ``customers.created_at`` holds anyway."""
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def _identity_field(platform: str) -> str:
    return IDENTITY_INDEX_PREFIX + platform


PLATFORM_MAX = 32  # customer_identities.platform
TAG_MAX = 128  # tags.name


def check_platform(platform: str) -> str:
    """A platform name as stored: lower case, letters, digits, - and _, at most 32."""
    if (
        not platform
        or len(platform) > PLATFORM_MAX
        or not platform.replace("_", "").replace("-", "").isalnum()
    ):
        raise InvalidValue(
            field="platform",
            reason=f"a platform name is 1 to {PLATFORM_MAX} letters, digits, - and _",
        )
    return platform.lower()


def check_tag(tag: str) -> str:
    """A tag name as stored: stripped, 1 to 128 characters, no control character (a NUL could
    not be stored on PostgreSQL; the others only hide what a tag says)."""
    name = tag.strip()
    if not name or len(name) > TAG_MAX or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidValue(
            field="tag", reason=f"a tag is 1 to {TAG_MAX} characters, none a control character"
        )
    return name


class SegmentUpkeep(Protocol):
    """What the store calls when customers' orders changed: the segments layer above it
    (:class:`vault.segments.segmenter.Segmenter`), handed in by the vault, never imported."""

    def refresh(self, connection: Connection, customer_ids: Iterable[str | None]) -> None:
        """Bring these customers' segment state up to date, in the caller's transaction."""

    def admit(
        self, connection: Connection, regions: Mapping[str, tuple[str, str | None] | None]
    ) -> None:
        """Put customers just inserted (id -> derived (province, city) or ``None``) into the
        rule groups they belong to, in the caller's transaction."""


class CustomerStore:
    def __init__(
        self,
        engine: Engine,
        sealed: SealedGateway,
        indexer: BlindIndexer,
        catalogue: FieldCatalogue,
        *,
        segmenter: SegmentUpkeep,
    ) -> None:
        self._engine = engine
        self.segmenter = segmenter
        self.sealed = sealed  # every open and seal of a customer's values goes through it
        self._indexer = indexer
        self._catalogue = catalogue

    # --- field rows ------------------------------------------------------------------------

    def _sealed_field(
        self, sealer: Sealer, name: str, raw: str
    ) -> tuple[bytes, bytes | None, bool]:
        """Normalise, seal and index one value: ``(stored value, blind index, masked)``."""
        if name == IDENTITY_FIELD:
            raise InvalidValue(field=name, reason="platform identities are added as identities")
        spec = self._catalogue.spec(name)
        normalised = spec.normalise(raw)
        text = normalised.value.encode()
        return (
            sealer.seal(name, text) if spec.encrypted else text,
            (
                self._indexer.digest(name, normalised.value)
                if spec.searchable and not normalised.masked
                else None
            ),
            normalised.masked,
        )

    def _identity_row(
        self,
        sealer: Sealer,
        platform: str,
        external_id: str,
        source: str,
        observed_at: datetime,
    ) -> dict[str, Any]:
        platform = check_platform(platform)
        external_id = external_id.strip()
        if not external_id:
            raise InvalidValue(field=_identity_field(platform), reason="empty external id")
        field = _identity_field(platform)
        return {
            "customer_id": sealer.customer_id,
            "platform": platform,
            "external_index": self._indexer.digest(field, external_id),
            "external_id": sealer.seal(field, external_id.encode()),
            "source": source,
            "observed_at": observed_at,
        }

    # --- customers -------------------------------------------------------------------------

    def add_many(
        self, connection: Connection, records: Iterable[NewCustomer], *, source: str
    ) -> list[str]:
        """Insert new customers with one executemany per table; returns their ids in order."""
        customer_insert = BulkInsert(connection, customers, _CUSTOMER_COLUMNS)
        field_insert = BulkInsert(connection, customer_fields, _FIELD_COLUMNS)
        identity_insert = BulkInsert(connection, customer_identities, _IDENTITY_COLUMNS)
        region_insert = BulkInsert(connection, customer_regions, _REGION_COLUMNS)
        now = utcnow()
        now_bound = customer_insert.bind("created_at", now)
        masked_bound = {flag: field_insert.bind("masked", flag) for flag in (False, True)}
        customer_rows: list[tuple[Any, ...]] = []
        field_rows: list[tuple[Any, ...]] = []
        identity_rows: list[tuple[Any, ...]] = []
        region_rows: list[tuple[Any, ...]] = []
        ids: list[str] = []
        for record in records:
            customer_id = new_customer_id()
            sealer = self.sealed.new_customer(customer_id)
            observed = (
                now_bound
                if record.observed_at is None
                else field_insert.bind("observed_at", record.observed_at)
            )
            for name, raw in record.fields.items():
                value, blind_index, masked = self._sealed_field(sealer, name, raw)
                field_rows.append(
                    (
                        customer_id,
                        name,
                        value,
                        blind_index,
                        masked_bound[masked],
                        source,
                        observed,
                        now_bound,
                    )
                )
            address = record.fields.get(REGION_FIELD)
            if address:
                region = region_of(address)
                if region is not None:
                    region_rows.append((customer_id, region.province_code, region.city_code))
            for platform, external_id in record.identities:
                row = self._identity_row(sealer, platform, external_id, source, now)
                row["observed_at"] = observed
                identity_rows.append(tuple(row[c] for c in _IDENTITY_COLUMNS))
            customer_rows.append(
                (
                    customer_id,
                    now_bound,
                    now_bound,
                    sealer.dek_version,
                    sealer.wrapped_dek,
                    sealer.kek_version,
                )
            )
            ids.append(customer_id)
        with mapped_store_errors("adding customers"):
            customer_insert.execute(customer_rows)
            field_insert.execute(field_rows)
            identity_insert.execute(identity_rows)
            region_insert.execute(region_rows)
        regions = {row[0]: (row[1], row[2]) for row in region_rows}
        self.segmenter.admit(
            connection, {cid: regions.get(cid) for cid in ids}
        )
        return ids

    def update(
        self,
        connection: Connection,
        customer_id: str,
        values: Mapping[str, str],
        *,
        source: str,
        observed_at: datetime | None = None,
        stored_masked: Mapping[str, bool] | None = None,
    ) -> list[str]:
        """Set fields; returns the names actually changed.

        A masked value (``138****8000``) never overwrites a full one: it is skipped.
        ``stored_masked`` (field -> masked, for every stored field) spares the read of it when
        the caller has it already (a sync page reads its customers' fields at once).
        """
        sealer = self.sealed.sealer(connection, customer_id)
        now = utcnow()
        observed_at = observed_at or now
        existing = (
            stored_masked
            if stored_masked is not None
            else {
                row.field: row.masked
                for row in connection.execute(
                    select(customer_fields.c.field, customer_fields.c.masked).where(
                        customer_fields.c.customer_id == customer_id
                    )
                )
            }
        )
        changed: list[str] = []
        with mapped_store_errors(f"updating customer {customer_id}"):
            for name, raw in values.items():
                value, blind_index, masked = self._sealed_field(sealer, name, raw)
                row = {
                    "value": value,
                    "blind_index": blind_index,
                    "masked": masked,
                    "source": source,
                    "observed_at": observed_at,
                    "updated_at": now,
                }
                if name in existing:
                    if masked and not existing[name]:
                        continue
                    connection.execute(
                        update(customer_fields)
                        .where(
                            customer_fields.c.customer_id == customer_id,
                            customer_fields.c.field == name,
                        )
                        .values(row)
                    )
                else:
                    connection.execute(
                        insert(customer_fields),
                        [{"customer_id": customer_id, "field": name, **row}],
                    )
                changed.append(name)
            if changed:
                connection.execute(
                    update(customers).where(customers.c.id == customer_id).values(updated_at=now)
                )
            if REGION_FIELD in changed:
                self._write_region(connection, customer_id, values[REGION_FIELD])
        return changed

    def _write_region(self, connection: Connection, customer_id: str, address: str) -> None:
        """Keep the address's derived province and city (never the address) and bring the
        customer's regional groups up to date."""
        connection.execute(
            delete(customer_regions).where(customer_regions.c.customer_id == customer_id)
        )
        region = region_of(address)
        if region is not None:
            connection.execute(
                insert(customer_regions),
                [
                    {
                        "customer_id": customer_id,
                        "province_code": region.province_code,
                        "city_code": region.city_code,
                    }
                ],
            )
        self.segmenter.refresh(connection, [customer_id])

    def add_identity(
        self,
        connection: Connection,
        customer_id: str,
        platform: str,
        external_id: str,
        *,
        source: str,
        observed_at: datetime | None = None,
    ) -> None:
        sealer = self.sealed.sealer(connection, customer_id)
        row = self._identity_row(sealer, platform, external_id, source, observed_at or utcnow())
        bound = self.find_identity(connection, platform, external_id)
        if bound == customer_id:
            return
        if bound is not None:
            raise Conflict(
                f"that {row['platform']} identity already belongs to customer {bound}",
            )
        with mapped_store_errors(f"adding an identity to customer {customer_id}"):
            connection.execute(insert(customer_identities), [row])

    def add_identities(
        self,
        connection: Connection,
        identities: Sequence[tuple[str, str, str]],
        *,
        source: str,
        observed_at: datetime | None = None,
    ) -> None:
        """:meth:`add_identity` for many ``(customer id, platform, external id)``, in order, in
        one lookup per platform and chunk and one ``executemany`` insert. An identity the
        customer has already is skipped; one that belongs to another customer (stored, or
        earlier in ``identities``) raises ``Conflict`` and nothing is written."""
        at = observed_at or utcnow()
        rows = [
            self._identity_row(
                self.sealed.sealer(connection, cid), platform, external_id, source, at
            )
            for cid, platform, external_id in identities
        ]
        by_platform: dict[str, list[bytes]] = {}
        for row in rows:
            by_platform.setdefault(row["platform"], []).append(row["external_index"])
        bound: dict[tuple[str, bytes], str] = {}
        for platform, digests in by_platform.items():
            for start in range(0, len(digests), MANY_CHUNK):
                for found in connection.execute(
                    _IDENTITIES_BY_INDEX,
                    {"platform": platform, "digests": digests[start : start + MANY_CHUNK]},
                ):
                    bound[(platform, bytes(found.external_index))] = found.customer_id
        new: list[dict[str, Any]] = []
        for row in rows:
            key = (row["platform"], row["external_index"])
            owner = bound.get(key)
            if owner == row["customer_id"]:
                continue
            if owner is not None:
                raise Conflict(
                    f"that {row['platform']} identity already belongs to customer {owner}"
                )
            bound[key] = row["customer_id"]
            new.append(row)
        if new:
            with mapped_store_errors(f"adding {len(new)} identities"):
                connection.execute(_IDENTITY_INSERT, new)

    def exists(self, connection: Connection, customer_id: str) -> bool:
        return (
            connection.execute(_CUSTOMER_EXISTS, {"customer_id": customer_id}).first() is not None
        )

    def get(
        self,
        connection: Connection,
        customer_id: str,
        *,
        only_fields: Collection[str] | None = None,
        with_identities: bool = True,
    ) -> Customer:
        """A customer with the given fields decrypted (all if ``None``); others are not read."""
        key = {"customer_id": customer_id}
        head = connection.execute(_CUSTOMER_HEAD, key).first()
        if head is None:
            raise NotFound.customer(customer_id)
        fields: dict[str, FieldValue] = {}
        for row in connection.execute(_CUSTOMER_FIELDS, key):
            if only_fields is not None and row.field not in only_fields:
                continue
            fields[row.field] = self._field_value(connection, customer_id, row, head)
        identities = (
            [
                self._identity(connection, customer_id, row, head)
                for row in connection.execute(_CUSTOMER_IDENTITIES, key)
            ]
            if with_identities
            else []
        )
        tag_names = connection.execute(_CUSTOMER_TAGS, key).scalars().all()
        return Customer(
            id=customer_id,
            created_at=as_utc(head.created_at),
            updated_at=as_utc(head.updated_at),
            fields=fields,
            identities=identities,
            tags=list(tag_names),
        )

    def _field_value(
        self, connection: Connection, customer_id: str, row: Any, head: Any
    ) -> FieldValue:
        """A stored field row (value, masked, source, observed_at), opened."""
        spec = self._catalogue.get(row.field)
        encrypted = spec.encrypted if spec is not None else True
        plain = (
            self.sealed.open(connection, customer_id, row.field, row.value, head)
            if encrypted
            else row.value
        )
        return FieldValue(
            value=plain.decode(),
            source=row.source,
            observed_at=as_utc(row.observed_at),
            masked=row.masked,
        )

    def _identity(self, connection: Connection, customer_id: str, row: Any, head: Any) -> Identity:
        """A stored identity row (platform, external_id, source, observed_at), opened."""
        context = _identity_field(row.platform)
        return Identity(
            platform=row.platform,
            external_id=self.sealed.open(
                connection, customer_id, context, row.external_id, head
            ).decode(),
            source=row.source,
            observed_at=as_utc(row.observed_at),
        )

    def get_many(
        self,
        connection: Connection,
        customer_ids: Sequence[str],
        *,
        only_fields: Collection[str] | None = None,
        with_identities: bool = True,
    ) -> dict[str, Customer]:
        """:meth:`get` for many customers, in the order given, in four queries per chunk of
        ids rather than four per customer (a push reads a whole batch). Raises ``NotFound``
        for the first id that is not a live customer, as :meth:`get` would."""
        wanted = list(dict.fromkeys(customer_ids))
        heads: dict[str, Any] = {}
        fields: dict[str, dict[str, FieldValue]] = {cid: {} for cid in wanted}
        identities: dict[str, list[Identity]] = {cid: [] for cid in wanted}
        tag_names: dict[str, list[str]] = {cid: [] for cid in wanted}
        field_filter = None if only_fields is None else sorted(only_fields)
        for start in range(0, len(wanted), MANY_CHUNK):
            params = {"ids": wanted[start : start + MANY_CHUNK]}
            for head in connection.execute(_MANY_HEADS, params):
                heads[head.id] = head
            missing = next((cid for cid in params["ids"] if cid not in heads), None)
            if missing is not None:
                raise NotFound.customer(missing)
            query = _MANY_FIELDS
            if field_filter is not None:
                query = query.where(customer_fields.c.field.in_(field_filter))
            if field_filter != []:
                for row in connection.execute(query, params):
                    fields[row.customer_id][row.field] = self._field_value(
                        connection, row.customer_id, row, heads[row.customer_id]
                    )
            if with_identities:
                for row in connection.execute(_MANY_IDENTITIES, params):
                    identities[row.customer_id].append(
                        self._identity(connection, row.customer_id, row, heads[row.customer_id])
                    )
            for row in connection.execute(_MANY_TAGS, params):
                tag_names[row.customer_id].append(row.name)
        return {
            cid: Customer(
                id=cid,
                created_at=as_utc(heads[cid].created_at),
                updated_at=as_utc(heads[cid].updated_at),
                fields=fields[cid],
                identities=identities[cid],
                tags=tag_names[cid],
            )
            for cid in wanted
        }

    def find(self, connection: Connection, field: str, value: str) -> list[str]:
        spec = self._catalogue.spec(field)
        if not spec.searchable:
            raise InvalidValue(field=field, reason="this field is not searchable (no blind index)")
        normalised = spec.normalise(value)
        if normalised.masked:
            raise InvalidValue(field=field, reason="a masked value cannot be searched for")
        digest = self._indexer.digest(field, normalised.value)
        return list(
            connection.execute(_FIND_BY_INDEX, {"field": field, "digest": digest}).scalars()
        )

    def find_identity(self, connection: Connection, platform: str, external_id: str) -> str | None:
        platform = check_platform(platform)
        digest = self._indexer.digest(_identity_field(platform), external_id.strip())
        return connection.execute(
            select(customer_identities.c.customer_id).where(
                customer_identities.c.platform == platform,
                customer_identities.c.external_index == digest,
            )
        ).scalar_one_or_none()

    def page(self, connection: Connection, *, limit: int, after: str | None) -> Page:
        query = (
            select(customers.c.id)
            .where(customers.c.erased_at.is_(None))
            .order_by(customers.c.id)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(customers.c.id > after)
        ids = list(connection.execute(query).scalars())
        more = len(ids) > limit
        ids = ids[:limit]
        return Page(customer_ids=ids, next_after=ids[-1] if more and ids else None)

    # --- orders, interactions, tags -----------------------------------------------------------

    def record_order(self, connection: Connection, order: Order, *, source: str) -> int:
        """Insert or update an order, idempotent on (platform, shop, order id), and bring its
        customer's segments up to date in the same transaction."""
        pk, previous = self._write_order(connection, order, source=source)
        self.segmenter.refresh(connection, {order.customer_id, previous})
        return pk

    def record_orders(
        self, connection: Connection, batch: Iterable[Order], *, source: str
    ) -> list[int]:
        """:meth:`record_order` for many orders, in a few statements: one lookup of the
        customers and one of the orders already stored, then ``executemany`` inserts (their
        keys returned in order), updates and item rows. Their customers' segments are brought
        up to date once, at the end (same transaction)."""
        pending = list(batch)
        keys = [(o.platform, o.shop, o.order_id) for o in pending]
        if len(set(keys)) < len(keys):  # the same order twice: each write sees the one before
            pks: list[int] = []
            touched: set[str | None] = set()
            for order in pending:
                pk, previous = self._write_order(connection, order, source=source)
                pks.append(pk)
                touched.update((order.customer_id, previous))
            self.segmenter.refresh(connection, touched)
            return pks
        with mapped_store_errors(f"recording {len(pending)} orders"):
            self._check_orders(connection, pending)
            stored = self._stored_orders(connection, keys)
            new = [(i, o) for i, o in enumerate(pending) if keys[i] not in stored]
            old = [(i, o) for i, o in enumerate(pending) if keys[i] in stored]
            result = [0] * len(pending)
            if new:
                inserted = connection.execute(
                    _ORDER_INSERT.returning(orders.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "platform": o.platform,
                            "shop": o.shop,
                            "order_id": o.order_id,
                            **_order_values(o, source),
                        }
                        for _, o in new
                    ],
                ).all()
                for (position, _), row in zip(new, inserted, strict=True):
                    result[position] = int(row.id)
            if old:
                for position, _ in old:
                    result[position] = stored[keys[position]][0]
                connection.execute(
                    _ORDER_UPDATE,
                    [{"order_pk": result[i], **_order_values(o, source)} for i, o in old],
                )
                connection.execute(_ORDER_ITEMS_DELETE, [{"order_pk": result[i]} for i, _ in old])
            items = [
                _item_row(result[position], line_no, item)
                for position, order in enumerate(pending)
                for line_no, item in enumerate(order.items, start=1)
            ]
            if items:
                connection.execute(_ORDER_ITEMS_INSERT, items)
        touched = {o.customer_id for o in pending} | {stored[keys[i]][1] for i, _ in old}
        self.segmenter.refresh(connection, touched)
        return result

    def _check_orders(self, connection: Connection, batch: Sequence[Order]) -> None:
        for order in batch:
            _check_currency(order.currency)
        wanted = sorted({o.customer_id for o in batch if o.customer_id is not None})
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            found.update(
                connection.execute(
                    select(customers.c.id).where(
                        customers.c.id.in_(bindparam("ids", expanding=True))
                    ),
                    {"ids": wanted[start : start + 500]},
                ).scalars()
            )
        missing = [cid for cid in wanted if cid not in found]
        if missing:
            raise NotFound.customer(missing[0])

    def _stored_orders(
        self, connection: Connection, keys: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], tuple[int, str | None]]:
        """The orders of ``keys`` already stored: key -> (primary key, customer)."""
        by_shop: dict[tuple[str, str], list[str]] = {}
        for platform, shop, order_id in keys:
            by_shop.setdefault((platform, shop), []).append(order_id)
        stored: dict[tuple[str, str, str], tuple[int, str | None]] = {}
        for (platform, shop), order_ids in by_shop.items():
            for start in range(0, len(order_ids), 500):
                for row in connection.execute(
                    select(orders.c.id, orders.c.customer_id, orders.c.order_id).where(
                        orders.c.platform == platform,
                        orders.c.shop == shop,
                        orders.c.order_id.in_(bindparam("ids", expanding=True)),
                    ),
                    {"ids": order_ids[start : start + 500]},
                ):
                    stored[(platform, shop, row.order_id)] = (int(row.id), row.customer_id)
        return stored

    def _write_order(
        self, connection: Connection, order: Order, *, source: str
    ) -> tuple[int, str | None]:
        """Write one order; returns its key and the customer it belonged to before."""
        if order.customer_id is not None and not self.exists(connection, order.customer_id):
            raise NotFound.customer(order.customer_id)
        _check_currency(order.currency)
        values = _order_values(order, source)
        previous: str | None = None
        with mapped_store_errors(f"recording order {order.platform}/{order.order_id}"):
            existing = connection.execute(
                _ORDER_LOOKUP,
                {"platform": order.platform, "shop": order.shop, "order_id": order.order_id},
            ).first()
            if existing is None:
                order_pk = connection.execute(
                    _ORDER_INSERT,
                    {
                        "platform": order.platform,
                        "shop": order.shop,
                        "order_id": order.order_id,
                        **values,
                    },
                ).inserted_primary_key
                assert order_pk is not None
                pk = int(order_pk[0])
            else:
                pk = int(existing.id)
                previous = existing.customer_id
                connection.execute(_ORDER_UPDATE, {"order_pk": pk, **values})
                connection.execute(_ORDER_ITEMS_DELETE, {"order_pk": pk})
            if order.items:
                connection.execute(
                    _ORDER_ITEMS_INSERT,
                    [
                        _item_row(pk, line_no, item)
                        for line_no, item in enumerate(order.items, start=1)
                    ],
                )
        return pk, previous

    def orders_of(self, connection: Connection, customer_id: str) -> list[Order]:
        rows = connection.execute(
            select(orders).where(orders.c.customer_id == customer_id).order_by(orders.c.created_at)
        ).all()
        result: list[Order] = []
        for row in rows:
            items = [
                OrderItem(
                    product_id=item.product_id,
                    product_name=item.product_name,
                    quantity=item.quantity,
                    unit_price=item.unit_price,
                    category=item.category,
                )
                for item in connection.execute(
                    select(order_items)
                    .where(order_items.c.order_pk == row.id)
                    .order_by(order_items.c.line_no)
                )
            ]
            result.append(
                Order(
                    platform=row.platform,
                    shop=row.shop,
                    order_id=row.order_id,
                    status=row.status,
                    currency=row.currency,
                    total_amount=row.total_amount,
                    created_at=as_utc(row.created_at),
                    updated_at=as_utc(row.updated_at),
                    paid_at=as_utc(row.paid_at) if row.paid_at else None,
                    refunded_at=as_utc(row.refunded_at) if row.refunded_at else None,
                    items=items,
                    customer_id=row.customer_id,
                )
            )
        return result

    def record_interaction(
        self,
        connection: Connection,
        customer_id: str,
        *,
        kind: str,
        channel: str,
        occurred_at: datetime,
        text: str | None,
        source: str,
    ) -> str:
        if kind not in INTERACTION_KINDS:
            raise InvalidValue(
                field="kind", reason=f"one of {', '.join(sorted(INTERACTION_KINDS))}"
            )
        interaction_id = str(uuid.uuid4())
        sealed = (
            self.sealed.seal(
                connection, customer_id, f"interaction:{interaction_id}", text.encode()
            )
            if text is not None
            else None
        )
        connection.execute(
            insert(interactions).values(
                id=interaction_id,
                customer_id=customer_id,
                kind=kind,
                channel=channel,
                occurred_at=occurred_at,
                text=sealed,
                source=source,
            )
        )
        return interaction_id

    def interactions_of(self, connection: Connection, customer_id: str) -> list[Interaction]:
        if not self.exists(connection, customer_id):
            raise NotFound.customer(customer_id)
        return [
            Interaction(
                id=row.id,
                customer_id=customer_id,
                kind=row.kind,
                channel=row.channel,
                occurred_at=as_utc(row.occurred_at),
                text=(
                    self.sealed.open(
                        connection, customer_id, f"interaction:{row.id}", row.text
                    ).decode()
                    if row.text is not None
                    else None
                ),
                source=row.source,
            )
            for row in connection.execute(
                select(interactions)
                .where(interactions.c.customer_id == customer_id)
                .order_by(interactions.c.occurred_at, interactions.c.id)
            )
        ]

    def tag(
        self, connection: Connection, customer_ids: Sequence[str], tag: str, *, source: str
    ) -> int:
        """Tag customers (creating the tag if new); returns how many were newly tagged."""
        name = check_tag(tag)
        tag_id = connection.execute(
            select(tags.c.id).where(tags.c.name == name)
        ).scalar_one_or_none()
        if tag_id is None:
            tag_id = connection.execute(
                insert(tags).values(name=name, created_at=utcnow())
            ).inserted_primary_key[0]  # type: ignore[index]
        already = set(
            connection.execute(
                select(customer_tags.c.customer_id).where(
                    customer_tags.c.tag_id == tag_id,
                    customer_tags.c.customer_id.in_(bindparam("ids", expanding=True)),
                ),
                {"ids": list(customer_ids)},
            ).scalars()
        )
        new = [cid for cid in dict.fromkeys(customer_ids) if cid not in already]
        for cid in new:
            if not self.exists(connection, cid):
                raise NotFound.customer(cid)
        if new:
            now = utcnow()
            connection.execute(
                insert(customer_tags),
                [
                    {"customer_id": c, "tag_id": tag_id, "source": source, "created_at": now}
                    for c in new
                ],
            )
            self.segmenter.refresh(connection, new)  # groups over tags
        return len(new)

    def untag(self, connection: Connection, customer_id: str, tag: str) -> bool:
        return bool(self.untag_many(connection, [customer_id], tag, check_exists=False))

    def untag_many(
        self,
        connection: Connection,
        customer_ids: Sequence[str],
        tag: str,
        *,
        check_exists: bool = True,
    ) -> int:
        """Remove a tag from customers; returns how many had it. With ``check_exists`` an id
        that names no customer raises :class:`NotFound` (and, in the caller's transaction,
        nothing is removed)."""
        name = check_tag(tag)
        ids = list(dict.fromkeys(customer_ids))
        if check_exists:
            for cid in ids:
                if not self.exists(connection, cid):
                    raise NotFound(f"no customer {cid}")
        tag_id = connection.execute(
            select(tags.c.id).where(tags.c.name == name)
        ).scalar_one_or_none()
        if tag_id is None or not ids:
            return 0
        result = connection.execute(
            delete(customer_tags).where(
                customer_tags.c.tag_id == tag_id,
                customer_tags.c.customer_id.in_(bindparam("ids", expanding=True)),
            ),
            {"ids": ids},
        )
        if result.rowcount:
            self.segmenter.refresh(connection, ids)
        return int(result.rowcount)
