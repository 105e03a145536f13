"""Segments: RFM summaries and scores, value tiers, lifecycle stages, tags and rule-based groups,
computed from purchase history alone (no personal field is decrypted) and kept current as orders
arrive.

* :mod:`vault.segments.summary`: the two RFM definitions (transaction count; Fader–Hardie repeat
  purchase), pure and exact.
* :mod:`vault.segments.rules`: ``policies/segments.toml`` (purchases, scores, tiers, stages).
* :mod:`vault.segments.expressions`: the rule language of tiers, stages and groups.
* :mod:`vault.segments.segmenter`: the state in the store, incremental and full.
* :mod:`vault.segments.importer`: the CDNOW and UCI Online Retail purchase logs.
* :mod:`vault.segments.operations`: ``SegmentOperations``, the session's segment methods.

For the rest of the vault: :func:`on_orders_changed` (``CustomerStore.record_order`` calls it
in the order's transaction, and tagging and address changes), :func:`on_customers_added` (the
bulk insert of new customers) and :func:`members_query` (the export filters by it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from sqlalchemy import Connection, Select, exists, select

from vault.segments.rules import SegmentRules, default_rules
from vault.segments.segmenter import RecomputeReport, Segmenter
from vault.segments.summary import (
    PurchaseHistory,
    RepeatSummary,
    TransactionSummary,
    repeat_summary,
    round_half_up,
    transaction_summary,
)
from vault.store.schema import (
    customer_groups,
    customer_segments,
    customer_tags,
    customers,
    group_members,
    tags,
)

__all__ = [
    "PurchaseHistory",
    "RecomputeReport",
    "RepeatSummary",
    "SegmentRules",
    "Segmenter",
    "TransactionSummary",
    "default_rules",
    "members_query",
    "on_customers_added",
    "on_orders_changed",
    "repeat_summary",
    "resolve_segment",
    "round_half_up",
    "transaction_summary",
]

KINDS = ("tier", "stage", "group", "tag")


@cache
def _default_segmenter() -> Segmenter:
    return Segmenter(default_rules())


def on_orders_changed(
    connection: Connection,
    customer_ids: Iterable[str | None],
    *,
    segmenter: Segmenter | None = None,
) -> None:
    """Bring the segment state of ``customer_ids`` up to date after their orders changed, in the
    caller's transaction. Only these customers are read and written."""
    (segmenter or _default_segmenter()).refresh(connection, customer_ids)


def on_customers_added(
    connection: Connection,
    regions: Mapping[str, tuple[str, str | None] | None],
    *,
    segmenter: Segmenter | None = None,
) -> None:
    """Put customers just inserted (id -> derived (province, city) or ``None``) into the rule
    groups they belong to, in the caller's transaction (no query per customer)."""
    (segmenter or _default_segmenter()).admit(connection, regions)


def resolve_segment(name: str, rules: SegmentRules) -> tuple[str, str]:
    """``(kind, name)`` of a segment name: ``tier:NAME``, ``stage:NAME``, ``group:NAME``,
    ``tag:NAME``, or a bare name: a tier or stage of the rules if it is one, else a group."""
    kind, sep, rest = name.partition(":")
    if sep and kind in KINDS:
        return kind, rest
    if name in rules.tier_names():
        return "tier", name
    if name in rules.stage_names():
        return "stage", name
    return "group", name


def members_query(
    name: str, *, rules: SegmentRules | None = None, segmenter: Segmenter | None = None
) -> Select[tuple[str]]:
    """``select(customer_id)`` of the live (not erased) members of a segment (see
    :func:`resolve_segment` for names). The export composes it with its own filters.

    A tier or stage that the rules give a customer without a purchase (``prospect``) also
    selects the customers who have no segment row.
    """
    segmenter = segmenter or (Segmenter(rules) if rules is not None else _default_segmenter())
    kind, value = resolve_segment(name, segmenter.rules)
    live = customers.c.erased_at.is_(None)
    if kind == "tag":
        return (
            select(customer_tags.c.customer_id)
            .join(tags, tags.c.id == customer_tags.c.tag_id)
            .join(customers, customers.c.id == customer_tags.c.customer_id)
            .where(tags.c.name == value, live)
        )
    if kind == "group":
        return (
            select(group_members.c.customer_id)
            .join(customer_groups, customer_groups.c.id == group_members.c.group_id)
            .join(customers, customers.c.id == group_members.c.customer_id)
            .where(customer_groups.c.name == value, live)
        )
    column = customer_segments.c.tier if kind == "tier" else customer_segments.c.stage
    stored = (
        select(customer_segments.c.customer_id)
        .join(customers, customers.c.id == customer_segments.c.customer_id)
        .where(column == value, live)
    )
    empty_tier, empty_stage = segmenter.empty_classification()
    if value != (empty_tier if kind == "tier" else empty_stage):
        return stored
    without_row = select(customers.c.id.label("customer_id")).where(
        live, ~exists().where(customer_segments.c.customer_id == customers.c.id)
    )
    return select(stored.union_all(without_row).subquery().c.customer_id)
