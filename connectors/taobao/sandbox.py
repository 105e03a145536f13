"""A TOP emulator: the Taobao/Tmall router as ``shared/protocols/taobao.md`` §9 lists it.

What it implements, checklist item by item:

* query and body merged; every validation error of §5 (21/22/23/24/25/26/27/28/29/30/31/32/33/
  34/40/41) answered with HTTP 200 and the ``error_response`` envelope; JSON or XML (the
  platform's default when ``format`` is absent).
* timestamps as China-time strings or epoch milliseconds; a skew over 600 s is code 31.
* md5, hmac and hmac-sha256 verification (the signing of :mod:`connectors.taobao.client`).
* envelopes as §4: ``<method>_response``, ``trades.trade[]``, ``request_id``.
* ``taobao.trades.sold.increment.get``: the 1-day span, page_size 1-100, descending
  ``modified``, ``use_has_next``, the 3-month horizon; :attr:`TaobaoSandbox.mutate_between_pages`
  touches an order of the window after each page served, as live data does. Like the platform,
  the list holds part of a trade only (no receiver fields, no OAID): details come from
* ``taobao.trade.fullinfo.get``, which honours ``fields`` and the OAID rule (the OAID only when
  ``receiver_name, receiver_address, created, receiver_mobile, receiver_phone`` are all asked
  for), with masked receiver fields.
* ``taobao.top.oaid.decrypt``: at most 20 queries, the scene whitelist (the app is approved for
  the scenes in :data:`APPROVED_SCENES`), ``matched=false`` for a stale OAID, virtual numbers
  for buyers under privacy protection; :meth:`TaobaoSandbox.decrypt_calls` counts by scene.
* ``taobao.crm.members.get`` / ``taobao.crm.members.increment.get`` with their paging limits;
  ``taobao.trades.sold.get`` (by creation time), ``taobao.user.seller.get``, ``taobao.time.get``.
* flow control: a per-app token bucket (:meth:`TaobaoSandbox.throttle`) and the kit's
  ``rate_limit`` fault answer exactly the code-7 shape; :meth:`TaobaoSandbox.inject_isp_error`
  serves ``isp.top-remote-connection-timeout``.
* session keys per shop with an expiry (``session_ttl``); the kit's ``token_expired`` fault and
  :meth:`TaobaoSandbox.expire_tokens` expire them (code 27, ``session-expired``).

Seeded data: two shops (a Taobao C-shop and a Tmall store) under one app, a buyer pool drawn
from :func:`vault.synthetic.generate_customers` with the sandbox's seed (so buyer ``i`` has the
name and phone of person ``i`` of that stream: a Pinduoduo sandbox drawing from the same stream
with the same seed has the same people), every fourth buyer buying in both shops, and
``records`` orders over the last 89 days, refunds (full and partial) and closed trades
included. :meth:`TaobaoSandbox.advance` makes status changes, refunds and new orders happen
now.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from connectors.taobao.client import (
    SIGN_METHODS,
    TIME_FORMAT,
    format_time,
    parse_time,
    response_key,
    sign,
)
from vault.sandbox import Request, Response, Sandbox, json_response
from vault.synthetic import SyntheticCustomer, generate_customers

MAX_SKEW = timedelta(seconds=600)
MAX_SPAN = timedelta(days=1)
HORIZON = timedelta(days=90)
HISTORY_DAYS = 89
DEFAULT_RECORDS = 2000
OAID_FIELDS = frozenset(
    {"receiver_name", "receiver_address", "created", "receiver_mobile", "receiver_phone"}
)
SCENES = frozenset({"1001", "1002", "1003", "1004", "1005", "1006", "1007", "2001", "2002"})
APPROVED_SCENES = frozenset({"1001", "2001", "2002"})
MAX_DECRYPT_QUERIES = 20
LIST_FIELDS = (
    "tid",
    "status",
    "type",
    "created",
    "modified",
    "pay_time",
    "consign_time",
    "end_time",
    "payment",
    "total_fee",
    "post_fee",
    "buyer_open_uid",
    "buyer_nick",
    "seller_nick",
    "orders",
)
"""What the increment list gives of a trade: part of it, as the platform's own doc says."""
DETAIL_FIELDS = (
    *LIST_FIELDS,
    "receiver_name",
    "receiver_mobile",
    "receiver_phone",
    "receiver_state",
    "receiver_city",
    "receiver_district",
    "receiver_town",
    "receiver_address",
    "receiver_zip",
    "oaid",
)
ORDER_FIELDS = (
    "oid",
    "num_iid",
    "title",
    "price",
    "num",
    "total_fee",
    "payment",
    "status",
    "refund_status",
)
PRODUCTS = (
    (610001, "纯棉四件套 1.8m", 29900),
    (610002, "乳胶枕 成人护颈", 12900),
    (610003, "羽绒被 冬季加厚", 45900),
    (610004, "竹纤维毛巾 3条装", 3990),
    (610005, "记忆棉床垫 10cm", 89900),
    (610006, "蚕丝被 夏凉被", 69900),
    (610007, "香薰蜡烛 礼盒", 8800),
    (610008, "收纳箱 大号 3个", 5990),
    (610009, "陶瓷马克杯", 2990),
    (610010, "空气加湿器 静音", 15900),
    (610011, "羊毛地毯 客厅", 129900),
    (610012, "儿童防踢被", 9900),
)
METHODS = (
    "taobao.trades.sold.increment.get",
    "taobao.trades.sold.get",
    "taobao.trade.fullinfo.get",
    "taobao.top.oaid.decrypt",
    "taobao.crm.members.get",
    "taobao.crm.members.increment.get",
    "taobao.user.seller.get",
    "taobao.time.get",
)
NO_SESSION = frozenset({"taobao.time.get"})
OPEN_STATUSES = ("WAIT_BUYER_PAY", "WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS")


