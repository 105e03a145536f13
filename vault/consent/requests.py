"""Data-subject requests at the door (PIPL art. 44-47, GDPR art. 15-17 and 20): access (a full
machine-readable export of one person), rectification, erasure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select

from vault.audit import AuditEvent
from vault.consent import dsar, erasure, ledger, retention
from vault.consent.erasure import ErasureReport
from vault.consent.retention import RetentionReport
from vault.door import Door
from vault.errors import NotFound
from vault.store.customers import IDENTITY_FIELD
from vault.store.engine import utcnow
from vault.store.schema import customers

REASON_MAX = 200
ERASE_BATCH = 500
DSAR_SOURCE = "dsar"
INTERACTION_FIELD = "note"  # interaction texts are seen as notes are (as in vault.session)


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX or not reason.isprintable():
        raise ValueError(f"reason must be 1 to {REASON_MAX} printable characters")
    return reason


class DataSubjectOperations(Door):
    """``erase_customer``, ``erasure_status``, ``dsar_export``, ``dsar_correct``."""

    def erase_customer(self, customer_id: str, *, reason: str) -> ErasureReport:
        """Crypto-shred a customer: suppression entries, erasure requests for every platform
        identity, every row about them deleted, the data key destroyed, the id kept as a
        tombstone (:mod:`vault.consent.erasure`). ``reason`` is a reference (a ticket id, "DSAR
        2026-114"), recorded in the audit event: never a copy of PII."""
        reports = self._erase([customer_id], reason=_check_reason(reason), single=True)
        return reports[0]

    def erase_customers(
        self, customer_ids: Sequence[str], *, reason: str, batch_size: int = ERASE_BATCH
    ) -> list[ErasureReport]:
        """Erase many customers (a retention run, a bulk request): a transaction and an audit
        event per batch. Ids unknown or already erased are skipped (and not reported)."""
        ids = list(dict.fromkeys(customer_ids))
        reason = _check_reason(reason)
        reports: list[ErasureReport] = []
        for start in range(0, len(ids), batch_size):
            reports += self._erase(ids[start : start + batch_size], reason=reason, single=False)
        return reports

    def _erase(self, ids: list[str], *, reason: str, single: bool) -> list[ErasureReport]:
        purpose = self.authorize("erase", customer_ids=ids)
        details: dict[str, object] = {"operation": "erase", "reason": reason}
        erased: list[str] = []

        def operation(connection: Connection) -> list[ErasureReport]:
            reports = erasure.erase_many(connection, self._vault, ids)
            if single and not reports:
                raise NotFound(f"no customer {ids[0]} (never existed, or already erased)")
            erased.extend(r.customer_id for r in reports)
            systems: dict[str, int] = {}
            for report in reports:
                for system in report.erasure_requests:
                    systems[system] = systems.get(system, 0) + 1
            details.update(
                {
                    "count": len(reports),
                    "fields": sum(r.fields for r in reports),
                    "identities": sum(r.identities for r in reports),
                    "orders": sum(r.orders for r in reports),
                    "suppression_entries": sum(r.suppression_entries for r in reports),
                    "erasure_requests": systems,
                }
            )
            if single and reports:
                details["rows_deleted"] = reports[0].rows_deleted
            return reports

        reports = self._audited(
            AuditEvent(action="erase", purpose=purpose, customer_ids=erased, details=details),
            operation,
        )
        erasure.flush_deleted_pages(self._vault)
        return reports

    def erasure_status(self, customer_id: str) -> list[dict[str, Any]]:
        """Where an erasure stands on each connected system the person had an identity on:
        ``system``, ``status`` (pending | done | failed), ``requested_at``, ``done_at`` and the
        system's ``detail``, oldest first. Ids, names and times only: a compliance officer
        (the ``audit`` action) can follow an erasure through without seeing any customer data.
        Empty for a customer never erased; ``NotFound`` for an id the vault never had."""
        purpose = self.authorize("audit", customer_ids=[customer_id])

        def operation(connection: Connection) -> list[dict[str, Any]]:
            known = connection.execute(
                select(customers.c.id).where(customers.c.id == customer_id)
            ).first()
            if known is None:
                raise NotFound(f"no customer {customer_id}")
            return erasure.requests_of(connection, customer_id)

        return self._audited(
            AuditEvent(
                action="audit",
                purpose=purpose,
                customer_ids=[customer_id],
                details={"operation": "erasure_status"},
            ),
            operation,
        )

    def dsar_export(self, customer_id: str) -> dict[str, Any]:
        """Everything held on one person, as a JSON-ready document (:mod:`vault.consent.dsar`):
        fields with provenance, identities, orders, interactions, tags, consent history, every
        access the audit log holds, and the systems that received the data.

        Needs the ``read`` and ``audit`` actions; fields appear as the caller's views show them
        for the session's purpose (``compliance`` or ``administration`` show all in clear).
        """
        purpose = self.authorize("read", customer_ids=[customer_id])
        self.authorize("audit", customer_ids=[customer_id])
        views = self._views(purpose)
        visible = {f for f, view in views.items() if view != "hidden"}
        note_view = views.get(INTERACTION_FIELD, "hidden")
        shown: list[str] = []

        def operation(connection: Connection) -> dict[str, Any]:
            stored = self._vault._customers.get(
                connection,
                customer_id,
                only_fields=visible,
                with_identities=views.get(IDENTITY_FIELD, "hidden") != "hidden",
            )
            customer = self._present(stored, views)
            shown.extend(customer.fields)
            found = self._vault._customers.interactions_of(connection, customer_id)
            return dsar.document(
                connection,
                customer=customer,
                orders=self._vault._customers.orders_of(connection, customer_id),
                interactions=(
                    found if note_view == "clear" else [replace(i, text=None) for i in found]
                ),
                consent=ledger.summary(connection, self._vault.policy, customer_id),
                events=dsar.audit_events_of(connection, self._vault.audit, customer_id),
            )

        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=[customer_id],
                fields=shown,
                details={"operation": "dsar-export"},
            ),
            operation,
        )

    def dsar_correct(self, customer_id: str, fields: Mapping[str, str]) -> list[str]:
        """Rectify field values at the person's request, with provenance ``dsar``; returns the
        fields changed."""
        purpose = self.authorize("write", customer_ids=[customer_id], fields=list(fields))
        changed: list[str] = []

        def operation(connection: Connection) -> list[str]:
            changed.extend(
                self._vault._customers.update(connection, customer_id, fields, source=DSAR_SOURCE)
            )
            return changed

        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=[customer_id],
                fields=changed,
                details={"operation": "dsar-correct", "source": DSAR_SOURCE},
            ),
            operation,
        )

    def run_retention(self, *, dry_run: bool = True) -> RetentionReport:
        """Apply each purpose's retention and the field catalogue's (:mod:`vault.consent.
        retention`): erase the customers no purpose holds any more, remove field values past
        their field's retention. A dry run (the default) only reports."""
        purpose = self.authorize("erase")
        now = utcnow()
        report = RetentionReport(dry_run=dry_run, ran_at=now)
        with self._vault._reader.connect() as connection, connection.begin():
            report.checked = int(
                connection.execute(
                    select(func.count())
                    .select_from(customers)
                    .where(customers.c.erased_at.is_(None))
                ).scalar_one()
            )
            report.expired = [
                cid for cid, _ in retention.expired_customers(connection, self._vault.policy, now)
            ]
            report.fields = retention.expired_fields(connection, self._vault.catalogue, now)
        if not dry_run:
            for customer_id in report.expired:
                with self._vault._transaction() as connection:
                    erased = erasure.erase(connection, self._vault, customer_id)
                    self._append(
                        connection,
                        AuditEvent(
                            action="erase",
                            purpose=purpose,
                            customer_ids=[customer_id],
                            details={
                                "operation": "erase",
                                "reason": "retention",
                                "fields": erased.fields,
                                "identities": erased.identities,
                                "orders": erased.orders,
                                "suppression_entries": erased.suppression_entries,
                                "erasure_requests": erased.erasure_requests,
                            },
                        ),
                    )
                report.erased += 1
            with self._vault._transaction() as connection:
                removed, touched = retention.remove_expired_fields(
                    connection, self._vault.catalogue, now
                )
                report.fields_removed = removed
                if removed:
                    self._append(
                        connection,
                        AuditEvent(
                            action="write",
                            purpose=purpose,
                            customer_ids=touched,
                            fields=sorted(report.fields),
                            details={"operation": "retention", "removed": removed},
                        ),
                    )
            if report.erased:
                erasure.flush_deleted_pages(self._vault)
        self._record(
            AuditEvent(
                action="erase",
                purpose=purpose,
                customer_ids=report.expired,
                details={
                    "operation": "retention",
                    "dry_run": dry_run,
                    "checked": report.checked,
                    "expired": len(report.expired),
                    "erased": report.erased,
                    "fields": report.fields,
                    "fields_removed": report.fields_removed,
                },
            )
        )
        return report
