"""Consent-aware export through the one door.

Only customers whose consent for the purpose is active (all live customers for a purpose whose
legal basis needs none), only the fields the purpose allows, each masked as the caller's role
sees it. Asking for a field the purpose does not allow, or that the role may not see, is
refused (and audited), never silently dropped.

It streams: customers are read a page at a time in id order (keyset paging), each page's data
keys unwrapped and fields opened together, the rows handed to the format's writer and dropped.
Everything is read in one read transaction, so the consent state is that of the export's start.

Data leaves only after its audit event is committed. In that read transaction the export first
lists the ids it will contain (16 bytes each, :class:`~vault.audit.ids.SortedIds`), then writes
the ``started`` event (purpose, fields, filters, every id indexed, their count and digest) in a
transaction of its own, and only then writes its first byte. If that event cannot be written,
nothing is written and :class:`~vault.errors.StoreError` says so. At the end the ``completed``
event carries the manifest's hash (and the same ids); a failure mid-way (a client that hangs up,
a full disk) is recorded as ``failed`` when the audit log can still be written. Both name the
export by ``details.export_id``; an export whose ``started`` event has no ``completed`` one (a
cut stream, a killed process) is listed by :meth:`ExportOperations.incomplete_exports`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import structlog
from sqlalchemy import Connection, Select, bindparam, exists, select

from vault.access.masks import mask
from vault.access.policy import Purpose
from vault.audit import AuditEvent, AuditQuery
from vault.audit.ids import SortedIds
from vault.audit.log import sorted_customer_digest
from vault.consent.ledger import GRANTED, needs_consent
from vault.door import Door
from vault.errors import AccessDenied, InvalidValue, StoreError, VaultError
from vault.export.formats import writer_class
from vault.export.manifest import ExportManifest
from vault.export.writers import Cell, HashingStream
from vault.segments import Segmenter, members_query, resolve_segment
from vault.store.customers import IDENTITY_FIELD, check_tag
from vault.store.engine import utcnow
from vault.store.schema import (
    consent_state,
    customer_fields,
    customer_tags,
    customers,
    platform_handles,
    tags,
)

log = structlog.get_logger("vault.export")

EXPORT_BATCH = 2000
HEADER_STYLES = ("names", "en", "zh")  # header row: field names, catalogue labels, Chinese labels
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}
ID_COLUMN = "customer_id"
# A shop's buyers often arrive as the platform's ciphertext only (Taobao OAID, Pinduoduo): a row
# of them would hold nothing but an id. When the vault holds such ciphertexts for the exported
# fields, this last column names, per row, the empty fields a platform holds as ciphertext
# ("taobao: address, phone"); `vault connectors decrypt` asks the platform for one, per scene.
CIPHERTEXT_COLUMN = "platform_ciphertext"
CIPHERTEXT_HEADERS = {"en": "Held as platform ciphertext", "zh": "仅有平台密文的字段"}
ID_PAGE = 20_000  # ids per page when listing an export's customers before its first byte
_POLICY_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def customer_query(
    purpose: Purpose,
    *,
    tag_names: Sequence[str] = (),
    segments: Sequence[str] = (),
    segmenter: Segmenter | None = None,
) -> Select[Any]:
    """Live customers (with their wrapped data key) an export for ``purpose`` may include,
    one page after ``:after`` in id order; the filters compose as ``IN (subquery)`` clauses."""
    query = select(customers.c.id, customers.c.wrapped_dek, customers.c.dek_version).where(
        customers.c.erased_at.is_(None), customers.c.wrapped_dek.is_not(None)
    )
    if needs_consent(purpose):
        # A correlated EXISTS, not a join: the page is read along the customers' primary key
        # from ``:after``, probing consent_state's key per customer. (With a join SQLite may
        # start from consent_state's purpose index and sort every page: quadratic in rows.)
        query = query.where(
            exists().where(
                consent_state.c.customer_id == customers.c.id,
                consent_state.c.purpose == purpose.name,
                consent_state.c.state == GRANTED,
            )
        )
    for name in tag_names:
        query = query.where(
            customers.c.id.in_(
                select(customer_tags.c.customer_id)
                .join(tags, tags.c.id == customer_tags.c.tag_id)
                .where(tags.c.name == name)
            )
        )
    for name in segments:  # a tier, stage, group or tag: vault.segments.members_query
        query = query.where(customers.c.id.in_(members_query(name, segmenter=segmenter)))
    return (
        query.where(customers.c.id > bindparam("after"))
        .order_by(customers.c.id)
        .limit(bindparam("page_size"))
    )


class ExportOperations(Door):
    """``export``: a consented, minimised, masked, audited file."""

    def _check_segment_name(self, name: str) -> None:
        """An unknown tier or stage is a mistake to report, not an empty export."""
        kind, value = resolve_segment(name, self._vault.segments.rules)
        rules = self._vault.segments.rules
        known = {"tier": rules.tier_names(), "stage": rules.stage_names()}.get(kind)
        if known is not None and value not in known:
            # Named back only when it reads as a policy name: a phone or a person's name typed
            # here is not repeated (the message goes to HTTP clients and logs).
            named = f"{value!r}" if _POLICY_NAME.fullmatch(value) else "of that name"
            raise InvalidValue(
                field="segment", reason=f"no {kind} {named} (known: {', '.join(known)})"
            )

    def _refuse_field(self, purpose: str, field: str, reason: str) -> None:
        self._record(
            AuditEvent(
                action="export", outcome="denied", purpose=purpose, fields=[field], reason=reason
            )
        )
        raise AccessDenied(
            principal=self.principal.name,
            action="export",
            purpose=purpose,
            field=field,
            reason=reason,
        )

    def _header_row(self, style: str, columns: Sequence[str]) -> list[str]:
        """The header row: field names (``names``), or the catalogue's labels (``en``, ``zh``;
        a field without a Chinese label keeps its label)."""
        if style not in HEADER_STYLES:
            raise InvalidValue(field="headers", reason=f"one of {', '.join(HEADER_STYLES)}")
        if style == "names":
            return [ID_COLUMN, *columns]
        catalogue = self._vault.catalogue
        if style == "en":
            return ["Customer id", *(catalogue[c].label for c in columns)]
        return ["客户编号", *(catalogue[c].label_zh or catalogue[c].label for c in columns)]

    def _export_columns(
        self, purpose: Purpose, views: dict[str, str], fields: Sequence[str] | None
    ) -> list[str]:
        catalogue = self._vault.catalogue
        if fields is None:
            return [f for f in catalogue if f != IDENTITY_FIELD and views.get(f) != "hidden"]
        columns: list[str] = []
        for field in dict.fromkeys(fields):
            if field not in catalogue or field == IDENTITY_FIELD:
                raise InvalidValue(field=field, reason="not an exportable catalogue field")
            if not purpose.allows_field(field):
                self._refuse_field(
                    purpose.name, field, f"purpose {purpose.name!r} does not allow this field"
                )
            if views.get(field, "hidden") == "hidden":
                self._refuse_field(purpose.name, field, "this field is hidden from your roles")
            columns.append(field)
        return columns

    def export(
        self,
        purpose: str,
        out: IO[bytes],
        *,
        fmt: str = "csv",
        fields: Sequence[str] | None = None,
        tags: Sequence[str] = (),
        segment: str | None = None,
        segments: Sequence[str] = (),
        manifest_to: Any = None,
        batch_size: int = EXPORT_BATCH,
        headers: str = "names",
    ) -> ExportManifest:
        """Write the export of ``purpose`` to ``out``; returns its manifest (also written to
        ``manifest_to``, a path, when given: the CLI puts it beside the file).

        ``segment`` and each of ``segments`` (``tier:NAME``, ``stage:NAME``, ``group:NAME``,
        ``tag:NAME`` or a bare tier, stage or group name) narrow it to the members of all of
        them; consent and the field rules apply as to any export."""
        authorised = self.authorize("export", purpose, fields=list(fields or ()))
        assert authorised is not None  # export requires a purpose
        spec = self._vault.policy.purposes[authorised]
        views = self._views(authorised)
        columns = self._export_columns(spec, views, fields)
        writer_cls = writer_class(fmt)
        with self._vault._reader.connect() as connection:
            if fields is None:  # the default columns: none that no customer has a value of
                columns = [c for c in columns if _anyone_holds(connection, c)]
            noted = bool(columns) and _holds_ciphertexts(connection, columns)
        header_row = self._header_row(headers, columns)
        if noted:
            header_row.append(CIPHERTEXT_HEADERS.get(headers, CIPHERTEXT_COLUMN))
        file_columns = [ID_COLUMN, *columns, *([CIPHERTEXT_COLUMN] if noted else [])]
        tag_names = [check_tag(t) for t in tags if t.strip()]
        segment_names = [*([segment] if segment else []), *segments]
        for name in segment_names:
            self._check_segment_name(name)
        details: dict[str, Any] = {
            "operation": "export",
            "masked": [c for c in columns if views.get(c) == "masked"],  # the rest: clear
            "export_id": uuid.uuid4().hex,
            "format": fmt,
            "tags": tag_names,
            "segment": segment,
            "segments": segment_names,
        }
        stream = HashingStream(out)
        exported = _Tally()  # what was written, checked against what the started event named
        query = customer_query(
            spec, tag_names=tag_names, segments=segment_names, segmenter=self._vault.segments
        )
        with self._vault._reader.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                try:
                    planned = _planned_ids(connection, query)
                except VaultError as error:  # e.g. a filter the store refuses: nothing left
                    self._record_failed(
                        AuditEvent(
                            action="export",
                            outcome="failed",
                            purpose=authorised,
                            fields=columns,
                            reason=type(error).__name__,
                            details=details,
                        )
                    )
                    raise
                self._record_started(
                    AuditEvent(
                        action="export",
                        purpose=authorised,
                        customer_ids=planned,
                        fields=columns,
                        details={**details, "phase": "started", "rows": len(planned)},
                    )
                )
                try:  # nothing was written before this point
                    writer = writer_cls.create(
                        stream,
                        file_columns,
                        headers=header_row,
                        types={c: self._vault.catalogue[c].type for c in columns},
                    )
                    for rows in self._pages(
                        connection, query, columns, views, batch_size, noted=noted
                    ):
                        writer.write_rows(rows)
                        exported.add(rows)
                    writer.close()
                    stream.flush()
                    if exported.count != len(planned) or exported.digest() != planned.digest:
                        raise StoreError(
                            "the customers exported differ from those its started event names"
                        )
                except Exception as error:
                    self._record_failed(
                        AuditEvent(
                            action="export",
                            outcome="failed",
                            purpose=authorised,
                            fields=columns,
                            reason=type(error).__name__,
                            details={
                                **details,
                                "phase": "failed",
                                "rows_written": exported.count,
                                "bytes_written": stream.bytes,
                            },
                        )
                    )
                    raise
        manifest = ExportManifest(
            purpose=authorised,
            legal_basis=spec.legal_basis,
            actor=self.principal.name,
            roles=sorted(self.principal.roles),
            created_at=utcnow().isoformat(),
            format=fmt,
            rows=len(planned),
            fields=file_columns,
            file_sha256=stream.hexdigest(),
            file_bytes=stream.bytes,
            customer_digest=(
                planned.digest if planned.in_order else sorted_customer_digest(sorted(planned))
            ),
            tags=tag_names,
            segment=segment,
            request_id=self.request_id,
        )
        self._record(
            AuditEvent(
                action="export",
                purpose=authorised,
                customer_ids=planned,
                fields=columns,
                details={
                    **details,
                    "phase": "completed",
                    "rows": manifest.rows,
                    "manifest_sha256": manifest.sha256,
                    "file_sha256": manifest.file_sha256,
                },
            )
        )
        if manifest_to is not None:
            manifest.write(manifest_to)
        return manifest

    def _record_started(self, event: AuditEvent) -> None:
        """Commit the ``started`` event, or refuse the export: no event, no data."""
        try:
            self._record(event)
        except Exception as error:
            raise StoreError(
                f"the export's audit event could not be written ({type(error).__name__}): "
                "nothing was exported"
            ) from error

    def _record_failed(self, event: AuditEvent) -> None:
        """Record a failure mid-way when the audit log still takes it; the original error is
        what the caller sees either way (the ``started`` event already names the export)."""
        try:
            self._record(event)
        except Exception as error:  # the audit store may be what failed
            log.warning(
                "export_failure_not_audited",
                export_id=event.details.get("export_id"),
                error=type(error).__name__,
                request_id=self.request_id,
            )

    def incomplete_exports(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Exports that started (their ``started`` event is on the audit log, between ``since``
        and ``until``) but never completed: a stream cut short, a process killed, a failure
        mid-way. Each names the export, who made it, when, for what purpose, which fields, the
        customers it was to contain (count and digest; ids when few, and always in the
        audit log's customer index), and how it ended: ``"failed: <error type>"`` when the
        failure was recorded, ``None`` when nothing was (a killed process). Needs the ``audit``
        action; the query is itself audited."""
        purpose = self.authorize("audit")

        def operation(connection: Connection) -> list[dict[str, Any]]:
            query = AuditQuery(action="export", since=since, limit=None)
            return never_completed(self._vault.audit.query(connection, query), until=until)

        return self._audited(
            AuditEvent(
                action="audit", purpose=purpose, details={"operation": "incomplete-exports"}
            ),
            operation,
        )

    def _pages(
        self,
        connection: Connection,
        query: Select[Any],
        columns: Sequence[str],
        views: dict[str, str],
        batch_size: int,
        *,
        noted: bool = False,
    ) -> Iterator[list[list[Cell]]]:
        """Rows a page at a time: unwrap the page's data keys, open its fields, mask them."""
        catalogue = self._vault.catalogue
        sealed = self._vault._customers.sealed
        position = {field: n for n, field in enumerate(columns, start=1)}
        encrypted = {field: catalogue[field].encrypted for field in columns}
        masked_view = {
            field: catalogue[field].mask for field in columns if views.get(field) == "masked"
        }
        mark = _PLACEHOLDER[connection.dialect.paramstyle]
        field_marks = ", ".join([mark] * len(columns))
        # Straight to the driver, in this transaction: the fields of a page are most of what an
        # export reads, and SQLAlchemy's row processing would cost more than the query.
        driver: Any = connection.connection.driver_connection
        after = ""
        width = len(columns) + 1 + int(noted)
        while True:
            page = connection.execute(query, {"after": after, "page_size": batch_size}).all()
            if not page:
                return
            after = page[-1].id
            rows: dict[str, list[Cell]] = {}
            for customer_id, _, _ in page:
                row: list[Cell] = [None] * width
                row[0] = customer_id
                rows[customer_id] = row
            keys = sealed.batch(page)
            if columns:
                ids = list(rows)
                sql = (
                    "SELECT customer_id, field, value, masked FROM customer_fields "  # noqa: S608
                    f"WHERE customer_id IN ({', '.join([mark] * len(ids))}) "
                    f"AND field IN ({field_marks})"
                )
                for customer_id, field, value, masked in driver.execute(
                    sql, (*ids, *columns)
                ).fetchall():
                    raw = keys.open(customer_id, field, value) if encrypted[field] else bytes(value)
                    text: str | None = raw.decode()
                    style = masked_view.get(field)
                    if style is not None and not masked:
                        text = mask(style, text)  # type: ignore[arg-type]
                    rows[customer_id][position[field]] = text
            if noted:
                _note_ciphertexts(connection, rows, columns, position)
            yield list(rows.values())


