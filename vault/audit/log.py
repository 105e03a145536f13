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
import os
import secrets
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import structlog
from sqlalchemy import Boolean, Connection, Engine, Select, delete, exc, insert, literal, select
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
    as_bytes,
    canonical,
    checkpoint_signature_valid,
    event_hash,
    event_mac,
    format_time,
    mac_key_for,
    sign_checkpoint,
)
from vault.audit.events import AuditEvent
from vault.audit.ids import SortedIds
from vault.crypto._hazmat import ed25519_public_key
from vault.errors import AuditChainBroken, InvalidValue, StoreError, VaultError
from vault.serialise import neutralise
from vault.store._bulk import BulkInsert
from vault.store.engine import utcnow
from vault.store.schema import (
    CUSTOMER_ID_MAX,
    audit_checkpoints,
    audit_event_customers,
    audit_events,
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
    "mac",
)
_HEAD_SQL = "SELECT seq, hash FROM audit_head WHERE id = 1"
# PostgreSQL: the event, its customer index rows and the head in one statement (one round trip;
# the head's row lock was taken by the SELECT … FOR UPDATE before it).
_PG_APPEND_SQL = (
    "WITH event AS (INSERT INTO audit_events (seq, at, actor, action, purpose, outcome, "
    "customer_count, request_id, body, prev_hash, hash, mac) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)), "
    "customers AS (INSERT INTO audit_event_customers (customer_id, seq) "
    "SELECT unnest(%s::varchar[]), %s) "
    "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1"
)
# PostgreSQL, one round trip: move the head only if it is still where this process left it,
# and write the event and its index rows only if it moved (else nothing is written).
_PG_GUESSED_APPEND_SQL = (
    "WITH head AS (UPDATE audit_head SET seq = %s, hash = %s "
    "WHERE id = 1 AND seq = %s AND hash = %s RETURNING seq), "
    "event AS (INSERT INTO audit_events (seq, at, actor, action, purpose, outcome, "
    "customer_count, request_id, body, prev_hash, hash, mac) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM head), "
    "customers AS (INSERT INTO audit_event_customers (customer_id, seq) "
    "SELECT unnest(%s::varchar[]), seq FROM head) "
    "SELECT count(*) FROM head"
)
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


STRAY_REPAIR = "vault audit remove-stray --evidence FILE"


