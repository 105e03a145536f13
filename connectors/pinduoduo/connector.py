"""The Pinduoduo connector: one shop's (mall's) orders through the POP router.

``fetch("orders", cursor)`` walks ``pdd.order.number.list.increment.get`` window by window
(``shared/protocols/pinduoduo.md`` §9). A window is at most :data:`MAX_WINDOW` seconds (the
platform's limit: a longer one is never sent), ends at least :data:`LAG` seconds behind the
clock, and the first window of a run starts :data:`OVERLAP` seconds before the cursor. Pages of a
window are fetched last to first, as the platform asks; the cursor (``through``) advances only
once a window's page 1 is in, and a killed sync resumes inside the window it was in. Entries of
the list that lack their line items are completed with ``pdd.order.information.get``.

The order APIs carry no buyer id. Each order's buyer is an :class:`ExternalCustomer` whose
external id is ``order:<order_sn>`` (stable for the life of the order), with the masked receiver
fields as their values, and, while the order waits to ship, the receiver ciphertexts in
``platform_ciphertexts`` plus an identity ``phone:<index>`` built from the search index the
platform embeds in the phone ciphertext, so one person's to-ship orders land on one customer.
A stored ciphertext handle is ``<order_sn>:<ciphertext>`` (the ciphertext unchanged), because
``pdd.open.decrypt.batch`` needs the order it came from; :meth:`PinduoduoConnector.decrypt`
takes those handles. A sync never decrypts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

from connectors.pinduoduo.client import (
    CONNECTOR,
    DEFAULT_QUOTA_CODE,
    DEFAULT_SIGN_ERROR,
    DEFAULT_THROTTLE_CODES,
    PddClient,
    Token,
)
from vault.errors import ConfigError, PlatformProtocolError, PlatformRateLimited
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
from vault.sync.values import china_time as _china_time
from vault.sync.values import yuan_to_fen

INCREMENT_API = "pdd.order.number.list.increment.get"
MAX_WINDOW = 1800
"""The platform's longest ``end_updated_at - start_updated_at``."""
LAG = 180
"""``end_updated_at`` stays this far behind the clock, or orders can be missed."""
OVERLAP = 120
"""An incremental run starts this far before its cursor: late-indexed orders are caught."""
MAX_HISTORY_DAYS = 90
"""The increment API returns only orders whose deal time is within the last 3 months."""
PAGE_SIZE = 100
DECRYPT_BATCH = 100
SCENES = frozenset({"shipping", "after_sales", "customer_service"})
DECRYPTED_FIELDS = {5: "name", 6: "phone", 7: "address", 8: "street"}

_DECRYPT_LOCK = threading.Lock()
_LAST_DECRYPT: dict[tuple[str, str], float] = {}  # (client_id, mall_id) -> last decrypt call

STATUSES = {1: "paid", 2: "shipped", 3: "completed"}
"""``order_status`` to the vault's status; a refund status overrides it (:func:`order_status`)."""


def order_status(order_status: int, refund_status: int) -> str:
    if refund_status == 4:
        return "refunded"
    if refund_status in (2, 3):
        return "refunding"
    return STATUSES.get(order_status, f"status_{order_status}")


fen = partial(yuan_to_fen, connector=CONNECTOR)
china_time = partial(_china_time, connector=CONNECTOR)


def phone_index(ciphertext: str) -> str | None:
    """The search index the platform embeds in a phone ciphertext (``$<index>$<data>$<v>$$``)."""
    parts = ciphertext.split("$")
    if len(parts) >= 4 and parts[0] == "" and parts[1]:
        return parts[1]
    return None


def handle(order_sn: str, ciphertext: str) -> str:
    return f"{order_sn}:{ciphertext}"


def parse_handle(value: str) -> tuple[str, str]:
    order_sn, sep, ciphertext = value.partition(":")
    if not sep or not order_sn or ciphertext[:1] not in ("~", "$"):
        raise ValueError("not a Pinduoduo ciphertext handle (<order_sn>:<ciphertext>)")
    return order_sn, ciphertext


