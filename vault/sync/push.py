"""Pushes: customers to a connected system, only as far as each customer consented.

Sharing a customer with a CRM is a provision to another handler (purpose ``crm_sharing``); a
system whose region is ``abroad`` is also a cross-border transfer (``transfer_abroad``, PIPL
art. 39). A customer without active consent for every purpose a push needs is skipped and
counted by reason, never sent. Only fields both purposes allow are sent, as the connector's
role sees them. What was last sent is kept as a keyed hash per connector and customer
(``push_state``), so a customer is sent again only when what would be sent has changed, and per
field (``pushed_values``, :mod:`vault.sync.echoes`), so that the next pull recognises the
platform's echo of it.

Erasure requests (one per platform identity an erased customer had) are carried out through
``Connector.delete`` by connectors that push ``deletions``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update

from vault.audit import AuditEvent
from vault.consent import active_customers, erasure
from vault.door import Door
from vault.errors import ConnectorError
from vault.store.engine import utcnow
from vault.store.schema import customers, push_state
from vault.sync.contract import Connector, OutboundCustomer, PushOutcome
from vault.sync.echoes import PushedValues
from vault.sync.report import Counts
from vault.sync.retry import RetryStats, SyncPolicy, call_with_retries

if TYPE_CHECKING:
    from vault.access.policy import Policy
    from vault.vault import Vault

SHARING_PURPOSE = "crm_sharing"
PULL_PURPOSE = "administration"  # carrying out an erasure is running the vault
ABROAD_PURPOSE = "transfer_abroad"
CHUNK = 400  # customer ids per IN (...) list
_KNOWN = select(push_state.c.customer_id, push_state.c.digest).where(
    push_state.c.connector == bindparam("connector"),
    push_state.c.customer_id.in_(bindparam("ids", expanding=True)),
)
_STATE_UPDATE = (
    update(push_state)
    .where(
        push_state.c.connector == bindparam("b_connector"),
        push_state.c.customer_id == bindparam("b_customer_id"),
    )
    .values(digest=bindparam("digest"), pushed_at=bindparam("pushed_at"))
)
_STATE_INSERT = insert(push_state)
ActiveCustomers = Callable[["Connection", "Policy", str, Sequence[str]], set[str]]
"""Which customers' consent for a purpose is active (:func:`vault.consent.active_customers`)."""


def required_purposes(connector: Connector) -> list[str]:
    purposes = [SHARING_PURPOSE]
    if connector.region == "abroad":
        purposes.append(ABROAD_PURPOSE)
    return purposes


