"""The Taobao/Tmall connector: orders and their buyers from the shops an app is authorised for.

Orders are pulled by modification time (``taobao.trades.sold.increment.get``), as the protocol
note's §8 describes, one shop after another:

* A window is ``[high water - overlap, min(now - settle, start + window)]`` and never longer
  than the platform's 1 day; the first run starts ``backfill_days`` back (the platform keeps 3
  months). The first call of a window asks for page 1 with ``use_has_next=false`` to learn
  ``total_results``; a window that fits in one page is done with it, a longer one is then read
  **from its last page to its first**, so that an order modified while we page (it leaves the
  window, towards the present) cannot make us skip another. Each page of the list is one
  :meth:`fetch` and one cursor: ``{"shop", "hw": {shop: high water}, "window": {start, end,
  page, pages, final}}``; the high water of a shop moves only when its whole window is read.
* ``modified`` is whole seconds and the bounds are inclusive, so a window never ends in the
  second still running: ``now - settle`` is at least :data:`SECOND` behind. Were it to, an
  order changed later in that second would carry the window's last second: it would lie in a
  window already read (a run resumed after a kill would take that shop as read up to when it
  began, and miss the change) or jump to the top of the window being paged (and push another
  onto a page already read). So every change made while a window is read takes its order
  *out* of the window, and a run whose last second is not over yet waits (at most a second,
  with no settling time) until it is.
* The list holds part of a trade; the receiver (masked) and the OAID come from
  ``taobao.trade.fullinfo.get``, asked only for trades the list lacks them for.
* A buyer is their ``buyer_open_uid`` (the external id); the OAID is a further identity; the
  masked receiver name and mobile and the masked nick are masked values; the OAID, with the
  trade id, is kept as the platform's handle of the name, phone and address
  (``platform_ciphertexts``), decrypted only by :meth:`decrypt` through the vault's one door.
* Money is yuan strings -> integer fen; times are China time -> UTC.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.taobao.client import TopClient, format_time, parse_time, yuan_to_fen
from vault.errors import ConfigError, PlatformProtocolError, PlatformRateLimited
from vault.records import Order, OrderItem
from vault.sync.contract import (
    Connector,
    ConnectorInfo,
    Cursor,
    ExternalCustomer,
    ExternalOrder,
    Page,
    Setting,
)

PLATFORM = "taobao"
OAID_PLATFORM = "taobao_oaid"
MAX_WINDOW = timedelta(days=1)
MAX_DECRYPT_BATCH = 20
MAX_BAN_WAITS = 5  # flow-control bans a detail call waits out itself (see _paced)
MAX_BAN_WAIT = 10.0  # seconds: a longer ban goes to the engine
MAX_STEPS_PER_FETCH = 48  # windows read in one fetch (small ones are gathered into one page)
SECOND = timedelta(seconds=1)
"""The resolution of the platform's ``modified``: a window ends at least this far behind now."""
LIST_FIELDS = (
    "tid,status,type,created,modified,pay_time,consign_time,end_time,payment,total_fee,"
    "post_fee,buyer_open_uid,buyer_nick,seller_nick,orders"
)
DETAIL_FIELDS = (
    LIST_FIELDS + ",receiver_name,receiver_mobile,receiver_phone,receiver_state,receiver_city,"
    "receiver_district,receiver_town,receiver_address,oaid"
)
SCENES: Mapping[str, str] = {
    "shipping": "1001",  # e-waybill printing and delivery
    "after_sales": "2001",
    "customer_service": "2002",  # customer care
}
"""The vault's scene names (policies/purposes.toml ``scenes``) -> the platform's scene codes."""
HANDLE_PARTS = {"name": "name", "phone": "mobile", "address": "address"}

STATUSES: Mapping[str, str] = {
    "TRADE_NO_CREATE_PAY": "pending",
    "WAIT_BUYER_PAY": "pending",
    "PAY_PENDING": "pending",
    "WAIT_PRE_AUTH_CONFIRM": "pending",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "PAID_FORBID_CONSIGN": "paid",
    "SELLER_CONSIGNED_PART": "shipped",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "delivered",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "refunded",  # closed after payment: refunded in full (else: cancelled)
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",
}
REFUNDED = frozenset({"SUCCESS"})


