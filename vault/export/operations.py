"""Consent-aware export through the one door.

Only customers whose consent for the purpose is active (all live customers for a purpose whose
legal basis needs none), only the fields the purpose allows, each masked as the caller's role
sees it. Asking for a field the purpose does not allow, or that the role may not see, is
refused (and audited), never silently dropped.

It streams: customers are read a page at a time in id order (keyset paging), each page's data
keys unwrapped and fields opened together, the rows handed to the format's writer and dropped.
Everything is read in one read transaction, so the consent state is that of the export's start;
the export's audit event (the manifest's hash, the count and the digest of the exported ids,
every id indexed) is written once the file is complete.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO, Any

from sqlalchemy import Connection, Select, bindparam, exists, select

from vault.access.masks import mask
from vault.access.policy import Purpose
from vault.audit import AuditEvent
from vault.audit.ids import SortedIds
from vault.audit.log import sorted_customer_digest
from vault.consent.ledger import GRANTED, needs_consent
from vault.door import Door
from vault.errors import AccessDenied, InvalidValue, VaultError
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
            raise InvalidValue(
                field="segment", reason=f"no {kind} {value!r} (known: {', '.join(known)})"
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
        catalogue = self.vault.catalogue
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
        with self.vault.reader.connect() as connection:
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
            "format": fmt,
            "tags": tag_names,
            "segment": segment,
            "segments": segment_names,
        }
        stream = HashingStream(out)
        exported = SortedIds()
        try:
            query = customer_query(
                spec, tag_names=tag_names, segments=segment_names, segmenter=self._vault.segments
            )
            with self._vault._reader.connect() as connection:
                if connection.dialect.name == "postgresql":
                    connection = connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin():
                    writer = writer_cls.create(
                        stream,
                        file_columns,
                        headers=header_row,
                        types={c: self.vault.catalogue[c].type for c in columns},
                    )
                    for rows in self._pages(
                        connection, query, columns, views, batch_size, noted=noted
                    ):
                        writer.write_rows(rows)
                        for row in rows:
                            exported.append(str(row[0]))
                    writer.close()
        except VaultError as error:
            self._record(
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
        stream.flush()
        manifest = ExportManifest(
            purpose=authorised,
            legal_basis=spec.legal_basis,
            actor=self.principal.name,
            roles=sorted(self.principal.roles),
            created_at=utcnow().isoformat(),
            format=fmt,
            rows=len(exported),
            fields=file_columns,
            file_sha256=stream.hexdigest(),
            file_bytes=stream.bytes,
            customer_digest=(
                exported.digest if exported.in_order else sorted_customer_digest(sorted(exported))
            ),
            tags=tag_names,
            segment=segment,
            request_id=self.request_id,
        )
        self._record(
            AuditEvent(
                action="export",
                purpose=authorised,
                customer_ids=exported,
                fields=columns,
                details={
                    **details,
                    "rows": manifest.rows,
                    "manifest_sha256": manifest.sha256,
                    "file_sha256": manifest.file_sha256,
                },
            )
        )
        if manifest_to is not None:
            manifest.write(manifest_to)
        return manifest

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