def _now() -> datetime:
    return datetime.now(UTC)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


@dataclass(slots=True)
class Shop:
    index: int
    nick: str
    user_id: int
    kind: str  # C: Taobao, B: Tmall
    session: str
    expires_at: datetime


@dataclass(slots=True)
class Buyer:
    index: int
    person: SyntheticCustomer
    open_uid: str
    nick: str
    shops: tuple[int, ...]
    privacy_protection: bool  # decrypt hands out a virtual number


@dataclass(slots=True)
class Line:
    oid: int
    num_iid: int
    title: str
    price: int  # fen
    num: int
    refund_status: str = "NO_REFUND"


@dataclass(slots=True)
class Trade:
    tid: int
    shop: int
    buyer: int
    created: datetime
    modified: datetime
    status: str
    lines: list[Line]
    post_fee: int
    pay_time: datetime | None = None
    consign_time: datetime | None = None
    end_time: datetime | None = None
    receiver_version: int = 0

    @property
    def total_fee(self) -> int:
        return sum(line.price * line.num for line in self.lines)


class TopError(Exception):
    """An ``error_response`` the emulator answers with."""

    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg


def _missing(name: str) -> TopError:
    return TopError(40, "Missing Required Arguments", f"isv.missing-parameter:{name}", name)


def _invalid(name: str, why: str) -> TopError:
    return TopError(41, "Invalid Arguments", f"isv.invalid-parameter:{name}", why)


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: float
    ban_seconds: int
    tokens: float
    updated: float
    banned_until: float = 0.0


@dataclass(slots=True)
class _IspFault:
    after: int
    times: int
    sub_code: str
    method: str | None = None


@dataclass(slots=True)
class _Index:
    """Trades of one shop sorted by a time key, for window queries without a scan."""

    keys: list[tuple[float, int]] = field(default_factory=list)

    def add(self, moment: datetime, tid: int) -> None:
        bisect.insort(self.keys, (moment.timestamp(), tid))

    def remove(self, moment: datetime, tid: int) -> None:
        key = (moment.timestamp(), tid)
        position = bisect.bisect_left(self.keys, key)
        if position < len(self.keys) and self.keys[position] == key:
            del self.keys[position]

    def between(self, start: datetime, end: datetime) -> list[int]:
        """Tids with ``start <= key <= end``, newest first."""
        low = bisect.bisect_left(self.keys, (start.timestamp(), -1))
        high = bisect.bisect_right(self.keys, (end.timestamp(), math.inf))
        return [tid for _, tid in reversed(self.keys[low:high])]


