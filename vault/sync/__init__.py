"""Connectors and the sync engine. The connector contract is :mod:`vault.sync.contract`."""

from vault.sync.contract import (
    PUSHES,
    STREAMS,
    Connector,
    ConnectorInfo,
    ConsentSignal,
    Cursor,
    ExternalCustomer,
    ExternalDeletion,
    ExternalInteraction,
    ExternalOrder,
    OutboundCustomer,
    Page,
    PushOutcome,
    Record,
    Region,
    Setting,
)

__all__ = [
    "PUSHES",
    "STREAMS",
    "Connector",
    "ConnectorInfo",
    "ConsentSignal",
    "Cursor",
    "ExternalCustomer",
    "ExternalDeletion",
    "ExternalInteraction",
    "ExternalOrder",
    "OutboundCustomer",
    "Page",
    "PushOutcome",
    "Record",
    "Region",
    "Setting",
]
