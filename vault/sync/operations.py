"""Session operations of the sync area: connector settings, syncs, imports, duplicates, merges.

Each is a method of :class:`vault.session.Session` (this mixin is one of its bases): authorised
for the caller, audited, and carried out as the connector's service principal where it changes
customer data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, func, select

from vault.access import principals as principals_store
from vault.access.principals import Principal, _principal
from vault.audit import AuditEvent
from vault.consent.operations import live_customers
from vault.door import Door
from vault.errors import ConfigError, ConnectorError, NotFound
from vault.store.engine import as_utc
from vault.store.schema import (
    connector_settings,
    duplicate_reviews,
    merge_records,
    principals,
    sync_cursors,
    sync_runs,
)
from vault.sync import merge as merge_store
from vault.sync import settings as settings_store
from vault.sync.contract import Connector
from vault.sync.engine import ProgressCallback, SyncEngine, load_cursor
from vault.sync.merge import MergeResult
from vault.sync.report import ImportReport, SyncReport
from vault.sync.retry import SyncPolicy
from vault.sync.sources import SourceRanking

if TYPE_CHECKING:  # the type only: at run time the class comes from the plugin manager
    from connectors.file_import import FileImportConnector

CONNECTOR_ROLE = "connector"


def service_principal_name(connector: str) -> str:
    return f"connector-{connector}"


def connector_class(name: str) -> type[Connector]:
    from vault.plugins import connector_classes, plugin_load_errors

    found = connector_classes()
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        broken = plugin_load_errors()
        extra = f"; plugins that failed to load: {', '.join(sorted(broken))}" if broken else ""
        raise ConfigError(f"no connector named {name!r} (connectors: {known}{extra})")
    return found[name][0]


def _load_principal(connection: Connection, name: str) -> Principal | None:
    row = connection.execute(select(principals).where(principals.c.name == name)).first()
    return None if row is None else _principal(row)


class SyncOperations(Door):
    """Connectors, syncs and imports (mixin of :class:`vault.session.Session`)."""

    # --- connector settings -------------------------------------------------------------------

    def _ensure_service_principal(self, connection: Connection, name: str) -> Principal:
        """The connector's service account (role ``connector``), created on first use."""
        principal_name = service_principal_name(name)
        principal = _load_principal(connection, principal_name)
        if principal is None:
            principals_store.add(connection, principal_name, (CONNECTOR_ROLE,), kind="service")
            self._append(
                connection,
                AuditEvent(
                    action="principals",
                    purpose=self.purpose,
                    details={
                        "operation": "add",
                        "principal": principal_name,
                        "roles": [CONNECTOR_ROLE],
                        "kind": "service",
                    },
                ),
            )
            principal = _load_principal(connection, principal_name)
            assert principal is not None
        return principal

    def configure_connector(self, name: str, settings: Mapping[str, str]) -> dict[str, str]:
        """Store ``settings`` for connector ``name``, encrypted, merged with what is stored;
        creates its service principal ``connector-NAME``. Returns the settings redacted."""
        purpose = self.authorize("sync")
        self.authorize("principals")
        cls = connector_class(name)
        for setting, value in settings.items():
            if not isinstance(setting, str) or not isinstance(value, str) or not setting:
                raise ConfigError(f"connector {name!r}: settings are NAME=VALUE strings")
        key = self._vault._connector_settings_key

        def operation(connection: Connection) -> dict[str, str]:
            principal = self._ensure_service_principal(connection, name)
            stored = settings_store.load(connection, key, name) or {}
            merged = {**stored, **settings}
            settings_store.save(connection, key, name, merged, principal=principal.name)
            return settings_store.redacted(cls, merged)

        return self._audited(
            AuditEvent(
                action="sync",
                purpose=purpose,
                details={
                    "operation": "configure",
                    "connector": name,
                    "settings": sorted(settings),  # names only, never values
                },
            ),
            operation,
        )

    def connector_settings(self, name: str) -> dict[str, str]:
        """The stored settings of ``name``, secrets redacted; missing required ones listed as
        ``<missing>``."""
        purpose = self.authorize("sync")
        cls = connector_class(name)
        key = self._vault._connector_settings_key

        def operation(connection: Connection) -> dict[str, str]:
            stored = settings_store.load(connection, key, name) or {}
            shown = settings_store.redacted(cls, stored)
            for setting in cls.info.settings:
                if setting.name not in stored:
                    shown[setting.name] = (
                        "<missing>" if setting.required else f"<default: {setting.default}>"
                    )
            return dict(sorted(shown.items()))

        return self._audited(
            AuditEvent(
                action="sync", purpose=purpose, details={"operation": "settings", "connector": name}
            ),
            operation,
        )

    # --- syncing ------------------------------------------------------------------------------

    def _connector(self, name: str) -> tuple[Connector, Principal]:
        cls = connector_class(name)
        with self._vault._transaction() as connection:
            principal = self._ensure_service_principal(connection, name)
            stored = settings_store.load(connection, self._vault._connector_settings_key, name)
        if principal.revoked_at is not None:
            raise ConfigError(
                f"the service principal of connector {name!r} ({principal.name}) is revoked"
            )
        return cls(stored or {}), principal

    def sync(
        self,
        name: str,
        *,
        full: bool = False,
        dry_run: bool = False,
        streams: Sequence[str] | None = None,
        push: bool = True,
        reconcile: bool = False,
        on_progress: ProgressCallback | None = None,
        policy: SyncPolicy | None = None,
    ) -> SyncReport:
        """Pull what connector ``name`` pulls (from its cursors, or from the start with
        ``full``), then push what changed and carry out pending erasures where it can.

        A dry run reports what would change and writes nothing but its audit events. Raises the
        error that stopped it (``PlatformAuthFailed``, ``PlatformQuotaExhausted``, ...) with
        every batch before it committed and its cursor saved; ``sync_status()`` shows it.

        ``reconcile`` (for a connector whose ``info.reconciles``: a platform without a
        deleted-records feed) then lists every id the platform holds and unbinds the identities
        of records it no longer has (:mod:`vault.sync.reconcile`), counted as ``deleted``.
        """
        self.authorize("sync")
        connector, principal = self._connector(name)
        if reconcile and not connector.info.reconciles:
            connector.close()
            raise ConnectorError("cannot list its ids, so it cannot be reconciled", connector=name)
        try:
            engine = SyncEngine(
                self._vault,
                connector=connector,
                principal=principal,
                caller=self,
                policy=policy,
                on_progress=on_progress,
            )
            report = engine.run(full=full, dry_run=dry_run, streams=streams)
            if reconcile:
                engine.reconcile(report, dry_run=dry_run)
            if push and connector.info.pushes:
                engine.push(report, dry_run=dry_run)
            return report
        finally:
            connector.close()

    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        mapping: str | os.PathLike[str] | None = None,
        source: str | None = None,
        encoding: str | None = None,
        dry_run: bool = False,
        batch_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Import customers from a CSV or xlsx file through the file-import connector.

        Runs as ``connector-file_import``; rows are matched and merged like any sync (source
        ``source``, default ``import``); bad rows go to the reject report
        (``FILE.rejects.csv``) with their row number and reason, never their values. The file is
        read once to its end before anything is written (a file that cannot be is refused in one
        line). A dry run writes nothing (no reject report either) and counts what the real run
        would. An import killed halfway resumes from its last committed batch when run again on
        the same file.
        """
        from vault.plugins import connector_classes
        from vault.sync.imports import RejectWriter, reject_report_path

        self.authorize("import")
        found = connector_classes().get("file_import")
        if found is None:
            raise ConfigError("no connector 'file_import' is installed: imports need that plugin")
        # through the plugin manager, never an import of the plugin (tests/test_layers.py)
        importer = cast("type[FileImportConnector]", found[0])
        file = Path(path)
        chosen = importer.load_mapping(
            None if mapping is None else Path(mapping), self._vault.catalogue
        )
        settings = {
            "path": str(file),
            "encoding": encoding or "",
            "batch_size": str(batch_size or self._vault.sync_policy.batch_size),
        }
        connector = importer(
            settings, mapping=chosen, keys=self._vault.catalogue.searchable
        )
        try:
            connector.check()  # a file that cannot be read to its end is refused here
        except BaseException:
            connector.close()
            raise
        with self._vault._transaction() as connection:
            principal = self._ensure_service_principal(connection, connector.info.name)
            cursor = load_cursor(connection, connector.info.name, "customers")
        resume_row = 0
        if cursor and cursor.get("file") == connector.fingerprint and not cursor.get("done"):
            resume_row = int(cursor.get("row", 0))
        # A dry run writes nothing, the reject report included: its rejects are in the report.
        writer = None if dry_run else RejectWriter(reject_report_path(file), resume_row=resume_row)
        report = ImportReport(
            connector=connector.info.name,
            principal=principal.name,
            dry_run=dry_run,
            full=False,
            path=str(file),
            encoding=connector.encoding,
            encoding_detected=connector.encoding_detected,
            empty_rows=connector.empty_rows,
        )
        try:
            engine = SyncEngine(
                self._vault,
                connector=connector,
                principal=principal,
                caller=self,
                source=source or "import",
                on_progress=on_progress,
                action="import",
                on_rejects=None if writer is None else writer.write,
            )
            result = engine.run(dry_run=dry_run)
        finally:
            report.reject_report = None if writer is None else writer.close()
            connector.close()
        report.counts = result.counts
        report.streams = result.streams
        report.rejects = result.rejects
        report.run_id = result.run_id
        report.ignored_columns = list(connector.ignored_columns)
        return report

    # --- duplicates and merges ------------------------------------------------------------------

    def duplicates(self, *, include_resolved: bool = False) -> list[dict[str, Any]]:
        """Possible duplicates queued by identity resolution: pairs of customer ids, the kinds
        of identifier they share, when and from which source. No values."""
        purpose = self.authorize("read")
        found: list[str] = []

        def operation(connection: Connection) -> list[dict[str, Any]]:
            query = select(duplicate_reviews).order_by(duplicate_reviews.c.id)
            if not include_resolved:
                query = query.where(duplicate_reviews.c.status == "open")
            rows = []
            for row in connection.execute(query):
                live = live_customers(connection, [row.customer_a, row.customer_b])
                if row.status == "open" and len(live) < 2:
                    continue  # one of them was merged or erased since
                found.extend((row.customer_a, row.customer_b))
                rows.append(
                    {
                        "id": row.id,
                        "customer_a": row.customer_a,
                        "customer_b": row.customer_b,
                        "reason": row.reason,
                        "source": row.source,
                        "queued_at": as_utc(row.created_at).isoformat(),
                        "status": row.status,
                    }
                )
            return rows

        return self._audited(
            AuditEvent(
                action="read",
                purpose=purpose,
                customer_ids=found,
                details={"operation": "duplicates"},
            ),
            operation,
        )

    def merge_customers(self, survivor_id: str, merged_id: str) -> MergeResult:
        """Merge customer ``merged_id`` into ``survivor_id`` (reversible: :meth:`unmerge`)."""
        purpose = self.authorize("write", customer_ids=[survivor_id, merged_id])
        ranking = SourceRanking.load(self._vault.home.policy_file("sources.toml"))
        taken: list[str] = []  # filled in by the operation, before its event is written

        def operation(connection: Connection) -> MergeResult:
            result = merge_store.merge(
                connection,
                self._vault._customers,
                ranking,
                survivor_id,
                merged_id,
                by=self.principal.name,
            )
            taken.extend(result.fields_taken)
            return result

        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=[survivor_id, merged_id],
                fields=taken,
                details={"operation": "merge", "survivor": survivor_id, "merged": merged_id},
            ),
            operation,
        )

    def unmerge(self, merge: int | str) -> MergeResult:
        """Undo a merge, by its id or by the merged customer's id (its latest merge)."""
        purpose = self.authorize("write")
        ids: list[str] = []  # filled in by the operation, before its event is written

        def operation(connection: Connection) -> MergeResult:
            merge_id = self._merge_id(connection, merge)
            result = merge_store.unmerge(
                connection,
                self._vault._customers,
                merge_id,
                by=self.principal.name,
            )
            ids.extend((result.survivor_id, result.merged_id))
            return result

        return self._audited(
            AuditEvent(
                action="write",
                purpose=purpose,
                customer_ids=ids,
                details={"operation": "unmerge", "merge": str(merge)},
            ),
            operation,
        )

    def _merge_id(self, connection: Connection, merge: int | str) -> int:
        if isinstance(merge, int) or (isinstance(merge, str) and merge.isdigit()):
            return int(merge)
        merge_id = connection.execute(
            select(merge_records.c.id)
            .where(merge_records.c.merged_id == merge, merge_records.c.undone_at.is_(None))
            .order_by(merge_records.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if merge_id is None:
            raise NotFound(f"no merge of customer {merge} to undo")
        return int(merge_id)

    def sync_status(self) -> list[dict[str, Any]]:
        """Per configured or synced connector: its last run, its cursors, open duplicates."""
        purpose = self.authorize("sync")

        def operation(connection: Connection) -> list[dict[str, Any]]:
            names = set(connection.execute(select(connector_settings.c.name)).scalars())
            names |= set(connection.execute(select(sync_cursors.c.connector)).scalars())
            names |= set(connection.execute(select(sync_runs.c.connector)).scalars())
            result: list[dict[str, Any]] = []
            for name in sorted(names):
                last = connection.execute(
                    select(sync_runs)
                    .where(sync_runs.c.connector == name)
                    .order_by(sync_runs.c.id.desc())
                    .limit(1)
                ).first()
                cursors = [
                    {
                        "stream": row.stream,
                        "complete": bool(row.complete),
                        "batches": row.batches,
                        "updated_at": as_utc(row.updated_at).isoformat(),
                    }
                    for row in connection.execute(
                        select(sync_cursors)
                        .where(sync_cursors.c.connector == name)
                        .order_by(sync_cursors.c.stream)
                    )
                ]
                result.append(
                    {
                        "connector": name,
                        "principal": service_principal_name(name),
                        "last_run": None
                        if last is None
                        else {
                            "id": last.id,
                            "status": last.status,
                            "full": bool(last.full),
                            "started_at": as_utc(last.started_at).isoformat(),
                            "finished_at": as_utc(last.finished_at).isoformat()
                            if last.finished_at
                            else None,
                            "counts": json.loads(last.counts),
                            "error": last.error,
                        },
                        "cursors": cursors,
                    }
                )
            open_reviews = connection.execute(
                select(func.count())
                .select_from(duplicate_reviews)
                .where(duplicate_reviews.c.status == "open")
            ).scalar_one()
            for entry in result:
                entry["open_duplicates"] = int(open_reviews)
            return result

        return self._audited(
            AuditEvent(action="sync", purpose=purpose, details={"operation": "status"}),
            operation,
        )
