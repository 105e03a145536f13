"""The sync engine: everything a connector does not do, once, for every connector.

For each stream the connector pulls, from its saved cursor (or the beginning with ``full``):
fetch a page (retried and rate-limit-waited by :mod:`vault.sync.retry`), resolve and upsert its
records (:mod:`vault.sync.resolve`), and commit in **one transaction** the records, the cursor
that follows them and the audit event of the batch. A sync killed at any point resumes from the
last committed batch: nothing lost, nothing twice. A dry run does the same work in one
transaction per stream, rolled back at its end, so a later page sees what the earlier ones would
have written (a buyer twice in a file is created once, as in the real run) and its counts are the
real run's; it holds the write lock while it runs (other writers wait for it on SQLite).

The engine runs as the connector's service principal (``connector-<name>``, role
``connector``), so every change it makes is audited under that principal; the person who
started the sync is audited too, in an event of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from vault.access.principals import Principal
from vault.audit import AuditEvent
from vault.consent import ledger, suppression
from vault.door import Door
from vault.errors import ConnectorError, PlatformProtocolError, VaultError
from vault.records import NewCustomer, Order
from vault.store.customers import IDENTITY_INDEX_PREFIX
from vault.store.engine import as_utc, utcnow
from vault.store.schema import (
    consent_state,
    customer_identities,
    interactions,
    sync_cursors,
    sync_runs,
)
from vault.sync import reconcile
from vault.sync.contract import (
    STREAMS,
    Connector,
    ConsentSignal,
    Cursor,
    ExternalCustomer,
    ExternalDeletion,
    ExternalInteraction,
    ExternalOrder,
    Page,
    Record,
)
from vault.sync.echoes import PushedValues
from vault.sync.report import Counts, Reject, SyncReport
from vault.sync.resolve import Prepared, Resolver, Suppressed
from vault.sync.retry import RetryStats, SyncPolicy, call_with_retries
from vault.sync.sources import SourceRanking

if TYPE_CHECKING:
    from vault.vault import Vault

PULL_PURPOSE = "administration"  # keeping the vault's copy of what the platforms hold
MAX_REJECTS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class Progress:
    """What ``on_progress`` is told after every committed batch (and every wait)."""

    connector: str
    stream: str
    batches: int
    records: int  # records of this stream so far
    counts: Counts
    total: int | None = None  # records expected, when the connector knows
    waiting: str | None = None  # "PlatformRateLimited 2.0s" while waiting


ProgressCallback = Callable[[Progress], None]


class _DryRun(Exception):
    """Raised inside a dry run's transaction to roll it back."""


def load_cursor(connection: Connection, connector: str, stream: str) -> Cursor | None:
    row = connection.execute(
        select(sync_cursors.c.cursor).where(
            sync_cursors.c.connector == connector, sync_cursors.c.stream == stream
        )
    ).scalar_one_or_none()
    return None if row is None else dict(json.loads(row))


def save_cursor(
    connection: Connection, connector: str, stream: str, cursor: Cursor, *, complete: bool
) -> None:
    key = and_(sync_cursors.c.connector == connector, sync_cursors.c.stream == stream)
    text = json.dumps(dict(cursor), sort_keys=True, default=str)
    now = utcnow()
    result = connection.execute(
        update(sync_cursors)
        .where(key)
        .values(cursor=text, complete=complete, batches=sync_cursors.c.batches + 1, updated_at=now)
    )
    if not result.rowcount:
        connection.execute(
            insert(sync_cursors).values(
                connector=connector,
                stream=stream,
                cursor=text,
                complete=complete,
                batches=1,
                updated_at=now,
            )
        )