class Pusher:
    def __init__(
        self,
        vault: Vault,
        *,
        connector: Connector,
        door: Door,
        policy: SyncPolicy,
        stats: RetryStats,
        active_customers: ActiveCustomers = active_customers,
        sleep: Callable[[float], None] | None = None,
        pushed_values: PushedValues | None = None,
    ) -> None:
        self.vault = vault
        self.connector = connector
        self.name = connector.info.name
        self.platform = connector.info.platform
        self.door = door
        self.policy = policy
        self.stats = stats
        self.active_customers = active_customers
        self.sleep = sleep
        self.purposes = required_purposes(connector)
        self.pushed_values = pushed_values or PushedValues(
            connector=self.name, catalogue=vault.catalogue, indexer=vault._indexer
        )

    def _fields(self) -> dict[str, str]:
        """The fields a push may carry and the connector's view of each (clear or masked)."""
        views: dict[str, str] = {}
        for purpose in self.purposes:
            for field, view in self.door._views(purpose).items():
                if view == "hidden":
                    views[field] = "hidden"
                elif views.get(field) != "hidden":
                    views[field] = "masked" if "masked" in (view, views.get(field)) else view
        return {f: v for f, v in views.items() if v != "hidden" and f != "platform_id"}

    def _call(self, operation: Callable[[], Sequence[PushOutcome]]) -> Sequence[PushOutcome]:
        kwargs: dict[str, Any] = {} if self.sleep is None else {"sleep": self.sleep}
        return call_with_retries(operation, self.policy, self.stats, **kwargs)

    def push(self, counts: Counts, *, dry_run: bool) -> None:
        """Push every customer changed since its last push, in batches."""
        for purpose in self.purposes:
            self.door.authorize("sync", purpose)
        views = self._fields()
        batch_size = max(1, self.connector.info.push_batch_size)
        after = ""
        while True:
            with self.vault._reader.connect() as connection:
                ids = self._changed(connection, after, batch_size)
            if not ids:
                return
            after = ids[-1]
            self._push_batch(ids, views, counts, dry_run=dry_run)

    def _changed(self, connection: Connection, after: str, limit: int) -> list[str]:
        joined = customers.outerjoin(
            push_state,
            and_(push_state.c.customer_id == customers.c.id, push_state.c.connector == self.name),
        )
        return list(
            connection.execute(
                select(customers.c.id)
                .select_from(joined)
                .where(
                    customers.c.erased_at.is_(None),
                    customers.c.wrapped_dek.is_not(None),
                    customers.c.id > after,
                    or_(
                        push_state.c.customer_id.is_(None),
                        customers.c.updated_at > push_state.c.pushed_at,
                    ),
                )
                .order_by(customers.c.id)
                .limit(limit)
            ).scalars()
        )

    def _push_batch(
        self, ids: list[str], views: dict[str, str], counts: Counts, *, dry_run: bool
    ) -> None:
        """Push one batch: a few reads for all of it (consent per purpose, push state, the
        customers), one call to the connector, then a few writes and one audit event for all
        of it, so a batch costs the same number of statements whatever its size."""
        with self.vault._reader.connect() as connection:
            allowed = self._consenting(connection, ids, counts)
            known = self._known(connection, allowed)
            stored = self.vault._customers.get_many(connection, allowed, only_fields=set(views))
        shown = {f: views.get(f, "hidden") for f in self.vault.catalogue}
        outbound: list[OutboundCustomer] = []
        digests: dict[str, bytes] = {}
        for customer_id in allowed:
            customer = stored[customer_id]
            external = next(
                (i.external_id for i in customer.identities if i.platform == self.platform),
                None,
            )
            presented = self.door._present(customer, shown)
            fields = {name: value.value for name, value in sorted(presented.fields.items())}
            digest = self._digest(external, fields)
            if known.get(customer_id) == digest:
                counts.skipped_push["unchanged"] += 1
                continue
            if not fields:
                counts.skipped_push["no shareable field"] += 1
                continue
            digests[customer_id] = digest
            outbound.append(
                OutboundCustomer(customer_id=customer_id, external_id=external, fields=fields)
            )
        if not outbound:
            return
        if dry_run:
            counts.pushed += len(outbound)
            return
        outcomes = self._call(lambda: self.connector.push_customers(outbound))
        self._record(outbound, outcomes, digests, known, counts)

    def _consenting(self, connection: Connection, ids: list[str], counts: Counts) -> list[str]:
        """Those of ``ids`` with active consent for every purpose of the push, in id order;
        the others are counted as skipped by the first purpose they lack."""
        allowed = set(ids)
        for purpose in self.purposes:
            active = self.active_customers(connection, self.vault.policy, purpose, ids)
            if refused := len(allowed - active):
                counts.skipped_push[f"no consent: {purpose}"] += refused
            allowed &= active
        return sorted(allowed)

    def _known(self, connection: Connection, customer_ids: Sequence[str]) -> dict[str, bytes]:
        """The digest of what was last pushed to each of these customers (one chunk each)."""
        known: dict[str, bytes] = {}
        for start in range(0, len(customer_ids), CHUNK):
            for customer_id, digest in connection.execute(
                _KNOWN, {"connector": self.name, "ids": customer_ids[start : start + CHUNK]}
            ).tuples():
                known[customer_id] = bytes(digest)
        return known

    def _digest(self, external_id: str | None, fields: Mapping[str, str]) -> bytes:
        """The keyed hash of what a push sends: the platform id and the fields, never kept in
        clear."""
        return self.vault._indexer.digest(
            f"push:{self.name}",
            json.dumps([external_id, dict(fields)], ensure_ascii=False, sort_keys=True),
        )

    def _record(
        self,
        outbound: Sequence[OutboundCustomer],
        outcomes: Sequence[PushOutcome],
        digests: dict[str, bytes],
        known: Mapping[str, bytes],
        counts: Counts,
    ) -> None:
        """Keep what the platform accepted, in one transaction with the batch's audit event:
        new platform ids as identities, push state and echo digests, each in one
        ``executemany``."""
        by_id = {record.customer_id: record for record in outbound}
        pushed: list[str] = []
        identities: list[tuple[str, str, str]] = []
        for outcome in outcomes:
            record = by_id.get(outcome.customer_id)
            if record is None:
                raise ConnectorError(
                    "push answered for a customer it was not sent", connector=self.name
                )
            if not outcome.ok:
                counts.failed += 1
                continue
            pushed.append(record.customer_id)
            if outcome.external_id and outcome.external_id != record.external_id:
                identities.append((record.customer_id, self.platform, outcome.external_id))
                digests[record.customer_id] = self._digest(outcome.external_id, record.fields)
        now = utcnow()
        with self.vault._transaction() as connection:
            if identities:
                self.vault._customers.add_identities(connection, identities, source=self.name)
            self._remember(connection, {cid: digests[cid] for cid in pushed}, known, now)
            self.pushed_values.remember(
                connection, [(cid, by_id[cid].fields) for cid in pushed], at=now
            )
            counts.pushed += len(pushed)
            self.door._append(
                connection,
                AuditEvent(
                    action="sync",
                    purpose=self.purposes[-1],
                    customer_ids=pushed,
                    fields=sorted({f for r in outbound for f in r.fields}),
                    details={
                        "operation": "push",
                        "connector": self.name,
                        "region": self.connector.region,
                        "purposes": self.purposes,
                        "sent": len(outbound),
                        "pushed": len(pushed),
                        "failed": len(outbound) - len(pushed),
                    },
                ),
            )

    def erase(self, counts: Counts, *, dry_run: bool) -> None:
        """Carry out the pending erasure requests for this connector's platform through
        ``Connector.delete``; each request is marked done or failed with the platform's answer,
        in the same transaction as the audit event of its batch."""
        self.door.authorize("sync", PULL_PURPOSE)
        with self.vault._reader.connect() as connection:
            requests = erasure.pending(connection, self.vault, self.platform)
        batch_size = max(1, self.connector.info.push_batch_size)
        for start in range(0, len(requests), batch_size):
            batch = requests[start : start + batch_size]
            if dry_run:
                counts.deleted += len(batch)
                continue
            ids = [external_id for _, external_id in batch]
            outcomes = self._call(lambda ids=ids: self.connector.delete(ids))  # type: ignore[misc]
            answers = {o.external_id: o for o in outcomes}
            done = 0
            with self.vault._transaction() as connection:
                for request_id, external_id in batch:
                    outcome = answers.get(external_id)
                    ok = outcome is not None and outcome.ok
                    detail = None if outcome is None else outcome.error
                    if outcome is None:
                        detail = "the platform gave no answer for this record"
                    erasure.complete(connection, request_id, ok=ok, detail=detail)
                    done += ok
                counts.deleted += done
                counts.failed += len(batch) - done
                self.door._append(
                    connection,
                    AuditEvent(
                        action="sync",
                        purpose=PULL_PURPOSE,
                        details={
                            "operation": "erase",
                            "connector": self.name,
                            "requests": [request_id for request_id, _ in batch],
                            "deleted": done,
                            "failed": len(batch) - done,
                        },
                    ),
                )

    def _remember(
        self,
        connection: Connection,
        digests: Mapping[str, bytes],
        known: Mapping[str, bytes],
        now: datetime,
    ) -> None:
        """Write the push state of the customers pushed: an ``executemany`` update of those
        pushed before (``known``, read with the batch) and one insert of the others."""
        updates = [
            {"b_connector": self.name, "b_customer_id": cid, "digest": d, "pushed_at": now}
            for cid, d in digests.items()
            if cid in known
        ]
        inserts = [
            {"connector": self.name, "customer_id": cid, "digest": d, "pushed_at": now}
            for cid, d in digests.items()
            if cid not in known
        ]
        if updates:
            connection.execute(_STATE_UPDATE, updates)
        if inserts:
            connection.execute(_STATE_INSERT, inserts)
