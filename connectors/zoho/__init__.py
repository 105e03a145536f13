"""Zoho CRM (API v8): a connector plugin and its sandbox.

``connector``: :class:`ZohoConnector` (pull Contacts or Leads and the deleted-records feed, push
by upsert, delete); ``client``: the OAuth2 token and the transport, every error mapped;
``mapping``: Zoho fields ↔ the vault's catalogue; ``sandbox``: :class:`ZohoSandbox`, an emulator
as strict as Zoho (``vault sandbox zoho``).
"""

from connectors.zoho.client import DATA_CENTRES, DataCentre, ZohoClient
from connectors.zoho.connector import ZohoConnector
from connectors.zoho.mapping import DEFAULT_FIELD_MAPS, FieldMap

__all__ = [
    "DATA_CENTRES",
    "DEFAULT_FIELD_MAPS",
    "DataCentre",
    "FieldMap",
    "ZohoClient",
    "ZohoConnector",
]