def _anyone_holds(connection: Connection, field: str) -> bool:
    """Whether any customer has a value (or a platform's ciphertext) of ``field``: a column
    that would be empty in every row is left out of a default export (asked for by name, it
    stays)."""
    for table in (customer_fields, platform_handles):
        if connection.execute(select(table.c.field).where(table.c.field == field).limit(1)).first():
            return True
    return False


def _holds_ciphertexts(connection: Connection, columns: Sequence[str]) -> bool:
    """Whether any customer has a platform's ciphertext of one of these fields."""
    found = connection.execute(
        select(platform_handles.c.customer_id)
        .where(platform_handles.c.field.in_(list(columns)))
        .limit(1)
    ).first()
    return found is not None


def _note_ciphertexts(
    connection: Connection,
    rows: dict[str, list[Cell]],
    columns: Sequence[str],
    position: dict[str, int],
) -> None:
    """Fill the last column: per row, the empty fields a platform holds as ciphertext."""
    held: dict[str, dict[str, list[str]]] = {}
    for customer_id, field, platform in connection.execute(
        select(
            platform_handles.c.customer_id, platform_handles.c.field, platform_handles.c.platform
        )
        .where(
            platform_handles.c.customer_id.in_(list(rows)),
            platform_handles.c.field.in_(list(columns)),
        )
        .order_by(platform_handles.c.platform, platform_handles.c.field)
    ):
        if rows[customer_id][position[field]] is None:
            held.setdefault(customer_id, {}).setdefault(platform, []).append(field)
    for customer_id, platforms in held.items():
        rows[customer_id][-1] = "; ".join(
            f"{platform}: {', '.join(fields)}" for platform, fields in platforms.items()
        )


