"""Merging two customers into one, and undoing it from the merge record.

``merge(A, B)`` folds B into A: B's field values win where the merge rule says so (their
source and time kept), B's identities, orders, interactions, tags, sources and platform handles
move to A, and B's row goes. Everything needed to undo it (B's values, A's values they
replaced, what moved) is kept in ``merge_records.snapshot``, **sealed under A's data key**: so
erasing A crypto-shreds the snapshot too, and B's data never outlives the survivor's.

``unmerge`` recreates B under its old id with a fresh data key, moves back what moved, and
restores A's replaced values where they are still the ones the merge wrote (a value A got from
a later sync stays). Consent records stay with the id they were given under: a merge never
extends one person's consent to another record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from vault.errors import Conflict, NotFound
from vault.store.customers import IDENTITY_INDEX_PREFIX, CustomerStore
from vault.store.engine import as_utc, utcnow
from vault.store.schema import (
    customer_fields,
    customer_identities,
    customer_sources,
    customer_tags,
    customers,
    duplicate_reviews,
    interactions,
    merge_records,
    orders,
    platform_handles,
    push_state,
    pushed_values,
)
from vault.sync.sources import Observation, SourceRanking


@dataclass(frozen=True, slots=True)
class MergeResult:
    merge_id: int
    survivor_id: str
    merged_id: str
    fields_taken: list[str]  # fields of the survivor that now hold the merged one's value
    identities_moved: int
    orders_moved: int


def _time(value: datetime) -> str:
    return as_utc(value).isoformat()


def _snapshot_context(merged_id: str) -> str:
    return f"merge:{merged_id}"


def merge(
    connection: Connection,
    store: CustomerStore,
    ranking: SourceRanking,
    survivor_id: str,
    merged_id: str,
    *,
    by: str,
) -> MergeResult:
    if survivor_id == merged_id:
        raise Conflict("a customer cannot be merged into itself")
    for customer_id in (survivor_id, merged_id):
        if not store.exists(connection, customer_id):
            raise NotFound.customer(customer_id)
    merged = store.get(connection, merged_id)
    survivor = store.get(connection, survivor_id, with_identities=False)
    head = connection.execute(
        select(customers.c.created_at).where(customers.c.id == merged_id)
    ).scalar_one()

    # fields: the merge rule decides, per field
    prior: dict[str, Any] = {}
    taken: dict[str, str] = {}
    for name, value in merged.fields.items():
        current = survivor.fields.get(name)
        existing = (
            None
            if current is None
            else Observation(current.source, current.observed_at, current.masked)
        )
        if not ranking.wins(
            name, Observation(value.source, value.observed_at, value.masked), existing
        ):
            continue
        prior[name] = (
            None
            if current is None
            else {
                "value": current.value,
                "source": current.source,
                "observed_at": _time(current.observed_at),
            }
        )
        connection.execute(
            delete(customer_fields).where(
                customer_fields.c.customer_id == survivor_id, customer_fields.c.field == name
            )
        )
        store.update(
            connection,
            survivor_id,
            {name: value.value},
            source=value.source,
            observed_at=value.observed_at,
        )
        taken[name] = _time(value.observed_at)

    # identities
    connection.execute(
        delete(customer_identities).where(customer_identities.c.customer_id == merged_id)
    )
    for identity in merged.identities:
        store.add_identity(
            connection,
            survivor_id,
            identity.platform,
            identity.external_id,
            source=identity.source,
            observed_at=identity.observed_at,
        )

    # orders, interactions (their texts sealed again under the survivor's key)
    order_ids = list(
        connection.execute(select(orders.c.id).where(orders.c.customer_id == merged_id)).scalars()
    )
    connection.execute(
        update(orders).where(orders.c.customer_id == merged_id).values(customer_id=survivor_id)
    )
    store.segmenter.refresh(connection, [merged_id, survivor_id])
    moved_interactions = _move_interactions(connection, store, merged_id, survivor_id)

    # tags, sources, platform handles
    merged_tags = list(
        connection.execute(
            select(
                customer_tags.c.tag_id, customer_tags.c.source, customer_tags.c.created_at
            ).where(customer_tags.c.customer_id == merged_id)
        ).all()
    )
    survivor_tags = set(
        connection.execute(
            select(customer_tags.c.tag_id).where(customer_tags.c.customer_id == survivor_id)
        ).scalars()
    )
    tags_added = [row.tag_id for row in merged_tags if row.tag_id not in survivor_tags]
    for row in merged_tags:
        if row.tag_id in survivor_tags:
            continue
        connection.execute(
            insert(customer_tags).values(
                customer_id=survivor_id,
                tag_id=row.tag_id,
                source=row.source,
                created_at=row.created_at,
            )
        )
    sources_before = _sources(connection, survivor_id)
    merged_sources = _sources(connection, merged_id)
    for source, (names, first, last) in merged_sources.items():
        if source in sources_before:
            union = sorted(set(names.split(",")) | set(sources_before[source][0].split(",")))
            connection.execute(
                update(customer_sources)
                .where(
                    customer_sources.c.customer_id == survivor_id,
                    customer_sources.c.source == source,
                )
                .values(fields=",".join(n for n in union if n))
            )
        else:
            connection.execute(
                insert(customer_sources).values(
                    customer_id=survivor_id,
                    source=source,
                    fields=names,
                    first_seen_at=first,
                    last_seen_at=last,
                )
            )
    handles = _move_handles(connection, store, merged_id, survivor_id)

    snapshot = {
        "v": 1,
        "merged_created_at": _time(head),
        "merged_fields": {
            name: {
                "value": v.value,
                "source": v.source,
                "observed_at": _time(v.observed_at),
            }
            for name, v in merged.fields.items()
        },
        "merged_identities": [
            {
                "platform": i.platform,
                "external_id": i.external_id,
                "source": i.source,
                "observed_at": _time(i.observed_at),
            }
            for i in merged.identities
        ],
        "merged_tags": [
            {"tag_id": r.tag_id, "source": r.source, "created_at": _time(r.created_at)}
            for r in merged_tags
        ],
        "tags_added": tags_added,
        "merged_sources": {
            s: [names, _time(first), _time(last)]
            for s, (names, first, last) in merged_sources.items()
        },
        "survivor_sources_before": {
            s: [names, _time(first), _time(last)]
            for s, (names, first, last) in sources_before.items()
        },
        "survivor_prior": prior,
        "taken": taken,
        "orders": order_ids,
        "interactions": moved_interactions,
        "handles": handles,
    }
    sealed = store.sealed.seal(
        connection,
        survivor_id,
        _snapshot_context(merged_id),
        json.dumps(snapshot, ensure_ascii=False).encode(),
    )
    for table in (
        customer_fields,
        customer_tags,
        customer_sources,
        platform_handles,
        push_state,
        pushed_values,
    ):
        connection.execute(delete(table).where(table.c.customer_id == merged_id))
    connection.execute(delete(customers).where(customers.c.id == merged_id))
    store.sealed.forget(merged_id)
    merge_id = connection.execute(
        insert(merge_records).values(
            survivor_id=survivor_id,
            merged_id=merged_id,
            merged_at=utcnow(),
            merged_by=by,
            snapshot=sealed,
        )
    ).inserted_primary_key
    assert merge_id is not None
    _resolve_review(connection, survivor_id, merged_id, "merged", by)
    connection.execute(
        update(customers).where(customers.c.id == survivor_id).values(updated_at=utcnow())
    )
    return MergeResult(
        merge_id=int(merge_id[0]),
        survivor_id=survivor_id,
        merged_id=merged_id,
        fields_taken=sorted(taken),
        identities_moved=len(merged.identities),
        orders_moved=len(order_ids),
    )


def unmerge(connection: Connection, store: CustomerStore, merge_id: int, *, by: str) -> MergeResult:
    row = connection.execute(select(merge_records).where(merge_records.c.id == merge_id)).first()
    if row is None:
        raise NotFound(f"no merge {merge_id}")
    if row.undone_at is not None:
        raise Conflict(f"merge {merge_id} was already undone")
    survivor_id, merged_id = row.survivor_id, row.merged_id
    if not store.exists(connection, survivor_id):
        raise NotFound.customer(survivor_id, f"(the survivor of merge {merge_id})")
    if store.exists(connection, merged_id):
        raise Conflict(f"customer {merged_id} exists again; merge {merge_id} cannot be undone")
    snapshot: dict[str, Any] = json.loads(
        store.sealed.open(connection, survivor_id, _snapshot_context(merged_id), row.snapshot)
    )
    now = utcnow()

    # the merged customer again, under its old id and a fresh data key
    fresh = store.sealed.new_customer(merged_id)
    connection.execute(
        insert(customers).values(
            id=merged_id,
            created_at=datetime.fromisoformat(snapshot["merged_created_at"]),
            updated_at=now,
            dek_version=fresh.dek_version,
            wrapped_dek=fresh.wrapped_dek,
            kek_version=fresh.kek_version,
        )
    )
    for name, value in snapshot["merged_fields"].items():
        store.update(
            connection,
            merged_id,
            {name: value["value"]},
            source=value["source"],
            observed_at=datetime.fromisoformat(value["observed_at"]),
        )

    # the survivor's values the merge replaced, where they are still the merge's
    current = {
        r.field: (r.source, _time(r.observed_at))
        for r in connection.execute(
            select(
                customer_fields.c.field, customer_fields.c.source, customer_fields.c.observed_at
            ).where(customer_fields.c.customer_id == survivor_id)
        )
    }
    for name, taken_at in snapshot["taken"].items():
        wrote = (snapshot["merged_fields"][name]["source"], taken_at)
        if current.get(name) != wrote:
            continue  # changed since the merge: the newer value stays
        connection.execute(
            delete(customer_fields).where(
                customer_fields.c.customer_id == survivor_id, customer_fields.c.field == name
            )
        )
        before = snapshot["survivor_prior"].get(name)
        if before is not None:
            store.update(
                connection,
                survivor_id,
                {name: before["value"]},
                source=before["source"],
                observed_at=datetime.fromisoformat(before["observed_at"]),
            )

    # identities, orders, interactions, tags, sources, handles back
    for identity in snapshot["merged_identities"]:
        platform = identity["platform"]
        digest = store._indexer.digest(
            IDENTITY_INDEX_PREFIX + platform, identity["external_id"].strip()
        )
        connection.execute(
            delete(customer_identities).where(
                customer_identities.c.platform == platform,
                customer_identities.c.external_index == digest,
                customer_identities.c.customer_id == survivor_id,
            )
        )
        store.add_identity(
            connection,
            merged_id,
            platform,
            identity["external_id"],
            source=identity["source"],
            observed_at=datetime.fromisoformat(identity["observed_at"]),
        )
    if snapshot["orders"]:
        connection.execute(
            update(orders)
            .where(orders.c.id.in_(snapshot["orders"]), orders.c.customer_id == survivor_id)
            .values(customer_id=merged_id)
        )
        store.segmenter.refresh(connection, [merged_id, survivor_id])
    for interaction_id in snapshot["interactions"]:
        _move_interaction(connection, store, interaction_id, survivor_id, merged_id)
    for tag_id in snapshot["tags_added"]:
        connection.execute(
            delete(customer_tags).where(
                customer_tags.c.customer_id == survivor_id, customer_tags.c.tag_id == tag_id
            )
        )
    for tag in snapshot["merged_tags"]:
        connection.execute(
            insert(customer_tags).values(
                customer_id=merged_id,
                tag_id=tag["tag_id"],
                source=tag["source"],
                created_at=datetime.fromisoformat(tag["created_at"]),
            )
        )
    before_sources: Mapping[str, list[str]] = snapshot["survivor_sources_before"]
    for source, (names, first, last) in snapshot["merged_sources"].items():
        connection.execute(
            insert(customer_sources).values(
                customer_id=merged_id,
                source=source,
                fields=names,
                first_seen_at=datetime.fromisoformat(first),
                last_seen_at=datetime.fromisoformat(last),
            )
        )
        key = and_(
            customer_sources.c.customer_id == survivor_id, customer_sources.c.source == source
        )
        if source in before_sources:
            connection.execute(
                update(customer_sources).where(key).values(fields=before_sources[source][0])
            )
        else:
            connection.execute(delete(customer_sources).where(key))
    for handle in snapshot["handles"]:
        _move_handle(connection, store, survivor_id, merged_id, handle["field"], handle["platform"])

    connection.execute(
        update(merge_records)
        .where(merge_records.c.id == merge_id)
        .values(undone_at=now, undone_by=by)
    )
    _resolve_review(connection, survivor_id, merged_id, "dismissed", by)
    return MergeResult(
        merge_id=merge_id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        fields_taken=sorted(snapshot["taken"]),
        identities_moved=len(snapshot["merged_identities"]),
        orders_moved=len(snapshot["orders"]),
    )


# --- helpers ---------------------------------------------------------------------------------


def _sources(connection: Connection, customer_id: str) -> dict[str, tuple[str, datetime, datetime]]:
    return {
        row.source: (row.fields, row.first_seen_at, row.last_seen_at)
        for row in connection.execute(
            select(customer_sources).where(customer_sources.c.customer_id == customer_id)
        )
    }


def _sources_json(sources: dict[str, tuple[str, datetime, datetime]]) -> dict[str, list[str]]:
    return {s: [names, _time(first), _time(last)] for s, (names, first, last) in sources.items()}


def _move_interaction(
    connection: Connection, store: CustomerStore, interaction_id: str, source: str, target: str
) -> None:
    text = connection.execute(
        select(interactions.c.text).where(
            interactions.c.id == interaction_id, interactions.c.customer_id == source
        )
    ).first()
    if text is None:
        return
    context = f"interaction:{interaction_id}"
    sealed = text.text
    if sealed is not None:
        sealed = store.sealed.reseal(connection, source, target, context, sealed)
    connection.execute(
        update(interactions)
        .where(interactions.c.id == interaction_id)
        .values(customer_id=target, text=sealed)
    )


def _move_interactions(
    connection: Connection, store: CustomerStore, source: str, target: str
) -> list[str]:
    ids = list(
        connection.execute(
            select(interactions.c.id).where(interactions.c.customer_id == source)
        ).scalars()
    )
    for interaction_id in ids:
        _move_interaction(connection, store, interaction_id, source, target)
    return ids


def _move_handle(
    connection: Connection,
    store: CustomerStore,
    source: str,
    target: str,
    field: str,
    platform: str,
) -> bool:
    key = and_(
        platform_handles.c.customer_id == source,
        platform_handles.c.field == field,
        platform_handles.c.platform == platform,
    )
    row = connection.execute(select(platform_handles).where(key)).first()
    if row is None:
        return False
    exists = connection.execute(
        select(platform_handles.c.field).where(
            platform_handles.c.customer_id == target,
            platform_handles.c.field == field,
            platform_handles.c.platform == platform,
        )
    ).first()
    context = f"handle:{platform}:{field}"
    if exists is None:
        connection.execute(
            insert(platform_handles).values(
                customer_id=target,
                field=field,
                platform=platform,
                handle=store.sealed.reseal(connection, source, target, context, row.handle),
                observed_at=row.observed_at,
            )
        )
    connection.execute(delete(platform_handles).where(key))
    return exists is None


def _move_handles(
    connection: Connection, store: CustomerStore, source: str, target: str
) -> list[dict[str, str]]:
    moved = []
    for row in connection.execute(
        select(platform_handles.c.field, platform_handles.c.platform).where(
            platform_handles.c.customer_id == source
        )
    ).all():
        if _move_handle(connection, store, source, target, row.field, row.platform):
            moved.append({"field": row.field, "platform": row.platform})
    return moved


def _resolve_review(connection: Connection, a: str, b: str, status: str, by: str) -> None:
    low, high = sorted((a, b))
    connection.execute(
        update(duplicate_reviews)
        .where(duplicate_reviews.c.customer_a == low, duplicate_reviews.c.customer_b == high)
        .values(status=status, resolved_at=utcnow(), resolved_by=by)
    )
