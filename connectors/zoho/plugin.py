"""The Zoho CRM plugin: registers :class:`ZohoConnector` through the ``vault`` entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vault.hookspecs import hookimpl

if TYPE_CHECKING:
    from vault.sync import Connector


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    from connectors.zoho.connector import ZohoConnector

    return [ZohoConnector]
