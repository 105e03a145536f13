"""The Youzan connector: one shop's (``kdt_id``'s) customers and orders.

``fetch("orders", cursor)`` pages ``youzan.trades.sold.get/4.0.4`` by update time
(``shared/protocols/youzan.md`` §8): windows of at most a day (far inside the platform's 3
months), ending :data:`LAG` seconds behind the clock, the first of a run starting
:data:`OVERLAP` seconds before the cursor; ``page_no`` 1.. with ``page_size`` 100 until a short
page. A window holding more than 10,000 orders (more than ``page_no`` 100 reaches) is split in
halves until it fits. The platform sorts newest first, so paging races with updates: a window
whose ``total_results`` changes while it is paged (an order left it) is walked again from page
1, and after its last page, page 1 is read again for the orders that moved to the top meanwhile.

``fetch("customers", cursor)`` pages ``youzan.scrm.customer.list/1.0.0`` (newest first) over
the creation times since the last run, with the upper bound fixed at the start of the run; past
``page_no`` 100 the upper bound moves down to the oldest record seen.

Buyers are identified by ``yz_open_id`` (per developer) on the shop. Youzan sends phone numbers
and receiver fields as ciphertext under the shop's key: they go to ``platform_ciphertexts`` as
handles ``<kdt_id>:<ciphertext>`` (the ciphertext unchanged, with its shop, since only a token
of the same shop can decrypt it). A sync never decrypts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from connectors.youzan.client import (
    CONNECTOR,
    DEFAULT_GW_THROTTLE_CODES,
    DEFAULT_THROTTLE_CODES,
    YouzanClient,
)
from vault.errors import ConfigError, PlatformProtocolError
from vault.records import Order, OrderItem
from vault.sync import windows
from vault.sync.contract import (
    Connector,
    ConnectorInfo,
    Cursor,
    ExternalCustomer,
    ExternalOrder,
    Page,
    Setting,
)
from vault.sync.values import CHINA, yuan_to_fen
from vault.sync.values import china_time as _china_time

TRADES = ("youzan.trades.sold.get", "4.0.4")
CUSTOMERS = ("youzan.scrm.customer.list", "1.0.0")
DECRYPT = ("youzan.cloud.secret.decrypt.batch", "1.0.0")
PAGE_SIZE = 100
MAX_PAGE_NO = 100
MAX_REACHABLE = PAGE_SIZE * MAX_PAGE_NO
WINDOW = 86400
"""One window of the order walk: a day, far inside the platform's 3 months."""
LAG = 60
OVERLAP = 120
MAX_HISTORY_DAYS = 365
DECRYPT_BATCH = 10_000
SCENES = frozenset({"shipping", "after_sales", "customer_service"})

STATUSES = {
    "WAIT_BUYER_PAY": "unpaid",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_SUCCESS": "completed",
    "TRADE_CLOSE": "closed",
}
GENDERS = {1: "male", 2: "female"}


def order_status(status: str, refund_state: int) -> str:
    if refund_state == 2:
        return "refunded"
    if refund_state == 1:
        return "refunding"
    return STATUSES.get(status, status.lower())


fen = partial(yuan_to_fen, connector=CONNECTOR)
china_time = partial(_china_time, connector=CONNECTOR)


def wire_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def is_ciphertext(value: str) -> bool:
    """``$<base64>$<numeric key version>$``, as Youzan's SDK recognises its ciphertexts."""
    parts = value.split("$")
    return len(parts) == 4 and parts[0] == parts[3] == "" and bool(parts[1]) and parts[2].isdigit()


def handle(kdt_id: str, ciphertext: str) -> str:
    return f"{kdt_id}:{ciphertext}"


def parse_handle(value: str) -> tuple[str, str]:
    kdt_id, sep, ciphertext = value.partition(":")
    if not sep or not kdt_id.isdigit() or not is_ciphertext(ciphertext):
        raise ValueError("not a Youzan ciphertext handle (<kdt_id>:<ciphertext>)")
    return kdt_id, ciphertext


