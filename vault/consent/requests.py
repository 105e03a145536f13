"""Data-subject requests at the door (PIPL art. 44-47, GDPR art. 15-17 and 20): access (a full
machine-readable export of one person), rectification, erasure."""

from __future__ import annotations

from sqlalchemy import Connection

from vault.audit import AuditEvent
from vault.consent import erasure
from vault.consent.erasure import ErasureReport
from vault.door import Door

REASON_MAX = 200


class DataSubjectOperations(Door):
    """``erase_customer``, ``dsar_export``, ``dsar_correct``."""

    def erase_customer(self, customer_id: str, *, reason: str) -> ErasureReport:
        """Crypto-shred a customer: suppression entries, erasure requests for every platform
        identity, every row about them deleted, the data key destroyed, the id kept as a
        tombstone (:mod:`vault.consent.erasure`). ``reason`` is a reference (a ticket id, "DSAR
        2026-114"), recorded in the audit event: never a copy of PII."""
        reason = reason.strip()
        if not reason or len(reason) > REASON_MAX or not reason.isprintable():
            raise ValueError(f"reason must be 1 to {REASON_MAX} printable characters")
        purpose = self.authorize("erase", customer_ids=[customer_id])
        details: dict[str, object] = {"operation": "erase", "reason": reason}

        def operation(connection: Connection) -> ErasureReport:
            report = erasure.erase(connection, self.vault, customer_id)
            details.update(
                {
                    "fields": report.fields,
                    "identities": report.identities,
                    "orders": report.orders,
                    "suppression_entries": report.suppression_entries,
                    "erasure_requests": report.erasure_requests,
                    "rows_deleted": report.rows_deleted,
                }
            )
            return report

        report = self._audited(
            AuditEvent(
                action="erase", purpose=purpose, customer_ids=[customer_id], details=details
            ),
            operation,
        )
        erasure.flush_deleted_pages(self.vault)
        return report
