"""Registration only: the ``vault`` entry point names this module."""

from __future__ import annotations

from acme_shop.connector import AcmeConnector
from vault import hookimpl
from vault.sync import Connector


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    return [AcmeConnector]