class AuditLog:
    """The audit log of one store.

    ``memory`` is a file outside the database where this process keeps the newest checkpoint it
    signed (or saw witnessed): ``checkpoint`` will not sign a head that does not extend it, so a
    history rewritten in the database with its stored checkpoints deleted is refused.
    """

    def __init__(
        self,
        engine: Engine,
        signing_seed: bytes,
        *,
        checkpoint_every: int = CHECKPOINT_EVERY,
        memory: Path | None = None,
        old_public_keys: Sequence[bytes] = (),
    ):
        self._engine = engine
        self._seed = signing_seed
        self._mac_key = mac_key_for(signing_seed)
        self.public_key = ed25519_public_key(signing_seed)
        # Every key this vault has signed with: old checkpoints stay valid after a rotation.
        self.public_keys: tuple[bytes, ...] = (
            self.public_key,
            *(k for k in old_public_keys if k != self.public_key),
        )
        self.checkpoint_every = checkpoint_every
        self.memory = memory
        # PostgreSQL: the head this process wrote last, a guess for a one-round-trip append.
        self._last_head: tuple[int, bytes] | None = None

    # --- writing -----------------------------------------------------------------------------

    def _head(self, connection: Connection) -> tuple[int, bytes]:
        lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
        row = connection.exec_driver_sql(_HEAD_SQL + lock).first()
        head = _head_of(row)
        if head is None:
            raise AuditChainBroken(
                "the audit chain head (table audit_head, row id 1) is missing or malformed: "
                "no event can be appended",
                hint="Restore audit_head from a backup; `vault audit verify` shows the log.",
            )
        return head

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

        def body_at(seq: int) -> bytes:
            return canonical(
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

        one_statement = connection.dialect.name == "postgresql" and count <= INDEX_CHUNK
        guess = self._last_head if one_statement else None
        if guess is not None:
            # One round trip: chain onto the head this process last wrote, if it is still the
            # head (another process may have moved it; then nothing is written, and the head
            # is read under its lock below).
            seq, prev_hash = guess[0] + 1, guess[1]
            body = body_at(seq)
            digest = event_hash(prev_hash, body)
            mac = event_mac(self._mac_key, digest)
            try:
                moved = connection.exec_driver_sql(
                    _PG_GUESSED_APPEND_SQL,
                    (
                        seq,
                        digest,
                        guess[0],
                        prev_hash,
                        seq,
                        at,
                        actor,
                        event.action,
                        event.purpose,
                        event.outcome,
                        count,
                        request_id,
                        body,
                        prev_hash,
                        digest,
                        mac,
                        list(ids),
                    ),
                ).scalar()
            except exc.IntegrityError as error:
                raise _append_error(error, seq) from None
            except exc.DBAPIError as error:
                raise _unwritable(error) from None
            if moved:
                self._last_head = (seq, digest)
                self._after_append(connection, seq, digest)
                return seq
        seq, prev_hash = self._head(connection)
        seq += 1
        body = body_at(seq)
        digest = event_hash(prev_hash, body)
        mac = event_mac(self._mac_key, digest)
        try:
            if connection.dialect.name == "postgresql" and count <= INDEX_CHUNK:
                # One statement: the event, its index rows and the head move in one round trip.
                connection.exec_driver_sql(
                    _PG_APPEND_SQL,
                    (
                        seq,
                        at,
                        actor,
                        event.action,
                        event.purpose,
                        event.outcome,
                        count,
                        request_id,
                        body,
                        prev_hash,
                        digest,
                        mac,
                        list(ids),
                        seq,
                        seq,
                        digest,
                    ),
                )
            else:
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
                            mac,
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
                connection.exec_driver_sql(
                    _UPDATE_HEAD_SQL[connection.dialect.paramstyle], (seq, digest)
                )
        except exc.IntegrityError as error:
            raise _append_error(error, seq) from None
        except exc.DBAPIError as error:
            raise _unwritable(error) from None
        if one_statement:
            self._last_head = (seq, digest)
        self._after_append(connection, seq, digest)
        return seq

    def _after_append(self, connection: Connection, seq: int, digest: bytes) -> None:
        if seq % self.checkpoint_every == 0:
            try:
                self._verified_checkpoint(connection, seq, digest)
            except AuditChainBroken as error:
                # The event is still recorded; the log is left unsigned until it verifies again.
                structlog.get_logger("vault.audit").warning(
                    "audit_checkpoint_refused", seq=seq, problem=str(error)
                )

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

    def signature_valid(self, checkpoint: Checkpoint) -> bool:
        """Whether one of this vault's keys (current or earlier) signed ``checkpoint``."""
        keys = (
            [checkpoint.public_key]
            if checkpoint.public_key is not None and checkpoint.public_key in self.public_keys
            else []
            if checkpoint.public_key is not None
            else self.public_keys
        )
        return any(
            checkpoint_signature_valid(
                key, checkpoint.seq, checkpoint.head_hash, checkpoint.at, checkpoint.signature
            )
            for key in keys
        )

    def _trusted_checkpoints(
        self, connection: Connection, witnessed: Iterable[Checkpoint]
    ) -> list[Checkpoint]:
        """Every checkpoint this vault signed that is at hand: stored, remembered, witnessed.
        Ones whose signature does not verify are left out (``verify`` names them)."""
        candidates = [*self.checkpoints(connection), *self.remembered(), *witnessed]
        return [c for c in candidates if self.signature_valid(c)]

    def _verified_checkpoint(
        self,
        connection: Connection,
        seq: int,
        head_hash: bytes,
        witnessed: Iterable[Checkpoint] = (),
    ) -> Checkpoint:
        """Verify the chain from the newest checkpoint this vault signed up to the head
        (``seq``, ``head_hash``, locked by the caller), then sign the head."""
        forged = [c for c in self.checkpoints(connection) if not self.signature_valid(c)]
        if forged:
            raise AuditChainBroken(
                f"checkpoint refused: event {forged[0].seq}: bad-signature: a stored checkpoint "
                "was not signed by this vault's keys",
                seq=forged[0].seq,
            )
        trusted = self._trusted_checkpoints(connection, witnessed)
        anchor = max(trusted, key=lambda c: c.seq, default=None)
        if anchor is not None and anchor.seq > seq:
            raise AuditChainBroken(
                f"checkpoint refused: event {seq + 1}: truncated: the log ends at event {seq} "
                f"but a signed checkpoint covers event {anchor.seq}",
                seq=seq + 1,
            )
        verifier = ChainVerifier(
            mac_key=self._mac_key, mac_after=anchor.seq if anchor is not None else 0
        )
        if anchor is not None and anchor.seq > 0:
            verifier.start_at(anchor.seq, anchor.head_hash)
        self._walk(connection, verifier, from_seq=verifier.expected_seq, head_seq=seq)
        problem = verifier.problem or self._head_problem(
            verifier, (seq, head_hash), upto=verifier.expected_seq - 1
        )
        if problem is None and anchor is not None and anchor.seq > verifier.expected_seq - 1:
            problem = Problem(verifier.expected_seq, "missing", "the signed event is gone")
        if problem is not None:
            raise AuditChainBroken(f"checkpoint refused: {problem}", seq=problem.seq)
        return self._write_checkpoint(connection, seq, head_hash)

    def checkpoint(
        self, connection: Connection, witnessed: Iterable[Checkpoint] = ()
    ) -> Checkpoint:
        """Verify the chain from the last checkpoint, then sign the current head
        (``vault audit checkpoint``). Raises ``AuditChainBroken`` instead of signing a log
        that does not verify. Call :meth:`publish` after the transaction commits."""
        seq, head_hash = self._head(connection)
        existing = connection.execute(
            select(audit_checkpoints).where(audit_checkpoints.c.seq == seq)
        ).first()
        if existing is not None and bytes(existing.head_hash) == head_hash:
            found = Checkpoint(
                seq=seq,
                head_hash=bytes(existing.head_hash),
                at=existing.at,
                signature=bytes(existing.signature),
            )
            if self.signature_valid(found):
                return found
        return self._verified_checkpoint(connection, seq, head_hash, witnessed)

    # --- checkpoints kept outside the database -----------------------------------------------

    def remembered(self) -> list[Checkpoint]:
        """The newest checkpoint this vault home signed, from its memory file (if any)."""
        if self.memory is None or not self.memory.exists():
            return []
        try:
            return [checkpoint_from_file(self.memory.read_text(encoding="utf-8"))]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def publish(self, checkpoint: Checkpoint, witnesses: Iterable[Path] = ()) -> list[Path]:
        """After the checkpoint's transaction committed: remember it, and write it to each
        witness directory (``checkpoint-<seq>.json``, 0600). Returns the files written."""
        text = json.dumps(checkpoint.to_json(self.public_key), indent=2) + "\n"
        written: list[Path] = []
        if self.memory is not None:
            newest = max((c.seq for c in self.remembered()), default=-1)
            if checkpoint.seq >= newest:
                write_private(self.memory, text)
        for directory in witnesses:
            path = Path(directory) / f"checkpoint-{checkpoint.seq:012d}.json"
            write_private(path, text)
            written.append(path)
        return written

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
        ``hash``). Filtering on ``operation`` also checks the parsed record. A stored record
        that is not a JSON object stops the query with a one-line error naming it."""
        events = [
            {**_record_of(row.seq, row.body), "hash": _hex(row.hash)}
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
        found = []
        for row in connection.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)):
            head_hash, signature = as_bytes(row.head_hash), as_bytes(row.signature)
            if head_hash is None or signature is None or not isinstance(row.at, str):
                # Unusable as stored: kept with empty parts, so verify names it (bad-signature).
                head_hash, signature = head_hash or b"", signature or b""
            found.append(
                Checkpoint(seq=row.seq, head_hash=head_hash, at=str(row.at), signature=signature)
            )
        return found

    def head(self, connection: Connection) -> tuple[int, bytes] | None:
        """The chain head as stored (``audit_head``), or None when it is missing or malformed."""
        return _head_of(connection.exec_driver_sql(_HEAD_SQL).first())

    def export(self, connection: Connection, query: AuditQuery, out: IO[str], fmt: str) -> int:
        """Write events as JSON Lines or CSV; returns the number of events written.

        JSON Lines (SECURITY.md §5.7): one line per event, then one line per stored checkpoint
        (every one, also those beyond the last exported event: they betray a truncated log),
        then the chain head as the last line. A body that is not UTF-8 goes as ``body_hex``.
        CSV: one row per event; every cell a spreadsheet would run as a formula is prefixed
        with ``'`` (the customer export's rule)."""
        count = 0
        if fmt == "jsonl":
            for row in self.rows(connection, query):
                line: dict[str, Any] = {
                    "seq": row.seq,
                    "prev_hash": _hex(row.prev_hash),
                    "hash": _hex(row.hash),
                }
                line.update(_body_field(row.body))
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
            for checkpoint in self.checkpoints(connection):
                out.write(
                    json.dumps({"checkpoint": checkpoint.to_json(self._key_of(checkpoint))}) + "\n"
                )
            head = self.head(connection)
            head_line = {"seq": head[0], "hash": head[1].hex()} if head else None
            out.write(json.dumps({"head": head_line}) + "\n")
            return count
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(_CSV_COLUMNS)
            for row in self.rows(connection, query):
                writer.writerow([neutralise(str(cell)) for cell in _csv_cells(row)])
                count += 1
            return count
        raise ValueError(f"unknown audit export format {fmt!r}: jsonl or csv")

    def _key_of(self, checkpoint: Checkpoint) -> bytes:
        """The key (of this vault's keys) that signed ``checkpoint``; the current one if none."""
        for key in self.public_keys:
            if checkpoint_signature_valid(
                key, checkpoint.seq, checkpoint.head_hash, checkpoint.at, checkpoint.signature
            ):
                return key
        return self.public_key

    # --- verifying ---------------------------------------------------------------------------

    def verify(self, connection: Connection, external: Iterable[Checkpoint] = ()) -> VerifyReport:
        """Walk the whole chain; check the head, every stored checkpoint and the given ones.

        Never raises for what it finds in the tables: a malformed row, a stray row, a head
        behind or ahead of the log is a problem in the report, with the event it concerns."""
        stored = self.checkpoints(connection)
        external = list(external)
        remembered = self.remembered()
        valid = [c for c in [*stored, *external, *remembered] if self.signature_valid(c)]
        verifier = ChainVerifier(
            mac_key=self._mac_key, mac_after=max((c.seq for c in valid), default=0)
        )
        verifier.want_hash_at(c.seq for c in [*stored, *external, *remembered])
        head = self.head(connection)
        self._walk(connection, verifier, from_seq=1, head_seq=head[0] if head else None)
        problems: list[Problem] = []
        if verifier.problem is not None:
            problems.append(verifier.problem)
        last_seq = verifier.expected_seq - 1
        if not problems:
            head_problem = self._head_problem(verifier, head, upto=last_seq)
            if head_problem is not None:
                problems.append(head_problem)
        if not problems:
            for checkpoint, source in [
                *((c, "stored") for c in stored),
                *((c, "external") for c in external),
                *((c, "remembered") for c in remembered),
            ]:
                problem = verifier.check_checkpoint(
                    checkpoint, self.public_keys, last_seq=last_seq, source=source
                )
                if problem is not None:
                    problems.append(problem)
                    break
        return VerifyReport(
            events=verifier.count,
            last_seq=last_seq,
            head_hash=verifier.prev_hash if verifier.count else GENESIS_HASH,
            checkpoints=len(stored) + len(external) + len(remembered),
            problems=problems,
        )

    def _walk(
        self,
        connection: Connection,
        verifier: ChainVerifier,
        *,
        from_seq: int,
        head_seq: int | None = None,
    ) -> None:
        """Feed ``verifier`` the events from ``from_seq`` on, each with its index rows; an event
        beyond ``head_seq`` (the chain head) is named a stray row."""
        # Straight from the driver as tuples: verify reads every event there is, and merges in
        # the customer index rows (ordered the same way) to check them against each record.
        since = f" WHERE seq >= {int(from_seq)}" if from_seq > 1 else ""
        events = _driver_rows(
            connection,
            # ``since`` is built from an int above, never from input text.
            "SELECT seq, actor, action, purpose, outcome, at, request_id, customer_count, body, "  # noqa: S608
            f"prev_hash, hash, mac FROM audit_events{since} ORDER BY seq",
        )
        index_rows = _driver_rows(
            connection,
            f"SELECT seq, customer_id FROM audit_event_customers{since} "  # noqa: S608
            "ORDER BY seq, customer_id",
        )
        try:
            pending = next(index_rows, None)
            feed = verifier.feed
            for row in events:
                seq, actor, action, purpose, outcome, at, request_id, count, body, prev, digest = (
                    row[:11]
                )
                if head_seq is not None and seq > head_seq:
                    verifier.problem = _stray(head_seq, seq)
                    break
                indexed: list[str] = []
                while pending is not None and pending[0] <= seq:
                    if pending[0] == seq:
                        indexed.append(pending[1])
                    pending = next(index_rows, None)
                if not feed(
                    seq,
                    (actor, action, purpose, outcome, _time_text(at), request_id),
                    body,
                    prev,
                    digest,
                    count,
                    indexed,
                    row[11],
                ):
                    break
        finally:
            events.close()
            index_rows.close()

    @staticmethod
    def _head_problem(
        verifier: ChainVerifier, head: tuple[int, bytes] | None, *, upto: int
    ) -> Problem | None:
        """The chain head (``audit_head``) against the walked log, which ends at ``upto``."""
        if verifier.problem is not None:
            return None
        if head is None:
            return Problem(upto, "malformed", "the chain head (audit_head row 1) is missing")
        head_seq, head_hash = head
        if head_seq > upto:
            return Problem(
                upto + 1,
                "truncated",
                f"the chain head records event {head_seq} but the log ends at {upto}",
            )
        if head_seq < upto:
            return _stray(head_seq, upto)
        if head_hash != verifier.prev_hash:
            return Problem(upto, "modified", "the chain head's hash differs")
        return None

    def remove_stray(self, connection: Connection) -> list[dict[str, Any]]:
        """Delete the events (and index rows) stored beyond the chain head, which the vault
        never wrote, and return them as evidence (seq, hashes, body as hex)."""
        seq, _ = self._head(connection)
        rows = connection.execute(
            select(
                audit_events.c.seq,
                audit_events.c.prev_hash,
                audit_events.c.hash,
                audit_events.c.body,
            )
            .where(audit_events.c.seq > seq)
            .order_by(audit_events.c.seq)
        ).all()
        evidence = [
            {
                "seq": row.seq,
                "prev_hash": _hex(row.prev_hash),
                "hash": _hex(row.hash),
                "body_hex": _hex(row.body),
            }
            for row in rows
        ]
        connection.execute(delete(audit_event_customers).where(audit_event_customers.c.seq > seq))
        connection.execute(delete(audit_events).where(audit_events.c.seq > seq))
        return evidence


_CSV_COLUMNS = (
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
)


def _body_field(body: object) -> dict[str, str]:
    raw = as_bytes(body)
    if raw is None:
        return {"body_hex": _hex(body)}
    try:
        return {"body": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_hex": raw.hex()}


def _record_of(seq: int, body: object) -> dict[str, Any]:
    raw = as_bytes(body)
    try:
        record = json.loads(raw) if raw is not None else None
    except ValueError:  # not UTF-8 or not JSON
        record = None
    if not isinstance(record, dict):
        what = "a JSON object" if raw is not None else "bytes (stored as text?)"
        raise AuditChainBroken(
            f"audit event {seq}: its stored record is not {what}: tampered with", seq=seq
        )
    return record


def _csv_cells(row: Any) -> list[object]:
    body = _body_field(row.body)
    try:
        record = _record_of(row.seq, row.body)
        customers = record["customers"]
        cells: list[object] = [
            row.seq,
            record["at"],
            record["actor"],
            " ".join(record["roles"]),
            record["action"],
            record["purpose"] or "",
            record["outcome"],
            customers["count"],
            " ".join(customers.get("ids", [])),
            customers["digest"],
            " ".join(record["fields"]),
            record["reason"],
            record["request_id"] or "",
        ]
    except (AuditChainBroken, KeyError, TypeError, AttributeError):
        cells = [row.seq, *[""] * 12]  # a malformed record: its hashes and bytes only
    return [*cells, _hex(row.prev_hash), _hex(row.hash), body.get("body", body.get("body_hex"))]


def _append_error(error: exc.IntegrityError, seq: int) -> VaultError:
    if not _is_unique_violation(error):
        return _unwritable(error)
    return AuditChainBroken(
        f"audit event {seq} is already stored beyond the chain head (event {seq - 1}): "
        "a row was written without moving the head, and no event can be appended "
        f"until it is removed (`{STRAY_REPAIR}`)",
        seq=seq,
        hint=f"Keep the removed rows as evidence: `{STRAY_REPAIR}`.",
    )


def _is_unique_violation(error: exc.IntegrityError) -> bool:
    text = str(error.orig).lower()
    return "unique" in text or "duplicate key" in text


def _unwritable(error: exc.DBAPIError) -> StoreError:
    """An audit insert the database refused for another reason than a stray row (a trigger,
    a changed column type, a lost connection): one line, no values."""
    return StoreError(
        f"the audit event could not be written: the database refused it "
        f"({type(error.orig).__name__}); nothing was done"
    )


def _stray(head_seq: int, seq: int) -> Problem:
    return Problem(
        head_seq + 1,
        "stray",
        f"the chain head records event {head_seq} but the log holds event {seq}: rows were "
        f"written without moving the head (`{STRAY_REPAIR}`)",
    )


def _head_of(row: Any) -> tuple[int, bytes] | None:
    if row is None:
        return None
    seq, head_hash = row[0], as_bytes(row[1])
    if not isinstance(seq, int) or head_hash is None or len(head_hash) != 32:
        return None
    return seq, head_hash


def _hex(value: object) -> str:
    raw = as_bytes(value)
    return raw.hex() if raw is not None else str(value).encode().hex()


def _time_text(at: object) -> object:
    if isinstance(at, datetime):
        return format_time(at)
    if isinstance(at, str):
        return _sqlite_time(at)
    return at


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (0600) through a temporary file renamed into place."""
    with private_output(path) as handle:
        handle.write(text)


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


def read_witness(directory: Path) -> list[Checkpoint]:
    """The checkpoints in a witness directory (``checkpoint-*.json``); an unreadable file is
    skipped (a witness is only ever more evidence)."""
    found = []
    for path in sorted(Path(directory).glob("checkpoint-*.json")):
        try:
            found.append(checkpoint_from_file(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


@contextmanager
def private_output(path: Path) -> Iterator[IO[str]]:
    """A text file for ``path``, 0600, under a temporary name in the same directory, renamed
    into place only when the block ends without an error (else removed): a file that appears
    is complete, and one whose audit event failed never appears."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
