"""A toy platform for the engine's tests: a connector that speaks its small JSON protocol over
HTTP (httpx), and its sandbox on the kit. Registered with the plugin manager by the fixtures.

Protocol: ``POST /oauth/token`` (client id + secret) gives a bearer token; ``GET
/v1/customers?after=ID&limit=N`` and ``GET /v1/orders?...`` page by id; ``POST
/v1/customers/batch`` creates or updates; ``POST /v1/customers/delete`` deletes. Errors: 401
``TOKEN_EXPIRED``, 429 with ``Retry-After``, 5xx, 403 ``QUOTA_EXCEEDED``, 400 ``BAD_REQUEST``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from vault.errors import (
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformQuotaExhausted,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.hookspecs import hookimpl
from vault.records import Order, OrderItem
from vault.sandbox import Request, Response, Sandbox, json_response
from vault.sync import (
    Connector,
    ConnectorInfo,
    Cursor,
    ExternalCustomer,
    ExternalOrder,
    OutboundCustomer,
    Page,
    PushOutcome,
    Setting,
)
from vault.synthetic import generate_customers

BASE_TIME = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class ToyShopConnector(Connector):
    info = ConnectorInfo(
        name="toyshop",
        platform="toyshop",
        description="A toy shop platform for the engine's tests",
        pulls=frozenset({"customers", "orders"}),
        pushes=frozenset({"customers", "deletions"}),
        settings=(
            Setting("base_url", "the platform's URL"),
            Setting("client_id", "app id"),
            Setting("client_secret", "app secret", secret=True),
            Setting("page_size", "records per page", required=False, default="20"),
            Setting("timeout", "seconds", required=False, default="1.0"),
            Setting("region", "mainland or abroad", required=False, default="mainland"),
        ),
        push_batch_size=10,
    )
    sandbox = "sync_toyshop:ToyShopSandbox"

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self._client = httpx.Client(
            base_url=self.settings["base_url"], timeout=float(self.settings["timeout"])
        )
        self._token: str | None = None

    @property
    def region(self) -> Any:
        return self.settings["region"]

    # --- the protocol -------------------------------------------------------------------------

    def _refresh(self) -> None:
        answer = self._send(
            "POST",
            "/oauth/token",
            data={
                "client_id": self.settings["client_id"],
                "client_secret": self.settings["client_secret"],
            },
        )
        if answer.status_code == 401:
            raise PlatformAuthFailed("credentials refused", connector=self.info.name)
        self._token = str(self._json(answer)["access_token"])

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise PlatformUnavailable("timed out", connector=self.info.name) from None
        except httpx.TransportError as error:
            raise PlatformUnavailable(type(error).__name__, connector=self.info.name) from None

    def _json(self, answer: httpx.Response) -> Any:
        try:
            return answer.json()
        except ValueError:
            raise PlatformProtocolError("answer is not JSON", connector=self.info.name) from None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            self._refresh()
        for attempt in range(2):
            answer = self._send(
                method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs
            )
            if answer.status_code == 401 and attempt == 0:
                self._refresh()  # the one refresh; retrying further is the engine's business
                continue
            break
        name = self.info.name
        if answer.status_code == 401:
            raise PlatformAuthFailed("token refused after a refresh", connector=name)
        if answer.status_code == 429:
            after = answer.headers.get("Retry-After")
            raise PlatformRateLimited(
                "rate limited", connector=name, retry_after=float(after) if after else None
            )
        if answer.status_code >= 500:
            raise PlatformUnavailable(f"HTTP {answer.status_code}", connector=name)
        if answer.status_code == 403:
            raise PlatformQuotaExhausted("quota used up", connector=name, code="QUOTA_EXCEEDED")
        if answer.status_code >= 400:
            raise PlatformRejected(f"HTTP {answer.status_code}", connector=name)
        return self._json(answer)

    # --- the contract -------------------------------------------------------------------------

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        after = (cursor or {}).get("after", "")
        body = self._call(
            "GET",
            f"/v1/{stream}",
            params={"after": after, "limit": self.settings["page_size"]},
        )
        try:
            rows = body["data"]
            more = bool(body["more"])
        except (KeyError, TypeError):
            raise PlatformProtocolError("no data/more", connector=self.info.name) from None
        if stream == "customers":
            records: list[Any] = [_customer(row) for row in rows]
        else:
            records = [
                ExternalOrder(buyer=_customer(row["buyer"]), order=_order(row)) for row in rows
            ]
        last = rows[-1]["id"] if rows else after
        return Page(records=records, cursor={"after": last}, more=more)

    def push_customers(self, records: Sequence[OutboundCustomer]) -> Sequence[PushOutcome]:
        body = self._call(
            "POST",
            "/v1/customers/batch",
            json={
                "records": [
                    {"vault_id": r.customer_id, "id": r.external_id, **dict(r.fields)}
                    for r in records
                ]
            },
        )
        return [
            PushOutcome(
                customer_id=result["vault_id"],
                external_id=result.get("id"),
                ok=result["ok"],
                action=result.get("action", "failed"),
                error=result.get("error"),
            )
            for result in body["results"]
        ]

    def delete(self, external_ids: Sequence[str]) -> Sequence[PushOutcome]:
        body = self._call("POST", "/v1/customers/delete", json={"ids": list(external_ids)})
        return [
            PushOutcome(
                customer_id="",
                external_id=result["id"],
                ok=result["ok"],
                action="deleted" if result["ok"] else "failed",
            )
            for result in body["results"]
        ]

    def close(self) -> None:
        self._client.close()


def _customer(row: Mapping[str, Any]) -> ExternalCustomer:
    fields = {
        name: row[key]
        for name, key in (("name", "name"), ("phone", "mobile"), ("email", "email"))
        if row.get(key)
    }
    return ExternalCustomer(
        external_id=row["id"],
        observed_at=datetime.fromisoformat(row["updated_at"]),
        fields=fields,
    )


def _order(row: Mapping[str, Any]) -> Order:
    created = datetime.fromisoformat(row["created_at"])
    return Order(
        platform="toyshop",
        shop="main",
        order_id=row["id"],
        status=row["status"],
        currency="CNY",
        total_amount=row["total"],
        created_at=created,
        updated_at=created,
        items=[
            OrderItem(product_id="p1", product_name="茶叶", quantity=1, unit_price=row["total"])
        ],
    )


@hookimpl
def vault_register_connectors() -> list[type[Connector]]:
    return [ToyShopConnector]


# --- the sandbox ---------------------------------------------------------------------------------


def _phone_written(phone: str, n: int) -> str:
    return [phone, f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}", f"86{phone}"][n % 3]


class ToyShopSandbox(Sandbox):
    name = "toyshop"
    client_id = "toy-app"
    client_secret = "toy-secret-123"

    def __init__(self, *, seed: int = 0, records: int | None = None) -> None:
        super().__init__(seed=seed, records=records)
        count = 60 if records is None else records
        self.customers: list[dict[str, Any]] = []
        for n, person in enumerate(generate_customers(count, seed=seed)):
            self.customers.append(
                {
                    "id": f"C{n:06d}",
                    "name": person.name,
                    "mobile": _phone_written(person.phone, n),
                    "email": person.email,
                    "updated_at": (BASE_TIME + timedelta(minutes=n)).isoformat(),
                }
            )
        self.orders = [
            {
                "id": f"O{n:06d}",
                "buyer": customer,
                "status": "paid",
                "total": 1000 + n,
                "created_at": (BASE_TIME + timedelta(hours=n)).isoformat(),
            }
            for n, customer in enumerate(self.customers[: count // 2])
        ]
        self.tokens: set[str] = set()
        self.quota: int | None = None  # requests left before QUOTA_EXCEEDED, None: no limit
        self.remote: dict[str, dict[str, Any]] = {}  # pushed records by platform id
        self.deleted: list[str] = []
        self.pushed_batches: list[list[dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self.delay = 0.0  # seconds added to every answer (to kill a client mid-run)

    def credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}

    def settings(self) -> dict[str, str]:
        return {"base_url": self.url, **self.credentials()}

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def handle(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if request.path == "/oauth/token":
                form = request.form()
                if (form.get("client_id"), form.get("client_secret")) != (
                    self.client_id,
                    self.client_secret,
                ):
                    return json_response({"code": "INVALID_CLIENT"}, 401)
                token = secrets.token_hex(8)
                self.tokens.add(token)
                return json_response({"access_token": token, "expires_in": 3600})
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if bearer not in self.tokens:
                return json_response({"code": "TOKEN_EXPIRED"}, 401)
            if self.quota is not None:
                if self.quota <= 0:
                    return json_response({"code": "QUOTA_EXCEEDED"}, 403)
                self.quota -= 1
            if request.method == "GET" and request.path in ("/v1/customers", "/v1/orders"):
                rows = self.customers if request.path == "/v1/customers" else self.orders
                after = request.arg("after") or ""
                limit = int(request.arg("limit") or 20)
                tail = [row for row in rows if row["id"] > after]
                return json_response({"data": tail[:limit], "more": len(tail) > limit})
            if request.path == "/v1/customers/batch":
                return self._push(request.json()["records"])
            if request.path == "/v1/customers/delete":
                results = []
                for platform_id in request.json()["ids"]:
                    known = self.remote.pop(platform_id, None) is not None
                    if known:
                        self.deleted.append(platform_id)
                    results.append({"id": platform_id, "ok": known})
                return json_response({"results": results})
            return json_response({"code": "NOT_FOUND"}, 404)

    def _push(self, records: list[dict[str, Any]]) -> Response:
        self.pushed_batches.append(records)
        results = []
        for record in records:
            platform_id = record.get("id")
            if platform_id and platform_id in self.remote:
                self.remote[platform_id].update(record)
                results.append(
                    {
                        "vault_id": record["vault_id"],
                        "id": platform_id,
                        "ok": True,
                        "action": "updated",
                    }
                )
            else:
                platform_id = f"R{next(self._ids):06d}"
                self.remote[platform_id] = dict(record, id=platform_id)
                results.append(
                    {
                        "vault_id": record["vault_id"],
                        "id": platform_id,
                        "ok": True,
                        "action": "created",
                    }
                )
        return json_response({"results": results})


def dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)