def to_external(raw: Mapping[str, Any], *, shop: str) -> ExternalOrder:
    """One order of the platform as the vault's order and its buyer."""
    try:
        order_sn = str(raw["order_sn"])
        created = china_time(raw["created_time"], field="created_time")
        updated = china_time(raw["updated_at"], field="updated_at")
        order_status_code = int(raw["order_status"])
        refund_status = int(raw.get("refund_status") or 1)
        items = [
            OrderItem(
                product_id=str(item["goods_id"]),
                product_name=str(item.get("goods_name") or ""),
                quantity=int(item["goods_count"]),
                unit_price=fen(item["goods_price"], field="goods_price"),
            )
            for item in raw["item_list"]
        ]
        total = fen(raw["pay_amount"], field="pay_amount")
    except (KeyError, TypeError, ValueError) as exc:
        raise PlatformProtocolError(
            f"order is missing or has a malformed field ({type(exc).__name__})",
            connector=CONNECTOR,
        ) from exc
    if created is None or updated is None:
        raise PlatformProtocolError("order has no created_time or updated_at", connector=CONNECTOR)
    status = order_status(order_status_code, refund_status)
    fields = {
        name: str(raw[key])
        for name, key in (
            ("name", "receiver_name_mask"),
            ("phone", "receiver_phone_mask"),
            ("address", "address_mask"),
        )
        if raw.get(key)
    }
    ciphertexts = {
        name: handle(order_sn, str(raw[key]))
        for name, key in (
            ("name", "receiver_name"),
            ("phone", "receiver_phone"),
            ("address", "address"),
        )
        if raw.get(key)
    }
    identities: list[tuple[str, str]] = []
    index = phone_index(str(raw.get("receiver_phone") or ""))
    if index:
        identities.append((CONNECTOR, f"phone:{index}"))
    buyer = ExternalCustomer(
        external_id=f"order:{order_sn}",
        observed_at=updated,
        fields=fields,
        identities=identities,
        platform_ciphertexts=ciphertexts,
    )
    order = Order(
        platform=CONNECTOR,
        shop=shop,
        order_id=order_sn,
        status=status,
        currency="CNY",
        total_amount=total,
        created_at=created,
        updated_at=updated,
        paid_at=china_time(raw.get("pay_time"), field="pay_time"),
        refunded_at=updated if status == "refunded" else None,
        items=tuple(items),
    )
    return ExternalOrder(buyer=buyer, order=order)


