"""Connector settings and credentials, sealed in the store (``connector_settings``).

The settings of a connector are one JSON object sealed with AES-256-GCM under the vault's
connector-settings system key (itself wrapped by the master key, so key rotation rewraps it),
bound to the connector's name: a sealed blob moved to another connector's row fails to open.
Nothing is ever written in clear to a config file, a log line or ``--json`` output: secret
settings, and any setting the connector does not declare, are shown redacted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, insert, select, update

from vault.store.engine import utcnow
from vault.store.schema import connector_settings
from vault.store.sealed import open_connector_settings, seal_connector_settings
from vault.sync.contract import Connector

REDACTED = "********"


def load(connection: Connection, key: bytes, name: str) -> dict[str, str] | None:
    """The stored settings of connector ``name`` in clear, or None if it was never configured."""
    sealed = connection.execute(
        select(connector_settings.c.sealed).where(connector_settings.c.name == name)
    ).scalar_one_or_none()
    if sealed is None:
        return None
    data = json.loads(open_connector_settings(key, name, sealed).decode("utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def principal_of(connection: Connection, name: str) -> str | None:
    return connection.execute(
        select(connector_settings.c.principal).where(connector_settings.c.name == name)
    ).scalar_one_or_none()


def save(
    connection: Connection, key: bytes, name: str, settings: Mapping[str, str], *, principal: str
) -> None:
    sealed = seal_connector_settings(
        key, name, json.dumps(dict(settings), sort_keys=True).encode("utf-8")
    )
    now = utcnow()
    exists = connection.execute(
        select(connector_settings.c.name).where(connector_settings.c.name == name)
    ).first()
    if exists:
        connection.execute(
            update(connector_settings)
            .where(connector_settings.c.name == name)
            .values(sealed=sealed, principal=principal, updated_at=now)
        )
    else:
        connection.execute(
            insert(connector_settings).values(
                name=name, sealed=sealed, principal=principal, created_at=now, updated_at=now
            )
        )


def redacted(cls: type[Connector], settings: Mapping[str, str]) -> dict[str, str]:
    """``settings`` fit to show: secrets, and names the connector does not declare, redacted."""
    shown = {s.name: s for s in cls.info.settings}
    return {
        name: value if name in shown and not shown[name].secret else REDACTED
        for name, value in sorted(settings.items())
    }