def _int_setting(settings: Mapping[str, str], name: str, *, low: int, high: int) -> int:
    try:
        value = int(settings[name])
    except (KeyError, ValueError):
        raise ConfigError(f"connector 'taobao': setting {name} must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"connector 'taobao': setting {name} must be between {low} and {high}")
    return value


def oaid_handle(part: str, tid: str, oaid: str) -> str:
    """The handle kept for one receiver field: which part, the trade and its OAID."""
    return f"oaid:{part}:{tid}:{oaid}"


def parse_handle(handle: str) -> tuple[str, str, str]:
    kind, part, tid, oaid = [*handle.split(":", 3), "", "", ""][:4]
    if kind != "oaid" or part not in HANDLE_PARTS.values() or not tid.isdigit() or not oaid:
        raise ValueError("not a Taobao OAID handle")
    return part, tid, oaid


class TaobaoConnector(Connector):
    """Taobao and Tmall shops through the TOP router. See the module docstring."""

    info = ConnectorInfo(
        name="taobao",
        platform=PLATFORM,
        description="Taobao/Tmall (TOP): orders and buyers of the authorised shops",
        pulls=frozenset({"orders"}),
        settings=(
            Setting("app_key", "the app's key"),
            Setting("app_secret", "the app's secret", secret=True),
            Setting("session", "the shops' session keys, comma-separated", secret=True),
            Setting("base_url", "the TOP router", required=False, default="https://eco.taobao.com"),
            Setting(
                "sign_method", "md5 | hmac | hmac-sha256", required=False, default="hmac-sha256"
            ),
            Setting(
                "backfill_days", "how far back the first pull goes", required=False, default="90"
            ),
            Setting("window_minutes", "longest window asked for", required=False, default="1440"),
            Setting("page_size", "orders per page (1-100)", required=False, default="100"),
            Setting(
                "settle_seconds",
                "how old a change must be to be pulled",
                required=False,
                default="60",
            ),
            Setting(
                "overlap_seconds",
                "how much of the last window is read again",
                required=False,
                default="300",
            ),
            Setting("detail_workers", "parallel order-detail calls", required=False, default="4"),
            Setting("timeout_seconds", "HTTP timeout", required=False, default="30"),
        ),
    )
    sandbox = "connectors.taobao.sandbox:TaobaoSandbox"

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        s = self.settings
        self.sessions = [part.strip() for part in s["session"].split(",") if part.strip()]
        if not self.sessions:
            raise ConfigError("connector 'taobao': setting session holds no session key")
        self.backfill = timedelta(days=_int_setting(s, "backfill_days", low=1, high=90))
        self.window = timedelta(minutes=_int_setting(s, "window_minutes", low=1, high=1440))
        self.page_size = _int_setting(s, "page_size", low=1, high=100)
        self.settle = timedelta(seconds=_int_setting(s, "settle_seconds", low=0, high=3600))
        self.lag = max(self.settle, SECOND)  # how far behind now a window may end
        self.overlap = timedelta(seconds=_int_setting(s, "overlap_seconds", low=0, high=3600))
        self.workers = _int_setting(s, "detail_workers", low=1, high=16)
        try:
            self.client = TopClient(
                base_url=s["base_url"],
                app_key=s["app_key"],
                secret=s["app_secret"],
                sign_method=s["sign_method"],
                connector=self.info.name,
                timeout=float(s["timeout_seconds"]),
            )
        except ValueError as exc:
            raise ConfigError(f"connector 'taobao': {exc}") from None
        # A run is caught up when every shop is read up to when it began (less the settling
        # time); a run resumed from a killed one's cursor keeps this connector's start.
        self.run_floor = self._floor()
        self._shops: list[tuple[str, str]] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def _floor(self) -> datetime:
        """The last second a run that begins now must read: every change made before it began
        (less the settling time) carries this second or an earlier one."""
        return self.now().replace(microsecond=0) - self.settle

    # --- shops ---------------------------------------------------------------------------------

    def shops(self) -> list[tuple[str, str]]:
        """``(seller nick, session)`` of every configured session, in the settings' order."""
        if self._shops is None:
            found = []
            for session in self.sessions:
                user = self.client.call(
                    "taobao.user.seller.get", {"fields": "nick,user_id,type"}, session=session
                ).get("user")
                if not isinstance(user, dict) or not user.get("nick"):
                    raise PlatformProtocolError(
                        "user.seller.get without a nick", connector="taobao"
                    )
                found.append((str(user["nick"]), session))
            self._shops = found
        return self._shops

    # --- orders --------------------------------------------------------------------------------

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        if stream != "orders":
            raise ValueError(f"connector 'taobao' does not pull {stream!r}")
        shops = self.shops()
        state: dict[str, Any] = json.loads(json.dumps(cursor)) if cursor else {}
        high_water: dict[str, str] = dict(state.get("hw") or {})
        shop_no = int(state.get("shop") or 0)
        window: dict[str, Any] | None = state.get("window")
        if shop_no >= len(shops):
            shop_no, window = 0, None
        todo: list[str] = list(state.get("todo") or [])
        if not state or state.get("done"):  # a new run: read every shop up to now
            self.run_floor = self._floor()
            todo = [nick for nick, _ in shops]
            shop_no, window = 0, None
        records: list[ExternalOrder] = []
        for _ in range(MAX_STEPS_PER_FETCH):
            nick, session = shops[shop_no]
            if window is None:
                window = self._open_window(high_water.get(nick))
            page_no = int(window.get("page") or 1)
            trades, total = self._list(session, window, page_no)
            if window.get("page") is None and total > self.page_size:
                # Longer than one page: read it again, from its last page backwards.
                window["pages"] = math.ceil(total / self.page_size)
                window["page"] = window["pages"]
                continue
            records += self._orders(session, trades)
            if page_no > 1:
                window["page"] = page_no - 1
                return self._page(records, shop_no, high_water, window, todo, more=True)
            # The window is read whole: its end is the shop's new high water.
            high_water[nick] = window["end"]
            final = bool(window["final"])
            window = None
            if final:
                todo = [other for other in todo if other != nick]
                behind = self._behind(shops, high_water, todo)
                if behind is None:
                    return self._page(records, 0, high_water, None, [], more=False)
                shop_no = behind
            if len(records) >= self.page_size:
                break  # a page's worth: hand it over (small windows are gathered up to one)
        return self._page(records, shop_no, high_water, window, todo, more=True)

    def _behind(
        self, shops: Sequence[tuple[str, str]], high_water: Mapping[str, str], todo: Sequence[str]
    ) -> int | None:
        """The next shop to read: one this run has not read yet, else one not read up to when
        this connector started (a run resumed after a kill reads every shop up to when it
        started, not only those the killed run had left); None when the run is done."""
        for number, (nick, _) in enumerate(shops):
            if nick in todo:
                return number
        for number, (nick, _) in enumerate(shops):
            mark = high_water.get(nick)
            if mark is None or datetime.fromisoformat(mark) < self.run_floor:
                return number
        return None

    def _open_window(self, high_water: str | None) -> dict[str, Any]:
        span = min(self.window, MAX_WINDOW)
        while True:
            moment = self.now()
            now = moment.replace(microsecond=0)
            limit = now - self.lag  # the last second over (and settled): see the module doc
            start = (
                datetime.fromisoformat(high_water) - self.overlap
                if high_water
                else now - self.backfill
            )
            start = max(start, now - self.backfill)
            if limit >= self.run_floor or start + span < limit:
                break
            # The run's last second (with no settling time: the second it began in) is not
            # over yet; it is read once it is, so a change made in it is not missed.
            self.sleep((self.run_floor + self.lag - moment).total_seconds())
        end = min(limit, start + span)
        if end < start:
            end = start
        return {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "final": end >= limit,
            "page": None,
            "pages": None,
        }

    def _page(
        self,
        records: Sequence[ExternalOrder],
        shop_no: int,
        high_water: Mapping[str, str],
        window: Mapping[str, Any] | None,
        todo: Sequence[str],
        *,
        more: bool,
    ) -> Page:
        cursor = {
            "v": 1,
            "shop": shop_no,
            "hw": dict(high_water),
            "window": window,
            "todo": list(todo),
            "done": not more,
        }
        return Page(records=list(records), cursor=cursor, more=more)

    def _list(
        self, session: str, window: Mapping[str, Any], page_no: int
    ) -> tuple[list[dict[str, Any]], int]:
        start = datetime.fromisoformat(window["start"])
        end = datetime.fromisoformat(window["end"])
        assert end - start <= MAX_WINDOW  # never send what the platform refuses
        body = self._paced(
            "taobao.trades.sold.increment.get",
            {
                "fields": LIST_FIELDS,
                "start_modified": format_time(start),
                "end_modified": format_time(end),
                "page_no": str(page_no),
                "page_size": str(self.page_size),
                "use_has_next": "false",
            },
            session,
        )
        total = body.get("total_results", 0)
        if not isinstance(total, int):
            raise PlatformProtocolError("total_results is not a number", connector="taobao")
        return _listed(body.get("trades"), "trade"), total

    def _orders(self, session: str, trades: Sequence[dict[str, Any]]) -> list[ExternalOrder]:
        lacking = [t for t in trades if "oaid" not in t or "orders" not in t]
        details: dict[Any, dict[str, Any]] = {}
        if lacking:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="taobao-detail")

            def detail(trade: dict[str, Any]) -> dict[str, Any]:
                body = self._paced(
                    "taobao.trade.fullinfo.get",
                    {"fields": DETAIL_FIELDS, "tid": str(trade.get("tid"))},
                    session,
                )
                full = body.get("trade")
                if not isinstance(full, dict):
                    raise PlatformProtocolError("fullinfo.get without a trade", connector="taobao")
                return full

            for trade, full in zip(lacking, self._pool.map(detail, lacking), strict=True):
                details[trade.get("tid")] = full
        return [to_external_order({**t, **details.get(t.get("tid"), {})}) for t in trades]

    def _paced(self, method: str, params: Mapping[str, str], session: str) -> dict[str, Any]:
        """A call that waits out a short flow-control ban itself.

        A page takes a list call and one detail call per trade; were a ban to fail the whole
        page, the engine would retry all of them and, with a small per-app bucket, might never
        get through. So a ban the platform names (at most ``MAX_BAN_WAIT`` seconds) is waited
        here, a few times; a longer or unnamed one goes to the engine like any error."""
        for _ in range(MAX_BAN_WAITS):
            try:
                return self.client.call(method, params, session=session)
            except PlatformRateLimited as error:
                if error.retry_after is None or error.retry_after > MAX_BAN_WAIT:
                    raise
                time.sleep(error.retry_after + random.uniform(0, 0.25))  # noqa: S311 (jitter)
        return self.client.call(method, params, session=session)

    # --- decryption ----------------------------------------------------------------------------

    def decrypt(self, ciphertexts: Sequence[str], *, scene: str) -> Mapping[str, str]:
        """Decrypt OAID handles through ``taobao.top.oaid.decrypt`` for ``scene`` (a vault scene
        name or the platform's code). A stale OAID (``matched=false``) and a virtual number
        (``privacy_protection``) are left out: neither is the person's value."""
        code = SCENES.get(scene, scene)
        if not code.isdigit():
            raise ValueError(f"unknown scene {scene!r}: one of {', '.join(SCENES)}")
        parsed = {handle: parse_handle(handle) for handle in ciphertexts}
        by_trade: dict[tuple[str, str], dict[str, Any]] = {}
        shops = self.shops()
        pairs = sorted({(tid, oaid) for _, tid, oaid in parsed.values()})
        for offset in range(0, len(pairs), MAX_DECRYPT_BATCH):
            chunk = pairs[offset : offset + MAX_DECRYPT_BATCH]
            query = json.dumps(
                [{"oaid": oaid, "tid": tid, "scene": code} for tid, oaid in chunk],
                separators=(",", ":"),
            )
            # An OAID belongs to one shop; ask each shop until every pair is matched.
            for _, session in shops:
                wanted = [p for p in chunk if p not in by_trade]
                if not wanted:
                    break
                body = self.client.call(
                    "taobao.top.oaid.decrypt", {"query_list": query}, session=session
                )
                for receiver in _listed(body.get("receiver_list"), "receiver"):
                    if receiver.get("matched") is True:
                        by_trade[(str(receiver.get("tid")), str(receiver.get("oaid")))] = receiver
        clear: dict[str, str] = {}
        for handle, (part, tid, oaid) in parsed.items():
            found = by_trade.get((tid, oaid))
            value = _receiver_value(found, part) if found is not None else None
            if value:
                clear[handle] = value
        return clear

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()