def _codes(text: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(
            "pinduoduo: throttle_codes is a comma-separated list of integers"
        ) from exc


class PinduoduoConnector(Connector):
    """Orders of one Pinduoduo shop; decryption of its receiver ciphertexts on demand."""

    info = ConnectorInfo(
        name="pinduoduo",
        platform="pinduoduo",
        description="Pinduoduo (POP): a shop's orders, masked and encrypted receiver fields",
        pulls=frozenset({"orders"}),
        settings=(
            Setting("client_id", "the app's client_id"),
            Setting("client_secret", "the app's client_secret", secret=True),
            Setting("mall_id", "the shop (owner_id of its token)"),
            Setting("access_token", "the shop's access token", secret=True),
            Setting("refresh_token", "the shop's refresh token", secret=True, required=False),
            Setting(
                "base_url", "the gateway", default="https://gw-api.pinduoduo.com", required=False
            ),
            Setting(
                "history_days",
                "how far back a first sync reaches (≤ 90)",
                default="90",
                required=False,
            ),
            Setting(
                "throttle_codes",
                "error codes meaning flow control",
                default=",".join(str(c) for c in sorted(DEFAULT_THROTTLE_CODES)),
                required=False,
            ),
            Setting(
                "sign_error_code",
                "the bad-signature code",
                default=str(DEFAULT_SIGN_ERROR),
                required=False,
            ),
            Setting(
                "quota_code", "the daily-cap code", default=str(DEFAULT_QUOTA_CODE), required=False
            ),
            Setting(
                "decrypt_interval", "seconds between decrypt calls", default="10", required=False
            ),
        ),
    )
    sandbox = "connectors.pinduoduo.sandbox:PinduoduoSandbox"
    clock: ClassVar[Callable[[], float]] = time.time

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        try:
            self.history_days = min(float(self.settings["history_days"]), MAX_HISTORY_DAYS)
            self.decrypt_interval = float(self.settings["decrypt_interval"])
            sign_error_code = int(self.settings["sign_error_code"])
            quota_code = int(self.settings["quota_code"])
        except ValueError as exc:
            raise ConfigError(
                "pinduoduo: history_days, decrypt_interval and codes are numbers"
            ) from exc
        self.shop = self.settings["mall_id"]
        self.client = PddClient(
            base_url=self.settings["base_url"],
            client_id=self.settings["client_id"],
            client_secret=self.settings["client_secret"],
            token=Token(
                access_token=self.settings["access_token"],
                refresh_token=self.settings.get("refresh_token") or None,
                expires_at=None,
            ),
            throttle_codes=_codes(self.settings["throttle_codes"]),
            sign_error_code=sign_error_code,
            quota_code=quota_code,
            clock=type(self).clock,
        )
        self._limiter_key = (self.settings["client_id"], self.shop)

    def close(self) -> None:
        self.client.close()

    # --- orders ------------------------------------------------------------------------------

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        if stream != "orders":
            raise ValueError(f"pinduoduo pulls orders only, not {stream!r}")
        now = int(type(self).clock())
        ceiling = now - LAG
        state = dict(cursor or {})
        if "window" in state:
            start, end = (int(v) for v in state["window"])
            return self._page(start, end, int(state["page"]), int(state["total"]), ceiling)
        start, end = windows.next_window(
            state,
            now=now,
            lag=LAG,
            overlap=OVERLAP,
            history_days=self.history_days,
            longest=MAX_WINDOW,
        )
        if end <= start:
            return windows.caught_up(state, start)
        return self._page(start, end, 0, 0, ceiling)

    def _page(self, start: int, end: int, page: int, total: int, ceiling: int) -> Page:
        """Fetch the next page of window [start, end]: page 0 means a new window (ask page 1 for
        the count, then, if there are more pages, start from the last)."""
        assert end - start <= MAX_WINDOW, "a window longer than the platform allows"
        if page == 0:
            payload = self._list(start, end, 1)
            total = self._total(payload)
            pages = max(1, math.ceil(total / PAGE_SIZE))
            if pages == 1:
                return self._done(self._orders(payload), end, ceiling)
            page = pages
        payload = self._list(start, end, page)
        seen_total = self._total(payload)
        records = self._orders(payload)
        if seen_total != total:
            # the window changed while we paged it: start it again from its (new) last page
            pages = max(1, math.ceil(seen_total / PAGE_SIZE))
            cursor = {"through": start, "window": [start, end], "page": pages, "total": seen_total}
            return Page(records=records, cursor=cursor, more=True)
        if page <= 1:
            return self._done(records, end, ceiling)
        cursor = {"through": start, "window": [start, end], "page": page - 1, "total": total}
        return Page(records=records, cursor=cursor, more=True)

    def _done(self, records: Sequence[ExternalOrder], end: int, ceiling: int) -> Page:
        caught_up = end >= ceiling
        cursor: dict[str, Any] = {"through": end}
        if caught_up:
            cursor["caught_up"] = True
        return Page(records=records, cursor=cursor, more=not caught_up)

    def _list(self, start: int, end: int, page: int) -> dict[str, Any]:
        return self.client.call(
            INCREMENT_API,
            {
                "start_updated_at": start,
                "end_updated_at": end,
                "page": page,
                "page_size": PAGE_SIZE,
                "order_status": 5,
                "refund_status": 5,
                "is_lucky_flag": 0,
                "use_has_next": True,
            },
        )

    @staticmethod
    def _total(payload: Mapping[str, Any]) -> int:
        total = payload.get("total_count")
        if (
            not isinstance(total, int)
            or total < 0
            or not isinstance(payload.get("order_sn_list"), list)
        ):
            raise PlatformProtocolError(
                f"{INCREMENT_API}: no total_count or order_sn_list", connector=CONNECTOR
            )
        return total

    def _orders(self, payload: Mapping[str, Any]) -> list[ExternalOrder]:
        result = []
        for entry in payload["order_sn_list"]:
            if not isinstance(entry, dict) or "order_sn" not in entry:
                raise PlatformProtocolError(
                    f"{INCREMENT_API}: an entry has no order_sn", connector=CONNECTOR
                )
            raw = entry if "item_list" in entry else self.detail(str(entry["order_sn"]))
            result.append(to_external(raw, shop=self.shop))
        return result

    def detail(self, order_sn: str) -> dict[str, Any]:
        """``pdd.order.information.get``: the full order."""
        payload = self.client.call("pdd.order.information.get", {"order_sn": order_sn})
        info = payload.get("order_info")
        if not isinstance(info, dict):
            raise PlatformProtocolError(
                "pdd.order.information.get: no order_info", connector=CONNECTOR
            )
        return info

    # --- decryption --------------------------------------------------------------------------

    def decrypt(self, ciphertexts: Sequence[str], *, scene: str) -> Mapping[str, str]:
        """Decrypt handles (``<order_sn>:<ciphertext>``) through ``pdd.open.decrypt.batch``, in
        batches of at most 100, no faster than one call per ``decrypt_interval`` seconds (the
        platform's out-of-cloud limiter). Returns handle -> clear value."""
        if scene not in SCENES:
            raise ValueError(f"unknown decrypt scene {scene!r}: one of {', '.join(sorted(SCENES))}")
        handles = list(dict.fromkeys(ciphertexts))
        parsed = {h: parse_handle(h) for h in handles}
        clear: dict[str, str] = {}
        for offset in range(0, len(handles), DECRYPT_BATCH):
            batch = handles[offset : offset + DECRYPT_BATCH]
            self._wait_for_decrypt_slot()
            try:
                payload = self.client.call(
                    "pdd.open.decrypt.batch",
                    {
                        "data_list": [
                            {"data_tag": parsed[h][0], "encrypted_data": parsed[h][1]}
                            for h in batch
                        ]
                    },
                )
            finally:
                with _DECRYPT_LOCK:  # when the platform saw the call
                    _LAST_DECRYPT[self._limiter_key] = type(self).clock()
            by_pair = {(parsed[h][0], parsed[h][1]): h for h in batch}
            answers = payload.get("data_decrypt_list")
            if not isinstance(answers, list):
                raise PlatformProtocolError(
                    "pdd.open.decrypt.batch: no data_decrypt_list", connector=CONNECTOR
                )
            for answer in answers:
                if not isinstance(answer, dict):
                    raise PlatformProtocolError(
                        "pdd.open.decrypt.batch: bad entry", connector=CONNECTOR
                    )
                key = (str(answer.get("data_tag")), str(answer.get("encrypted_data")))
                value = answer.get("decrypted_data")
                if key in by_pair and isinstance(value, str) and value:
                    clear[by_pair[key]] = value
        return clear

    def _wait_for_decrypt_slot(self) -> None:
        """The platform's out-of-cloud limiter is per app and shop, so this one is kept per
        process for every connector instance of that app and shop (the door makes a new
        connector for each decrypt)."""
        with _DECRYPT_LOCK:
            last = _LAST_DECRYPT.get(self._limiter_key)
        if last is not None:
            wait = last + self.decrypt_interval - type(self).clock()
            if wait > 0:
                if wait > 60:
                    raise PlatformRateLimited(
                        "decrypt limiter", connector=CONNECTOR, retry_after=wait
                    )
                time.sleep(wait)