class SyncEngine:
    def __init__(
        self,
        vault: Vault,
        *,
        connector: Connector,
        principal: Principal,
        caller: Door,
        source: str | None = None,
        policy: SyncPolicy | None = None,
        on_progress: ProgressCallback | None = None,
        suppressed: Callable[[Connection, Prepared], bool] | None = None,
        sleep: Callable[[float], None] | None = None,
        action: str = "sync",
        on_rejects: Callable[[Sequence[Reject]], None] | None = None,
    ) -> None:
        self.vault = vault
        self.connector = connector
        self.name = connector.info.name
        self.caller = caller
        self.door = Door(vault, principal, purpose=PULL_PURPOSE, request_id=caller.request_id)
        self.policy = policy or vault.sync_policy
        self.on_progress = on_progress
        self.stats = RetryStats()
        self.sleep = sleep
        self.action = action  # "sync", or "import" for a file
        self.on_rejects = on_rejects
        self.resolver = Resolver(
            store=vault._customers,
            catalogue=vault.catalogue,
            indexer=vault._indexer,
            ranking=SourceRanking.load(vault.home.policy_file("sources.toml")),
            source=source or self.name,
            platform=connector.info.platform,
            suppressed=self._suppressed if suppressed is None else _per_record(suppressed),
            # A system the vault pushes to hands its pushes back: those echoes change nothing.
            echoes=self.pushed_values() if "customers" in connector.info.pushes else None,
        )

    def pushed_values(self) -> PushedValues:
        """What was pushed to this connector, per customer and field (keyed hashes)."""
        return PushedValues(
            connector=self.name, catalogue=self.vault.catalogue, indexer=self.vault._indexer
        )

    def _suppressed(self, connection: Connection, batch: Sequence[Prepared]) -> set[int]:
        """The records of people erased after the record was observed (``suppressed``): one
        lookup per identifier kind for the whole batch."""
        records = [
            NewCustomer(fields=p.fields, identities=p.identities, observed_at=p.record.observed_at)
            for p in batch
        ]
        kept, _ = suppression.filter_records(connection, self.vault, records)
        kept_ids = {id(record) for record in kept}
        return {n for n, record in enumerate(records) if id(record) not in kept_ids}

    # --- one run ------------------------------------------------------------------------------

    def run(
        self, *, full: bool = False, dry_run: bool = False, streams: Sequence[str] | None = None
    ) -> SyncReport:
        """Pull every stream (or ``streams``); raises the error that stopped the run, after
        recording it, with every batch before it committed and its cursor saved."""
        report = SyncReport(
            connector=self.name, principal=self.door.principal.name, dry_run=dry_run, full=full
        )
        wanted = [s for s in STREAMS if s in self.connector.info.pulls]
        if streams is not None:
            unknown = set(streams) - set(self.connector.info.pulls)
            if unknown:
                raise ConnectorError(
                    f"does not pull {', '.join(sorted(unknown))}", connector=self.name
                )
            wanted = [s for s in wanted if s in streams]
        self.door.authorize(self.action, PULL_PURPOSE)
        report.run_id = self._start_run(full=full, dry_run=dry_run)
        try:
            for stream in wanted:
                self._pull(stream, report, full=full, dry_run=dry_run)
        except VaultError as error:
            report.error = f"{type(error).__name__}: {error}"
            self._finish_run(report, "failed")
            raise
        except BaseException as error:  # interrupted: record what is known, then stop
            report.error = type(error).__name__
            self._finish_run(report, "failed")
            raise
        self._finish_run(report, "dry-run" if dry_run else "ok")
        return report

    def _pull(self, stream: str, report: SyncReport, *, full: bool, dry_run: bool) -> None:
        if not dry_run:
            self._pull_pages(stream, report, full=full, transaction=self.vault._transaction)
            return
        # One transaction for every page of a dry run, rolled back at the end: each page sees
        # what the pages before it would have written, so the counts are the real run's.
        try:
            with self.vault._transaction() as connection:

                @contextmanager
                def same() -> Iterator[Connection]:
                    yield connection

                self._pull_pages(stream, report, full=full, transaction=same, dry_run=True)
                raise _DryRun
        except _DryRun:
            pass

    def _pull_pages(
        self,
        stream: str,
        report: SyncReport,
        *,
        full: bool,
        transaction: Callable[[], AbstractContextManager[Connection]],
        dry_run: bool = False,
    ) -> None:
        with self.vault._reader.connect() as connection:
            cursor = None if full else load_cursor(connection, self.name, stream)
        batches = 0
        records = 0
        while True:
            page = self._fetch(stream, cursor)
            if page.more and not page.records and not page.rejects and page.cursor == cursor:
                raise PlatformProtocolError(
                    f"{stream}: an empty page that does not move the cursor but says there is "
                    "more (the sync would never end)",
                    connector=self.name,
                )
            counts = Counts(pulled=len(page.records) + len(page.rejects))
            with transaction() as connection:
                touched, fields, rejects = self._apply(
                    connection, page.records, counts, where=f"{stream}#{batches + 1}"
                )
                if page.rejects:
                    rejects = [Reject(where=w, reason=r) for w, r in page.rejects] + rejects
                    counts.rejected += len(page.rejects)
                if rejects and self.on_rejects is not None:
                    self.on_rejects(rejects)
                if not dry_run:  # (a dry run's writes are all rolled back: no cursor, no event)
                    save_cursor(connection, self.name, stream, page.cursor, complete=not page.more)
                    self.door._append(
                        connection,
                        AuditEvent(
                            action=self.action,
                            purpose=PULL_PURPOSE,
                            customer_ids=touched,
                            fields=fields,
                            details={
                                "connector": self.name,
                                "stream": stream,
                                "batch": batches + 1,
                                "dry_run": dry_run,
                                **{k: v for k, v in counts.as_dict().items() if v},
                            },
                        ),
                    )
            batches += 1
            records += len(page.records)
            report.counts.add(counts)
            report.streams[stream] = batches
            if len(report.rejects) < MAX_REJECTS_KEPT:
                report.rejects.extend(rejects[: MAX_REJECTS_KEPT - len(report.rejects)])
            self._progress(stream, batches, records, report.counts)
            cursor = page.cursor
            if not page.more:
                return

    def _fetch(self, stream: str, cursor: Cursor | None) -> Page:
        def on_wait(kind: str, seconds: float) -> None:
            if self.on_progress is not None:
                self.on_progress(
                    Progress(
                        connector=self.name,
                        stream=stream,
                        batches=0,
                        records=0,
                        counts=Counts(),
                        waiting=f"{kind} {seconds:.1f}s",
                    )
                )

        kwargs: dict[str, Any] = {"on_wait": on_wait}
        if self.sleep is not None:
            kwargs["sleep"] = self.sleep
        page = call_with_retries(
            lambda: self.connector.fetch(stream, cursor), self.policy, self.stats, **kwargs
        )
        if not isinstance(page, Page):
            raise ConnectorError(
                f"fetch({stream!r}) returned {type(page).__name__}, not a Page", connector=self.name
            )
        return page

    def _progress(self, stream: str, batches: int, records: int, counts: Counts) -> None:
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    connector=self.name,
                    stream=stream,
                    batches=batches,
                    records=records,
                    counts=counts,
                )
            )

    # --- one batch ----------------------------------------------------------------------------

    def _apply(
        self, connection: Connection, records: Sequence[Record], counts: Counts, *, where: str
    ) -> tuple[list[str], list[str], list[Reject]]:
        """Resolve and write one page; returns (customers touched, fields written, rejects)."""
        rejects: list[Reject] = []
        buyers: list[Prepared] = []
        owners: list[int] = []  # position in ``records`` of each prepared buyer
        deletions: list[ExternalDeletion] = []
        for position, record in enumerate(records):
            if isinstance(record, ExternalDeletion):
                deletions.append(record)
                continue
            person = _person_of(record)
            if person is None:
                rejects.append(
                    Reject(
                        where=f"{where} record {position + 1}",  # (no ref on an unknown type)
                        reason=f"not a record type: {type(record).__name__}",
                    )
                )
                continue
            prepared = self.resolver.prepare(person, person.ref or f"{where} record {position + 1}")
            if isinstance(prepared, Reject):
                rejects.append(prepared)
                continue
            buyers.append(prepared)
            owners.append(position)
        counts.rejected += len(rejects)
        outcomes = self.resolver.apply(connection, buyers, counts)
        touched: list[str] = []
        fields: set[str] = set()
        orders: list[Order] = []
        for position, outcome in zip(owners, outcomes, strict=True):
            if outcome.customer_id is None:
                continue
            touched.append(outcome.customer_id)
            fields.update(outcome.fields)
            record = records[position]
            if isinstance(record, ExternalOrder):
                orders.append(replace(record.order, customer_id=outcome.customer_id))
            elif isinstance(record, ExternalInteraction) and self._new_interaction(
                connection, outcome.customer_id, record
            ):
                self.vault._customers.record_interaction(
                    connection,
                    outcome.customer_id,
                    kind=record.kind,
                    channel=record.channel,
                    occurred_at=record.occurred_at,
                    text=record.text,
                    source=self.resolver.source,
                )
                counts.interactions += 1
        if orders:  # the page's customers' segments are brought up to date once
            self.vault._customers.record_orders(connection, orders, source=self.resolver.source)
            counts.orders += len(orders)
        signals = [
            (outcome.customer_id, signal)
            for position, outcome in zip(owners, outcomes, strict=True)
            if outcome.customer_id is not None
            for signal in (_person_of(records[position]) or _NOBODY).consent
        ]
        if signals:
            counts.consent += self._record_consent(connection, signals, rejects, where)
        for deletion in deletions:
            customer_id = self._forget_identity(connection, deletion)
            if customer_id is not None:
                touched.append(customer_id)
                counts.deleted += 1
        return sorted(set(touched)), sorted(fields), rejects

    def _record_consent(
        self,
        connection: Connection,
        signals: Sequence[tuple[str, ConsentSignal]],
        rejects: list[Reject],
        where: str,
    ) -> int:
        """Append the platform's consent decisions to the ledger (channel: the connector), once:
        a decision the derived state already holds, at the same time or later, is skipped."""
        self.door.authorize("consent", PULL_PURPOSE)
        entries: list[ledger.ConsentEntry] = []
        for customer_id, signal in signals:
            state = ledger.GRANTED if signal.granted else ledger.WITHDRAWN
            current = connection.execute(
                select(consent_state.c.state, consent_state.c.at).where(
                    consent_state.c.customer_id == customer_id,
                    consent_state.c.purpose == signal.purpose,
                )
            ).first()
            if current is not None and (
                current.state == state or as_utc(current.at) >= as_utc(signal.at)
            ):
                continue
            entry = ledger.ConsentEntry(
                customer_id=customer_id,
                purpose=signal.purpose,
                state=state,
                at=signal.at,
                channel=self.name,
                evidence=signal.evidence,
            )
            try:
                ledger.check_entry(self.vault.policy, entry)
            except VaultError as error:
                rejects.append(Reject(where=f"{where} consent", reason=str(error)[:200]))
                continue
            entries.append(entry)
        ledger.record(connection, self.vault.policy, entries, recorded_by=self.door.principal.name)
        return len(entries)

    def _new_interaction(
        self, connection: Connection, customer_id: str, record: ExternalInteraction
    ) -> bool:
        """An interaction is kept once: the same kind, channel, time and source is a re-send."""
        return (
            connection.execute(
                select(interactions.c.id).where(
                    interactions.c.customer_id == customer_id,
                    interactions.c.kind == record.kind,
                    interactions.c.channel == record.channel,
                    interactions.c.occurred_at == record.occurred_at,
                    interactions.c.source == self.resolver.source,
                )
            ).first()
            is None
        )

    def _forget_identity(self, connection: Connection, deletion: ExternalDeletion) -> str | None:
        """The platform deleted its record: unbind that identity (the customer stays)."""
        platform = self.connector.info.platform
        digest = self.vault._indexer.digest(
            IDENTITY_INDEX_PREFIX + platform, deletion.external_id.strip()
        )
        key = and_(
            customer_identities.c.platform == platform,
            customer_identities.c.external_index == digest,
        )
        customer_id = connection.execute(
            select(customer_identities.c.customer_id).where(key)
        ).scalar_one_or_none()
        if customer_id is not None:
            connection.execute(delete(customer_identities).where(key))
        return customer_id

    def reconcile(self, report: SyncReport, *, dry_run: bool) -> None:
        """Unbind the identities of records the platform no longer lists
        (:mod:`vault.sync.reconcile`), in one transaction with its audit event."""
        if not self.connector.info.reconciles:
            raise ConnectorError(
                "cannot list its ids, so it cannot be reconciled", connector=self.name
            )
        self.door.authorize(self.action, PULL_PURPOSE)
        platform = self.connector.info.platform

        def list_page(after: str | None) -> tuple[Sequence[str], str | None]:
            return call_with_retries(
                lambda: self.connector.list_ids(after), self.policy, self.stats
            )

        listed = reconcile.listed_digests(list_page, self.vault._indexer, platform)
        with self.vault._transaction() as connection:
            missing = reconcile.missing_identities(connection, platform, listed)
            if not dry_run:
                reconcile.unbind(connection, missing)
            customers = sorted({customer_id for _, customer_id in missing})
            report.counts.deleted += len(missing)
            self.door._append(
                connection,
                AuditEvent(
                    action=self.action,
                    purpose=PULL_PURPOSE,
                    customer_ids=customers,
                    details={
                        "operation": "reconcile",
                        "connector": self.name,
                        "listed": len(listed),
                        "unbound": len(missing),
                        "dry_run": dry_run,
                    },
                ),
            )

    # --- pushes --------------------------------------------------------------------------------

    def push(self, report: SyncReport, *, dry_run: bool) -> None:
        """Push what changed (consent-gated); recorded in the report and the run."""
        from vault.sync.push import Pusher

        pusher = Pusher(
            self.vault,
            connector=self.connector,
            door=self.door,
            policy=self.policy,
            stats=self.stats,
            sleep=self.sleep,
            pushed_values=self.pushed_values(),
        )
        try:
            if "customers" in self.connector.info.pushes:
                pusher.push(report.counts, dry_run=dry_run)
            if "deletions" in self.connector.info.pushes:
                pusher.erase(report.counts, dry_run=dry_run)
        except VaultError as error:
            report.error = f"{type(error).__name__}: {error}"
            self._finish_run(report, "failed")
            raise
        self._finish_run(report, "dry-run" if dry_run else "ok")

    # --- the run's record ---------------------------------------------------------------------

    def _start_run(self, *, full: bool, dry_run: bool) -> int:
        with self.vault._transaction() as connection:
            run_id = connection.execute(
                insert(sync_runs).values(
                    connector=self.name,
                    principal=self.door.principal.name,
                    started_at=utcnow(),
                    status="running",
                    full=full,
                    counts="{}",
                )
            ).inserted_primary_key
            self.caller._append(
                connection,
                AuditEvent(
                    action=self.action,
                    purpose=self.caller.purpose,
                    details={
                        "operation": "start",
                        "connector": self.name,
                        "as": self.door.principal.name,
                        "full": full,
                        "dry_run": dry_run,
                    },
                ),
            )
        assert run_id is not None
        return int(run_id[0])

    def _finish_run(self, report: SyncReport, status: str) -> None:
        report.retries = self.stats.retries
        report.rate_limit_waits = self.stats.rate_limit_waits
        report.waited_seconds = self.stats.waited_seconds
        with self.vault._transaction() as connection:
            connection.execute(
                update(sync_runs)
                .where(sync_runs.c.id == report.run_id)
                .values(
                    finished_at=utcnow(),
                    status=status,
                    counts=json.dumps(report.counts.as_dict(), sort_keys=True),
                    error=(report.error or "")[:512] or None,
                )
            )
            self.door._append(
                connection,
                AuditEvent(
                    action=self.action,
                    purpose=PULL_PURPOSE,
                    outcome="allowed" if status != "failed" else "failed",
                    reason=(report.error or "")[:200],
                    details={
                        "operation": "finish",
                        "connector": self.name,
                        "status": status,
                        **{k: v for k, v in report.counts.as_dict().items() if v},
                    },
                ),
            )


def _per_record(check: Callable[[Connection, Prepared], bool]) -> Suppressed:
    """A per-record suppression check (``suppressed=`` of :class:`SyncEngine`) as a batch one."""

    def batch(connection: Connection, records: Sequence[Prepared]) -> set[int]:
        return {n for n, prepared in enumerate(records) if check(connection, prepared)}

    return batch


_NOBODY = ExternalCustomer(external_id="", observed_at=datetime.min.replace(tzinfo=UTC))


def _person_of(record: Record) -> ExternalCustomer | None:
    if isinstance(record, ExternalCustomer):
        return record
    if isinstance(record, ExternalOrder | ExternalInteraction):
        return record.buyer
    return None
