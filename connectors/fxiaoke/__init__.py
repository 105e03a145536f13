"""Fenxiang Xiaoke (纷享销客, ShareCRM): the connector, its OpenAPI client and its sandbox.

``vault sync fxiaoke`` pulls contacts and pushes the customers who consented; ``vault sandbox
fxiaoke`` runs the emulator of the OpenAPI on loopback.
"""

from connectors.fxiaoke.client import CLOUDS, Cloud, FxiaokeClient, cloud_of, error_for
from connectors.fxiaoke.connector import DEFAULT_FIELD_MAP, FxiaokeConnector

__all__ = [
    "CLOUDS",
    "DEFAULT_FIELD_MAP",
    "Cloud",
    "FxiaokeClient",
    "FxiaokeConnector",
    "cloud_of",
    "error_for",
]
