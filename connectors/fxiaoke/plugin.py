"""The Fenxiang connector's plugin: registered through the ``vault`` entry-point group."""

from __future__ import annotations

from vault.hookspecs import hookimpl
from vault.sync import Connector


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    from connectors.fxiaoke.connector import FxiaokeConnector

    return [FxiaokeConnector]
