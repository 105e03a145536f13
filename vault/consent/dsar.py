"""The data-subject access document: everything held on one person, machine-readable.

Fields with their provenance, platform identities, orders, interactions, tags, the consent
ledger and current state, every access to them that the audit log holds (through its customer
index), which systems received their data (exports and sync pushes), and erasure requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from vault.audit import AuditQuery
from vault.consent import erasure, ledger
from vault.records import Customer, Interaction, Order
from vault.serialise import customer_to_json
from vault.store.engine import utcnow

DSAR_FORMAT = "vault-dsar/v1"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def order_to_json(order: Order) -> dict[str, Any]:
    return {
        "platform": order.platform,
        "shop": order.shop,
        "order_id": order.order_id,
        "status": order.status,
        "currency": order.currency,
        "total_amount": order.total_amount,
        "created_at": _iso(order.created_at),
        "paid_at": _iso(order.paid_at),
        "updated_at": _iso(order.updated_at),
        "refunded_at": _iso(order.refunded_at),
        "items": [
            {
                "product_id": item.product_id,
                "product_name": item.product_name,
                "category": item.category,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
            }
            for item in order.items
        ],
    }


def interaction_to_json(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "kind": interaction.kind,
        "channel": interaction.channel,
        "occurred_at": _iso(interaction.occurred_at),
        "text": interaction.text,
        "source": interaction.source,
    }


def consent_to_json(summary: ledger.ConsentSummary) -> dict[str, Any]:
    return {
        "current": {
            name: {
                "legal_basis": p.legal_basis,
                "needs_consent": p.needs_consent,
                "state": p.state,
                "active": p.active,
                "at": _iso(p.at),
                "policy_version": p.policy_version,
                "current_version": p.current_version,
                "needs_renewal": p.needs_renewal,
            }
            for name, p in summary.purposes.items()
        },
        "ledger": [
            {
                "id": r.id,
                "purpose": r.purpose,
                "state": r.state,
                "at": _iso(r.at),
                "recorded_at": _iso(r.recorded_at),
                "channel": r.channel,
                "policy_version": r.policy_version,
                "evidence": r.evidence,
                "recorded_by": r.recorded_by,
            }
            for r in summary.ledger
        ],
    }


def _is_push(event: dict[str, Any]) -> bool:
    details = event.get("details") or {}
    return event["action"] == "sync" and "push" in (
        details.get("operation"),
        details.get("direction"),
    )


def accesses_and_recipients(
    events: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every audited access (who, when, what, for which purpose, outcome) and every system
    that received the data: allowed exports (one each; ``complete`` false for one that started
    and never completed) and sync pushes."""
    accesses: list[dict[str, Any]] = []
    recipients: list[dict[str, Any]] = []
    # An export has a "started" and (once the file or stream is whole) a "completed" event: one
    # recipient, the completed one, or the started one marked incomplete (data may have left).
    completed = {
        (event.get("details") or {}).get("export_id")
        for event in events
        if event["action"] == "export" and (event.get("details") or {}).get("phase") == "completed"
    }
    for event in events:
        details = event.get("details") or {}
        accesses.append(
            {
                "seq": event["seq"],
                "at": event["at"],
                "actor": event["actor"],
                "roles": event["roles"],
                "action": event["action"],
                "operation": details.get("operation"),
                "purpose": event["purpose"],
                "outcome": event["outcome"],
                "fields": event["fields"],
                "hash": event["hash"],
            }
        )
        if event["outcome"] != "allowed":
            continue
        if event["action"] == "export":
            phase = details.get("phase")
            if phase == "started" and details.get("export_id") in completed:
                continue
            recipients.append(
                {
                    "kind": "export",
                    "seq": event["seq"],
                    "at": event["at"],
                    "actor": event["actor"],
                    "purpose": event["purpose"],
                    "format": details.get("format"),
                    "fields": event["fields"],
                    "manifest_sha256": details.get("manifest_sha256"),
                    "complete": phase != "started",
                }
            )
        elif _is_push(event):
            recipients.append(
                {
                    "kind": "sync-push",
                    "seq": event["seq"],
                    "at": event["at"],
                    "system": details.get("connector"),
                    "purpose": event["purpose"],
                    "fields": event["fields"],
                }
            )
    return accesses, recipients


def document(
    connection: Connection,
    *,
    customer: Customer,
    orders: list[Order],
    interactions: list[Interaction],
    consent: ledger.ConsentSummary,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    from vault.store.schema import customer_sources

    accesses, recipients = accesses_and_recipients(events)
    sources = [
        {
            "source": row.source,
            "fields": [f for f in row.fields.split(",") if f],
            "first_seen_at": _iso(row.first_seen_at),
            "last_seen_at": _iso(row.last_seen_at),
        }
        for row in connection.execute(
            select(customer_sources).where(customer_sources.c.customer_id == customer.id)
        )
    ]
    return {
        "format": DSAR_FORMAT,
        "generated_at": utcnow().isoformat(),
        "customer": customer_to_json(customer),
        "sources": sources,
        "orders": [order_to_json(o) for o in orders],
        "interactions": [interaction_to_json(i) for i in interactions],
        "consent": consent_to_json(consent),
        "accesses": accesses,
        "recipients": recipients,
        "erasure_requests": [
            {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in r.items()}
            for r in erasure.requests_of(connection, customer.id)
        ],
    }


def audit_events_of(connection: Connection, log: Any, customer_id: str) -> list[dict[str, Any]]:
    return list(log.query(connection, AuditQuery(customer=customer_id, limit=None)))
