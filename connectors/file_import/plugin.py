"""Registers the file-import connector through the ``vault`` entry points, like any plugin."""

from __future__ import annotations

from connectors.file_import.connector import FileImportConnector
from vault.hookspecs import hookimpl
from vault.sync import Connector


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    return [FileImportConnector]