class TaobaoSandbox(Sandbox):
    """The TOP router of one app with two authorised shops. See the module docstring."""

    name = "taobao"

    def __init__(
        self,
        *,
        seed: int = 0,
        records: int | None = None,
        buyers: int | None = None,
        session_ttl: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        super().__init__(seed=seed, records=records)
        self.clock = clock
        self._rng = random.Random(f"taobao-sandbox:{seed}")
        rng = self._rng
        self.app_key = str(20_000_000 + seed % 10_000_000)
        self.secret = _token(rng, 32)
        self.started = clock().replace(microsecond=0)
        self.shops = [
            Shop(0, "澄观家居旗舰店", 2_200_000_001, "B", "", self.started),
            Shop(1, "小满家纺", 2_200_000_002, "C", "", self.started),
        ]
        for shop in self.shops:
            shop.session = "6100" + _token(rng, 52)
            shop.expires_at = self.started + session_ttl
        count = DEFAULT_RECORDS if records is None else records
        pool = buyers if buyers is not None else max(8, count // 3)
        self.buyers = [
            self._buyer(i, person) for i, person in enumerate(generate_customers(pool, seed=seed))
        ]
        self.trades: dict[int, Trade] = {}
        self._by_modified = [_Index() for _ in self.shops]
        self._by_created = [_Index() for _ in self.shops]
        self._next_tid = 1_000_000_000_000_000 + (seed % 1000) * 10**11
        self._next_oid = self._next_tid * 10
        self._bucket: _Bucket | None = None
        self._isp_faults: list[_IspFault] = []
        self.mutate_between_pages = False
        self.bans_served = 0  # code-7 answers of the token bucket
        self.decrypt_calls: Counter[str] = Counter()  # scene -> oaids decrypted
        self.call_counts: Counter[str] = Counter()  # method -> calls served (signed and valid)
        self._request_seq = 0
        self._seq_lock = threading.Lock()
        history_end = self.started - timedelta(minutes=30)
        for _ in range(count):
            created = history_end - timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))
            self._add(self._history_trade(created, history_end))

    # --- seeded data ---------------------------------------------------------------------------

    def _buyer(self, index: int, person: SyntheticCustomer) -> Buyer:
        digest = hmac.new(self.secret.encode(), f"open-uid:{index}".encode(), hashlib.sha256)
        open_uid = "AAH" + digest.hexdigest()[:21].upper()
        shops = (0, 1) if index % 4 == 0 else (index % 2,)
        nick = f"tb{int(digest.hexdigest()[21:29], 16) % 10**8:08d}"
        return Buyer(index, person, open_uid, nick, shops, privacy_protection=index % 7 == 3)

    def _lines(self, rng: random.Random) -> list[Line]:
        lines = []
        for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
            num_iid, title, price = rng.choice(PRODUCTS)
            self._next_oid += 1
            lines.append(Line(self._next_oid, num_iid, title, price, 1 + (rng.random() < 0.2)))
        return lines

    def _new_trade(self, rng: random.Random, created: datetime) -> Trade:
        buyer = self.buyers[min(int(rng.paretovariate(1.2)) - 1, len(self.buyers) - 1)]
        buyer = (
            self.buyers[(buyer.index * 7919 + rng.randrange(len(self.buyers))) % len(self.buyers)]
            if rng.random() < 0.6
            else buyer
        )
        self._next_tid += 1
        return Trade(
            tid=self._next_tid,
            shop=rng.choice(buyer.shops),
            buyer=buyer.index,
            created=created,
            modified=created,
            status="WAIT_BUYER_PAY",
            lines=self._lines(rng),
            post_fee=rng.choice((0, 0, 0, 600, 1000)),
        )

    def _history_trade(self, created: datetime, end: datetime) -> Trade:
        rng = self._rng
        trade = self._new_trade(rng, created)

        def later(base: datetime, hours: float) -> datetime:
            return min(end, base + timedelta(seconds=rng.randrange(60, int(hours * 3600) + 61)))

        draw = rng.random()
        if draw < 0.05:
            return trade
        if draw < 0.08:
            trade.status = "TRADE_CLOSED_BY_TAOBAO"
            trade.end_time = trade.modified = later(created, 24)
            return trade
        trade.pay_time = trade.modified = later(created, 0.5)
        trade.status = "WAIT_SELLER_SEND_GOODS"
        if draw < 0.15:
            return trade
        trade.consign_time = trade.modified = later(trade.pay_time, 48)
        trade.status = "WAIT_BUYER_CONFIRM_GOODS"
        if draw < 0.25:
            return trade
        trade.end_time = trade.modified = later(trade.consign_time, 240)
        if draw < 0.30:
            trade.status = "TRADE_CLOSED"
            for line in trade.lines:
                line.refund_status = "SUCCESS"
        else:
            trade.status = "TRADE_FINISHED"
            if draw < 0.33:
                trade.lines[0].refund_status = "SUCCESS"
        return trade

    def _add(self, trade: Trade) -> None:
        self.trades[trade.tid] = trade
        self._by_modified[trade.shop].add(trade.modified, trade.tid)
        self._by_created[trade.shop].add(trade.created, trade.tid)

    def _touch(self, trade: Trade, moment: datetime) -> None:
        """``trade`` changed at ``moment``. Like the platform, ``modified`` keeps whole seconds
        (two changes in one second carry the same one) and never lies in the future; a
        window's inclusive end second thus holds the changes made later in that second."""
        self._by_modified[trade.shop].remove(trade.modified, trade.tid)
        trade.modified = max(moment.replace(microsecond=0), trade.modified)
        self._by_modified[trade.shop].add(trade.modified, trade.tid)

    def oaid_of(self, trade: Trade) -> str:
        digest = hmac.new(
            self.secret.encode(),
            f"oaid:{trade.buyer}:{trade.shop}:{trade.tid if trade.receiver_version else 0}:"
            f"{trade.receiver_version}".encode(),
            hashlib.sha256,
        )
        return "1" + digest.hexdigest()[:47]

    # --- what tests drive ------------------------------------------------------------------------

    def advance(
        self, *, changes: int = 0, refunds: int = 0, new_orders: int = 0, receiver_changes: int = 0
    ) -> list[int]:
        """Make things happen now: ``changes`` open trades move on one status, ``refunds``
        finished or shipped trades are refunded in full, ``new_orders`` trades are placed,
        ``receiver_changes`` unshipped trades get a new receiver (their old OAID goes stale).
        Returns the tids touched, in order."""
        with self.lock:
            now = self.clock().replace(microsecond=0)
            rng = self._rng
            touched: list[int] = []
            ordered = sorted(self.trades)
            open_trades = [t for t in ordered if self.trades[t].status in OPEN_STATUSES]
            for tid in rng.sample(open_trades, min(changes, len(open_trades))):
                trade = self.trades[tid]
                if trade.status == "WAIT_BUYER_PAY":
                    trade.status, trade.pay_time = "WAIT_SELLER_SEND_GOODS", now
                elif trade.status == "WAIT_SELLER_SEND_GOODS":
                    trade.status, trade.consign_time = "WAIT_BUYER_CONFIRM_GOODS", now
                else:
                    trade.status, trade.end_time = "TRADE_FINISHED", now
                self._touch(trade, now)
                touched.append(tid)
            refundable = [
                t
                for t in ordered
                if self.trades[t].status in ("TRADE_FINISHED", "WAIT_BUYER_CONFIRM_GOODS")
                and t not in touched
            ]
            for tid in rng.sample(refundable, min(refunds, len(refundable))):
                trade = self.trades[tid]
                trade.status, trade.end_time = "TRADE_CLOSED", now
                for line in trade.lines:
                    line.refund_status = "SUCCESS"
                self._touch(trade, now)
                touched.append(tid)
            unshipped = [
                t
                for t in ordered
                if self.trades[t].status == "WAIT_SELLER_SEND_GOODS" and t not in touched
            ]
            for tid in rng.sample(unshipped, min(receiver_changes, len(unshipped))):
                trade = self.trades[tid]
                trade.receiver_version += 1
                self._touch(trade, now)
                touched.append(tid)
            for _ in range(new_orders):
                trade = self._new_trade(rng, now)
                trade.status, trade.pay_time = "WAIT_SELLER_SEND_GOODS", now
                self._add(trade)
                touched.append(trade.tid)
            return touched

    def throttle(self, *, rate: float, burst: int, ban_seconds: int = 1) -> None:
        """Turn on the per-app token bucket: ``rate`` calls/s, ``burst`` at once; an empty
        bucket bans the app for ``ban_seconds`` (code 7, "This ban will last for N more
        seconds")."""
        now = self.clock().timestamp()
        with self.lock:
            self._bucket = _Bucket(rate, float(burst), ban_seconds, float(burst), now)

    def unthrottle(self) -> None:
        with self.lock:
            self._bucket = None

    def inject_isp_error(
        self,
        *,
        times: int = 1,
        after: int = 0,
        sub_code: str = "isp.top-remote-connection-timeout",
        method: str | None = None,
    ) -> None:
        """Answer ``times`` valid calls (of ``method``, or any), after ``after`` of them, with
        code 15 and an ``isp.*`` sub_code: the platform's own backend failing."""
        with self.lock:
            self._isp_faults.append(_IspFault(after, times, sub_code, method))

    def expire_tokens(self) -> None:
        with self.lock:
            for shop in self.shops:
                shop.expires_at = self.clock() - timedelta(seconds=1)

    def credentials(self) -> dict[str, str]:
        return {
            "app_key": self.app_key,
            "app_secret": self.secret,
            "session": ",".join(shop.session for shop in self.shops),
            "sign_method": "hmac-sha256",
        }

    def announce(self) -> dict[str, Any]:
        return {
            **super().announce(),
            "router": self.url + "/router/rest",
            "shops": [{"nick": s.nick, "type": s.kind} for s in self.shops],
            "orders": len(self.trades),
            "buyers": len(self.buyers),
        }

    def render_rate_limit(self, retry_after: float) -> Response:
        seconds = max(1, math.ceil(retry_after))
        return self._error(
            TopError(
                7,
                "App Call Limited",
                "accesscontrol.limited-by-app-api-access-count",
                f"This ban will last for {seconds} more seconds",
            ),
            "json",
        )

    # --- the router ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        params: dict[str, str] = {k: v[0] for k, v in request.query.items() if v}
        if request.method == "POST" and request.body:
            content_type = request.headers.get("content-type", "")
            if "multipart/form-data" in content_type:
                params.update(_multipart(request.body, content_type))
            else:
                params.update(request.form())
        fmt = params.get("format") or "xml"
        try:
            if request.path.rstrip("/") not in ("/router/rest", "/router", ""):
                raise TopError(22, "Invalid Method", "isv.invalid-path", request.path)
            if request.method not in ("GET", "POST"):
                raise TopError(9, "Http Action Not Allowed")
            method = self._check_system(params)
            with self.lock:
                shop = self._check_session(method, params)
                self._check_flow(method)
                self.call_counts[method] += 1
                body = self._dispatch(method, params, shop)
            return self._success(method, body, fmt)
        except TopError as error:
            return self._error(error, fmt if fmt in ("json", "xml") else "json")

    def _check_system(self, params: Mapping[str, str]) -> str:
        method = params.get("method")
        if not method:
            raise TopError(21, "Missing Method")
        if method not in METHODS:
            raise TopError(22, "Invalid Method", "isv.method-not-exist", method)
        if params.get("format", "xml") not in ("json", "xml"):
            raise TopError(23, "Invalid Format")
        app_key = params.get("app_key")
        if not app_key:
            raise TopError(28, "Missing App Key")
        if app_key != self.app_key:
            raise TopError(29, "Invalid App Key", "isv.appkey-not-exists")
        stamp = params.get("timestamp")
        if not stamp:
            raise TopError(30, "Missing Timestamp")
        try:
            moment = (
                datetime.fromtimestamp(int(stamp) / 1000, UTC)
                if stamp.isdigit()
                else parse_time(stamp)
            )
        except (ValueError, OverflowError):
            raise TopError(31, "Invalid Timestamp", "isv.invalid-timestamp", stamp) from None
        if abs(moment - self.clock()) > MAX_SKEW:
            raise TopError(
                31, "Invalid Timestamp", "isv.timestamp-out-of-range", "skew over 10 min"
            )
        version = params.get("v")
        if not version:
            raise TopError(32, "Missing Version")
        if version != "2.0":
            raise (
                TopError(34, "Unsupported Version")
                if version == "1.0"
                else TopError(33, "Invalid Version")
            )
        sign_method = params.get("sign_method", "md5")
        if sign_method not in SIGN_METHODS:
            raise _invalid("sign_method", f"one of {', '.join(SIGN_METHODS)}")
        given = params.get("sign")
        if not given:
            raise TopError(24, "Missing Signature")
        if not hmac.compare_digest(given.upper(), sign(params, self.secret, sign_method)):
            raise TopError(25, "Invalid Signature")
        return method

    def _check_session(self, method: str, params: Mapping[str, str]) -> Shop | None:
        if method in NO_SESSION:
            return None
        session = params.get("session")
        if not session:
            raise TopError(26, "Missing Session", "session-is-blank", "session-is-blank")
        for shop in self.shops:
            if hmac.compare_digest(shop.session, session):
                if shop.expires_at <= self.clock():
                    raise TopError(27, "Invalid session", "session-expired", "SessionKey expired")
                return shop
        raise TopError(27, "Invalid session", "invalid-sessionkey", "SessionKey is invalid")

    def _check_flow(self, method: str) -> None:
        bucket = self._bucket
        if bucket is not None:
            now = self.clock().timestamp()
            if now < bucket.banned_until:
                self.bans_served += 1
                raise _ban(bucket.banned_until - now)
            bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.updated) * bucket.rate)
            bucket.updated = now
            if bucket.tokens < 1:
                self.bans_served += 1
                bucket.banned_until = now + bucket.ban_seconds
                raise _ban(bucket.ban_seconds)
            bucket.tokens -= 1
        for fault in self._isp_faults:
            if fault.method is not None and fault.method != method:
                continue
            if fault.after > 0:
                fault.after -= 1
                return
            fault.times -= 1
            if fault.times <= 0:
                self._isp_faults.remove(fault)
            raise TopError(15, "Remote service error", fault.sub_code, "the backend timed out")

    def _dispatch(
        self, method: str, params: Mapping[str, str], shop: Shop | None
    ) -> dict[str, Any]:
        if method == "taobao.time.get":
            return {"time": format_time(self.clock())}
        assert shop is not None
        if method == "taobao.user.seller.get":
            _require(params, "fields")
            return {"user": {"nick": shop.nick, "user_id": shop.user_id, "type": shop.kind}}
        if method == "taobao.trades.sold.increment.get":
            return self._trade_list(params, shop, "modified")
        if method == "taobao.trades.sold.get":
            return self._trade_list(params, shop, "created")
        if method == "taobao.trade.fullinfo.get":
            return self._fullinfo(params, shop)
        if method == "taobao.top.oaid.decrypt":
            return self._decrypt(params, shop)
        return self._members(params, shop, increment=method.endswith("increment.get"))

    # --- trades ----------------------------------------------------------------------------------

    def _trade_list(self, params: Mapping[str, str], shop: Shop, by: str) -> dict[str, Any]:
        fields = _fields(_require(params, "fields"))
        start_name, end_name = (
            ("start_modified", "end_modified")
            if by == "modified"
            else ("start_created", "end_created")
        )
        start = _time_arg(params, start_name, required=by == "modified")
        end = _time_arg(params, end_name, required=by == "modified")
        now = self.clock()
        start = start or now - HORIZON
        end = end or now
        if end < start:
            raise _invalid(end_name, f"{end_name} is before {start_name}")
        if by == "modified" and end - start > MAX_SPAN:
            raise _invalid(start_name, f"{end_name} - {start_name} must not exceed 1 day")
        page_no = _int_arg(params, "page_no", 1, low=1, high=10**6)
        page_size = _int_arg(params, "page_size", 40, low=1, high=100)
        use_has_next = params.get("use_has_next", "false") == "true"
        index = self._by_modified[shop.index] if by == "modified" else self._by_created[shop.index]
        horizon = now - HORIZON
        found = [tid for tid in index.between(start, end) if self.trades[tid].created >= horizon]
        if status := params.get("status"):
            found = [tid for tid in found if self.trades[tid].status == status]
        if nick := params.get("buyer_open_uid"):
            found = [tid for tid in found if self.buyers[self.trades[tid].buyer].open_uid == nick]
        page = found[(page_no - 1) * page_size : page_no * page_size]
        body: dict[str, Any] = {}
        if use_has_next:
            body["has_next"] = page_no * page_size < len(found)
        else:
            body["total_results"] = len(found)
        if page:
            listed = fields & set(LIST_FIELDS) | {f for f in fields if f.startswith("orders.")}
            body["trades"] = {"trade": [self._trade_view(self.trades[t], listed) for t in page]}
        if self.mutate_between_pages and found:
            self._touch(self.trades[found[len(found) // 2]], now)
        return body

    def _fullinfo(self, params: Mapping[str, str], shop: Shop) -> dict[str, Any]:
        fields = _fields(_require(params, "fields"))
        tid_text = _require(params, "tid")
        if not tid_text.isdigit():
            raise _invalid("tid", "tid is a number")
        trade = self.trades.get(int(tid_text))
        if trade is None or trade.shop != shop.index:
            raise TopError(15, "Remote service error", "isv.trade-not-exist", "no such trade")
        wanted = fields & set(DETAIL_FIELDS) | {f for f in fields if f.startswith("orders.")}
        if not OAID_FIELDS.issubset(fields):
            wanted.discard("oaid")
        return {"trade": self._trade_view(trade, wanted)}

    def _trade_view(self, trade: Trade, fields: set[str]) -> dict[str, Any]:
        buyer = self.buyers[trade.buyer]
        person = buyer.person
        payment = trade.total_fee + trade.post_fee
        values: dict[str, Any] = {
            "tid": trade.tid,
            "status": trade.status,
            "type": "fixed",
            "created": format_time(trade.created),
            "modified": format_time(trade.modified),
            "pay_time": format_time(trade.pay_time) if trade.pay_time else None,
            "consign_time": format_time(trade.consign_time) if trade.consign_time else None,
            "end_time": format_time(trade.end_time) if trade.end_time else None,
            "payment": _yuan(payment),
            "total_fee": _yuan(trade.total_fee),
            "post_fee": _yuan(trade.post_fee),
            "buyer_open_uid": buyer.open_uid,
            "buyer_nick": buyer.nick[0] + "**" + buyer.nick[-1],
            "seller_nick": self.shops[trade.shop].nick,
        }
        if fields & {"receiver_name", "receiver_mobile", "receiver_address", "oaid"}:
            values.update(
                receiver_name=person.name[0] + "*" * (len(person.name) - 1),
                receiver_mobile=person.phone[:3] + "****" + person.phone[-4:],
                receiver_phone="",
                receiver_state=person.province,
                receiver_city=person.city,
                receiver_district="",
                receiver_town="",
                receiver_address="*" * 8,
                receiver_zip="000000",
                oaid=self.oaid_of(trade),
            )
        view = {
            name: values[name] for name in fields if name in values and values[name] is not None
        }
        order_fields = {f.removeprefix("orders.") for f in fields if f.startswith("orders")}
        if order_fields:
            keep = set(ORDER_FIELDS) if "orders" in order_fields else order_fields
            view["orders"] = {
                "order": [
                    {k: v for k, v in self._line_view(trade, line).items() if k in keep}
                    for line in trade.lines
                ]
            }
        return view

    def _line_view(self, trade: Trade, line: Line) -> dict[str, Any]:
        return {
            "oid": line.oid,
            "num_iid": line.num_iid,
            "title": line.title,
            "price": _yuan(line.price),
            "num": line.num,
            "total_fee": _yuan(line.price * line.num),
            "payment": _yuan(line.price * line.num),
            "status": "TRADE_CLOSED" if line.refund_status == "SUCCESS" else trade.status,
            "refund_status": line.refund_status,
        }

    # --- decryption ------------------------------------------------------------------------------

    def _decrypt(self, params: Mapping[str, str], shop: Shop) -> dict[str, Any]:
        raw = _require(params, "query_list")
        try:
            queries = json.loads(raw)
        except ValueError:
            raise _invalid("query_list", "query_list is a JSON array") from None
        if not isinstance(queries, list) or not queries:
            raise _invalid("query_list", "query_list is a non-empty JSON array")
        if len(queries) > MAX_DECRYPT_QUERIES:
            raise _invalid("query_list", f"at most {MAX_DECRYPT_QUERIES} queries")
        answers = []
        for query in queries:
            if not isinstance(query, dict) or not {"oaid", "tid", "scene"} <= set(query):
                raise _invalid("query_list", "each query has oaid, tid and scene")
            scene = str(query["scene"])
            if scene not in SCENES:
                raise _invalid("scene", f"unknown scene {scene}")
            if scene not in APPROVED_SCENES:
                raise TopError(
                    11, "Insufficient ISV Permissions", "isv.scene-not-authorized", scene
                )
            trade = self.trades.get(int(query["tid"])) if str(query["tid"]).isdigit() else None
            if trade is None or trade.shop != shop.index or self.oaid_of(trade) != query["oaid"]:
                answers.append({"oaid": query["oaid"], "tid": str(query["tid"]), "matched": False})
                continue
            self.decrypt_calls[scene] += 1
            buyer = self.buyers[trade.buyer]
            person = buyer.person
            mobile = person.phone
            if buyer.privacy_protection:
                mobile = f"1887777{person.phone[-4:]}-{100 + trade.tid % 900}"
            answers.append(
                {
                    "name": person.name,
                    "mobile": mobile,
                    "phone": "",
                    "state": person.province,
                    "city": person.city,
                    "district": "",
                    "town": "",
                    "address_detail": person.address,
                    "oaid": query["oaid"],
                    "tid": str(trade.tid),
                    "matched": True,
                    "privacy_protection": buyer.privacy_protection,
                    "secret_no_expire_time": (
                        format_time(self.clock() + timedelta(days=30))
                        if buyer.privacy_protection
                        else None
                    ),
                }
            )
        return {"receiver_list": [{k: v for k, v in a.items() if v is not None} for a in answers]}

    # --- members ---------------------------------------------------------------------------------

    def _members(self, params: Mapping[str, str], shop: Shop, *, increment: bool) -> dict[str, Any]:
        if "current_page" not in params:
            raise _missing("current_page")
        page = _int_arg(params, "current_page", 1, low=1, high=1000)
        size = _int_arg(params, "page_size", 100, low=1, high=100)
        start = _time_arg(params, "start_modify", required=increment)
        end = _time_arg(params, "end_modify", required=False) or self.clock()
        per_buyer: dict[int, list[Trade]] = {}
        for trade in self.trades.values():
            if trade.shop == shop.index and trade.pay_time is not None:
                per_buyer.setdefault(trade.buyer, []).append(trade)
        members = []
        for index in sorted(per_buyer):
            trades = per_buyer[index]
            last = max(t.modified for t in trades)
            if start is not None and not start <= last <= end:
                continue
            buyer = self.buyers[index]
            amount = sum(t.total_fee + t.post_fee for t in trades)
            members.append(
                {
                    "buyer_nick": buyer.nick[0] + "**" + buyer.nick[-1],
                    "ouid": buyer.open_uid,
                    "grade": min(4, len(trades) // 2),
                    "grade_name": ("店铺客户", "普通会员", "高级会员", "VIP会员", "至尊VIP")[
                        min(4, len(trades) // 2)
                    ],
                    "status": "normal",
                    "trade_count": len(trades),
                    "trade_amount": _yuan(amount),
                    "last_trade_time": format_time(last),
                    "item_num": sum(line.num for t in trades for line in t.lines),
                    "relation_source": 1,
                }
            )
        body: dict[str, Any] = {"total_result": len(members)}
        chunk = members[(page - 1) * size : page * size]
        if chunk:
            body["members"] = {"basic_member": chunk}
        return body

    # --- envelopes -------------------------------------------------------------------------------

    def _request_id(self) -> str:
        with self._seq_lock:
            self._request_seq += 1
            seq = self._request_seq
        return hashlib.sha256(f"{self.seed}:{seq}".encode()).hexdigest()[:13]

    def _success(self, method: str, body: dict[str, Any], fmt: str) -> Response:
        body = {**body, "request_id": self._request_id()}
        return _render({response_key(method): body}, fmt)

    def _error(self, error: TopError, fmt: str) -> Response:
        envelope: dict[str, Any] = {"code": error.code, "msg": error.msg}
        if error.sub_code:
            envelope["sub_code"] = error.sub_code
        if error.sub_msg:
            envelope["sub_msg"] = error.sub_msg
        envelope["request_id"] = self._request_id()
        return _render({"error_response": envelope}, fmt)


# --- helpers -------------------------------------------------------------------------------------


def _ban(seconds: float) -> TopError:
    return TopError(
        7,
        "App Call Limited",
        "accesscontrol.limited-by-app-api-access-count",
        f"This ban will last for {max(1, math.ceil(seconds))} more seconds",
    )


def _require(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _missing(name)
    return value


def _fields(text: str) -> set[str]:
    return {part.strip() for part in text.split(",") if part.strip()}


def _time_arg(params: Mapping[str, str], name: str, *, required: bool) -> datetime | None:
    text = params.get(name)
    if not text:
        if required:
            raise _missing(name)
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise _invalid(name, f"{name} is {TIME_FORMAT.replace('%', '')} in China time") from None


def _int_arg(params: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise _invalid(name, f"{name} must be between {low} and {high}")
    return int(text)


def _render(data: dict[str, Any], fmt: str) -> Response:
    if fmt == "json":
        return json_response(data)
    body = '<?xml version="1.0" encoding="utf-8" ?>' + _xml(data)
    return Response(200, body.encode("utf-8"), {"Content-Type": "text/xml;charset=UTF-8"})


def _xml(data: Any, name: str | None = None) -> str:
    if isinstance(data, dict):
        inner = "".join(
            "".join(_xml(item, key) for item in value)
            if isinstance(value, list)
            else _xml(value, key)
            for key, value in data.items()
        )
        return inner if name is None else f"<{name}>{inner}</{name}>"
    text = "true" if data is True else "false" if data is False else escape(str(data))
    return f"<{name}>{text}</{name}>"


def _multipart(body: bytes, content_type: str) -> dict[str, str]:
    """The text parts of a multipart/form-data body (file parts are not signed, §3)."""
    boundary = content_type.split("boundary=", 1)[-1].strip().strip('"').encode()
    values: dict[str, str] = {}
    for part in body.split(b"--" + boundary):
        head, _, content = part.partition(b"\r\n\r\n")
        if b'name="' not in head or b"filename=" in head:
            continue
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        values[name] = content.rstrip(b"\r\n").decode("utf-8")
    return values
