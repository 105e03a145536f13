"""The Pinduoduo connector's plugin: registered through the ``vault`` entry-point group.

The connector is :mod:`connectors.pinduoduo.connector`; its names are re-exported here for the
imports written before the move.
"""

from __future__ import annotations

from connectors.pinduoduo.connector import (
    LAG,
    MAX_WINDOW,
    PinduoduoConnector,
    fen,
    order_status,
    parse_handle,
)
from vault import hookimpl
from vault.sync import Connector

__all__ = ["LAG", "MAX_WINDOW", "PinduoduoConnector", "fen", "order_status", "parse_handle"]


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    return [PinduoduoConnector]
