"""Identity resolution and upsert of one batch of records, inside the batch's transaction.

Records are matched to customers on blind indexes (normalised phone, email, ID number) and
platform identities, never by decrypting anything:

* a record whose platform identity is known goes to that customer (an idempotent upsert through
  the external-id map, ``customer_identities``);
* otherwise a record whose identifiers match exactly one customer joins it (``merged``);
* a record matching none makes a new customer;
* an ambiguous match (identifiers on two customers, or an identity on one and a phone on
  another) is never merged silently: the pairs go to the duplicates queue
  (``duplicate_reviews``) for a person to decide (``vault customer merge A B``). The record
  itself goes to its identity's customer, or to a new customer when it has none.

Field values are merged by the rule of :mod:`vault.sync.sources`; each value keeps its source
and time, and ``customer_sources`` records every source that contributed to a customer. For a
connector that pushes, the values it returns that are only the echo of the vault's own push are
dropped first (:mod:`vault.sync.echoes`), so they neither overwrite nor take over provenance.
Lookups are made per batch (one query for identities, one for identifiers), and new customers
go in with the store's bulk insert, so an import of many rows costs a few statements a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select

from vault.crypto import BlindIndexer
from vault.errors import Conflict, InvalidValue
from vault.fields import FieldCatalogue
from vault.records import NewCustomer
from vault.store._bulk import BulkInsert
from vault.store.customers import (
    IDENTITY_FIELD,
    IDENTITY_INDEX_PREFIX,
    CustomerStore,
    check_platform,
)
from vault.store.engine import as_utc, utcnow
from vault.store.schema import (
    customer_fields,
    customer_identities,
    customer_sources,
    duplicate_reviews,
    platform_handles,
    suppressions,
)
from vault.sync.contract import ExternalCustomer
from vault.sync.echoes import PageEchoes, PushedValues
from vault.sync.page import PageRows
from vault.sync.report import Counts, Reject
from vault.sync.sources import Observation, SourceRanking

LOOKUP_CHUNK = 400  # values per IN (...) list
_SOURCE_COLUMNS = ("customer_id", "source", "fields", "first_seen_at", "last_seen_at")

IdentityKey = tuple[str, bytes]  # (platform, blind index of the external id)
IndexKey = tuple[str, bytes]  # (field, blind index of the normalised value)

Suppressed = Callable[[Connection, Sequence["Prepared"]], set[int]]
"""Which of a batch's records (by position) belong to an erased person and are dropped."""


@dataclass(slots=True)
class Prepared:
    """A record checked and indexed, ready to resolve. Holds raw values only in memory."""

    where: str
    record: ExternalCustomer
    fields: dict[str, str]  # name -> raw value (validated)
    normalised: dict[str, str]  # name -> normalised value (as stored)
    masked: dict[str, bool]
    index_keys: list[IndexKey]
    identities: list[tuple[str, str]]  # (platform, external id)
    identity_keys: list[IdentityKey]
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # for the suppression check
    review_with: list[str] = field(default_factory=list)  # customers it may duplicate


@dataclass(slots=True)
class Outcome:
    customer_id: str | None
    status: str  # created | updated | merged | skipped | rejected | suppressed
    fields: list[str] = field(default_factory=list)


