"""Taobao and Tmall through the TOP open platform: the connector, its client and its sandbox.

The protocol (signing, envelopes, error codes, the order-sync recipe) is specified in the
project's protocol note for Taobao; :mod:`connectors.taobao.client` implements the wire,
:mod:`connectors.taobao.connector` the connector, :mod:`connectors.taobao.sandbox` the emulator.
"""

from connectors.taobao.client import TopClient, map_error, sign
from connectors.taobao.connector import TaobaoConnector

__all__ = ["TaobaoConnector", "TopClient", "map_error", "sign"]
