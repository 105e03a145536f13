"""The audit log in the store: append (one chain, even with many writers), checkpoint, query,
export and verify.

Appending takes the chain head under a lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
writers are already serialised by ``BEGIN IMMEDIATE``), so concurrent processes extend one chain
with no gaps or forks. The append runs in the caller's transaction: a change and its event land
together or not at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Boolean, Connection, Engine, Select, insert, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from vault.audit.chain import (
    BODY_VERSION,
    GENESIS_HASH,
    INLINE_CUSTOMER_IDS,
    ChainVerifier,
    Checkpoint,
    Problem,
    VerifyReport,
    canonical,
    event_hash,
    format_time,
    sign_checkpoint,
)
from vault.audit.events import AuditEvent
from vault.audit.ids import SortedIds
from vault.crypto._hazmat import ed25519_public_key
from vault.errors import InvalidValue
from vault.store._bulk import BulkInsert
from vault.store.engine import utcnow
from vault.store.schema import (
    CUSTOMER_ID_MAX,
    audit_checkpoints,
    audit_event_customers,
    audit_events,
    audit_head,
)

CHECKPOINT_EVERY = 1000
INDEX_CHUNK = 10_000  # audit_event_customers rows per executemany

# Every audited call runs these; they go straight to the driver (see vault/store/_bulk.py).
_EVENT_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "purpose",
    "outcome",
    "customer_count",
    "request_id",
    "body",
    "prev_hash",
    "hash",
)
_HEAD_SQL = "SELECT seq, hash FROM audit_head WHERE id = 1"
_UPDATE_HEAD_SQL = {
    "qmark": "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
    "format": "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1",
    "pyformat": "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1",
}


def sorted_customer_digest(sorted_ids: Iterable[str]) -> str:
    """``customer_digest`` of ids already sorted and unique, without joining them in memory."""
    digest = hashlib.sha256()
    separator = b""
    for customer_id in sorted_ids:
        digest.update(separator + customer_id.encode())
        separator = b"\n"
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    actor: str | None = None
    customer: str | None = None
    action: str | None = None
    purpose: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = 1000
    # Paging by sequence number: events after / before these (exclusive). A page that hit
    # ``limit`` continues with ``after=`` its last seq (or ``before=`` it, newest first).
    after: int | None = None
    before: int | None = None
    newest_first: bool = False
    # ``details.operation`` of the event, e.g. ``push`` (action ``sync``) or ``tag``.
    operation: str | None = None

    def __post_init__(self) -> None:
        """A filter no event could match is a mistake to name, not a database error: the
        customer filter is recorded on the audit event itself (a 36-character column), and
        PostgreSQL cannot compare a NUL."""
        if self.customer is not None and len(self.customer) > CUSTOMER_ID_MAX:
            raise InvalidValue(
                field="customer", reason=f"a customer id is at most {CUSTOMER_ID_MAX} characters"
            )
        for name in ("actor", "customer", "action", "purpose", "outcome", "operation"):
            if "\x00" in (getattr(self, name) or ""):
                raise InvalidValue(field=name, reason="a NUL character is in no audit event")


class _holds_bytes(FunctionElement[bool]):
    """``haystack`` (bytes) contains ``needle`` (bytes): ``instr`` on SQLite (its LIKE does not
    match blobs), ``position(... in ...)`` on PostgreSQL's bytea."""

    type = Boolean()
    inherit_cache = True
    name = "holds_bytes"