def _chunks(values: Sequence[bytes]) -> Iterable[Sequence[bytes]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def _candidates(
    records: Sequence[Prepared],
    by_identity: dict[IdentityKey, str],
    by_index: dict[IndexKey, set[str]],
) -> set[str]:
    """The customers a page may update: those its identities and identifiers point to."""
    found = {by_identity[k] for p in records for k in p.identity_keys if k in by_identity}
    found.update(c for p in records for k in p.index_keys for c in by_index.get(k, ()))
    return found


def _anyone_erased(connection: Connection) -> bool:
    return connection.execute(select(suppressions.c.id).limit(1)).first() is not None


class Resolver:
    """Resolves and upserts batches for one source (a connector or an import)."""

    def __init__(
        self,
        *,
        store: CustomerStore,
        catalogue: FieldCatalogue,
        indexer: BlindIndexer,
        ranking: SourceRanking,
        source: str,
        platform: str | None,
        suppressed: Suppressed | None = None,
        echoes: PushedValues | None = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.indexer = indexer
        self.ranking = ranking
        self.source = source
        self.platform = platform
        self.suppressed = suppressed
        self.echoes = echoes  # what was pushed to this source, when it is a system we push to
        self._searchable = frozenset(catalogue.searchable)
        self._encrypted = frozenset(name for name in catalogue if catalogue[name].encrypted)

    # --- preparing ----------------------------------------------------------------------------

    def prepare(self, record: ExternalCustomer, where: str) -> Prepared | Reject:
        """Validate a record: every field known, settable and normalisable. No value is kept
        in the reason of a reject."""
        values: dict[str, str] = {}
        normalised_values: dict[str, str] = {}
        masked: dict[str, bool] = {}
        index_keys: list[IndexKey] = []
        identifiers: list[tuple[str, str]] = []
        for name, raw in record.fields.items():
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            spec = self.catalogue.get(name)
            if spec is None or name == IDENTITY_FIELD:
                return Reject(where=where, reason=f"unknown field {name!r}")
            if not isinstance(raw, str):
                return Reject(where=where, reason=f"{name}: not text ({type(raw).__name__})")
            try:
                normalised = spec.normalise(raw)
            except InvalidValue as error:
                return Reject(where=where, reason=f"{name}: {error.reason}")
            values[name] = raw
            normalised_values[name] = normalised.value
            masked[name] = normalised.masked
            if spec.searchable and not normalised.masked:
                index_keys.append((name, self.indexer.digest(name, normalised.value)))
                identifiers.append((name, raw))
        identities: list[tuple[str, str]] = []
        if self.platform is not None and record.external_id:
            identities.append((self.platform, record.external_id))
        identities.extend(record.identities)
        identity_keys: list[IdentityKey] = []
        for raw_platform, external_id in identities:
            try:
                platform = check_platform(raw_platform)
            except InvalidValue as error:
                return Reject(where=where, reason=f"identity: {error.reason}")
            if not external_id or not external_id.strip():
                return Reject(where=where, reason=f"identity:{platform}: empty external id")
            identity_keys.append(
                (
                    platform,
                    self.indexer.digest(IDENTITY_INDEX_PREFIX + platform, external_id.strip()),
                )
            )
            identifiers.append((IDENTITY_INDEX_PREFIX + platform, external_id))
        if not values and not identities:
            return Reject(where=where, reason="no field and no identity")
        return Prepared(
            where=where,
            record=record,
            fields=values,
            normalised=normalised_values,
            masked=masked,
            index_keys=index_keys,
            identities=[(p.lower(), e.strip()) for p, e in identities],
            identity_keys=identity_keys,
            identifiers=identifiers,
        )

    # --- resolving ----------------------------------------------------------------------------

    def _lookup(
        self, connection: Connection, batch: Sequence[Prepared]
    ) -> tuple[dict[IdentityKey, str], dict[IndexKey, set[str]]]:
        by_identity: dict[IdentityKey, str] = {}
        by_index: dict[IndexKey, set[str]] = {}
        identity_digests = sorted({key[1] for p in batch for key in p.identity_keys})
        for chunk in _chunks(identity_digests):
            for row in connection.execute(
                select(
                    customer_identities.c.customer_id,
                    customer_identities.c.platform,
                    customer_identities.c.external_index,
                ).where(customer_identities.c.external_index.in_(bindparam("d", expanding=True))),
                {"d": list(chunk)},
            ):
                by_identity[(row.platform, bytes(row.external_index))] = row.customer_id
        index_digests = sorted({key[1] for p in batch for key in p.index_keys})
        for chunk in _chunks(index_digests):
            for row in connection.execute(
                select(
                    customer_fields.c.customer_id,
                    customer_fields.c.field,
                    customer_fields.c.blind_index,
                ).where(
                    customer_fields.c.field.in_(sorted(self._searchable)),
                    customer_fields.c.blind_index.in_(bindparam("d", expanding=True)),
                ),
                {"d": list(chunk)},
            ):
                by_index.setdefault((row.field, bytes(row.blind_index)), set()).add(row.customer_id)
        return by_identity, by_index

    def apply(
        self, connection: Connection, records: Sequence[Prepared], counts: Counts
    ) -> list[Outcome]:
        """Resolve and upsert ``records`` in ``connection``'s transaction; one outcome each."""
        by_identity, by_index = self._lookup(connection, records)
        candidates = _candidates(records, by_identity, by_index)
        echoes = (
            self.echoes.load(connection, candidates)
            if self.echoes is not None and records
            else None
        )
        rows = PageRows(
            connection,
            self.store,
            source=self.source,
            platform=self.platform or self.source,
            candidates=candidates,
            with_handles=any(p.record.platform_ciphertexts for p in records),
            encrypted=self._encrypted,
        )
        outcomes: list[Outcome | None] = [None] * len(records)
        pending: list[tuple[int, Prepared]] = []
        pending_identity: dict[IdentityKey, int] = {}
        pending_index: dict[IndexKey, int] = {}

        def flush() -> None:
            if not pending:
                return
            ids = self.store.add_many(
                connection,
                [
                    NewCustomer(
                        fields=p.fields, identities=p.identities, observed_at=p.record.observed_at
                    )
                    for _, p in pending
                ],
                source=self.source,
            )
            sources = BulkInsert(connection, customer_sources, _SOURCE_COLUMNS)
            now = sources.bind("first_seen_at", utcnow())
            source = sources.bind("source", self.source)
            sources.execute(
                [
                    (cid, source, ",".join(sorted(p.fields)), now, now)
                    for cid, (_, p) in zip(ids, pending, strict=True)
                ]
            )
            for cid, (position, p) in zip(ids, pending, strict=True):
                for key in p.identity_keys:
                    by_identity[key] = cid
                for key in p.index_keys:
                    by_index.setdefault(key, set()).add(cid)
                rows.created(cid, p.fields)
                if p.record.platform_ciphertexts:
                    rows.store_handles(cid, p.record.platform_ciphertexts, p.record.observed_at)
                outcomes[position] = Outcome(cid, "created", sorted(p.fields))
                if p.review_with:
                    self._queue(connection, [cid, *p.review_with], p, counts)
            pending.clear()
            pending_identity.clear()
            pending_index.clear()

        dropped: set[int] = set()
        if self.suppressed is not None and records and _anyone_erased(connection):
            dropped = self.suppressed(connection, records)  # one lookup per identifier kind
        for position, prepared in enumerate(records):
            if position in dropped:
                outcomes[position] = Outcome(None, "suppressed")
                continue
            if any(k in pending_identity for k in prepared.identity_keys) or any(
                k in pending_index for k in prepared.index_keys
            ):
                flush()  # the same person twice in one batch: let the first one land first
            outcome = self._resolve_one(
                connection, prepared, by_identity, by_index, counts, echoes, rows
            )
            if outcome is None:
                pending.append((position, prepared))
                for key in prepared.identity_keys:
                    pending_identity[key] = position
                for key in prepared.index_keys:
                    pending_index[key] = position
            else:
                outcomes[position] = outcome
        flush()
        rows.write()
        if echoes is not None:
            counts.echoes += echoes.echoed
            echoes.forget_changed(connection)
        result = [o if o is not None else Outcome(None, "skipped") for o in outcomes]
        for outcome in result:
            setattr(counts, outcome.status, getattr(counts, outcome.status) + 1)
        return result

    def _resolve_one(
        self,
        connection: Connection,
        prepared: Prepared,
        by_identity: dict[IdentityKey, str],
        by_index: dict[IndexKey, set[str]],
        counts: Counts,
        echoes: PageEchoes | None,
        rows: PageRows,
    ) -> Outcome | None:
        """Upsert into the matching customer; None when the record makes a new customer."""
        identity_hits = [by_identity[k] for k in prepared.identity_keys if k in by_identity]
        index_hits: set[str] = set()
        score: dict[str, int] = {}  # how many of the record's identifiers each candidate has
        for key in prepared.index_keys:
            for candidate in by_index.get(key, set()):
                index_hits.add(candidate)
                score[candidate] = score.get(candidate, 0) + 1
        ranked = sorted(score.values(), reverse=True)
        if identity_hits:
            target = identity_hits[0]
            linked_by_index = False
        elif len(index_hits) == 1 or (len(ranked) > 1 and ranked[0] > ranked[1]):
            # one candidate, or one sharing strictly more identifiers than any other (the others
            # are queued for review below)
            target = max(score, key=lambda c: score[c])
            linked_by_index = True
        elif index_hits:  # ambiguous: queue every pair, make the record a customer of its own
            self._queue(connection, sorted(index_hits), prepared, counts)
            prepared.review_with = sorted(index_hits)
            return None
        else:
            return None
        others = (set(identity_hits) | index_hits) - {target}
        if others:
            self._queue(connection, sorted({target, *others}), prepared, counts)
        changed, new_source = self._merge_into(
            connection, target, prepared, by_identity, by_index, echoes, rows
        )
        if linked_by_index and (changed or new_source):
            return Outcome(target, "merged", changed)
        return Outcome(target, "updated" if changed else "skipped", changed)

    def _merge_into(
        self,
        connection: Connection,
        customer_id: str,
        prepared: Prepared,
        by_identity: dict[IdentityKey, str],
        by_index: dict[IndexKey, set[str]],
        echoes: PageEchoes | None,
        rows: PageRows,
    ) -> tuple[list[str], bool]:
        """Apply the field merge rule to the fields that are not an echo of the vault's own
        push; add the identities not bound yet. Returns what changed and whether this source is
        new to the customer."""
        observed = as_utc(prepared.record.observed_at)
        fields = (
            prepared.fields
            if echoes is None
            else echoes.without_echoes(customer_id, prepared.fields)
        )
        existing = rows.fields(customer_id)
        winners: dict[str, str] = {}
        for name, raw in fields.items():
            stored = existing.get(name)
            if not self.ranking.wins(
                name,
                Observation(self.source, observed, prepared.masked[name]),
                stored.observation if stored else None,
            ):
                continue
            if rows.holds(customer_id, name, prepared.normalised[name]):
                rows.refresh(customer_id, name, observed)  # seen again: nothing to re-seal
            else:
                winners[name] = raw
        changed: list[str] = []
        if winners:
            changed = self.store.update(
                connection,
                customer_id,
                winners,
                source=self.source,
                observed_at=observed,
                stored_masked={name: stored.masked for name, stored in existing.items()},
            )
            rows.forget(customer_id)
            for key in prepared.index_keys:
                if key[0] in changed:
                    by_index.setdefault(key, set()).add(customer_id)
        for (platform, external_id), key in zip(
            prepared.identities, prepared.identity_keys, strict=True
        ):
            bound = by_identity.get(key)
            if bound is not None:
                continue  # already this customer's, or another's (then queued for review)
            try:
                self.store.add_identity(
                    connection,
                    customer_id,
                    platform,
                    external_id,
                    source=self.source,
                    observed_at=observed,
                )
            except Conflict:
                continue
            by_identity[key] = customer_id
            changed.append(IDENTITY_INDEX_PREFIX + platform)
        if prepared.record.platform_ciphertexts and rows.store_handles(
            customer_id, prepared.record.platform_ciphertexts, prepared.record.observed_at
        ):
            changed.append("platform_handles")
        return changed, rows.note_source(customer_id, fields)

    # --- review queue ------------------------------------------------------------------------

    def _queue(
        self,
        connection: Connection,
        customer_ids: Sequence[str],
        prepared: Prepared,
        counts: Counts,
    ) -> None:
        """Queue every pair of ``customer_ids`` (once) as possible duplicates, with the kinds
        of identifier the record shares with them (field names, never values)."""
        reason = "shares " + ", ".join(
            sorted(
                {key[0] for key in prepared.index_keys}
                | {f"identity:{p}" for p, _ in prepared.identities}
            )
        )
        now = utcnow()
        for i, a in enumerate(customer_ids):
            for b in customer_ids[i + 1 :]:
                if a == b:
                    continue
                low, high = sorted((a, b))
                known = connection.execute(
                    select(duplicate_reviews.c.id).where(
                        duplicate_reviews.c.customer_a == low,
                        duplicate_reviews.c.customer_b == high,
                    )
                ).first()
                if known is not None:
                    continue
                connection.execute(
                    insert(duplicate_reviews).values(
                        customer_a=low,
                        customer_b=high,
                        reason=reason[:128],
                        source=self.source,
                        created_at=now,
                        status="open",
                    )
                )
                counts.queued_for_review += 1


def stored_handle(
    store: CustomerStore, connection: Connection, customer_id: str, field: str, platform: str
) -> str | None:
    """A platform's ciphertext kept for ``customer_id`` (for platform decryption), or None."""
    row = connection.execute(
        select(platform_handles.c.handle).where(
            platform_handles.c.customer_id == customer_id,
            platform_handles.c.field == field,
            platform_handles.c.platform == platform,
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return store.sealed.open(connection, customer_id, f"handle:{platform}:{field}", row).decode()


def observed(value: datetime) -> datetime:
    return as_utc(value)
