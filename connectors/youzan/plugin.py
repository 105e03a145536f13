"""The Youzan connector's plugin: registered through the ``vault`` entry-point group.

The connector is :mod:`connectors.youzan.connector`; its names are re-exported here for the
imports written before the move.
"""

from __future__ import annotations

from connectors.youzan.connector import (
    YouzanConnector,
    fen,
    is_ciphertext,
    order_status,
    parse_handle,
)
from vault import hookimpl
from vault.sync import Connector

__all__ = ["YouzanConnector", "fen", "is_ciphertext", "order_status", "parse_handle"]


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    return [YouzanConnector]