class _Tally:
    """The count and digest (as :attr:`SortedIds.digest`) of the ids of the rows written."""

    def __init__(self) -> None:
        self.count = 0
        self._hash = hashlib.sha256()

    def add(self, rows: Sequence[Sequence[Cell]]) -> None:
        for row in rows:
            self._hash.update((b"\n" if self.count else b"") + str(row[0]).encode())
            self.count += 1

    def digest(self) -> str:
        return self._hash.hexdigest()


def _planned_ids(connection: Connection, query: Select[Any]) -> SortedIds:
    """The ids the export will contain, read in its transaction (so the same as its pages)."""
    ids_query = query.with_only_columns(customers.c.id)
    planned = SortedIds()
    after = ""
    while True:
        page = connection.execute(ids_query, {"after": after, "page_size": ID_PAGE}).scalars().all()
        if not page:
            return planned
        for customer_id in page:
            planned.append(customer_id)
        after = page[-1]


def never_completed(
    events: Sequence[dict[str, Any]], *, until: datetime | None = None
) -> list[dict[str, Any]]:
    """The ``started`` export events (oldest first) with no ``completed`` event of the same
    ``export_id`` among ``events``; ``until`` bounds when they started."""
    started: dict[str, dict[str, Any]] = {}
    completed: set[str] = set()
    failed: dict[str, str] = {}
    for event in events:
        details = event.get("details") or {}
        export_id = details.get("export_id")
        if not isinstance(export_id, str):
            continue
        phase = details.get("phase")
        if phase == "started":
            started[export_id] = event
        elif phase == "completed":
            completed.add(export_id)
        elif phase == "failed":
            failed[export_id] = str(event.get("reason") or "")
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    found = []
    for export_id, event in started.items():
        if export_id in completed:
            continue
        if until is not None and _at(event) >= until:
            continue
        details = event["details"]
        found.append(
            {
                "export_id": export_id,
                "request_id": event["request_id"],
                "seq": event["seq"],
                "at": event["at"],
                "actor": event["actor"],
                "roles": event["roles"],
                "purpose": event["purpose"],
                "fields": event["fields"],
                "format": details.get("format"),
                "filters": {
                    "tags": details.get("tags", []),
                    "segments": details.get("segments", []),
                },
                "customers": event["customers"],
                "ended": f"failed: {failed[export_id]}" if export_id in failed else None,
            }
        )
    return found


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00"))  # format_time's
