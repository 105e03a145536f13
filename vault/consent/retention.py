"""Retention: what the purposes and the field catalogue no longer justify keeping.

A customer is kept while some purpose still holds their data: a purpose whose legal basis is
not consent (``customer_service``: contract) holds it for its ``retention_days`` after the
customer's last activity; a consent purpose holds it likewise, but only while the consent is
granted. ``retention_days = 0`` means the purpose alone never keeps anyone. The last activity
is the latest of: the customer's last change, order, interaction and consent entry. A customer
no purpose holds any more is erased (crypto-shredded, as by ``erase_customer``).

A catalogue field with ``retention_days`` (``policies/fields.toml``) is removed from every
customer whose value of it was observed longer ago than that: the customer stays, without it.

A dry run (the default) changes nothing and reports what a run would do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, ScalarSelect, and_, delete, func, select

from vault.access.policy import Policy
from vault.consent.ledger import GRANTED, needs_consent
from vault.fields import FieldCatalogue
from vault.store.engine import as_utc
from vault.store.schema import (
    consent_events,
    consent_state,
    customer_fields,
    customers,
    interactions,
    orders,
)

PAGE = 5000


@dataclass(slots=True, kw_only=True)
class RetentionReport:
    dry_run: bool
    ran_at: datetime
    checked: int = 0
    expired: list[str] = field(default_factory=list)  # customers no purpose holds any more
    erased: int = 0
    fields: dict[str, int] = field(default_factory=dict)  # field -> values past its retention
    fields_removed: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "ran_at": self.ran_at.isoformat(),
            "checked": self.checked,
            "expired": len(self.expired),
            "expired_ids": self.expired,
            "erased": self.erased,
            "fields": self.fields,
            "fields_removed": self.fields_removed,
        }


def _latest(column: ColumnElement[Any], key: ColumnElement[Any]) -> ScalarSelect[Any]:
    return select(func.max(column)).where(key == customers.c.id).scalar_subquery()


def expired_customers(
    connection: Connection, policy: Policy, now: datetime
) -> Iterator[tuple[str, datetime]]:
    """``(customer id, last activity)`` of every live customer no purpose holds any more."""
    standing = [
        p for p in policy.purposes.values() if p.retention_days > 0 and not needs_consent(p)
    ]
    consented = {
        p.name: p for p in policy.purposes.values() if p.retention_days > 0 and needs_consent(p)
    }
    base_days = max((p.retention_days for p in standing), default=0)
    query = (
        select(
            customers.c.id,
            customers.c.updated_at,
            _latest(orders.c.updated_at, orders.c.customer_id),
            _latest(interactions.c.occurred_at, interactions.c.customer_id),
            _latest(consent_events.c.at, consent_events.c.customer_id),
        )
        .where(customers.c.erased_at.is_(None))
        .order_by(customers.c.id)
        .limit(PAGE)
    )
    after = ""
    while True:
        rows = connection.execute(query.where(customers.c.id > after)).all()
        if not rows:
            return
        after = rows[-1][0]
        granted: dict[str, list[str]] = {}
        if consented:
            for customer_id, purpose in connection.execute(
                select(consent_state.c.customer_id, consent_state.c.purpose).where(
                    consent_state.c.customer_id.in_([r[0] for r in rows]),
                    consent_state.c.state == GRANTED,
                    consent_state.c.purpose.in_(list(consented)),
                )
            ):
                granted.setdefault(customer_id, []).append(purpose)
        for customer_id, *moments in rows:
            last = max(as_utc(m) for m in moments if m is not None)
            days = max(
                [base_days, *(consented[p].retention_days for p in granted.get(customer_id, []))]
            )
            if last + timedelta(days=days) < now:
                yield customer_id, last


def expired_fields(
    connection: Connection, catalogue: FieldCatalogue, now: datetime
) -> dict[str, int]:
    """How many values of each field with a retention period are older than it."""
    counts: dict[str, int] = {}
    for name, spec in catalogue.items():
        if spec.retention_days is None:
            continue
        count = connection.execute(
            select(func.count())
            .select_from(customer_fields)
            .join(customers, customers.c.id == customer_fields.c.customer_id)
            .where(
                customer_fields.c.field == name,
                customer_fields.c.observed_at < now - timedelta(days=spec.retention_days),
                customers.c.erased_at.is_(None),
            )
        ).scalar_one()
        if count:
            counts[name] = int(count)
    return counts


def remove_expired_fields(
    connection: Connection, catalogue: FieldCatalogue, now: datetime
) -> tuple[int, list[str]]:
    """Delete field values past their field's retention; returns (count, customers touched)."""
    removed = 0
    touched: set[str] = set()
    for name, spec in catalogue.items():
        if spec.retention_days is None:
            continue
        condition = and_(
            customer_fields.c.field == name,
            customer_fields.c.observed_at < now - timedelta(days=spec.retention_days),
        )
        touched.update(
            connection.execute(select(customer_fields.c.customer_id).where(condition)).scalars()
        )
        removed += int(connection.execute(delete(customer_fields).where(condition)).rowcount or 0)
    return removed, sorted(touched)