def _listed(wrapper: Any, name: str) -> list[dict[str, Any]]:
    """A TOP list: ``{"trade": [...]}`` one level deep, or a bare list; absent when empty."""
    if wrapper is None:
        return []
    items = wrapper.get(name) if isinstance(wrapper, dict) else wrapper
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise PlatformProtocolError(f"a malformed {name} list", connector="taobao")
    return items


def _receiver_value(receiver: Mapping[str, Any], part: str) -> str | None:
    if part == "name":
        return str(receiver.get("name") or "") or None
    if part == "mobile":
        if receiver.get("privacy_protection") is True:
            return None  # a virtual number that expires, not the buyer's phone
        return str(receiver.get("mobile") or receiver.get("phone") or "") or None
    detail = str(receiver.get("address_detail") or "")
    region = "".join(str(receiver.get(k) or "") for k in ("state", "city", "district", "town"))
    if not detail:
        return None
    state = str(receiver.get("state") or "")
    return detail if state and detail.startswith(state) else region + detail


def _time(trade: Mapping[str, Any], name: str) -> datetime | None:
    text = trade.get(name)
    if not text:
        return None
    try:
        return parse_time(str(text))
    except ValueError:
        raise PlatformProtocolError(f"trade time {name} is malformed", connector="taobao") from None


