"""Session operations of the sync area: connector settings, syncs, imports, duplicates, merges.

Each is a method of :class:`vault.session.Session` (this mixin is one of its bases): authorised
for the caller, audited, and carried out as the connector's service principal where it changes
customer data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from vault.access import principals as principals_store
from vault.access.principals import Principal, _principal
from vault.audit import AuditEvent
from vault.door import Door
from vault.errors import ConfigError
from vault.store.engine import as_utc
from vault.store.schema import (
    connector_settings,
    duplicate_reviews,
    principals,
    sync_cursors,
    sync_runs,
)
from vault.sync import settings as settings_store
from vault.sync.contract import Connector
from vault.sync.engine import ProgressCallback, SyncEngine
from vault.sync.report import SyncReport
from vault.sync.retry import SyncPolicy

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
        key = self.vault.connector_settings_key

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
        key = self.vault.connector_settings_key

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
        with self.vault.transaction() as connection:
            principal = self._ensure_service_principal(connection, name)
            stored = settings_store.load(connection, self.vault.connector_settings_key, name)
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
        on_progress: ProgressCallback | None = None,
        policy: SyncPolicy | None = None,
    ) -> SyncReport:
        """Pull what connector ``name`` pulls (from its cursors, or from the start with
        ``full``), then push what changed and carry out pending erasures where it can.

        A dry run reports what would change and writes nothing but its audit events. Raises the
        error that stopped it (``PlatformAuthFailed``, ``PlatformQuotaExhausted``, ...) with
        every batch before it committed and its cursor saved; ``sync_status()`` shows it.
        """
        self.authorize("sync")
        connector, principal = self._connector(name)
        try:
            engine = SyncEngine(
                self.vault,
                connector=connector,
                principal=principal,
                caller=self,
                policy=policy,
                on_progress=on_progress,
            )
            report = engine.run(full=full, dry_run=dry_run, streams=streams)
            del push  # pushes: see vault.sync.push (wired in below once consent lands)
            return report
        finally:
            connector.close()

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
