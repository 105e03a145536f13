"""Youzan cloud connector: tokens, customers by yz_open_id, orders by update time, a sandbox."""

from connectors.youzan.client import YouzanClient
from connectors.youzan.connector import YouzanConnector

__all__ = ["YouzanClient", "YouzanConnector"]
