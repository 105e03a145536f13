"""What one page of a sync needs to know of the customers it may update, read in a few queries,
and the page's bookkeeping written back in a few statements.

Resolving record by record with a query per record (its customer's fields, its source row, its
platform handles) and a statement per write is what made a sync many times slower than the
platform it reads. :class:`PageRows` reads those rows for every candidate customer of the page
at once (chunked ``IN`` lists), answers from memory, and writes the source rows and handles in
``executemany`` batches at the end of the page, in the page's transaction.

A customer the page itself creates, or one it reaches only after a merge, is not among the
candidates: its rows are read on first use, one customer at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from vault.store.customers import CustomerStore
from vault.store.engine import as_utc, utcnow
from vault.store.schema import customer_fields, customer_sources, platform_handles
from vault.sync.sources import Observation

CHUNK = 400  # customer ids per IN (...) list


@dataclass(frozen=True, slots=True)
class StoredField:
    """A field as stored: its provenance and its sealed value (opened only to compare)."""

    source: str
    observed_at: datetime
    masked: bool
    value: bytes

    @property
    def observation(self) -> Observation:
        return Observation(self.source, self.observed_at, self.masked)


_FIELDS = select(
    customer_fields.c.customer_id,
    customer_fields.c.field,
    customer_fields.c.source,
    customer_fields.c.observed_at,
    customer_fields.c.masked,
    customer_fields.c.value,
)
_SOURCE_INSERT = insert(customer_sources)
_SOURCE_UPDATE = (
    update(customer_sources)
    .where(
        customer_sources.c.customer_id == bindparam("b_customer_id"),
        customer_sources.c.source == bindparam("b_source"),
    )
    .values(fields=bindparam("fields"), last_seen_at=bindparam("last_seen_at"))
)
_HANDLE_INSERT = insert(platform_handles)
_HANDLE_UPDATE = (
    update(platform_handles)
    .where(
        and_(
            platform_handles.c.customer_id == bindparam("b_customer_id"),
            platform_handles.c.field == bindparam("b_field"),
            platform_handles.c.platform == bindparam("b_platform"),
        )
    )
    .values(handle=bindparam("handle"), observed_at=bindparam("observed_at"))
)
_REFRESH = (
    update(customer_fields)
    .where(
        customer_fields.c.customer_id == bindparam("b_customer_id"),
        customer_fields.c.field == bindparam("b_field"),
    )
    .values(observed_at=bindparam("observed_at"))
)


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


class PageRows:
    """One page's view of its candidate customers' fields, source rows and handles."""

    def __init__(
        self,
        connection: Connection,
        store: CustomerStore,
        *,
        source: str,
        platform: str,
        candidates: Iterable[str],
        with_handles: bool,
        encrypted: frozenset[str],
    ) -> None:
        self._encrypted = encrypted  # the fields stored sealed (the others, as text)
        self._connection = connection
        self._store = store
        self._source = source
        self._platform = platform
        self._fields: dict[str, dict[str, StoredField]] = {}
        self._sources: dict[str, set[str] | None] = {}  # None: this source is new to it
        self._handles: dict[str, dict[str, bytes]] = {}
        self._new_sources: dict[str, set[str]] = {}
        self._seen_sources: set[str] = set()
        self._handle_writes: list[dict[str, object]] = []
        self._handle_inserts: list[dict[str, object]] = []
        self._refreshed: list[dict[str, object]] = []
        self._load(sorted(set(candidates)), with_handles)

    def _load(self, ids: Sequence[str], with_handles: bool) -> None:
        for customer_id in ids:
            self._fields[customer_id] = {}
            self._sources[customer_id] = None
            if with_handles:
                self._handles[customer_id] = {}
        for chunk in _chunks(ids):
            params = {"ids": list(chunk)}
            for row in self._connection.execute(
                _FIELDS.where(customer_fields.c.customer_id.in_(bindparam("ids", expanding=True))),
                params,
            ):
                self._fields[row.customer_id][row.field] = StoredField(
                    row.source, as_utc(row.observed_at), bool(row.masked), bytes(row.value)
                )
            for row in self._connection.execute(
                select(customer_sources.c.customer_id, customer_sources.c.fields).where(
                    customer_sources.c.source == self._source,
                    customer_sources.c.customer_id.in_(bindparam("ids", expanding=True)),
                ),
                params,
            ):
                self._sources[row.customer_id] = set(filter(None, row.fields.split(",")))
            if with_handles:
                for row in self._connection.execute(
                    select(
                        platform_handles.c.customer_id,
                        platform_handles.c.field,
                        platform_handles.c.handle,
                    ).where(
                        platform_handles.c.platform == self._platform,
                        platform_handles.c.customer_id.in_(bindparam("ids", expanding=True)),
                    ),
                    params,
                ):
                    self._handles[row.customer_id][row.field] = bytes(row.handle)

    def _ensure_sources(self, customer_id: str) -> None:
        if customer_id not in self._sources:
            row = self._connection.execute(
                select(customer_sources.c.fields).where(
                    customer_sources.c.source == self._source,
                    customer_sources.c.customer_id == customer_id,
                )
            ).first()
            self._sources[customer_id] = (
                None if row is None else set(filter(None, row.fields.split(",")))
            )

    def _ensure_handles(self, customer_id: str) -> None:
        if customer_id not in self._handles:
            self._handles[customer_id] = {
                row.field: bytes(row.handle)
                for row in self._connection.execute(
                    select(platform_handles.c.field, platform_handles.c.handle).where(
                        platform_handles.c.platform == self._platform,
                        platform_handles.c.customer_id == customer_id,
                    )
                )
            }

    def created(self, customer_id: str, names: Iterable[str]) -> None:
        """A customer the page made (its source row written with it): it has no handle yet."""
        self._sources[customer_id] = set(names)
        self._handles[customer_id] = {}

    # --- fields -------------------------------------------------------------------------------

    def fields(self, customer_id: str) -> Mapping[str, StoredField]:
        if customer_id not in self._fields:
            self._fields[customer_id] = {
                row.field: StoredField(
                    row.source, as_utc(row.observed_at), bool(row.masked), bytes(row.value)
                )
                for row in self._connection.execute(
                    _FIELDS.where(customer_fields.c.customer_id == customer_id)
                )
            }
        return self._fields[customer_id]

    def holds(self, customer_id: str, name: str, normalised: str) -> bool:
        """Whether the customer's stored ``name`` already is ``normalised``, from this source."""
        stored = self.fields(customer_id).get(name)
        if stored is None or stored.source != self._source:
            return False
        if name not in self._encrypted:
            return stored.value.decode() == normalised
        clear = self._store.sealed.open(self._connection, customer_id, name, stored.value)
        return clear.decode() == normalised

    def refresh(self, customer_id: str, name: str, observed_at: datetime) -> None:
        """The same value seen again: only its time moves on (written at the end)."""
        stored = self._fields[customer_id][name]
        if observed_at > stored.observed_at:
            self._fields[customer_id][name] = StoredField(
                stored.source, observed_at, stored.masked, stored.value
            )
            self._refreshed.append(
                {"b_customer_id": customer_id, "b_field": name, "observed_at": observed_at}
            )

    def forget(self, customer_id: str) -> None:
        """The customer's fields were written: read them again if the page meets it again."""
        self._fields.pop(customer_id, None)

    # --- provenance ---------------------------------------------------------------------------

    def note_source(self, customer_id: str, names: Iterable[str]) -> bool:
        """This source gave ``names`` to the customer; True when the source is new to it."""
        self._ensure_sources(customer_id)
        known = self._sources[customer_id]
        contributed = set(names)
        if known is None:
            self._new_sources.setdefault(customer_id, set()).update(contributed)
            self._sources[customer_id] = set(contributed)
            return True
        known.update(contributed)
        if customer_id in self._new_sources:
            self._new_sources[customer_id].update(contributed)
        else:
            self._seen_sources.add(customer_id)
        return False

    # --- platform handles ---------------------------------------------------------------------

    def store_handles(
        self, customer_id: str, handles: Mapping[str, str], observed_at: datetime
    ) -> bool:
        """Keep the platform's own ciphertexts, sealed under the customer's key; only those
        that differ from the kept ones are written. True when any was."""
        self._ensure_handles(customer_id)
        kept = self._handles[customer_id]
        gateway = self._store.sealed
        changed = False
        for name, handle in handles.items():
            context = f"handle:{self._platform}:{name}"
            if (
                name in kept
                and gateway.open(self._connection, customer_id, context, kept[name]).decode()
                == handle
            ):
                continue
            sealed = gateway.seal(self._connection, customer_id, context, handle.encode())
            if name in kept:
                self._handle_writes.append(
                    {
                        "b_customer_id": customer_id,
                        "b_field": name,
                        "b_platform": self._platform,
                        "handle": sealed,
                        "observed_at": observed_at,
                    }
                )
            else:
                self._handle_inserts.append(
                    {
                        "customer_id": customer_id,
                        "field": name,
                        "platform": self._platform,
                        "handle": sealed,
                        "observed_at": observed_at,
                    }
                )
            kept[name] = sealed
            changed = True
        return changed

    # --- writing back -------------------------------------------------------------------------

    def write(self) -> None:
        """The page's source rows, handles and refreshed times, in a few ``executemany``."""
        connection = self._connection
        now = utcnow()
        if self._new_sources:
            connection.execute(
                _SOURCE_INSERT,
                [
                    {
                        "customer_id": cid,
                        "source": self._source,
                        "fields": ",".join(sorted(names)),
                        "first_seen_at": now,
                        "last_seen_at": now,
                    }
                    for cid, names in self._new_sources.items()
                ],
            )
        seen = sorted(self._seen_sources)
        if seen:
            connection.execute(
                _SOURCE_UPDATE,
                [
                    {
                        "b_customer_id": cid,
                        "b_source": self._source,
                        "fields": ",".join(sorted(self._sources[cid] or ())),
                        "last_seen_at": now,
                    }
                    for cid in seen
                ],
            )
        if self._handle_inserts:
            connection.execute(_HANDLE_INSERT, self._handle_inserts)
        if self._handle_writes:
            connection.execute(_HANDLE_UPDATE, self._handle_writes)
        if self._refreshed:
            connection.execute(_REFRESH, self._refreshed)
        self._new_sources.clear()
        self._seen_sources.clear()
        self._handle_inserts.clear()
        self._handle_writes.clear()
        self._refreshed.clear()
