"""``Session``: the one door. Every operation on customer data, keys, principals and the audit
log is a method of it, acting as one authenticated principal for a stated purpose.

The checks and the audit trail live in :class:`vault.door.Door`; this module holds the core
operations (customers, purchase history, keys, principals, the audit log), and each other area
(consent, export, sync, ...) adds its operations as a mixin subclass of ``Door`` listed in the
bases of :class:`Session`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection

from vault.access import principals as principals_store
from vault.access.principals import Principal
from vault.audit import AuditEvent, AuditPage, AuditQuery, Checkpoint, Problem, VerifyReport
from vault.audit.keys import rotate_signing_key
from vault.audit.log import read_witness
from vault.consent.operations import ConsentOperations
from vault.consent.requests import DataSubjectOperations
from vault.consent.suppression import filter_records
from vault.door import Door
from vault.errors import AuditChainBroken, VaultError
from vault.export.operations import ExportOperations
from vault.records import Customer, Interaction, NewCustomer, Order, Page
from vault.segments.operations import SegmentOperations
from vault.store import keystore
from vault.store.customers import IDENTITY_FIELD
from vault.sync.decrypt import PlatformDecryptOperations
from vault.sync.operations import SyncOperations

INTERACTION_FIELD = "note"  # interaction texts are free text, seen as notes are


class Session(
    ConsentOperations,
    DataSubjectOperations,
    ExportOperations,
    SyncOperations,
    PlatformDecryptOperations,
    SegmentOperations,
    Door,
):
    """A principal at the door, with every operation of the vault. Get one from
    :meth:`vault.Vault.session`."""

    # --- customers ---------------------------------------------------------------------------

    def add_customer(
        self,
        fields: Mapping[str, str],
        *,
        source: str,
        identities: Sequence[tuple[str, str]] = (),
        observed_at: datetime | None = None,
        purpose: str | None = None,
    ) -> str:
        """Add one customer; returns its id. Values are normalised, sealed and indexed."""
        purpose = self.authorize("write", purpose, fields=list(fields))
        record = NewCustomer(fields=fields, identities=identities, observed_at=observed_at)
        ids: list[str] = []

        def operation(connection: Connection) -> str:
            ids.extend(self._vault._customers.add_many(connection, [record], source=source))
            return ids[0]

        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=ids,
                fields=list(fields),
                details={
                    "operation": "add",
                    "source": source,
                    "identities": [platform for platform, _ in identities],
                },
            ),
            operation,
        )

    def add_customers(
        self,
        records: Iterable[NewCustomer],
        *,
        source: str,
        batch_size: int = 2000,
        purpose: str | None = None,
    ) -> list[str]:
        """Add many customers (an import), committing and auditing every ``batch_size``.

        Returns the ids of the customers added. A record matching an erased person's suppression
        entry and observed before the erasure (or with no ``observed_at``) is dropped, counted
        in the batch's audit event as ``suppressed``; one observed after it is a new customer.
        """
        purpose = self.authorize("import", purpose)
        ids: list[str] = []
        for batch in _batches(records, batch_size):
            added: list[str] = []  # filled in by the operation, before its event is written
            details: dict[str, Any] = {"operation": "add", "source": source}

            def operation(
                connection: Connection,
                batch: list[NewCustomer] = batch,
                added: list[str] = added,
                details: dict[str, Any] = details,
            ) -> None:
                # An erased person re-sent by an old file stays erased (vault.consent.suppression).
                kept, suppressed = filter_records(connection, self._vault, batch)
                added.extend(self._vault._customers.add_many(connection, kept, source=source))
                details.update(count=len(added), suppressed=suppressed)

            self._audited(
                AuditEvent(
                    action="import",
                    purpose=purpose,
                    customer_ids=added,
                    fields=sorted({name for record in batch for name in record.fields}),
                    details=details,
                ),
                operation,
            )
            ids += added
        return ids

    def update_customer(
        self,
        customer_id: str,
        fields: Mapping[str, str],
        *,
        source: str,
        observed_at: datetime | None = None,
        purpose: str | None = None,
    ) -> list[str]:
        """Set field values with their provenance; returns the fields that changed.

        A masked value never overwrites a full one.
        """
        purpose = self.authorize("write", purpose, customer_ids=[customer_id], fields=list(fields))
        changed: list[str] = []

        def operation(connection: Connection) -> list[str]:
            changed.extend(
                self._vault._customers.update(
                    connection, customer_id, fields, source=source, observed_at=observed_at
                )
            )
            return changed

        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=[customer_id],
                fields=changed,
                details={"operation": "update", "source": source},
            ),
            operation,
        )

    def get_customer(self, customer_id: str, *, purpose: str | None = None) -> Customer:
        """One customer, as this principal may see it for ``purpose``."""
        purpose = self.authorize("read", purpose, customer_ids=[customer_id])
        views = self._views(purpose)
        visible = {field for field, view in views.items() if view != "hidden"}
        shown: list[str] = []
        masked: list[str] = []  # the audit event says which fields were shown masked

        def operation(connection: Connection) -> Customer:
            customer = self._vault._customers.get(
                connection,
                customer_id,
                only_fields=visible,
                with_identities=views.get(IDENTITY_FIELD, "hidden") != "hidden",
            )
            presented = self._present(customer, views)
            shown.extend(presented.fields)
            masked.extend(sorted(n for n, v in presented.fields.items() if v.masked))
            return presented

        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=[customer_id],
                fields=shown,
                details={"masked": masked},
            ),
            operation,
        )

    def find_customers(self, field: str, value: str, *, purpose: str | None = None) -> list[str]:
        """Ids of customers whose ``field`` equals ``value`` once normalised (blind index).

        The audit event names the field searched and the ids found, never the value.
        """
        purpose = self.authorize("search", purpose, fields=[field])
        self._require_visible(field, purpose, "search")
        found: list[str] = []

        def operation(connection: Connection) -> list[str]:
            found.extend(self._vault._customers.find(connection, field, value))
            return found

        return self._audited(
            AuditEvent(action="search", purpose=purpose, customer_ids=found, fields=[field]),
            operation,
        )

    def find_by_identity(
        self, platform: str, external_id: str, *, purpose: str | None = None
    ) -> str | None:
        purpose = self.authorize("search", purpose, fields=[IDENTITY_FIELD])
        self._require_visible(IDENTITY_FIELD, purpose, "search")
        found: list[str] = []

        def operation(connection: Connection) -> str | None:
            customer_id = self._vault._customers.find_identity(connection, platform, external_id)
            if customer_id is not None:
                found.append(customer_id)
            return customer_id

        return self._audited(
            AuditEvent(
                action="search",
                purpose=purpose,
                customer_ids=found,
                fields=[IDENTITY_FIELD],
                details={"platform": platform},
            ),
            operation,
        )

    def add_identity(
        self,
        customer_id: str,
        platform: str,
        external_id: str,
        *,
        source: str,
        purpose: str | None = None,
    ) -> None:
        purpose = self.authorize("write", purpose, customer_ids=[customer_id])
        self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=[customer_id],
                fields=[IDENTITY_FIELD],
                details={"operation": "add-identity", "platform": platform, "source": source},
            ),
            lambda c: self._vault._customers.add_identity(
                c, customer_id, platform, external_id, source=source
            ),
        )

    def list_customers(
        self, *, limit: int = 100, after: str | None = None, purpose: str | None = None
    ) -> Page:
        if not 1 <= limit <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        purpose = self.authorize("read", purpose)
        listed: list[str] = []

        def operation(connection: Connection) -> Page:
            page = self._vault._customers.page(connection, limit=limit, after=after)
            listed.extend(page.customer_ids)
            return page

        return self._audited(
            AuditEvent(
                action="read", purpose=purpose, customer_ids=listed, details={"operation": "list"}
            ),
            operation,
        )

    # --- purchase history, interactions, tags ------------------------------------------------

    def record_order(self, order: Order, *, source: str, purpose: str | None = None) -> int:
        ids = [order.customer_id] if order.customer_id else []
        purpose = self.authorize("write", purpose, customer_ids=ids)
        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=ids,
                details={
                    "operation": "order",
                    "platform": order.platform,
                    "shop": order.shop,
                    "order_id": order.order_id,
                    "status": order.status,
                },
            ),
            lambda c: self._vault._customers.record_order(c, order, source=source),
        )

    def orders_of(self, customer_id: str, *, purpose: str | None = None) -> list[Order]:
        purpose = self.authorize("read", purpose, customer_ids=[customer_id])
        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=[customer_id],
                details={"operation": "orders"},
            ),
            lambda c: self._vault._customers.orders_of(c, customer_id),
        )

    def record_interaction(
        self,
        customer_id: str,
        *,
        kind: str,
        channel: str,
        occurred_at: datetime,
        text: str | None,
        source: str,
        purpose: str | None = None,
    ) -> str:
        purpose = self.authorize("write", purpose, customer_ids=[customer_id])
        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=[customer_id],
                fields=[INTERACTION_FIELD] if text is not None else [],
                details={"operation": "interaction", "kind": kind, "channel": channel},
            ),
            lambda c: self._vault._customers.record_interaction(
                c,
                customer_id,
                kind=kind,
                channel=channel,
                occurred_at=occurred_at,
                text=text,
                source=source,
            ),
        )

    def interactions_of(self, customer_id: str, *, purpose: str | None = None) -> list[Interaction]:
        purpose = self.authorize("read", purpose, customer_ids=[customer_id])
        view = self._views(purpose).get(INTERACTION_FIELD, "hidden")

        def operation(connection: Connection) -> list[Interaction]:
            found = self._vault._customers.interactions_of(connection, customer_id)
            return found if view == "clear" else [replace(i, text=None) for i in found]

        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=[customer_id],
                fields=[INTERACTION_FIELD] if view == "clear" else [],
                details={"operation": "interactions"},
            ),
            operation,
        )

    def tag_customers(
        self, customer_ids: Sequence[str], tag: str, *, source: str, purpose: str | None = None
    ) -> int:
        """Tag customers in one transaction and one audit event; returns how many were newly
        tagged. An id that names no customer fails the whole call (:class:`NotFound`)."""
        purpose = self.authorize("write", purpose, customer_ids=customer_ids)
        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=customer_ids,
                details={"operation": "tag", "tag": tag},
            ),
            lambda c: self._vault._customers.tag(c, customer_ids, tag, source=source),
        )

    def untag_customers(
        self, customer_ids: Sequence[str], tag: str, *, purpose: str | None = None
    ) -> int:
        """Remove a tag from customers in one transaction and one audit event; returns how many
        had it. An id that names no customer fails the whole call (:class:`NotFound`)."""
        purpose = self.authorize("write", purpose, customer_ids=customer_ids)
        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=customer_ids,
                details={"operation": "untag", "tag": tag},
            ),
            lambda c: self._vault._customers.untag_many(c, customer_ids, tag),
        )

    def untag_customer(self, customer_id: str, tag: str, *, purpose: str | None = None) -> bool:
        purpose = self.authorize("write", purpose, customer_ids=[customer_id])
        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=[customer_id],
                details={"operation": "untag", "tag": tag},
            ),
            lambda c: self._vault._customers.untag(c, customer_id, tag),
        )

    # --- keys --------------------------------------------------------------------------------

    def rotate_keys(
        self, *, batch_size: int = 5000, on_batch: Callable[[int], None] | None = None
    ) -> keystore.RotationReport:
        """Add a master key version and rewrap every data key (or finish an interrupted run)."""
        purpose = self.authorize("keys")
        failed = AuditEvent(action="keys", purpose=purpose, details={"operation": "rotate"})
        try:
            keyring, report = keystore.rotate(
                self._vault._engine,
                self._vault._key_source,
                self._vault._keyring,
                batch_size=batch_size,
                on_batch=on_batch,
            )
        except Exception as failure:
            error = self._failed(failed, failure)
            if error is failure:
                raise
            raise error from failure
        self._vault._use_keyring(keyring)
        self._record(
            AuditEvent(
                action="keys",
                purpose=purpose,
                details={
                    "operation": "rotate",
                    "to_version": report.to_version,
                    "rewrapped": report.rewrapped,
                    "resumed": report.resumed,
                },
            )
        )
        return report

    def key_status(self) -> keystore.KeyStatus:
        purpose = self.authorize("keys")
        return self._audited(
            AuditEvent(action="keys", purpose=purpose, details={"operation": "status"}),
            lambda c: keystore.status(c, self._vault._keyring),
        )

    def retire_key_version(self, version: int) -> None:
        purpose = self.authorize("keys")
        self._audited(
            AuditEvent(
                action="keys", purpose=purpose, details={"operation": "retire", "version": version}
            ),
            lambda c: keystore.retire(c, version, self._vault._keyring),
        )

    # --- principals --------------------------------------------------------------------------

    def add_principal(
        self,
        name: str,
        roles: Sequence[str],
        *,
        kind: str = "person",
        expires_at: datetime | None = None,
    ) -> str:
        """Create a principal; returns its token, which is shown only this once."""
        purpose = self.authorize("principals")
        self._vault.policy.check_roles(tuple(roles), where="the new principal")
        return self._audited(
            AuditEvent(
                action="principals",
                purpose=purpose,
                details={
                    "operation": "add",
                    "principal": name,
                    "roles": sorted(roles),
                    "kind": kind,
                },
            ),
            lambda c: principals_store.add(c, name, tuple(roles), kind=kind, expires_at=expires_at),
        )

    def list_principals(self) -> list[Principal]:
        purpose = self.authorize("principals")
        return self._audited(
            AuditEvent(action="principals", purpose=purpose, details={"operation": "list"}),
            principals_store.all_principals,
        )

    def revoke_principal(self, name: str) -> None:
        purpose = self.authorize("principals")
        self._audited(
            AuditEvent(
                action="principals",
                purpose=purpose,
                details={"operation": "revoke", "principal": name},
            ),
            lambda c: principals_store.revoke(c, name),
        )

    # --- the audit log -----------------------------------------------------------------------

    def audit_query(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Events matching ``query``. A ``customer`` that is not a customer id is looked up by
        its keyed digest, as the door recorded it (never stored raw)."""
        if query.customer is not None:
            query = replace(query, customer=self._audit_reference(query.customer))
        purpose = self.authorize("audit")
        return self._audited(
            AuditEvent(
                action="audit",
                purpose=purpose,
                customer_ids=[query.customer] if query.customer else [],
                details={"operation": "query"},
            ),
            lambda c: self._vault.audit.query(c, query),
        )

    def audit_page(self, query: AuditQuery) -> AuditPage:
        """Like :meth:`audit_query`, and says whether more events match: continue with
        ``replace(query, after=page.next_after)`` (or ``before=page.next_before`` when
        ``query.newest_first``)."""
        purpose = self.authorize("audit")
        return self._audited(
            AuditEvent(
                action="audit",
                purpose=purpose,
                customer_ids=[query.customer] if query.customer else [],
                details={"operation": "query"},
            ),
            lambda c: self._vault.audit.page(c, query),
        )

    def audit_export(self, query: AuditQuery, out: IO[str], fmt: str) -> int:
        if query.customer is not None:
            query = replace(query, customer=self._audit_reference(query.customer))
        purpose = self.authorize("audit")
        event = AuditEvent(
            action="audit", purpose=purpose, details={"operation": "export", "format": fmt}
        )
        # Committed before the first line is written (to a file, stdout or an HTTP client):
        # if it cannot be, nothing leaves. The export then reads the log, this event included.
        self._record(event)
        try:
            with self._vault._reader.connect() as connection, connection.begin():
                return self._vault.audit.export(connection, query, out, fmt)
        except Exception as failure:
            error = self._failed(
                replace(event, details={**event.details, "phase": "failed"}), failure
            )
            if error is failure:
                raise
            raise error from failure

    def audit_verify(self, external: Iterable[Checkpoint] = ()) -> VerifyReport:
        """Verify the chain. The verify event itself is appended after the walk; if even that
        cannot be written (a stray row stands where it must go), the report says so."""
        purpose = self.authorize("audit")
        try:
            with self._vault._reader.connect() as connection:
                report = self._vault.audit.verify(connection, external)
        except Exception as failure:
            event = AuditEvent(action="audit", purpose=purpose, details={"operation": "verify"})
            error = self._failed(event, failure)
            if error is failure:
                raise
            raise error from failure
        try:
            self._record(
                AuditEvent(
                    action="audit",
                    purpose=purpose,
                    outcome="allowed" if report.ok else "failed",
                    details={
                        "operation": "verify",
                        "events": report.events,
                        "problems": [str(p) for p in report.problems],
                    },
                )
            )
        except AuditChainBroken as error:
            problem = Problem(error.seq or report.last_seq + 1, "not-recorded", str(error))
            report = replace(report, problems=[*report.problems, problem])
        return report

    def audit_checkpoint(self, witnesses: Sequence[Path] = ()) -> Checkpoint:
        """Verify the chain from the last checkpoint and sign the head; refused (and audited)
        when it does not verify. Witness directories get a copy once it is committed."""
        purpose = self.authorize("audit")
        witnessed = [c for d in witnesses for c in read_witness(d)]
        event = AuditEvent(action="audit", purpose=purpose, details={"operation": "checkpoint"})
        try:
            with self._vault._transaction("audit (checkpoint)") as connection:
                self._append(connection, event)
                checkpoint = self._vault.audit.checkpoint(connection, witnessed)
        except AuditChainBroken as broken:
            self._record(replace(event, outcome="failed", reason=str(broken)[:500]))
            raise
        except Exception as failure:
            mapped = self._failed(event, failure)
            if mapped is failure:
                raise
            raise mapped from failure
        self._vault.audit.publish(checkpoint, witnesses)
        return checkpoint

    def audit_rotate_signing_key(self) -> tuple[bytes, bytes]:
        """Checkpoint with the old key (verified), switch to a new signing key, record the
        switch, and checkpoint with the new key. Returns (old, new) public keys."""
        purpose = self.authorize("keys")
        self.audit_checkpoint()
        event = AuditEvent(
            action="keys", purpose=purpose, details={"operation": "rotate-signing-key"}
        )
        try:
            old, new = rotate_signing_key(self._vault)
        except VaultError as error:
            self._record(replace(event, outcome="failed", reason=type(error).__name__))
            raise
        self._record(
            replace(event, details={**event.details, "old_key": old.hex(), "new_key": new.hex()})
        )
        self.audit_checkpoint()
        return old, new

    def audit_remove_stray(self) -> list[dict[str, Any]]:
        """Remove events stored beyond the chain head (never written by the vault) and return
        them as evidence; the removal is an event naming their seqs and hashes."""
        purpose = self.authorize("audit")
        with self._vault._transaction("audit (remove stray events)") as connection:
            removed = self._vault.audit.remove_stray(connection)
            self._append(
                connection,
                AuditEvent(
                    action="audit",
                    purpose=purpose,
                    details={
                        "operation": "remove-stray",
                        "removed": [{"seq": r["seq"], "hash": r["hash"]} for r in removed],
                    },
                ),
            )
        return removed

    def audit_public_key(self) -> bytes:
        self.authorize("audit")
        return self._vault.audit.public_key


def _batches(records: Iterable[NewCustomer], size: int) -> Iterator[list[NewCustomer]]:
    batch: list[NewCustomer] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