def to_external(raw: Mapping[str, Any], *, shop: str) -> ExternalOrder:
    """One ``full_order_info`` as the vault's order and its buyer."""
    try:
        info = raw["order_info"]
        buyer_info = raw.get("buyer_info") or {}
        address = raw.get("address_info") or {}
        pay = raw["pay_info"]
        tid = str(info["tid"])
        created = china_time(info["created"], field="created")
        updated = china_time(info["update_time"], field="update_time")
        status = order_status(str(info["status"]), int(info.get("refund_state") or 0))
        items = tuple(
            OrderItem(
                product_id=str(line["item_id"]),
                product_name=str(line.get("title") or ""),
                quantity=int(line["num"]),
                unit_price=fen(line["price"], field="price"),
            )
            for line in raw.get("orders") or ()
        )
        total = fen(pay["payment"], field="payment")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlatformProtocolError(
            f"trade is missing or has a malformed field ({type(exc).__name__})",
            connector=CONNECTOR,
        ) from exc
    if created is None or updated is None:
        raise PlatformProtocolError("trade has no created or update_time", connector=CONNECTOR)
    ciphertexts = {
        name: handle(shop, str(address[key]))
        for name, key in (
            ("name", "receiver_name"),
            ("phone", "receiver_tel"),
            ("address", "delivery_address"),
        )
        if address.get(key) and is_ciphertext(str(address[key]))
    }
    yz_open_id = buyer_info.get("yz_open_id")
    buyer = ExternalCustomer(
        external_id=str(yz_open_id) if yz_open_id else f"trade:{tid}",
        observed_at=updated,
        platform_ciphertexts=ciphertexts,
    )
    order = Order(
        platform=CONNECTOR,
        shop=shop,
        order_id=tid,
        status=status,
        currency="CNY",
        total_amount=total,
        created_at=created,
        updated_at=updated,
        paid_at=china_time(info.get("pay_time"), field="pay_time"),
        refunded_at=updated if status == "refunded" else None,
        items=items,
    )
    return ExternalOrder(buyer=buyer, order=order)


def to_customer(raw: Mapping[str, Any], *, shop: str) -> ExternalCustomer:
    """One ``scrm.customer.list`` record as a customer keyed by ``yz_open_id``."""
    yz_open_id = raw.get("yz_open_id")
    created = china_time(raw.get("created_at"), field="created_at")
    if not isinstance(yz_open_id, str) or not yz_open_id or created is None:
        raise PlatformProtocolError(
            "a customer has no yz_open_id or created_at", connector=CONNECTOR
        )
    fields: dict[str, str] = {}
    gender = GENDERS.get(raw.get("gender") or 0)
    if gender:
        fields["gender"] = gender
    if raw.get("birthday"):
        fields["birthday"] = str(raw["birthday"])
    ciphertexts = {
        name: handle(shop, str(raw[key]))
        for name, key in (("phone", "mobile"), ("name", "name"))
        if raw.get(key) and is_ciphertext(str(raw[key]))
    }
    return ExternalCustomer(
        external_id=yz_open_id, observed_at=created, fields=fields, platform_ciphertexts=ciphertexts
    )


def _second(record: ExternalOrder) -> int:
    return int(record.order.updated_at.timestamp())


def _codes(text: str, name: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"youzan: {name} is a comma-separated list of integers") from exc


