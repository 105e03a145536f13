"""``Door``: what every operation on customer data goes through, and nothing goes around.

Each operation (1) decides from the policy whether the principal's roles may take the action for
the purpose (deny by default), (2) for reads, decrypts only the fields the role may see and
masks them as its view says, and (3) writes the audit event: for a change, in the same
transaction as the change; for a read, before the data is returned. A denial raises
``AccessDenied`` and is audited in a transaction of its own; so is a failed operation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy import Connection

from vault.access.masks import mask
from vault.access.principals import Principal
from vault.audit import AuditEvent
from vault.audit.ids import SortedIds
from vault.errors import AccessDenied, VaultError
from vault.records import Customer, FieldValue
from vault.store._errors import as_vault_error
from vault.store.customers import IDENTITY_FIELD

if TYPE_CHECKING:
    from vault.vault import Vault

T = TypeVar("T")
log = structlog.get_logger("vault.audit")

PURPOSE_REQUIRED = frozenset({"read", "search", "export"})
# A customer id: a lower-case hyphenated UUID (``vault.store.customers.new_customer_id``).
CUSTOMER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The blind-index key of audit references ("audit:" is no catalogue field's name).
AUDIT_REFERENCE_FIELD = "audit:reference"
AUDIT_REFERENCE_PREFIX = "ref:"


class Door:
    """A principal at the door: the checks and the audit trail every operation goes through.

    :class:`vault.session.Session` is this class plus the operations of every area (customers,
    consent, export, sync, ...), each area's operations a mixin subclass of ``Door`` in that
    area's package. Get a session from :meth:`vault.Vault.session`.
    """

    def __init__(
        self, vault: Vault, principal: Principal, *, purpose: str | None, request_id: str
    ) -> None:
        self._vault = vault
        self.principal = principal
        self.purpose = purpose
        self.request_id = request_id

    # --- the door ----------------------------------------------------------------------------

    def _append(self, connection: Connection, event: AuditEvent) -> int:
        if not isinstance(event.customer_ids, SortedIds) and not all(
            map(CUSTOMER_ID.fullmatch, event.customer_ids)
        ):
            event = replace(
                event, customer_ids=[self._audit_reference(i) for i in event.customer_ids]
            )
        seq = self._vault.audit.append(
            connection,
            event,
            actor=self.principal.name,
            roles=self.principal.roles,
            request_id=self.request_id,
        )
        log.info(
            "audit_event",
            seq=seq,
            actor=self.principal.name,
            action=event.action,
            outcome=event.outcome,
            purpose=event.purpose,
            customer_count=len(event.customer_ids),
            fields=sorted(event.fields),
            request_id=self.request_id,
        )
        return seq

    def _audit_reference(self, reference: str) -> str:
        """What the audit log records for a string given where a customer id belongs: the id
        itself, or, for anything else (a phone typed as an id), ``ref:`` and 32 hex digits of
        an HMAC-SHA256 under a key derived from the blind-index root for this use alone. The
        audit log is never erased, so it must not keep the string; a plain hash of an 11-digit
        phone would be found by trying them all. The same string gives the same digest, so an
        auditor finds the events by the string they were given (``AuditQuery(customer=...)``)."""
        if CUSTOMER_ID.fullmatch(reference):
            return reference
        digest = self._vault._indexer.digest(AUDIT_REFERENCE_FIELD, reference)
        return AUDIT_REFERENCE_PREFIX + digest.hex()[:32]

    def _record(self, event: AuditEvent) -> None:
        with self._vault._transaction() as connection:
            self._append(connection, event)

    def authorize(
        self,
        action: str,
        purpose: str | None = None,
        *,
        customer_ids: Sequence[str] = (),
        fields: Sequence[str] = (),
    ) -> str | None:
        """Check ``action`` for ``purpose`` (default: the session's); returns the purpose.

        Raises ``AccessDenied`` after auditing the refusal.
        """
        purpose = purpose or self.purpose
        if action in PURPOSE_REQUIRED and purpose is None:
            reason = f"a purpose is required to {action} customer data (--purpose)"
            allowed = False
        else:
            decision = self._vault.policy.decide(self.principal.roles, action, purpose)
            reason, allowed = decision.reason, decision.allowed
        if not allowed:
            self._record(
                AuditEvent(
                    action=action,
                    outcome="denied",
                    purpose=purpose,
                    customer_ids=customer_ids,
                    fields=fields,
                    reason=reason,
                )
            )
            raise AccessDenied(
                principal=self.principal.name, action=action, purpose=purpose, reason=reason
            )
        return purpose

    def _audited(
        self,
        event: AuditEvent,
        operation: Callable[[Connection], T],
    ) -> T:
        """Run ``operation`` and write ``event`` in one transaction: a change and its event land
        together or not at all, and a read's event is committed before its result is handed
        back. Any failure is mapped to a ``VaultError`` here (the one boundary: a database
        error is a ``StoreError``, anything else not already a ``VaultError`` an
        ``InternalError``), audited as ``failed`` in a transaction of its own, and raised."""
        try:
            # A read runs in the same transaction as its event: the event is committed before
            # the data is handed back. (On SQLite the write lock is taken at BEGIN; under WAL
            # other readers still run. On PostgreSQL the chain head is locked only at append.)
            with self._vault._transaction(_what(event)) as connection:
                result = operation(connection)
                self._append(connection, event)
            return result
        except Exception as failure:
            error = self._failed(event, failure)
            if error is failure:
                raise
            raise error from failure

    def _failed(self, event: AuditEvent, failure: Exception) -> VaultError:
        """``failure`` mapped to a ``VaultError`` (the one map, :func:`as_vault_error`), and
        ``event`` audited as failed; the caller raises what this returns ``from failure``."""
        error = as_vault_error(failure, _what(event))
        self._record_failure(event, error)
        return error

    def _record_failure(self, event: AuditEvent, error: VaultError) -> None:
        """Audit ``event`` as failed, with the error's class as the reason. When the audit log
        itself cannot be written, the operation's own error is what the caller sees (and the
        audit failure is logged, without any value)."""
        try:
            self._record(replace(event, outcome="failed", reason=type(error).__name__))
        except Exception as audit_failure:
            log.error(
                "audit_failed_event_not_written",
                action=event.action,
                error=type(error).__name__,
                audit_error=type(audit_failure).__name__,
                request_id=self.request_id,
            )

    def _require_visible(self, field: str, purpose: str | None, action: str) -> None:
        """Searching by a field the principal may not see (or the purpose does not cover) would
        reveal it by trial: refused and audited like any denial."""
        if self._vault.policy.view(self.principal.roles, field, purpose) != "hidden":
            return
        reason = f"field {field!r} is hidden from this role for this purpose"
        self._record(
            AuditEvent(
                action=action, outcome="denied", purpose=purpose, fields=[field], reason=reason
            )
        )
        raise AccessDenied(
            principal=self.principal.name,
            action=action,
            purpose=purpose,
            field=field,
            reason=reason,
        )

    def _views(self, purpose: str | None) -> dict[str, str]:
        policy = self._vault.policy
        return {
            field: policy.view(self.principal.roles, field, purpose) for field in policy.catalogue
        }

    def _present(self, customer: Customer, views: Mapping[str, str]) -> Customer:
        """Apply the field views: clear as is, masked by the field's mask style, hidden gone."""
        shown: dict[str, FieldValue] = {}
        for name, value in customer.fields.items():
            view = views.get(name, "hidden")
            if view == "clear" or (view == "masked" and value.masked):
                shown[name] = value
            elif view == "masked":
                style = self._vault.catalogue[name].mask
                masked = mask(style, value.value)
                if masked is not None:
                    shown[name] = replace(value, value=masked, masked=True)
        identities = customer.identities
        identity_view = views.get(IDENTITY_FIELD, "hidden")
        if identity_view == "hidden":
            identities = []
        elif identity_view == "masked":
            identities = [
                replace(i, external_id=mask("partial", i.external_id) or "") for i in identities
            ]
        return replace(customer, fields=shown, identities=identities)


def _what(event: AuditEvent) -> str:
    """The operation an error message names: its action and operation, never a value."""
    operation = event.details.get("operation") if event.details else None
    return f"{event.action} ({operation})" if isinstance(operation, str) else event.action
