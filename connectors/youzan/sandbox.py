"""A Youzan cloud emulator: the token endpoint, the gateway and the APIs the connector uses.

It implements the emulator checklist of ``shared/protocols/youzan.md`` §9:

- ``POST /auth/token`` with ``silent`` / ``authorization_code`` / ``refresh_token``; tokens bound
  to (client_id, kdt_id); ``refresh=false`` with a valid token returns the same token,
  ``refresh=true`` issues a new one and the old one keeps working for an hour, an expired token
  is replaced either way; repeated token calls are throttled;
- ``POST /api/{name}/{version}?access_token=``: a missing or unknown token is ``gw_err_resp``
  4203, an expired one 4202, a per-token rate limiter answers a configurable ``gw_err_resp``
  code; HTTP 200 throughout; the success envelope with ``trace_id``;
- ``youzan.trades.sold.get/4.0.4``: the pairing rule (an unpaired start or end is ignored), the
  sort rules, ``page_no`` ≤ 100, ``page_size`` ≤ 100, the 3-month window,
  ``full_order_info_list`` and ``total_results``; an optional index lag (``index_lag``) hiding
  orders updated in the last seconds; ``youzan.trade.get/4.0.2``;
- ``youzan.scrm.customer.list/1.0.0`` (newest first) and ``youzan.users.info.query/1.0.1``
  (lookup priority yz_open_id > mobile > union id);
- PII as ``$<base64>$<key version>$`` under a per-shop key; ``youzan.cloud.secret.decrypt.batch``
  with ``sources`` ≤ 10,000, an empty string → 10500, and a token of another shop refused.

Buyers come from the same deterministic pool as the other shop sandboxes
(``vault.synthetic.generate_customers(pool, seed=seed)``), each with a ``yz_open_id`` per
developer (client_id).
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import random
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.youzan.client import SYSTEM_ERROR, TOKEN_EXPIRED, TOKEN_UNKNOWN
from vault.sandbox import Request, Response, Sandbox, json_response
from vault.synthetic import SyntheticCustomer, generate_customers

CHINA = timezone(timedelta(hours=8))
MAX_PAGE_NO = 100
MAX_PAGE_SIZE = 100
MAX_SOURCES = 10_000
OLD_TOKEN_GRACE = 3600.0
DEFAULT_GW_THROTTLE = 4290  # [U]
PARAMETER_ERROR = 40010  # [U] the platform's parameter-error code is not published
WRONG_SHOP = 40013  # [U]
BAD_CREDENTIALS = 40001  # [U]
TOKEN_THROTTLED = 10429  # [U]
UNKNOWN_API = 4004  # [U] gw_err_resp for an API the gateway does not know

_PRODUCTS = (
    ("手冲咖啡滤杯", "59.00"),
    ("有机燕麦片 1kg", "32.80"),
    ("羊毛围巾", "168.00"),
    ("香薰蜡烛礼盒", "89.90"),
    ("竹纤维毛巾 3条装", "39.90"),
    ("陶瓷马克杯", "45.00"),
    ("蓝牙音箱", "199.00"),
    ("坚果礼盒 1.2kg", "128.00"),
)
STATUSES = ("WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS", "TRADE_SUCCESS")
_NEXT = {
    "WAIT_BUYER_PAY": "WAIT_SELLER_SEND_GOODS",
    "WAIT_SELLER_SEND_GOODS": "WAIT_BUYER_CONFIRM_GOODS",
    "WAIT_BUYER_CONFIRM_GOODS": "TRADE_SUCCESS",
}


def china_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def parse_china_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA).timestamp()


def add_months(ts: float, months: int) -> float:
    moment = datetime.fromtimestamp(ts, CHINA)
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day).timestamp()


@dataclass(slots=True)
class Shop:
    kdt_id: int
    name: str
    auth_code: str
    key: bytes


@dataclass(slots=True)
class _Token:
    kdt_id: int
    client_id: str
    expires_at: float
    refresh_token: str | None = None


@dataclass(slots=True)
class _Trade:
    tid: str
    kdt_id: int
    buyer: int  # index in the buyer pool
    created: float
    paid: float | None
    updated: float
    status: str
    refund_state: int  # 0 none, 1 refunding, 2 refunded [U]
    items: list[tuple[int, str, int, str]]  # item_id, title, num, unit price (yuan text)
    post_fee: str = "0.00"
    ciphertexts: dict[str, str] = field(default_factory=dict)


class YouzanSandbox(Sandbox):
    """Youzan cloud on loopback. See the module docstring for what it implements."""

    name = "youzan"

    def __init__(
        self,
        *,
        seed: int = 0,
        records: int | None = None,
        shops: int = 1,
        span_days: float = 2.0,
        buyers: int | None = None,
        token_ttl: float = 7 * 86400.0,
        index_lag: float = 0.0,
        rate_limit: tuple[int, float] = (1000, 1.0),
        gw_throttle_code: int = DEFAULT_GW_THROTTLE,
        token_calls_per_minute: int = 120,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(seed=seed, records=records)
        self.clock = clock
        self.client_id = hashlib.sha256(f"yz-client-{seed}".encode()).hexdigest()[:20]
        self.client_secret = hashlib.sha256(f"yz-secret-{seed}".encode()).hexdigest()[:32]
        self.token_ttl = token_ttl
        self.index_lag = index_lag
        self.rate_limit = rate_limit
        self.gw_throttle_code = gw_throttle_code
        self.token_calls_per_minute = token_calls_per_minute
        self.api_log: list[tuple[str, dict[str, Any]]] = []  # (path, body) of every API call
        self.refused: list[tuple[str, str, int]] = []  # (path, envelope, code) of refusals
        self._rng = random.Random(seed * 104729 + 3)
        self._tokens: dict[str, _Token] = {}
        self._current: dict[tuple[str, int], str] = {}
        self._refresh: dict[str, _Token] = {}
        self._calls: dict[str, deque[float]] = {}
        self._token_calls: deque[float] = deque()
        self._ciphertexts: dict[str, tuple[int, str]] = {}  # ct -> (kdt_id, clear)
        self._open_ids: dict[int, str] = {}
        self._by_update: dict[int, list[tuple[float, str]]] | None = None
        self.shops = [
            Shop(
                kdt_id=40_000_000 + seed * 100 + n,
                name=f"有赞测试店{n + 1}",
                auth_code=f"yz-code-{seed}-{n}",
                key=hashlib.sha256(f"yz-shop-key-{seed}-{n}".encode()).digest(),
            )
            for n in range(shops)
        ]
        count = 1000 if records is None else records
        self.pool: list[SyntheticCustomer] = list(
            generate_customers(buyers or max(10, count // 4), seed=seed)
        )
        self.trades: dict[str, _Trade] = {}
        self.members: dict[int, dict[int, float]] = {s.kdt_id: {} for s in self.shops}
        self._seed(count, span_days)

    # --- credentials, tokens -----------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return self.shop_credentials(0)

    def shop_credentials(self, index: int) -> dict[str, str]:
        shop = self.shops[index]
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "kdt_id": str(shop.kdt_id),
            "auth_code": shop.auth_code,
        }

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self._tokens.values():
                token.expires_at = min(token.expires_at, self.clock() - 1)

    def yz_open_id(self, buyer: int) -> str:
        """The buyer's id for this developer (client_id), as the platform hands it out."""
        known = self._open_ids.get(buyer)
        if known is None:
            phone = self.pool[buyer].phone
            digest = hashlib.sha256(f"{self.client_id}|{phone}".encode()).digest()
            known = self._open_ids[buyer] = base64.b32encode(digest[:15]).decode().lower()
        return known

    def _issue(self, kdt_id: int, *, with_refresh: bool = False) -> str:
        now = self.clock()
        token = hashlib.sha256(f"t{kdt_id}{now}{self._rng.random()}".encode()).hexdigest()[:32]
        refresh = None
        if with_refresh:
            refresh = hashlib.sha256(f"r{token}{self._rng.random()}".encode()).hexdigest()[:32]
            self._refresh[refresh] = _Token(kdt_id, self.client_id, now + 28 * 86400)
        self._tokens[token] = _Token(kdt_id, self.client_id, now + self.token_ttl, refresh)
        self._current[(self.client_id, kdt_id)] = token
        return token

    def _token_answer(self, token: str) -> Response:
        issued = self._tokens[token]
        data: dict[str, Any] = {
            "access_token": token,
            "expires": int(issued.expires_at * 1000),
            "scope": "trade user scrm secret",
            "authority_id": str(issued.kdt_id),
        }
        if issued.refresh_token:
            data["refresh_token"] = issued.refresh_token
        return self._success(data)

    # --- seeding -----------------------------------------------------------------------------

    def _seed(self, count: int, span_days: float) -> None:
        rng = random.Random(self.seed + 5)
        now = self.clock()
        span = span_days * 86400
        for index in range(count):
            shop = self.shops[rng.randrange(len(self.shops))]
            buyer = rng.randrange(len(self.pool))
            created = now - span + rng.random() * max(span - 600, 1)
            roll = rng.random()
            if roll < 0.05:
                status, paid = "WAIT_BUYER_PAY", None
            else:
                status, paid = STATUSES[rng.randrange(3)], created + rng.randint(5, 600)
            updated = (paid or created) + rng.random() * max(now - 300 - (paid or created), 1)
            refund = 2 if rng.random() < 0.05 and paid else 0
            day = datetime.fromtimestamp(created, CHINA).strftime("%Y%m%d%H%M%S")
            trade = _Trade(
                tid=f"E{day}{rng.randrange(10**6):06d}{index:08d}",
                kdt_id=shop.kdt_id,
                buyer=buyer,
                created=created,
                paid=paid,
                updated=updated,
                status=status,
                refund_state=refund,
                items=[
                    (900_000 + g, _PRODUCTS[g][0], rng.randint(1, 2), _PRODUCTS[g][1])
                    for g in rng.sample(range(len(_PRODUCTS)), rng.choice((1, 1, 2)))
                ],
                post_fee=rng.choice(("0.00", "0.00", "6.00", "10.00")),
            )
            self._encrypt(trade)
            self.trades[trade.tid] = trade
            joined = self.members[shop.kdt_id].get(buyer)
            self.members[shop.kdt_id][buyer] = created if joined is None else min(joined, created)

    def encrypt(self, kdt_id: int, clear: str) -> str:
        """``$<base64>$<key version>$`` under the shop's key (deterministic within a shop)."""
        shop = next(s for s in self.shops if s.kdt_id == kdt_id)
        body = hmac.new(shop.key, clear.encode(), "sha256").digest()
        ct = f"${base64.b64encode(body).decode()}$1$"
        self._ciphertexts[ct] = (kdt_id, clear)
        return ct

    def _encrypt(self, trade: _Trade) -> None:
        person = self.pool[trade.buyer]
        trade.ciphertexts = {
            "receiver_name": self.encrypt(trade.kdt_id, person.name),
            "receiver_tel": self.encrypt(trade.kdt_id, person.phone),
            "delivery_address": self.encrypt(trade.kdt_id, _street(person)),
            "buyer_phone": self.encrypt(trade.kdt_id, person.phone),
        }

    def change_statuses(self, count: int, *, at: float | None = None) -> list[str]:
        """Move ``count`` trades one step on (to pay → to ship → shipped → done → refunded),
        updated at ``at`` (default: 90 s ago). Returns their tids."""
        with self.lock:
            when = self.clock() - 90 if at is None else at
            candidates = sorted(t for t, o in self.trades.items() if o.refund_state != 2)
            chosen = self._rng.sample(candidates, min(count, len(candidates)))
            for tid in chosen:
                trade = self.trades[tid]
                if trade.status in _NEXT:
                    trade.status = _NEXT[trade.status]
                    trade.paid = trade.paid or when
                else:
                    trade.refund_state = 2
                trade.updated = when
            self._by_update = None
            return sorted(chosen)

    def buyer_of(self, tid: str) -> SyntheticCustomer:
        return self.pool[self.trades[tid].buyer]

    # --- the wire form -----------------------------------------------------------------------

    def render(self, trade: _Trade) -> dict[str, Any]:
        person = self.pool[trade.buyer]
        goods = sum(int(price.replace(".", "")) * num for _, _, num, price in trade.items)
        post = int(trade.post_fee.replace(".", ""))
        payment = goods + post

        def money(fen: int) -> str:
            return f"{fen // 100}.{fen % 100:02d}"

        return {
            "full_order_info": {
                "order_info": {
                    "tid": trade.tid,
                    "status": trade.status,
                    "type": 0,
                    "created": china_time(trade.created),
                    "update_time": china_time(trade.updated),
                    "pay_time": china_time(trade.paid) if trade.paid else "",
                    "node_kdt_id": trade.kdt_id,
                    "refund_state": trade.refund_state,
                },
                "buyer_info": {
                    "yz_open_id": self.yz_open_id(trade.buyer),
                    "buyer_phone": trade.ciphertexts["buyer_phone"],
                    "fans_type": 1,
                },
                "address_info": {
                    "receiver_name": trade.ciphertexts["receiver_name"],
                    "receiver_tel": trade.ciphertexts["receiver_tel"],
                    "delivery_province": person.province,
                    "delivery_city": person.city,
                    "delivery_district": "",
                    "delivery_address": trade.ciphertexts["delivery_address"],
                },
                "pay_info": {
                    "total_fee": money(goods),
                    "post_fee": trade.post_fee,
                    "payment": money(payment),
                },
                "orders": [
                    {
                        "oid": f"{trade.tid}-{n}",
                        "item_id": item_id,
                        "title": title,
                        "num": num,
                        "price": price,
                        "payment": money(int(price.replace(".", "")) * num),
                    }
                    for n, (item_id, title, num, price) in enumerate(trade.items, start=1)
                ],
            }
        }

    # --- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            body = request.json() if request.body else {}
        except (ValueError, UnicodeDecodeError):
            body = None
        with self.lock:
            if request.path == "/auth/token":
                return self._token(body)
            if request.path.startswith("/api/"):
                return self._api(request, body)
        return json_response({"success": False, "code": 404, "message": "not found"}, 404)

    def _trace(self) -> str:
        return f"yz7-{self._rng.getrandbits(64):016x}"

    def _success(self, data: Any) -> Response:
        return json_response(
            {
                "success": True,
                "code": 200,
                "message": "successful",
                "data": data,
                "trace_id": self._trace(),
            }
        )

    def _failure(self, path: str, code: int, message: str) -> Response:
        self.refused.append((path, "failure", code))
        return json_response(
            {"success": False, "code": code, "message": message, "trace_id": self._trace()}
        )

    def _gateway(self, path: str, code: int, message: str) -> Response:
        self.refused.append((path, "gw_err_resp", code))
        return json_response({"gw_err_resp": {"err_code": code, "err_msg": message}})

    def render_rate_limit(self, retry_after: float) -> Response:
        return self._gateway("fault", self.gw_throttle_code, "访问频率过高")

    # --- /auth/token ---------------------------------------------------------------------------

    def _token(self, body: Any) -> Response:
        path = "/auth/token"
        if not isinstance(body, dict):
            return self._failure(path, PARAMETER_ERROR, "参数错误")
        now = self.clock()
        while self._token_calls and self._token_calls[0] <= now - 60:
            self._token_calls.popleft()
        if len(self._token_calls) >= self.token_calls_per_minute:
            return self._failure(path, TOKEN_THROTTLED, "获取token过于频繁")
        self._token_calls.append(now)
        if (
            body.get("client_id") != self.client_id
            or body.get("client_secret") != self.client_secret
        ):
            return self._failure(path, BAD_CREDENTIALS, "client_id或client_secret错误")
        kind = body.get("authorize_type")
        if kind == "silent":
            shop = next((s for s in self.shops if str(s.kdt_id) == str(body.get("grant_id"))), None)
            if shop is None:
                return self._failure(path, BAD_CREDENTIALS, "grant_id未授权")
            current = self._current.get((self.client_id, shop.kdt_id))
            valid = current is not None and self._tokens[current].expires_at > now
            if valid and not body.get("refresh"):
                assert current is not None
                return self._token_answer(current)
            if valid and current is not None:  # the old token keeps working for an hour
                old = self._tokens[current]
                old.expires_at = min(old.expires_at, now + OLD_TOKEN_GRACE)
            return self._token_answer(self._issue(shop.kdt_id))
        if kind == "authorization_code":
            shop = next((s for s in self.shops if s.auth_code == body.get("code")), None)
            if shop is None:
                return self._failure(path, BAD_CREDENTIALS, "code无效")
            return self._token_answer(self._issue(shop.kdt_id, with_refresh=True))
        if kind == "refresh_token":
            issued = self._refresh.get(str(body.get("refresh_token")))
            if issued is None or issued.expires_at <= now:
                return self._failure(path, BAD_CREDENTIALS, "refresh_token无效")
            return self._token_answer(self._issue(issued.kdt_id, with_refresh=True))
        return self._failure(path, PARAMETER_ERROR, "authorize_type错误")

    # --- /api ----------------------------------------------------------------------------------

    def _api(self, request: Request, body: Any) -> Response:
        path = request.path
        self.api_log.append((path, dict(body) if isinstance(body, dict) else {}))
        token = self._tokens.get(request.arg("access_token") or "")
        if token is None or token.client_id != self.client_id:
            return self._gateway(path, TOKEN_UNKNOWN, "access_token不存在")
        if token.expires_at <= self.clock():
            return self._gateway(path, TOKEN_EXPIRED, "access_token已过期")
        if not self._admit(request.arg("access_token") or ""):
            return self._gateway(path, self.gw_throttle_code, "访问频率过高")
        if not isinstance(body, dict):
            return self._failure(path, PARAMETER_ERROR, "请求体不是JSON对象")
        handler = {
            "/api/youzan.trades.sold.get/4.0.4": self._trades,
            "/api/youzan.trade.get/4.0.2": self._trade,
            "/api/youzan.scrm.customer.list/1.0.0": self._customers,
            "/api/youzan.users.info.query/1.0.1": self._users,
            "/api/youzan.cloud.secret.decrypt.batch/1.0.0": self._decrypt,
        }.get(path)
        if handler is None:
            return self._gateway(path, UNKNOWN_API, "api不存在")
        return handler(path, body, token.kdt_id)

    def _admit(self, token: str) -> bool:
        calls, per = self.rate_limit
        now = self.clock()
        seen = self._calls.setdefault(token, deque())
        while seen and seen[0] <= now - per:
            seen.popleft()
        if len(seen) >= calls:
            return False
        seen.append(now)
        return True

    def _paging(self, path: str, body: dict[str, Any]) -> tuple[int, int] | Response:
        try:
            page_no = int(body.get("page_no", 1))
            page_size = int(body.get("page_size", 40))
        except (TypeError, ValueError):
            return self._failure(path, PARAMETER_ERROR, "page_no/page_size错误")
        if not 1 <= page_no <= MAX_PAGE_NO:
            return self._failure(path, PARAMETER_ERROR, "page_no不能大于100")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            return self._failure(path, PARAMETER_ERROR, "page_size不能大于100")
        return page_no, page_size

    def _pair(
        self, path: str, body: dict[str, Any], name: str
    ) -> tuple[float, float] | Response | None:
        start, end = body.get(f"start_{name}"), body.get(f"end_{name}")
        if not start or not end:
            return None  # an unpaired start or end is ignored, as the platform does
        try:
            begin, finish = parse_china_time(str(start)), parse_china_time(str(end))
        except ValueError:
            return self._failure(path, PARAMETER_ERROR, f"start_{name}/end_{name}格式错误")
        if finish < begin or finish > add_months(begin, 3):
            return self._failure(path, PARAMETER_ERROR, "查询时间跨度不能超过3个月")
        return begin, finish

    def _trades(self, path: str, body: dict[str, Any], kdt_id: int) -> Response:
        paging = self._paging(path, body)
        if isinstance(paging, Response):
            return paging
        filters: dict[str, tuple[float, float]] = {}
        for name in ("created", "update", "success"):
            pair = self._pair(path, body, name)
            if isinstance(pair, Response):
                return pair
            if pair is not None:
                filters[name] = pair
        now = self.clock()
        attribute = {"created": "created", "update": "updated", "success": "updated"}
        matched = []
        for trade in self._candidates(kdt_id, filters.get("update")):
            if trade.kdt_id != kdt_id or trade.updated > now - self.index_lag:
                continue
            if body.get("status") and trade.status != body["status"]:
                continue
            if body.get("tid") and trade.tid != body["tid"]:
                continue
            if body.get("yz_open_id") and self.yz_open_id(trade.buyer) != body["yz_open_id"]:
                continue
            if "success" in filters and trade.status != "TRADE_SUCCESS":
                continue
            if all(lo <= getattr(trade, attribute[n]) <= hi for n, (lo, hi) in filters.items()):
                matched.append(trade)
        sort_by = "updated" if "success" in filters or "update" in filters else "created"
        matched.sort(key=lambda t: (getattr(t, sort_by), t.tid), reverse=True)
        page_no, page_size = paging
        chunk = matched[(page_no - 1) * page_size : page_no * page_size]
        return self._success(
            {"total_results": len(matched), "full_order_info_list": [self.render(t) for t in chunk]}
        )

    def _candidates(self, kdt_id: int, update: tuple[float, float] | None) -> list[_Trade]:
        """The shop's trades, narrowed to an update-time range through a sorted index."""
        if self._by_update is None:
            index: dict[int, list[tuple[float, str]]] = {s.kdt_id: [] for s in self.shops}
            for trade in self.trades.values():
                index[trade.kdt_id].append((trade.updated, trade.tid))
            for rows in index.values():
                rows.sort()
            self._by_update = index
        rows = self._by_update[kdt_id]
        if update is not None:
            rows = rows[bisect_left(rows, (update[0], "")) : bisect_right(rows, (update[1], "~"))]
        return [self.trades[tid] for _, tid in rows]

    def _trade(self, path: str, body: dict[str, Any], kdt_id: int) -> Response:
        trade = self.trades.get(str(body.get("tid", "")))
        if trade is None or trade.kdt_id != kdt_id:
            return self._failure(path, PARAMETER_ERROR, "订单不存在")
        return self._success(self.render(trade))

    def _customers(self, path: str, body: dict[str, Any], kdt_id: int) -> Response:
        paging = self._paging(path, body)
        if isinstance(paging, Response):
            return paging
        lo, hi = 0.0, float("inf")
        try:
            if body.get("created_at_start"):
                lo = parse_china_time(str(body["created_at_start"]))
            if body.get("created_at_end"):
                hi = parse_china_time(str(body["created_at_end"]))
        except ValueError:
            return self._failure(path, PARAMETER_ERROR, "created_at格式错误")
        members = sorted(
            (
                (joined, buyer)
                for buyer, joined in self.members[kdt_id].items()
                if lo <= joined <= hi
            ),
            key=lambda m: (m[0], self.yz_open_id(m[1])),
            reverse=True,
        )
        page_no, page_size = paging
        chunk = members[(page_no - 1) * page_size : page_no * page_size]
        records = []
        for joined, buyer in chunk:
            person = self.pool[buyer]
            records.append(
                {
                    "yz_open_id": self.yz_open_id(buyer),
                    "created_at": china_time(joined),
                    "mobile": self.encrypt(kdt_id, person.phone),
                    "name": self.encrypt(kdt_id, person.name),
                    "gender": 1 if person.gender == "male" else 2,
                    "birthday": person.birthday,
                }
            )
        return self._success({"record_list": records, "page_no": page_no, "total": len(members)})

    def _users(self, path: str, body: dict[str, Any], kdt_id: int) -> Response:
        buyers = list(self.members[kdt_id])
        found: int | None = None
        if body.get("yz_open_id"):
            found = next((b for b in buyers if self.yz_open_id(b) == body["yz_open_id"]), None)
        elif body.get("mobile"):
            mobile = str(body["mobile"]).removeprefix("+86-").removeprefix("+86")
            found = next((b for b in buyers if self.pool[b].phone == mobile), None)
        elif body.get("weixin_union_id") or body.get("weixin_open_id"):
            found = None  # no WeChat accounts in the sandbox
        else:
            return self._failure(path, PARAMETER_ERROR, "缺少查询条件")
        users = [] if found is None else [{"yz_open_id": self.yz_open_id(found), "account_type": 0}]
        return self._success({"user_list": users})

    def _decrypt(self, path: str, body: dict[str, Any], kdt_id: int) -> Response:
        sources = body.get("sources")
        if not isinstance(sources, list) or not 1 <= len(sources) <= MAX_SOURCES:
            return self._failure(path, PARAMETER_ERROR, "sources为1到10000个密文")
        if any(not isinstance(s, str) or not s for s in sources):
            return self._failure(path, SYSTEM_ERROR, "系统错误")
        clear: dict[str, str] = {}
        for source in sources:
            known = self._ciphertexts.get(source)
            if known is None:
                continue
            if known[0] != kdt_id:
                return self._failure(path, WRONG_SHOP, "密文不属于当前店铺")
            clear[source] = known[1]
        return self._success(clear)


def _street(person: SyntheticCustomer) -> str:
    return person.address.removeprefix(person.province).removeprefix(person.city)
