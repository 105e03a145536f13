"""Consent at the door: grant, withdraw, show and import (the ``consent`` action)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, select

from vault.audit import AuditEvent
from vault.consent import importer, ledger
from vault.consent.importer import ConsentImportReport
from vault.consent.ledger import ConsentEntry, ConsentSummary
from vault.door import Door
from vault.errors import InvalidValue, NotFound
from vault.store.engine import utcnow
from vault.store.schema import customers

_CUSTOMER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IMPORT_AUDIT_BATCH = 5000


def live_customers(connection: Connection, customer_ids: Sequence[str]) -> set[str]:
    """Those of ``customer_ids`` that exist and are not erased."""
    found: set[str] = set()
    ids = list(dict.fromkeys(customer_ids))
    for start in range(0, len(ids), ledger.IN_CHUNK):
        found.update(
            connection.execute(
                select(customers.c.id).where(
                    customers.c.id.in_(ids[start : start + ledger.IN_CHUNK]),
                    customers.c.erased_at.is_(None),
                )
            ).scalars()
        )
    return found


class ConsentOperations(Door):
    """The consent ledger through the one door."""

    def _change_consent(
        self,
        state: str,
        customer_id: str,
        purpose: str,
        *,
        source: str,
        evidence: str | None,
        at: datetime | None,
    ) -> int:
        session_purpose = self.authorize("consent", customer_ids=[customer_id])
        entry = ConsentEntry(
            customer_id=customer_id,
            purpose=purpose,
            state=state,
            at=at or utcnow(),
            channel=source,
            evidence=evidence,
        )
        ledger.check_entry(self._vault.policy, entry)

        def operation(connection: Connection) -> int:
            if not self._vault._customers.exists(connection, customer_id):
                raise NotFound(f"no customer {customer_id}")
            return ledger.record(
                connection, self._vault.policy, [entry], recorded_by=self.principal.name
            )[0]

        return self._audited(
            AuditEvent(
                action="consent",
                purpose=session_purpose,
                customer_ids=[customer_id],
                details={
                    "operation": "grant" if state == ledger.GRANTED else "withdraw",
                    "consent_purpose": purpose,
                    "channel": source,
                },
            ),
            operation,
        )

    def grant_consent(
        self,
        customer_id: str,
        purpose: str,
        *,
        source: str,
        evidence: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Record that the customer granted consent for ``purpose`` (at ``at``, default now)
        through channel ``source``; ``evidence`` is a reference (a form id, a recording id),
        never a copy of PII. Returns the ledger id."""
        return self._change_consent(
            ledger.GRANTED, customer_id, purpose, source=source, evidence=evidence, at=at
        )

    def withdraw_consent(
        self,
        customer_id: str,
        purpose: str,
        *,
        source: str,
        evidence: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Record a withdrawal; every export and sync that starts after it leaves the customer
        out for ``purpose``. Returns the ledger id."""
        return self._change_consent(
            ledger.WITHDRAWN, customer_id, purpose, source=source, evidence=evidence, at=at
        )

    def consent_of(self, customer_id: str) -> ConsentSummary:
        """The customer's current consent per purpose (with needs-renewal flags) and ledger."""
        session_purpose = self.authorize("consent", customer_ids=[customer_id])

        def operation(connection: Connection) -> ConsentSummary:
            if not self._vault._customers.exists(connection, customer_id):
                raise NotFound(f"no customer {customer_id}")
            return ledger.summary(connection, self._vault.policy, customer_id)

        return self._audited(
            AuditEvent(
                action="consent",
                purpose=session_purpose,
                customer_ids=[customer_id],
                details={"operation": "show"},
            ),
            operation,
        )

    def import_consent(self, path: str | os.PathLike[str]) -> ConsentImportReport:
        """Record the grants and withdrawals of a CSV file (see :mod:`vault.consent.importer`)
        in one transaction: all of them, or none when a row is malformed."""
        session_purpose = self.authorize("consent")
        file = Path(path)
        rows, encoding = importer.read_file(file)
        report = ConsentImportReport(rows=len(rows), encoding=encoding)
        for row in rows:
            ledger.check_entry(
                self._vault.policy,
                ConsentEntry(
                    customer_id="",
                    purpose=row.purpose,
                    state=row.state,
                    at=row.at,
                    channel=row.source,
                    evidence=row.evidence,
                    policy_version=row.policy_version,
                ),
            )
        try:
            with self._vault._transaction() as connection:
                resolved = self._resolve(connection, rows)
                entries: list[ConsentEntry] = []
                for row, customer_id in zip(rows, resolved, strict=True):
                    if customer_id is None:
                        report.unmatched += 1
                        report.unmatched_lines.append(row.line)
                        continue
                    entries.append(
                        ConsentEntry(
                            customer_id=customer_id,
                            purpose=row.purpose,
                            state=row.state,
                            at=row.at,
                            channel=row.source,
                            evidence=row.evidence,
                            policy_version=row.policy_version,
                        )
                    )
                for start in range(0, len(entries), IMPORT_AUDIT_BATCH):
                    batch = entries[start : start + IMPORT_AUDIT_BATCH]
                    ledger.record(
                        connection, self._vault.policy, batch, recorded_by=self.principal.name
                    )
                    self._append(
                        connection,
                        AuditEvent(
                            action="consent",
                            purpose=session_purpose,
                            customer_ids=[e.customer_id for e in batch],
                            details={
                                "operation": "import",
                                "file": file.name,
                                "count": len(batch),
                                "granted": sum(e.state == ledger.GRANTED for e in batch),
                                "withdrawn": sum(e.state == ledger.WITHDRAWN for e in batch),
                            },
                        ),
                    )
                report.recorded = len(entries)
                report.granted = sum(e.state == ledger.GRANTED for e in entries)
                report.withdrawn = report.recorded - report.granted
        except (InvalidValue, NotFound) as error:
            self._record(
                AuditEvent(
                    action="consent",
                    outcome="failed",
                    purpose=session_purpose,
                    reason=type(error).__name__,
                    details={"operation": "import", "file": file.name},
                )
            )
            raise
        return report

    def _resolve(
        self, connection: Connection, rows: Sequence[importer.ConsentRow]
    ) -> list[str | None]:
        """Each row's customer id, or ``None`` when the reference matches no live customer (or
        more than one)."""
        store = self._vault._customers
        direct = [row.reference for row in rows if _CUSTOMER_ID.fullmatch(row.reference)]
        live = live_customers(connection, direct)
        resolved: list[str | None] = []
        for row in rows:
            reference = row.reference
            if _CUSTOMER_ID.fullmatch(reference):
                resolved.append(reference if reference in live else None)
                continue
            kind, sep, value = reference.partition(":")
            if not sep or not value:
                raise InvalidValue(
                    field="customer",
                    reason=f"line {row.line}: a customer id, FIELD:VALUE or PLATFORM:ID",
                )
            kind = kind.strip().lower()
            try:
                spec = self._vault.catalogue.get(kind)
                if spec is not None and spec.searchable:
                    found = store.find(connection, kind, value)
                    resolved.append(found[0] if len(found) == 1 else None)
                else:
                    resolved.append(store.find_identity(connection, kind, value))
            except InvalidValue as error:
                raise InvalidValue(
                    field=error.field, reason=f"line {row.line}: {error.reason}"
                ) from None
        return resolved
