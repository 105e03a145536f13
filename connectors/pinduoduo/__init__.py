"""Pinduoduo (POP) connector: signed router calls, incremental orders, batch decrypt, a sandbox."""

from connectors.pinduoduo.client import PddClient, sign
from connectors.pinduoduo.connector import PinduoduoConnector

__all__ = ["PddClient", "PinduoduoConnector", "sign"]