@compiles(_holds_bytes)
def _holds_bytes_sqlite(element: _holds_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = (compiler.process(c, **kw) for c in element.clauses)
    return f"instr({haystack}, {needle}) > 0"


@compiles(_holds_bytes, "postgresql")
def _holds_bytes_postgresql(element: _holds_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = (compiler.process(c, **kw) for c in element.clauses)
    return f"position({needle} in {haystack}) > 0"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditPage:
    """A page of audit events. When ``more`` is true the next page is the same query with
    ``after=next_after`` (oldest first) or ``before=next_before`` (newest first)."""

    events: list[dict[str, Any]]
    more: bool
    newest_first: bool

    @property
    def next_after(self) -> int | None:
        return self.events[-1]["seq"] if self.more and not self.newest_first else None

    @property
    def next_before(self) -> int | None:
        return self.events[-1]["seq"] if self.more and self.newest_first else None


class AuditLog:
    def __init__(
        self, engine: Engine, signing_seed: bytes, *, checkpoint_every: int = CHECKPOINT_EVERY
    ):
        self._engine = engine
        self._seed = signing_seed
        self.public_key = ed25519_public_key(signing_seed)
        self.checkpoint_every = checkpoint_every

    # --- writing -----------------------------------------------------------------------------

    def _head(self, connection: Connection) -> tuple[int, bytes]:
        lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
        seq, head_hash = connection.exec_driver_sql(_HEAD_SQL + lock).one()
        return int(seq), bytes(head_hash)

    def append(
        self,
        connection: Connection,
        event: AuditEvent,
        *,
        actor: str,
        roles: Sequence[str],
        request_id: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append ``event`` in the caller's transaction; returns its sequence number."""
        seq, prev_hash = self._head(connection)
        seq += 1
        at = at or utcnow()
        named = event.customer_ids
        ids: Sequence[str] = (
            named if isinstance(named, SortedIds) and named.in_order else sorted(set(named))
        )
        count = len(ids)
        digest_of_ids = (
            ids.digest
            if isinstance(ids, SortedIds) and ids.in_order
            else sorted_customer_digest(ids)
        )
        customers: dict[str, Any] = {"count": count, "digest": digest_of_ids}
        if count <= INLINE_CUSTOMER_IDS:
            customers["ids"] = list(ids)
        body = canonical(
            {
                "v": BODY_VERSION,
                "seq": seq,
                "at": format_time(at),
                "actor": actor,
                "roles": sorted(roles),
                "action": event.action,
                "purpose": event.purpose,
                "outcome": event.outcome,
                "customers": customers,
                "fields": sorted(set(event.fields)),
                "reason": event.reason,
                "request_id": request_id,
                "details": dict(event.details),
            }
        )
        digest = event_hash(prev_hash, body)
        events = BulkInsert(connection, audit_events, _EVENT_COLUMNS)
        events.execute(
            [
                (
                    seq,
                    events.bind("at", at),
                    actor,
                    event.action,
                    event.purpose,
                    event.outcome,
                    count,
                    request_id,
                    body,
                    prev_hash,
                    digest,
                )
            ]
        )
        if count:
            index = BulkInsert(connection, audit_event_customers, ("customer_id", "seq"))
            chunk: list[tuple[str, int]] = []
            for customer_id in ids:
                chunk.append((customer_id, seq))
                if len(chunk) >= INDEX_CHUNK:
                    index.execute(chunk)
                    chunk = []
            index.execute(chunk)
        connection.exec_driver_sql(_UPDATE_HEAD_SQL[connection.dialect.paramstyle], (seq, digest))
        if seq % self.checkpoint_every == 0:
            self._write_checkpoint(connection, seq, digest)
        return seq

    def _write_checkpoint(self, connection: Connection, seq: int, head_hash: bytes) -> Checkpoint:
        at = format_time(utcnow())
        checkpoint = Checkpoint(
            seq=seq,
            head_hash=head_hash,
            at=at,
            signature=sign_checkpoint(self._seed, seq, head_hash, at),
        )
        existing = connection.execute(
            select(audit_checkpoints.c.seq).where(audit_checkpoints.c.seq == seq)
        ).first()
        if existing is None:
            connection.execute(
                insert(audit_checkpoints).values(
                    seq=seq, head_hash=head_hash, at=at, signature=checkpoint.signature
                )
            )
        return checkpoint

    def checkpoint(self, connection: Connection) -> Checkpoint:
        """Sign the current head now (``vault audit checkpoint``)."""
        seq, head_hash = self._head(connection)
        existing = connection.execute(
            select(audit_checkpoints).where(audit_checkpoints.c.seq == seq)
        ).first()
        if existing is not None:
            return Checkpoint(
                seq=seq,
                head_hash=bytes(existing.head_hash),
                at=existing.at,
                signature=bytes(existing.signature),
            )
        return self._write_checkpoint(connection, seq, head_hash)

    # --- reading -----------------------------------------------------------------------------

    def _select(self, query: AuditQuery) -> Select[Any]:
        statement = select(
            audit_events.c.seq, audit_events.c.body, audit_events.c.prev_hash, audit_events.c.hash
        ).order_by(audit_events.c.seq.desc() if query.newest_first else audit_events.c.seq)
        if query.after is not None:
            statement = statement.where(audit_events.c.seq > query.after)
        if query.before is not None:
            statement = statement.where(audit_events.c.seq < query.before)
        if query.operation is not None:
            # The body is canonical JSON (sorted keys, no spaces): a string value is written
            # with its quotes escaped, so this text appears only as a key and its value.
            needle = canonical({"operation": query.operation})[1:-1]
            statement = statement.where(_holds_bytes(audit_events.c.body, literal(needle)))
        if query.customer is not None:
            statement = statement.where(
                audit_events.c.seq.in_(
                    select(audit_event_customers.c.seq).where(
                        audit_event_customers.c.customer_id == query.customer
                    )
                )
            )
        for column, value in (
            (audit_events.c.actor, query.actor),
            (audit_events.c.action, query.action),
            (audit_events.c.purpose, query.purpose),
            (audit_events.c.outcome, query.outcome),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.since is not None:
            statement = statement.where(audit_events.c.at >= query.since)
        if query.until is not None:
            statement = statement.where(audit_events.c.at < query.until)
        if query.limit is not None:
            statement = statement.limit(query.limit)
        return statement

    def query(self, connection: Connection, query: AuditQuery) -> list[dict[str, Any]]:
        """Matching events, oldest first (or newest first), as their hashed records (plus
        ``hash``). Filtering on ``operation`` also checks the parsed record."""
        events = [
            {**json.loads(row.body), "hash": bytes(row.hash).hex()}
            for row in connection.execute(self._select(query))
        ]
        if query.operation is None:
            return events
        return [e for e in events if e["details"].get("operation") == query.operation]

    def page(self, connection: Connection, query: AuditQuery) -> AuditPage:
        """One page of :meth:`query`: ``query.limit`` events and whether more match."""
        if query.limit is None:
            return AuditPage(events=self.query(connection, query), more=False, newest_first=False)
        events = self.query(connection, replace(query, limit=query.limit + 1))
        return AuditPage(
            events=events[: query.limit],
            more=len(events) > query.limit,
            newest_first=query.newest_first,
        )

    def rows(self, connection: Connection, query: AuditQuery) -> Iterator[Any]:
        # Per statement: Connection.execution_options() would change the connection for good.
        result = connection.execute(self._select(query), execution_options={"yield_per": 5000})
        yield from result

    def checkpoints(self, connection: Connection) -> list[Checkpoint]:
        return [
            Checkpoint(
                seq=row.seq,
                head_hash=bytes(row.head_hash),
                at=row.at,
                signature=bytes(row.signature),
            )
            for row in connection.execute(
                select(audit_checkpoints).order_by(audit_checkpoints.c.seq)
            )
        ]

    def export(self, connection: Connection, query: AuditQuery, out: IO[str], fmt: str) -> int:
        """Write events as JSON Lines or CSV, then the checkpoints that cover them; returns the
        number of events written."""
        count = 0
        last_seq = 0
        if fmt == "jsonl":
            for row in self.rows(connection, query):
                out.write(
                    json.dumps(
                        {
                            "seq": row.seq,
                            "prev_hash": bytes(row.prev_hash).hex(),
                            "hash": bytes(row.hash).hex(),
                            "body": bytes(row.body).decode(),
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                count += 1
                last_seq = row.seq
            for checkpoint in self.checkpoints(connection):
                if checkpoint.seq <= last_seq:
                    out.write(
                        json.dumps({"checkpoint": checkpoint.to_json(self.public_key)}) + "\n"
                    )
            return count
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(
                [
                    "seq",
                    "at",
                    "actor",
                    "roles",
                    "action",
                    "purpose",
                    "outcome",
                    "customer_count",
                    "customer_ids",
                    "customer_digest",
                    "fields",
                    "reason",
                    "request_id",
                    "prev_hash",
                    "hash",
                    "body",
                ]
            )
            for row in self.rows(connection, query):
                record = json.loads(row.body)
                writer.writerow(
                    [
                        row.seq,
                        record["at"],
                        record["actor"],
                        " ".join(record["roles"]),
                        record["action"],
                        record["purpose"] or "",
                        record["outcome"],
                        record["customers"]["count"],
                        " ".join(record["customers"].get("ids", [])),
                        record["customers"]["digest"],
                        " ".join(record["fields"]),
                        record["reason"],
                        record["request_id"] or "",
                        bytes(row.prev_hash).hex(),
                        bytes(row.hash).hex(),
                        bytes(row.body).decode(),
                    ]
                )
                count += 1
            return count
        raise ValueError(f"unknown audit export format {fmt!r}: jsonl or csv")

    # --- verifying ---------------------------------------------------------------------------

    def verify(self, connection: Connection, external: Iterable[Checkpoint] = ()) -> VerifyReport:
        """Walk the whole chain; check the head, every stored checkpoint and the given ones."""
        stored = self.checkpoints(connection)
        external = list(external)
        verifier = ChainVerifier()
        verifier.want_hash_at(c.seq for c in [*stored, *external])
        # Straight from the driver as tuples: verify reads every event there is, and merges in
        # the customer index rows (ordered the same way) to check them against each record.
        events = _driver_rows(
            connection,
            "SELECT seq, actor, action, purpose, outcome, at, request_id, customer_count, body, "
            "prev_hash, hash FROM audit_events ORDER BY seq",
        )
        index_rows = _driver_rows(
            connection,
            "SELECT seq, customer_id FROM audit_event_customers ORDER BY seq, customer_id",
        )
        pending = next(index_rows, None)
        problems: list[Problem] = []
        feed = verifier.feed
        for row in events:
            seq, actor, action, purpose, outcome, at, request_id, count, body, prev, digest = row
            indexed: list[str] = []
            while pending is not None and pending[0] <= seq:
                if pending[0] == seq:
                    indexed.append(pending[1])
                pending = next(index_rows, None)
            at_text = format_time(at) if isinstance(at, datetime) else _sqlite_time(at)
            if not feed(
                seq,
                (actor, action, purpose, outcome, at_text, request_id),
                bytes(body),
                bytes(prev),
                bytes(digest),
                count,
                indexed,
            ):
                break
        events.close()
        index_rows.close()
        if verifier.problem is not None:
            problems.append(verifier.problem)
        last_seq = verifier.expected_seq - 1
        if not problems:
            head_seq, head_hash = self._head_readonly(connection)
            if head_seq > last_seq:
                problems.append(
                    Problem(
                        last_seq + 1,
                        "truncated",
                        f"the chain head records event {head_seq} but the log ends at {last_seq}",
                    )
                )
            elif head_seq == last_seq and head_hash != verifier.prev_hash:
                problems.append(Problem(last_seq, "modified", "the chain head's hash differs"))
            for checkpoint, source in [
                *((c, "stored") for c in stored),
                *((c, "external") for c in external),
            ]:
                problem = verifier.check_checkpoint(
                    checkpoint, self.public_key, last_seq=last_seq, source=source
                )
                if problem is not None:
                    problems.append(problem)
                    break
        return VerifyReport(
            events=verifier.count,
            last_seq=last_seq,
            head_hash=verifier.prev_hash if verifier.count else GENESIS_HASH,
            checkpoints=len(stored) + len(external),
            problems=problems,
        )

    def _head_readonly(self, connection: Connection) -> tuple[int, bytes]:
        row = connection.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        return int(row.seq), bytes(row.hash)


def _driver_rows(connection: Connection, sql: str, size: int = 5000) -> Generator[Any, None, None]:
    """The rows of ``sql`` as the driver's own tuples, streamed in chunks.

    Verify reads every event there is; building SQLAlchemy ``Row`` objects for each was a third
    of its time. The statements are plain SQL whose columns need no result processing (the
    caller turns times into text itself). PostgreSQL streams through a server-side (named)
    cursor, so memory stays flat however long the log; SQLite's cursor steps through the file.
    """
    raw = connection.connection.dbapi_connection
    assert raw is not None
    if connection.dialect.name == "postgresql":
        cursor = raw.cursor(name=f"vault_verify_{secrets.token_hex(4)}")
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql)
        while chunk := cursor.fetchmany(size):
            yield from chunk
    finally:
        cursor.close()


def _sqlite_time(text: str) -> str:
    """SQLite keeps ``2026-01-02 03:04:05.678901`` (UTC); the record has ``…T…Z``."""
    return text.replace(" ", "T", 1) + "Z"


def checkpoint_from_file(text: str) -> Checkpoint:
    data = json.loads(text)
    return Checkpoint.from_json(data.get("checkpoint", data))


def export_to_string(log: AuditLog, connection: Connection, query: AuditQuery, fmt: str) -> str:
    buffer = io.StringIO()
    log.export(connection, query, buffer, fmt)
    return buffer.getvalue()