def to_external_order(trade: Mapping[str, Any]) -> ExternalOrder:
    """One TOP trade (list entry merged with its detail) as the vault's order and buyer."""
    tid = str(trade.get("tid") or "")
    open_uid = str(trade.get("buyer_open_uid") or "")
    modified = _time(trade, "modified")
    created = _time(trade, "created")
    if not tid.isdigit() or not open_uid or modified is None or created is None:
        raise PlatformProtocolError(
            "a trade without tid, buyer_open_uid, created or modified", connector="taobao"
        )
    try:
        lines = _listed(trade.get("orders"), "order")
        items = tuple(
            OrderItem(
                product_id=str(line.get("num_iid") or line.get("oid") or ""),
                product_name=str(line.get("title") or ""),
                quantity=int(line.get("num") or 1),
                unit_price=yuan_to_fen(line.get("price")),
            )
            for line in lines
        )
        total = yuan_to_fen(trade.get("payment"))
    except ValueError:
        raise PlatformProtocolError(
            f"trade {tid}: a malformed amount", connector="taobao"
        ) from None
    raw_status = str(trade.get("status") or "")
    refunded_lines = [line for line in lines if line.get("refund_status") in REFUNDED]
    paid_at = _time(trade, "pay_time")
    status = STATUSES.get(raw_status, raw_status.lower()[:32] or "unknown")
    if raw_status == "TRADE_CLOSED" and paid_at is None and not refunded_lines:
        status = "cancelled"
    elif status == "completed" and refunded_lines:
        status = "partially_refunded"
    refunded_at = None
    if status in ("refunded", "partially_refunded"):
        refunded_at = _time(trade, "end_time") or modified
    fields: dict[str, str] = {}
    for name, key in (
        ("name", "receiver_name"),
        ("phone", "receiver_mobile"),
        ("nickname", "buyer_nick"),
    ):
        if trade.get(key):
            fields[name] = str(trade[key])
    identities: list[tuple[str, str]] = []
    handles: dict[str, str] = {}
    oaid = str(trade.get("oaid") or "")
    if oaid:
        identities.append((OAID_PLATFORM, oaid))
        handles = {field: oaid_handle(part, tid, oaid) for field, part in HANDLE_PARTS.items()}
    buyer = ExternalCustomer(
        external_id=open_uid,
        observed_at=modified,
        fields=fields,
        identities=identities,
        platform_ciphertexts=handles,
    )
    order = Order(
        platform=PLATFORM,
        shop=str(trade.get("seller_nick") or ""),
        order_id=tid,
        status=status,
        currency="CNY",
        total_amount=total,
        created_at=created,
        updated_at=modified,
        paid_at=paid_at,
        refunded_at=refunded_at,
        items=items,
    )
    return ExternalOrder(buyer=buyer, order=order)
