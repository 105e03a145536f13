"""The Taobao/Tmall connector's plugin: registered through the ``vault`` entry-point group."""

from __future__ import annotations

from connectors.taobao.connector import TaobaoConnector
from vault import hookimpl
from vault.sync import Connector


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    return [TaobaoConnector]
