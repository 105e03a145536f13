"""Acme Shop's customers as the vault's records (mapping only: HTTP is client.py's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from acme_shop.client import CONNECTOR, AcmeClient
from vault.errors import PlatformProtocolError
from vault.sync import Connector, ConnectorInfo, Cursor, ExternalCustomer, Page, Setting
from vault.sync.values import china_time


def to_customer(raw: Mapping[str, Any]) -> ExternalCustomer:
    customer_id = raw.get("id")
    seen = china_time(raw.get("updated"), field="updated", connector=CONNECTOR)
    if not isinstance(customer_id, str) or seen is None:
        raise PlatformProtocolError("a customer without id or updated", connector=CONNECTOR)
    fields = {name: str(raw[name]) for name in ("name", "phone") if raw.get(name)}
    return ExternalCustomer(external_id=customer_id, observed_at=seen, fields=fields)


class AcmeConnector(Connector):
    info = ConnectorInfo(
        name="acme",
        platform="acme",
        description="Acme Shop (the example of connectors/README.md)",
        pulls=frozenset({"customers"}),
        settings=(Setting("base_url", "the API's address"), Setting("api_key", secret=True)),
    )
    sandbox = "acme_shop.sandbox:AcmeSandbox"

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self.client = AcmeClient(
            base_url=self.settings["base_url"], api_key=self.settings["api_key"]
        )

    def close(self) -> None:
        self.client.close()

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        page = int((cursor or {}).get("page", 1))
        answer = self.client.get("/customers", page=page)
        records = [to_customer(raw) for raw in answer.get("customers", [])]
        more = bool(answer.get("more"))
        return Page(records=records, cursor={"page": page + 1 if more else page}, more=more)