class YouzanConnector(Connector):
    """Customers and orders of one Youzan shop."""

    info = ConnectorInfo(
        name="youzan",
        platform="youzan",
        description="Youzan cloud: a shop's customers (yz_open_id) and orders",
        pulls=frozenset({"customers", "orders"}),
        settings=(
            Setting("client_id", "the app's client_id"),
            Setting("client_secret", "the app's client_secret", secret=True),
            Setting("kdt_id", "the shop (grant_id of a self-use app)"),
            Setting(
                "authorize_type",
                "silent (self-use app) or authorization_code (tool app)",
                default="silent",
                required=False,
            ),
            Setting("auth_code", "a tool app's authorisation code", secret=True, required=False),
            Setting("redirect_uri", "a tool app's redirect URI", required=False),
            Setting("refresh_token", "a tool app's refresh token", secret=True, required=False),
            Setting(
                "base_url", "the API host", default="https://open.youzanyun.com", required=False
            ),
            Setting(
                "history_days", "how far back a first sync reaches", default="90", required=False
            ),
            Setting(
                "gw_throttle_codes",
                "gw_err_resp codes meaning flow control",
                default=",".join(str(c) for c in sorted(DEFAULT_GW_THROTTLE_CODES)),
                required=False,
            ),
            Setting(
                "throttle_codes",
                "success:false codes meaning flow control",
                default=",".join(str(c) for c in sorted(DEFAULT_THROTTLE_CODES)),
                required=False,
            ),
        ),
    )
    sandbox = "connectors.youzan.sandbox:YouzanSandbox"
    clock: ClassVar[Callable[[], float]] = time.time

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        try:
            self.history_days = min(float(self.settings["history_days"]), MAX_HISTORY_DAYS)
        except ValueError as exc:
            raise ConfigError("youzan: history_days is a number of days") from exc
        self.shop = self.settings["kdt_id"]
        self.client = YouzanClient(
            base_url=self.settings["base_url"],
            client_id=self.settings["client_id"],
            client_secret=self.settings["client_secret"],
            kdt_id=self.shop,
            authorize_type=self.settings["authorize_type"],
            code=self.settings.get("auth_code") or None,
            redirect_uri=self.settings.get("redirect_uri") or None,
            refresh_token=self.settings.get("refresh_token") or None,
            gw_throttle_codes=_codes(self.settings["gw_throttle_codes"], "gw_throttle_codes"),
            throttle_codes=_codes(self.settings["throttle_codes"], "throttle_codes"),
            clock=type(self).clock,
        )

    def close(self) -> None:
        self.client.close()

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        if stream == "orders":
            return self._orders(dict(cursor or {}))
        if stream == "customers":
            return self._customers(dict(cursor or {}))
        raise ValueError(f"youzan pulls customers and orders, not {stream!r}")

    # --- orders ------------------------------------------------------------------------------

    def _orders(self, state: dict[str, Any]) -> Page:
        now = int(type(self).clock())
        ceiling = now - LAG
        if "window" in state:
            start, end = (int(v) for v in state["window"])
            page_no, total, top = int(state["page"]), int(state["total"]), state.get("top")
        else:
            start, end = windows.next_window(
                state,
                now=now,
                lag=LAG,
                overlap=OVERLAP,
                history_days=self.history_days,
                longest=WINDOW,
            )
            if end <= start:
                return windows.caught_up(state, start)
            page_no, total, top = 1, -1, None
        data = self._trades(start, end, page_no)
        seen = self._total(data)
        while page_no == 1 and seen > MAX_REACHABLE and end - start > 1:
            end = start + (end - start) // 2  # more than page_no 100 reaches: split the window
            data = self._trades(start, end, 1)
            seen = self._total(data)
        records = self._records(data)
        restart = {"through": start, "window": [start, end], "page": 1, "total": -1}
        if page_no > 1 and seen != total:
            # an order left the window while we paged it: walk it again from page 1
            return Page(records=records, cursor=restart, more=True)
        if page_no == 1:
            top = max((int(r.order.updated_at.timestamp()) for r in records), default=start)
            state["top_ids"] = [r.order.order_id for r in records if _second(r) == top]
        last = len(records) < PAGE_SIZE or page_no * PAGE_SIZE >= seen or page_no >= MAX_PAGE_NO
        if not last:
            cursor = {
                **restart,
                "page": page_no + 1,
                "total": seen,
                "top": top,
                "top_ids": state.get("top_ids", []),
            }
            return Page(records=records, cursor=cursor, more=True)
        if page_no > 1:
            # Newest first: an order updated inside the window while we paged it moved to the
            # top, onto a page already read. Page 1 again holds it (at or above ``top``).
            again = self._trades(start, end, 1)
            known = set(state.get("top_ids", []))
            moved = [
                r
                for r in self._records(again)
                if _second(r) > int(top or 0)
                or (_second(r) == int(top or 0) and r.order.order_id not in known)
            ]
            if self._total(again) != seen or len(moved) >= PAGE_SIZE:
                return Page(records=[*records, *moved], cursor=restart, more=True)
            records.extend(moved)
        caught_up = end >= ceiling
        done: dict[str, Any] = {"through": end}
        if caught_up:
            done["caught_up"] = True
        return Page(records=records, cursor=done, more=not caught_up)

    def _records(self, data: Mapping[str, Any]) -> list[ExternalOrder]:
        return [
            to_external(entry.get("full_order_info") or {}, shop=self.shop)
            for entry in data["full_order_info_list"]
        ]

    def _trades(self, start: int, end: int, page_no: int) -> dict[str, Any]:
        data = self.client.call(
            *TRADES,
            {
                "start_update": wire_time(start),
                "end_update": wire_time(end),
                "page_no": page_no,
                "page_size": PAGE_SIZE,
            },
        )
        if not isinstance(data, dict) or not isinstance(data.get("full_order_info_list"), list):
            raise PlatformProtocolError(
                "trades.sold.get: no full_order_info_list", connector=CONNECTOR
            )
        return data

    @staticmethod
    def _total(data: Mapping[str, Any]) -> int:
        total = data.get("total_results")
        if not isinstance(total, int) or total < 0:
            raise PlatformProtocolError("trades.sold.get: no total_results", connector=CONNECTOR)
        return total

    # --- customers ---------------------------------------------------------------------------

    def _customers(self, state: dict[str, Any]) -> Page:
        since = state.get("since")
        if "end" in state:
            end, page_no, newest = int(state["end"]), int(state["page"]), state.get("newest")
        else:
            end, page_no, newest = int(type(self).clock()), 1, since
        params: dict[str, Any] = {
            "page_no": page_no,
            "page_size": PAGE_SIZE,
            "created_at_end": wire_time(end),
        }
        if since is not None:
            params["created_at_start"] = wire_time(int(since))
        data = self.client.call(*CUSTOMERS, params)
        entries = data.get("record_list") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise PlatformProtocolError("scrm.customer.list: no record_list", connector=CONNECTOR)
        records = [to_customer(entry, shop=self.shop) for entry in entries]
        created = [int(r.observed_at.timestamp()) for r in records]
        if created:
            newest = max([*created, *([int(newest)] if newest is not None else [])])
        if len(records) < PAGE_SIZE:
            caught_up: dict[str, Any] = {} if newest is None else {"since": int(newest)}
            return Page(records=records, cursor=caught_up, more=False)
        cursor: dict[str, Any] = {"end": end, "page": page_no + 1, "newest": newest}
        if since is not None:
            cursor["since"] = since
        if page_no >= MAX_PAGE_NO:  # page_no 100 is the last the platform serves
            cursor |= {"end": min(created), "page": 1}
        return Page(records=records, cursor=cursor, more=True)

    # --- decryption --------------------------------------------------------------------------

    def decrypt(self, ciphertexts: Sequence[str], *, scene: str) -> Mapping[str, str]:
        """Decrypt handles (``<kdt_id>:<ciphertext>``) of this shop through
        ``youzan.cloud.secret.decrypt.batch``. Returns handle -> clear value."""
        if scene not in SCENES:
            raise ValueError(f"unknown decrypt scene {scene!r}: one of {', '.join(sorted(SCENES))}")
        parsed = {h: parse_handle(h) for h in dict.fromkeys(ciphertexts)}
        if any(kdt != self.shop for kdt, _ in parsed.values()):
            raise ValueError("a ciphertext of another shop: only that shop's token decrypts it")
        by_ciphertext = {ct: h for h, (_, ct) in parsed.items()}
        sources = list(by_ciphertext)
        clear: dict[str, str] = {}
        for offset in range(0, len(sources), DECRYPT_BATCH):
            data = self.client.call(*DECRYPT, {"sources": sources[offset : offset + DECRYPT_BATCH]})
            if not isinstance(data, dict):
                raise PlatformProtocolError(
                    "decrypt.batch: data is not a mapping", connector=CONNECTOR
                )
            for ciphertext, value in data.items():
                if ciphertext in by_ciphertext and isinstance(value, str) and value:
                    clear[by_ciphertext[ciphertext]] = value
        return clear
