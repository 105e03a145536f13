"""``SegmentOperations``: the session's segment methods, each through the door.

Reads are the ``read`` action for the session's purpose (the analyst reads for ``analytics``):
they return ids, scores, tiers, stages, group and tag names and purchase summaries, never a
personal field, so they need no field view; the audit event names the customers read.
Recompute and group definitions are ``write``; the order import is ``import``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select

from vault.audit import AuditEvent
from vault.door import Door
from vault.errors import Conflict, InvalidValue, NotFound
from vault.records import NewCustomer, Order
from vault.segments import members_query, resolve_segment
from vault.segments.importer import OrderImportReport, iter_batches, parse
from vault.segments.rules import NAME_PATTERN
from vault.segments.segmenter import RecomputeReport, check_group_rule
from vault.segments.summary import (
    Frequency,
    PurchaseHistory,
    RepeatSummary,
    TransactionSummary,
    Unit,
    repeat_summary,
    transaction_summary,
)
from vault.store.engine import utcnow
from vault.store.schema import (
    customer_groups,
    customer_segments,
    customer_tags,
    customers,
    group_members,
    orders,
    tags,
)

SEGMENT_DEFINITIONS = ("transaction", "repeat")
IMPORT_BATCH = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerSegment:
    """One customer's segments: no personal data."""

    customer_id: str
    tier: str | None
    stage: str | None
    r: int | None
    f: int | None
    m: int | None
    history: PurchaseHistory | None
    as_of: date | None
    groups: Sequence[str]
    tags: Sequence[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentListing:
    counts: Mapping[str, Mapping[str, int]]
    """``{"tier": {"high_value": 12, ...}, "stage": {...}, "group": {...}}``"""
    customer_ids: Sequence[str]
    total: int
    next_after: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupInfo:
    name: str
    rule: str | None
    description: str
    members: int


class SegmentOperations(Door):
    """Segments at the door: see :mod:`vault.segments`."""

    # --- reading -----------------------------------------------------------------------------

    def segment_of(self, customer_id: str, *, purpose: str | None = None) -> CustomerSegment:
        """A customer's stored segments (a customer without a purchase: the prospect stage)."""
        purpose = self.authorize("read", purpose, customer_ids=[customer_id])

        def operation(connection: Connection) -> CustomerSegment:
            if not self._vault._customers.exists(connection, customer_id):
                raise NotFound(f"no customer {customer_id}")
            row = connection.execute(
                select(customer_segments).where(customer_segments.c.customer_id == customer_id)
            ).first()
            group_names = connection.execute(
                select(customer_groups.c.name)
                .join(group_members, group_members.c.group_id == customer_groups.c.id)
                .where(group_members.c.customer_id == customer_id)
                .order_by(customer_groups.c.name)
            ).scalars()
            tag_names = connection.execute(
                select(tags.c.name)
                .join(customer_tags, customer_tags.c.tag_id == tags.c.id)
                .where(customer_tags.c.customer_id == customer_id)
                .order_by(tags.c.name)
            ).scalars()
            if row is None:
                tier, stage = self._vault.segments.empty_classification()
                return CustomerSegment(
                    customer_id=customer_id,
                    tier=tier,
                    stage=stage,
                    r=None,
                    f=None,
                    m=None,
                    history=None,
                    as_of=None,
                    groups=list(group_names),
                    tags=list(tag_names),
                )
            return CustomerSegment(
                customer_id=customer_id,
                tier=row.tier,
                stage=row.stage,
                r=row.r_score,
                f=row.f_score,
                m=row.m_score,
                history=PurchaseHistory(
                    first_day=row.first_day,
                    last_day=row.last_day,
                    orders=row.orders,
                    purchase_days=row.purchase_days,
                    total_amount=row.total_amount,
                    first_day_amount=row.first_day_amount,
                ),
                as_of=row.as_of,
                groups=list(group_names),
                tags=list(tag_names),
            )

        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=[customer_id],
                details={"operation": "segment"},
            ),
            operation,
        )

    def rfm_summaries(
        self,
        *,
        definition: str = "transaction",
        end: date | None = None,
        unit: Unit = "days",
        frequency: Frequency | None = None,
        customer_ids: Sequence[str] | None = None,
        purpose: str | None = None,
    ) -> dict[str, TransactionSummary | RepeatSummary]:
        """RFM summaries computed from the orders up to ``end`` (default: the as-of day of
        :meth:`recompute_segments`: today in the shop's time zone, or the end of imported closed
        logs), by ``definition``: ``transaction`` (frequency = purchase days or orders;
        default as the rules say) or ``repeat`` (Fader–Hardie x, t_x, T, mean repeat value).
        Customers without a purchase up to ``end`` are left out."""
        if definition not in SEGMENT_DEFINITIONS:
            raise ValueError(f"definition must be one of {', '.join(SEGMENT_DEFINITIONS)}")
        segmenter = self._vault.segments
        if end is None:
            with self._vault._reader.connect() as connection:
                end = segmenter.default_as_of(connection)
        end_day = end
        chosen: Frequency = frequency or segmenter.rules.frequency
        purpose = self.authorize("read", purpose, customer_ids=customer_ids or ())
        read: list[str] = []

        def operation(connection: Connection) -> dict[str, TransactionSummary | RepeatSummary]:
            query = select(
                orders.c.customer_id,
                orders.c.created_at,
                orders.c.total_amount,
                orders.c.status,
                orders.c.refunded_at,
                orders.c.currency,
            ).where(orders.c.customer_id.is_not(None))
            if customer_ids is not None:
                query = query.where(orders.c.customer_id.in_(list(customer_ids)))
            purchases: dict[str, list[tuple[date, int]]] = {}
            rules = segmenter.rules
            for cid, created_at, amount, status, refunded_at, currency in connection.execute(query):
                if not rules.is_excluded(status, refunded_at is not None, currency):
                    purchases.setdefault(cid, []).append((segmenter.day_of(created_at), amount))
            result: dict[str, TransactionSummary | RepeatSummary] = {}
            for cid in sorted(purchases):
                history = PurchaseHistory.of(purchases[cid], end=end_day)
                if history is None:
                    continue
                result[cid] = (
                    repeat_summary(history, end=end_day, unit=unit)
                    if definition == "repeat"
                    else transaction_summary(history, end=end_day, unit=unit, frequency=chosen)
                )
            read.extend(result)
            return result

        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=read,
                details={
                    "operation": "rfm-summaries",
                    "definition": definition,
                    "end": end_day.isoformat(),
                    "unit": unit,
                },
            ),
            operation,
        )

    def list_segments(
        self,
        *,
        tier: str | None = None,
        stage: str | None = None,
        group: str | None = None,
        tag: str | None = None,
        limit: int = 1000,
        after: str | None = None,
        purpose: str | None = None,
    ) -> SegmentListing:
        """Counts per tier, stage and group, and the ids (paged by ``after``) of the customers
        in all of the given segments."""
        if not 1 <= limit <= 100_000:
            raise ValueError("limit must be between 1 and 100000")
        purpose = self.authorize("read", purpose)
        listed: list[str] = []
        filters = [
            f"{kind}:{value}"
            for kind, value in (("tier", tier), ("stage", stage), ("group", group), ("tag", tag))
            if value is not None
        ]

        def operation(connection: Connection) -> SegmentListing:
            counts = self._counts(connection)
            query = select(customers.c.id).where(customers.c.erased_at.is_(None))
            for name in filters:
                query = query.where(customers.c.id.in_(self._members(name)))
            total = connection.execute(
                select(func.count()).select_from(query.subquery())
            ).scalar_one()
            if after is not None:
                query = query.where(customers.c.id > after)
            ids = list(
                connection.execute(query.order_by(customers.c.id).limit(limit + 1)).scalars()
            )
            more = len(ids) > limit
            ids = ids[:limit]
            listed.extend(ids)
            return SegmentListing(
                counts=counts,
                customer_ids=ids,
                total=int(total),
                next_after=ids[-1] if more and ids else None,
            )

        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=listed,
                details={"operation": "segments-list", "filters": filters},
            ),
            operation,
        )

    def segment_members(
        self, name: str, *, limit: int = 1000, after: str | None = None, purpose: str | None = None
    ) -> SegmentListing:
        """The members of one segment (``tier:``/``stage:``/``group:``/``tag:`` or a bare
        tier, stage or group name)."""
        kind, value = resolve_segment(name, self._vault.segments.rules)
        return self.list_segments(
            limit=limit, after=after, purpose=purpose, **{kind: self._check_segment(kind, value)}
        )

    def _check_segment(self, kind: str, value: str) -> str:
        rules = self._vault.segments.rules
        known = {"tier": rules.tier_names(), "stage": rules.stage_names()}.get(kind)
        if known is not None and value not in known:
            raise NotFound(f"no {kind} {value!r} in {rules.source} (known: {', '.join(known)})")
        if kind == "group":
            with self._vault._reader.connect() as connection:
                if (
                    connection.execute(
                        select(customer_groups.c.id).where(customer_groups.c.name == value)
                    ).first()
                    is None
                ):
                    raise NotFound(f"no group {value!r}")
        return value

    def _members(self, name: str) -> Any:
        return members_query(name, segmenter=self._vault.segments)

    def _counts(self, connection: Connection) -> dict[str, dict[str, int]]:
        rules = self._vault.segments.rules
        live = customers.c.erased_at.is_(None)
        counts: dict[str, dict[str, int]] = {"tier": {}, "stage": {}, "group": {}}
        for kind, names in (("tier", rules.tier_names()), ("stage", rules.stage_names())):
            column = customer_segments.c.tier if kind == "tier" else customer_segments.c.stage
            found: dict[str, int] = dict(
                connection.execute(  # type: ignore[arg-type]  # rows are (name, count) pairs
                    select(column, func.count())
                    .join(customers, customers.c.id == customer_segments.c.customer_id)
                    .where(live, column.is_not(None))
                    .group_by(column)
                ).all()
            )
            counts[kind] = {name: int(found.get(name, 0)) for name in names}
        empty_tier, empty_stage = self._vault.segments.empty_classification()
        without_row = connection.execute(
            select(func.count())
            .select_from(customers)
            .where(
                live,
                ~select(customer_segments.c.customer_id)
                .where(customer_segments.c.customer_id == customers.c.id)
                .exists(),
            )
        ).scalar_one()
        for kind, value in (("tier", empty_tier), ("stage", empty_stage)):
            if value is not None:
                counts[kind][value] = counts[kind].get(value, 0) + int(without_row)
        counts["group"] = {
            name: int(size)
            for name, size in connection.execute(
                select(customer_groups.c.name, func.count(group_members.c.customer_id))
                .select_from(customer_groups)
                .outerjoin(group_members, group_members.c.group_id == customer_groups.c.id)
                .group_by(customer_groups.c.name)
                .order_by(customer_groups.c.name)
            )
        }
        return counts

    def list_groups(self, *, purpose: str | None = None) -> list[GroupInfo]:
        purpose = self.authorize("read", purpose)

        def operation(connection: Connection) -> list[GroupInfo]:
            return [
                GroupInfo(
                    name=row.name,
                    rule=row.rule,
                    description=row.description,
                    members=int(row.members),
                )
                for row in connection.execute(
                    select(
                        customer_groups.c.name,
                        customer_groups.c.rule,
                        customer_groups.c.description,
                        func.count(group_members.c.customer_id).label("members"),
                    )
                    .select_from(customer_groups)
                    .outerjoin(group_members, group_members.c.group_id == customer_groups.c.id)
                    .group_by(
                        customer_groups.c.name,
                        customer_groups.c.rule,
                        customer_groups.c.description,
                    )
                    .order_by(customer_groups.c.name)
                )
            ]

        return self._audited(
            AuditEvent(action="read", purpose=purpose, details={"operation": "groups-list"}),
            operation,
        )

    # --- writing -----------------------------------------------------------------------------

    def add_group(
        self, name: str, rule: str, *, description: str = "", purpose: str | None = None
    ) -> int:
        """Define a rule-based group and fill it; returns its size. It stays current as orders
        arrive. The name may not be a tier or stage name."""
        if not NAME_PATTERN.match(name):
            raise InvalidValue(field="group", reason="lower-case letters, digits, _ or -")
        rules = self._vault.segments.rules
        if name in rules.tier_names() or name in rules.stage_names():
            raise Conflict(f"{name!r} is a tier or stage name in {rules.source}")
        check_group_rule(rule, name=name)
        purpose = self.authorize("write", purpose)

        def operation(connection: Connection) -> int:
            if connection.execute(
                select(customer_groups.c.id).where(customer_groups.c.name == name)
            ).first():
                raise Conflict(f"there is already a group {name!r}")
            group_id = connection.execute(
                insert(customer_groups).values(
                    name=name, description=description, rule=rule, created_at=utcnow()
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            return self._vault.segments.refresh_group(connection, int(group_id))

        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                details={"operation": "group-add", "group": name, "rule": rule},
            ),
            operation,
        )

    def recompute_segments(
        self, *, rescore: bool = True, as_of: date | None = None, purpose: str | None = None
    ) -> RecomputeReport:
        """Rebuild every customer's segments from the orders and every live customer's rule
        groups (``rescore``: take the quantile cut points afresh first). Recency is measured to
        ``as_of``; by default today, or for a vault holding only closed logs imported with
        :meth:`import_orders`, the day after the logs' last order
        (:meth:`vault.segments.Segmenter.default_as_of`)."""
        purpose = self.authorize("write", purpose)
        details: dict[str, Any] = {"operation": "segments-recompute", "rescore": rescore}
        if as_of is not None:
            details["as_of"] = as_of.isoformat()
        return self._audited(
            AuditEvent(action="write", purpose=purpose, details=details),
            lambda connection: self._vault.segments.recompute(
                connection, rescore=rescore, as_of=as_of
            ),
        )

    def import_orders(
        self, path: str | Path, *, fmt: str, purpose: str | None = None
    ) -> OrderImportReport:
        """Import a CDNOW or Online Retail purchase log (:mod:`vault.segments.importer`): the
        whole file is read and checked first; then orders land in batches, each one transaction
        with its audit event, customers created as identity-only records. The log is closed:
        the day after its last order is recorded as its as-of day, which recency is measured
        to while the vault holds no order from another source (see
        :meth:`recompute_segments`)."""
        purpose = self.authorize("import", purpose)
        segmenter = self._vault.segments
        parsed = parse(Path(path), fmt, timezone=segmenter.rules.timezone)
        store = self._vault._customers
        known: dict[str, str] = {}
        created = found = 0
        last_day = max((segmenter.day_of(o.order.created_at) for o in parsed.orders), default=None)
        as_of: date | None = None
        for number, batch in enumerate(iter_batches(parsed.orders, IMPORT_BATCH)):
            with self._vault._transaction() as connection:
                if number == 0 and last_day is not None:
                    as_of = segmenter.record_log(connection, f"import:{fmt}", last_day)
                missing: list[str] = []
                for item in batch:
                    external = item.external_customer
                    if external is None or external in known or external in missing:
                        continue
                    customer_id = store.find_identity(connection, parsed.platform, external)
                    if customer_id is None:
                        missing.append(external)
                    else:
                        known[external] = customer_id
                        found += 1
                new_ids = store.add_many(
                    connection,
                    [NewCustomer(fields={}, identities=[(parsed.platform, e)]) for e in missing],
                    source=f"import:{fmt}",
                )
                known.update(zip(missing, new_ids, strict=True))
                created += len(new_ids)
                batch_orders: list[Order] = [
                    _with_customer(item.order, known.get(item.external_customer or ""))
                    for item in batch
                ]
                store.record_orders(connection, batch_orders, source=f"import:{fmt}")
                touched = sorted({o.customer_id for o in batch_orders if o.customer_id})
                self._append(
                    connection,
                    AuditEvent(
                        action="import",
                        purpose=purpose,
                        customer_ids=touched,
                        details={
                            "operation": "import-orders",
                            "format": fmt,
                            "orders": len(batch_orders),
                            "customers_created": len(new_ids),
                            **({"as_of": as_of.isoformat()} if as_of and number == 0 else {}),
                        },
                    ),
                )
        return OrderImportReport(
            format=fmt,
            lines=parsed.lines,
            orders=len(parsed.orders),
            orders_without_customer=sum(1 for o in parsed.orders if o.external_customer is None),
            customers_created=created,
            customers_found=found,
            rounded_prices=parsed.rounded_prices,
            as_of=as_of,
        )


def _with_customer(order: Order, customer_id: str | None) -> Order:
    return replace(order, customer_id=customer_id)
