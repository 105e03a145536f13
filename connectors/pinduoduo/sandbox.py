"""A Pinduoduo open-platform emulator: the router, its signing, tokens, order APIs and decrypt.

It implements the emulator checklist of ``shared/protocols/pinduoduo.md`` §10:

- form-encoded ``POST /api/router`` (query and body merged, a missing ``data_type`` taken as
  JSON), HTTP 200 for every platform answer, ``error_response`` for every refusal;
- ``type``, ``client_id``, ``timestamp`` (±600 s), ``sign`` (MD5, :func:`sign`) and
  ``access_token`` checked in that order; token create/refresh through the gateway with
  configurable lifetimes; 10019 for an unknown or expired token;
- ``pdd.order.number.list.increment.get`` with its 1800 s span check, ``page_size`` ≤ 100,
  status filters, ``use_has_next``, ``total_count``, deal time within the last 3 months, and a
  switch (``hide_recent``) hiding orders updated in the last 3 minutes;
- ``pdd.order.information.get`` and ``pdd.order.list.get`` (24 h span);
- receiver name, phone and address as platform ciphertext only for to-ship, non-risk orders
  (empty otherwise), their ``*_mask`` companions always;
- ``pdd.open.decrypt.batch`` (≤ 100 items, ``data_tag`` must be the order the ciphertext came
  from, ``data_type`` 5–8, the out-of-cloud limiter and the daily cap) and
  ``pdd.open.decrypt.mask.batch``;
- per-API rate limiters answering a configurable throttle code.

Seeded data: ``records`` orders (default 1,000) over the last ``span_days`` days in ``malls``
shops. Buyers come from a deterministic pool, ``vault.synthetic.generate_customers(pool,
seed=seed)``: buyer *i* of a seed is the same person in every sandbox that draws from that pool
(the Taobao sandbox does too), so some people buy on both platforms. Most orders are shipped or
received, some wait to ship, some are refunded or being refunded. :meth:`change_statuses` moves
orders on (to ship → shipped → received → refunded) the way a running shop does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.pinduoduo.client import (
    DEFAULT_QUOTA_CODE,
    DEFAULT_SIGN_ERROR,
    PARAMETER_ERROR,
    RESPONSE_KEYS,
    ROUTER_PATH,
    TOKEN_INVALID,
    sign,
)
from vault.sandbox import Request, Response, Sandbox, json_response
from vault.synthetic import SyntheticCustomer, generate_customers

CHINA = timezone(timedelta(hours=8))
MAX_WINDOW = 1800
MAX_LIST_WINDOW = 86400
MAX_PAGE_SIZE = 100
DEAL_HORIZON = 90 * 86400
RECENT_LAG = 180
TIMESTAMP_SKEW = 600
DEFAULT_THROTTLE_CODE = 70031
DECRYPT_BATCH = 100

DATA_TYPES = {"name": 5, "phone": 6, "address": 7, "street": 8}

DEFAULT_RATE_LIMITS: Mapping[str, tuple[int, float]] = {
    "pdd.order.number.list.increment.get": (3000, 60.0),
    "pdd.order.list.get": (6000, 60.0),
    "pdd.order.information.get": (30000, 60.0),
    "pdd.open.decrypt.mask.batch": (15000, 10.0),
}

_PRODUCTS = (
    ("农家散养土鸡蛋 30枚", 3990),
    ("四川丑橘 5斤装", 2590),
    ("纯棉四件套 1.8m", 12900),
    ("不锈钢保温杯 500ml", 4590),
    ("东北五常大米 10斤", 5990),
    ("儿童加绒卫衣", 6900),
    ("抽纸 24包整箱", 2990),
    ("无线蓝牙耳机", 8900),
    ("云南小粒咖啡豆 500g", 6800),
    ("手工红糖 1kg", 1990),
)
_COUNTY = re.compile(r"^(.+?(?:县|区|市|旗))")


def china_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def yuan(fen: int) -> float:
    return round(fen / 100, 2)


@dataclass(slots=True)
class Mall:
    mall_id: int
    name: str
    auth_code: str


@dataclass(slots=True)
class _Token:
    mall_id: int
    client_id: str
    expires_at: float


@dataclass(slots=True)
class _Order:
    """One order as the emulator keeps it; :meth:`PinduoduoSandbox.render` makes the wire form."""

    order_sn: str
    mall_id: int
    buyer: int  # index in the buyer pool
    created: float
    confirm: float
    updated: float
    order_status: int  # 1 to ship, 2 shipped, 3 received
    refund_status: int  # 1 none, 2 in progress, 3 refunding, 4 refunded
    risk: bool
    items: list[tuple[int, str, int, int]]  # goods_id, name, count, unit price (fen)
    postage: int
    discount: int
    shipping: float | None = None
    receive: float | None = None
    ciphertexts: dict[str, str] = field(default_factory=dict)


class PinduoduoSandbox(Sandbox):
    """The Pinduoduo router on loopback. See the module docstring for what it implements."""

    name = "pinduoduo"

    def __init__(
        self,
        *,
        seed: int = 0,
        records: int | None = None,
        malls: int = 1,
        span_days: float = 2.0,
        buyers: int | None = None,
        access_ttl: float = 86400.0,
        refresh_ttl: float = 30 * 86400.0,
        hide_recent: bool = True,
        slim_list: bool = False,
        sign_error_code: int = DEFAULT_SIGN_ERROR,
        throttle_code: int = DEFAULT_THROTTLE_CODE,
        quota_code: int = DEFAULT_QUOTA_CODE,
        rate_limits: Mapping[str, tuple[int, float]] | None = None,
        decrypt_interval: float = 10.0,
        decrypt_daily_cap: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(seed=seed, records=records)
        self.clock = clock
        self.client_id = hashlib.sha256(f"pdd-client-{seed}".encode()).hexdigest()[:16]
        self.client_secret = hashlib.sha256(f"pdd-secret-{seed}".encode()).hexdigest()[:40]
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.hide_recent = hide_recent
        self.slim_list = slim_list
        self.sign_error_code = sign_error_code
        self.throttle_code = throttle_code
        self.quota_code = quota_code
        self.rate_limits = dict(DEFAULT_RATE_LIMITS if rate_limits is None else rate_limits)
        self.decrypt_interval = decrypt_interval
        self.decrypt_daily_cap = decrypt_daily_cap
        self.decrypt_calls: list[float] = []
        self.refused: list[tuple[str, int]] = []  # (api, error code) of every refusal served
        self.api_log: list[dict[str, str]] = []  # the parameters of every router call
        self._calls: dict[str, deque[float]] = {}
        self._key = hashlib.sha256(f"pdd-sandbox-key-{seed}".encode()).digest()
        self._ciphertexts: dict[str, tuple[str, int, str]] = {}  # ct -> (order_sn, type, clear)
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._rng = random.Random(seed * 7919 + 1)
        count = 1000 if records is None else records
        self.malls = [
            Mall(
                mall_id=100_000 + seed * 100 + n,
                name=f"拼多多测试店{n + 1}",
                auth_code=f"code-{seed}-{n}",
            )
            for n in range(malls)
        ]
        self.pool: list[SyntheticCustomer] = list(
            generate_customers(buyers or max(10, count // 4), seed=seed)
        )
        self.orders: dict[str, _Order] = {}
        self._by_update: dict[int, list[tuple[float, str]]] | None = None
        self._seed_orders(count, span_days)
        self.tokens = {mall.mall_id: self._issue(mall.mall_id) for mall in self.malls}

    # --- credentials and tokens --------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return self.mall_credentials(0)

    def mall_credentials(self, index: int) -> dict[str, str]:
        mall = self.malls[index]
        access, refresh = self.tokens[mall.mall_id]
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "mall_id": str(mall.mall_id),
            "access_token": access,
            "refresh_token": refresh,
            "auth_code": mall.auth_code,
        }

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, self.clock() - 1)

    def _issue(self, mall_id: int) -> tuple[str, str]:
        now = self.clock()
        access = hashlib.sha256(f"a{mall_id}{now}{self._rng.random()}".encode()).hexdigest()[:32]
        refresh = hashlib.sha256(f"r{mall_id}{now}{self._rng.random()}".encode()).hexdigest()[:32]
        self._access[access] = _Token(mall_id, self.client_id, now + self.access_ttl)
        self._refresh[refresh] = _Token(mall_id, self.client_id, now + self.refresh_ttl)
        return access, refresh

    def _token_payload(self, mall_id: int, access: str, refresh: str) -> dict[str, Any]:
        now = self.clock()
        mall = next(m for m in self.malls if m.mall_id == mall_id)
        access_expiry = self._access[access].expires_at
        refresh_expiry = self._refresh[refresh].expires_at
        return {
            "access_token": access,
            "expires_in": int(access_expiry - now),
            "expires_at": int(access_expiry),
            "refresh_token": refresh,
            "refresh_token_expires_in": int(refresh_expiry - now),
            "refresh_token_expires_at": int(refresh_expiry),
            "owner_id": str(mall_id),
            "owner_name": mall.name,
            "scope": ["pdd.order.number.list.increment.get", "pdd.open.decrypt.batch"],
        }

    # --- seeding -----------------------------------------------------------------------------

    def _seed_orders(self, count: int, span_days: float) -> None:
        rng = random.Random(self.seed)
        now = self.clock()
        span = span_days * 86400
        for index in range(count):
            created = now - span + rng.random() * max(span - 1200, 1)
            confirm = created + rng.randint(5, 300)
            mall = self.malls[rng.randrange(len(self.malls))]
            buyer = rng.randrange(len(self.pool))
            day = datetime.fromtimestamp(created, CHINA).strftime("%y%m%d")
            order_sn = f"{day}-{rng.randrange(10**6):06d}{index:09d}"
            items = []
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                goods = rng.randrange(len(_PRODUCTS))
                items.append(
                    (
                        700_000_000 + goods,
                        _PRODUCTS[goods][0],
                        rng.randint(1, 3),
                        _PRODUCTS[goods][1],
                    )
                )
            roll = rng.random()
            status = 1 if roll < 0.3 else 2 if roll < 0.6 else 3
            order = _Order(
                order_sn=order_sn,
                mall_id=mall.mall_id,
                buyer=buyer,
                created=created,
                confirm=confirm,
                updated=confirm,
                order_status=1,
                refund_status=1,
                risk=rng.random() < 0.05,
                items=items,
                postage=rng.choice((0, 0, 0, 500, 800)),
                discount=rng.choice((0, 0, 100, 300)),
            )
            room = max(now - RECENT_LAG - 60 - confirm, 2.0)
            if status >= 2:
                order.shipping = confirm + room * rng.random() * 0.5
                order.order_status, order.updated = 2, order.shipping
            if status == 3:
                assert order.shipping is not None
                order.receive = (
                    order.shipping + (now - RECENT_LAG - 60 - order.shipping) * rng.random() * 0.5
                )
                order.order_status, order.updated = 3, order.receive
            refund = rng.random()
            if refund < 0.05:
                order.refund_status = 4
                order.updated = (
                    order.updated + (now - RECENT_LAG - 60 - order.updated) * rng.random()
                )
            elif refund < 0.08:
                order.refund_status = 2
            self._encrypt(order)
            self.orders[order_sn] = order

    def _encrypt(self, order: _Order) -> None:
        """Give a to-ship, non-risk order its receiver ciphertexts; clear them otherwise (a
        ciphertext handed out before stays decryptable)."""
        order.ciphertexts = {}
        if order.order_status != 1 or order.risk:
            return
        person = self.pool[order.buyer]
        clear = {
            "name": person.name,
            "phone": person.phone,
            "address": person.address,
            "street": _street(person),
        }
        for name, value in clear.items():
            body = hmac.new(self._key, f"{order.order_sn}|{name}|{value}".encode(), "sha256")
            payload = base64.b64encode(b"\x02\x00\x00\x00" + body.digest()[:28]).decode()
            index = base64.b64encode(
                hmac.new(self._key, f"index|{value}".encode(), "sha256").digest()[:9]
            ).decode()
            ct = f"${index}${payload}$0$$" if name == "phone" else f"~{payload}~{index[:8]}~0~~"
            order.ciphertexts[name] = ct
            self._ciphertexts[ct] = (order.order_sn, DATA_TYPES[name], value)

    def change_statuses(self, count: int, *, at: float | None = None) -> list[str]:
        """Move ``count`` orders one step on (to ship → shipped → received → refunded), updated
        at ``at`` (default: 190 s ago, just older than the platform's 3-minute lag). Returns
        their order numbers."""
        with self.lock:
            when = self.clock() - RECENT_LAG - 10 if at is None else at
            candidates = sorted(sn for sn, o in self.orders.items() if o.refund_status != 4)
            chosen = self._rng.sample(candidates, min(count, len(candidates)))
            for sn in chosen:
                order = self.orders[sn]
                if order.order_status == 1:
                    order.order_status, order.shipping = 2, when
                elif order.order_status == 2:
                    order.order_status, order.receive = 3, when
                else:
                    order.refund_status = 4
                order.updated = when
                self._encrypt(order)
            self._by_update = None
            return sorted(chosen)

    def buyer_of(self, order_sn: str) -> SyntheticCustomer:
        """The pool person behind an order (for tests: the platform never says)."""
        return self.pool[self.orders[order_sn].buyer]

    def orders_of(self, phone: str) -> list[str]:
        """Order numbers of the pool person with this phone (for tests)."""
        return sorted(sn for sn, o in self.orders.items() if self.pool[o.buyer].phone == phone)

    # --- the wire form -----------------------------------------------------------------------

    def render(self, order: _Order) -> dict[str, Any]:
        person = self.pool[order.buyer]
        street = _street(person)
        county = _county(person)
        goods = sum(count * price for _, _, count, price in order.items)
        ct = order.ciphertexts
        return {
            "order_sn": order.order_sn,
            "created_time": china_time(order.created),
            "confirm_time": china_time(order.confirm),
            "pay_time": china_time(order.confirm),
            "updated_at": china_time(order.updated),
            "shipping_time": china_time(order.shipping) if order.shipping else "",
            "receive_time": china_time(order.receive) if order.receive else "",
            "order_status": order.order_status,
            "refund_status": order.refund_status,
            "after_sales_status": 5 if order.refund_status == 4 else 0,
            "risk_control_status": 1 if order.risk else 0,
            "trade_type": 0,
            "is_lucky_flag": 1,
            "goods_amount": yuan(goods),
            "discount_amount": yuan(order.discount),
            "postage": yuan(order.postage),
            "pay_amount": yuan(goods - order.discount + order.postage),
            "country": "中国",
            "province": person.province,
            "city": person.city,
            "town": county,
            "item_list": [
                {
                    "goods_id": goods_id,
                    "goods_name": name,
                    "goods_count": count,
                    "goods_price": yuan(price),
                    "sku_id": goods_id * 10 + 1,
                    "outer_id": f"SKU{goods_id}",
                }
                for goods_id, name, count, price in order.items
            ],
            "buyer_memo": "",
            "remark": "",
            "receiver_name": ct.get("name", ""),
            "receiver_phone": ct.get("phone", ""),
            "receiver_address": ct.get("street", ""),
            "address": ct.get("address", ""),
            "receiver_name_mask": _mask_name(person.name),
            "receiver_phone_mask": f"{person.phone[0]}*********{person.phone[-1]}",
            "receiver_address_mask": street[:2] + "*" * max(len(street) - 2, 2),
            "address_mask": f"{person.province}{person.city}{county}" + "*" * 8,
        }

    # --- the router --------------------------------------------------------------------------

    def render_rate_limit(self, retry_after: float) -> Response:
        return self._error(self.throttle_code, "调用过于频繁，请调整调用频率", api="fault")

    def handle(self, request: Request) -> Response:
        if request.path != ROUTER_PATH:
            return json_response(
                {"error_response": {"error_code": 10000, "error_msg": "not found"}}, 404
            )
        params = {name: values[0] for name, values in request.query.items() if values}
        if request.method == "POST":
            try:
                params.update(request.form())
            except UnicodeDecodeError:
                return self._error(PARAMETER_ERROR, "请求参数错误", sub_msg="body is not UTF-8")
        with self.lock:
            return self._route(params)

    def _route(self, params: dict[str, str]) -> Response:
        self.api_log.append(dict(params))
        api = params.get("type", "")
        if api not in RESPONSE_KEYS:
            return self._error(PARAMETER_ERROR, "type不存在", sub_msg="unknown type", api=api)
        if params.get("client_id") != self.client_id:
            return self._error(
                PARAMETER_ERROR, "client_id不存在", sub_msg="unknown client_id", api=api
            )
        data_type = params.get("data_type", "JSON")
        if data_type.upper() != "JSON":
            return self._error(PARAMETER_ERROR, "data_type不支持", sub_msg="JSON only", api=api)
        try:
            timestamp = int(params.get("timestamp", ""))
        except ValueError:
            return self._error(PARAMETER_ERROR, "timestamp不合法", sub_msg="timestamp", api=api)
        if timestamp > 10**11:  # milliseconds, as some clients send (PyPI pddsdk 0.1.15)
            timestamp //= 1000
        if abs(timestamp - self.clock()) > TIMESTAMP_SKEW:
            return self._error(PARAMETER_ERROR, "timestamp已过期", sub_msg="timestamp", api=api)
        expected = sign(params, self.client_secret)
        if not hmac.compare_digest(params.get("sign", "").upper(), expected):
            return self._error(self.sign_error_code, "签名错误", sub_msg="sign invalid", api=api)
        if api == "pdd.pop.auth.token.create":
            return self._token_create(params)
        if api == "pdd.pop.auth.token.refresh":
            return self._token_refresh(params)
        token = self._access.get(params.get("access_token", ""))
        if token is None or token.expires_at <= self.clock() or token.client_id != self.client_id:
            return self._error(
                TOKEN_INVALID, "access_token已过期", sub_msg="access_token expired", api=api
            )
        if not self._admit(api):
            return self._error(self.throttle_code, "调用过于频繁，请调整调用频率", api=api)
        handler = {
            "pdd.order.number.list.increment.get": self._increment,
            "pdd.order.list.get": self._order_list,
            "pdd.order.information.get": self._information,
            "pdd.open.decrypt.batch": self._decrypt,
            "pdd.open.decrypt.mask.batch": self._decrypt_mask,
        }[api]
        return handler(params, token.mall_id)

    def _admit(self, api: str) -> bool:
        limit = self.rate_limits.get(api)
        if limit is None:
            return True
        calls, per = limit
        now = self.clock()
        seen = self._calls.setdefault(api, deque())
        while seen and seen[0] <= now - per:
            seen.popleft()
        if len(seen) >= calls:
            return False
        seen.append(now)
        return True

    def _ok(self, api: str, payload: dict[str, Any]) -> Response:
        return json_response({RESPONSE_KEYS[api]: {**payload, "request_id": self._request_id()}})

    def _error(
        self, code: int, message: str, *, sub_msg: str | None = None, api: str = ""
    ) -> Response:
        self.refused.append((api, code))
        error: dict[str, Any] = {
            "error_code": code,
            "error_msg": message,
            "request_id": self._request_id(),
        }
        if sub_msg:
            error["sub_code"] = str(code)
            error["sub_msg"] = sub_msg
        return json_response({"error_response": error})

    def _request_id(self) -> str:
        return f"{int(self.clock() * 1000)}{self._rng.randrange(10**6):06d}"

    # --- tokens ------------------------------------------------------------------------------

    def _token_create(self, params: dict[str, str]) -> Response:
        api = "pdd.pop.auth.token.create"
        mall = next((m for m in self.malls if m.auth_code == params.get("code")), None)
        if mall is None:
            return self._error(PARAMETER_ERROR, "code不合法", sub_msg="invalid code", api=api)
        access, refresh = self._issue(mall.mall_id)
        return self._ok(api, self._token_payload(mall.mall_id, access, refresh))

    def _token_refresh(self, params: dict[str, str]) -> Response:
        api = "pdd.pop.auth.token.refresh"
        refresh = params.get("refresh_token", "")
        token = self._refresh.get(refresh)
        if token is None or token.expires_at <= self.clock():
            return self._error(
                TOKEN_INVALID, "refresh_token已过期", sub_msg="refresh_token expired", api=api
            )
        now = self.clock()
        access = hashlib.sha256(f"a{token.mall_id}{now}{self._rng.random()}".encode()).hexdigest()[
            :32
        ]
        self._access[access] = _Token(token.mall_id, self.client_id, now + self.access_ttl)
        return self._ok(api, self._token_payload(token.mall_id, access, refresh))

    # --- orders ------------------------------------------------------------------------------

    def _index(self, mall_id: int) -> list[tuple[float, str]]:
        if self._by_update is None:
            index: dict[int, list[tuple[float, str]]] = {m.mall_id: [] for m in self.malls}
            for order in self.orders.values():
                index[order.mall_id].append((order.updated, order.order_sn))
            for rows in index.values():
                rows.sort()
            self._by_update = index
        return self._by_update[mall_id]

    def _paging(self, params: dict[str, str], api: str) -> tuple[int, int] | Response:
        try:
            page = int(params.get("page", "1"))
            size = int(params.get("page_size", "100"))
        except ValueError:
            return self._error(PARAMETER_ERROR, "分页参数错误", sub_msg="page", api=api)
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return self._error(
                PARAMETER_ERROR, "分页参数错误", sub_msg="page_size must be 1..100", api=api
            )
        return page, size

    def _span(
        self, params: dict[str, str], start: str, end: str, limit: int, api: str
    ) -> tuple[int, int] | Response:
        try:
            begin, finish = int(params[start]), int(params[end])
        except (KeyError, ValueError):
            return self._error(
                PARAMETER_ERROR, "时间参数错误", sub_msg=f"{start}/{end} required", api=api
            )
        if finish < begin or finish - begin > limit:
            return self._error(
                PARAMETER_ERROR,
                "查询时间跨度不能超过限制",
                sub_msg=f"{end}-{start} must be 0..{limit}",
                api=api,
            )
        return begin, finish

    def _status_filter(self, order: _Order, params: dict[str, str]) -> bool:
        order_status = params.get("order_status", "5")
        refund_status = params.get("refund_status", "5")
        if order_status != "5" and str(order.order_status) != order_status:
            return False
        return refund_status == "5" or str(order.refund_status) == refund_status

    def _increment(self, params: dict[str, str], mall_id: int) -> Response:
        api = "pdd.order.number.list.increment.get"
        span = self._span(params, "start_updated_at", "end_updated_at", MAX_WINDOW, api)
        if isinstance(span, Response):
            return span
        paging = self._paging(params, api)
        if isinstance(paging, Response):
            return paging
        (begin, finish), (page, size) = span, paging
        now = self.clock()
        rows = self._index(mall_id)
        lower = bisect_left(rows, (float(begin), ""))
        upper = bisect_right(rows, (float(finish), "\uffff"))
        matched = []
        for updated, sn in rows[lower:upper]:
            order = self.orders[sn]
            if self.hide_recent and updated > now - RECENT_LAG:
                continue
            if order.confirm < now - DEAL_HORIZON or not self._status_filter(order, params):
                continue
            matched.append(order)
        chunk = matched[(page - 1) * size : page * size]
        payload: dict[str, Any] = {
            "total_count": len(matched),
            "order_sn_list": [
                {"order_sn": o.order_sn, "updated_at": china_time(o.updated)}
                if self.slim_list
                else self.render(o)
                for o in chunk
            ],
        }
        if params.get("use_has_next") == "true":
            payload["has_next"] = page * size < len(matched)
        return self._ok(api, payload)

    def _order_list(self, params: dict[str, str], mall_id: int) -> Response:
        api = "pdd.order.list.get"
        span = self._span(params, "start_confirm_at", "end_confirm_at", MAX_LIST_WINDOW, api)
        if isinstance(span, Response):
            return span
        paging = self._paging(params, api)
        if isinstance(paging, Response):
            return paging
        (begin, finish), (page, size) = span, paging
        matched = sorted(
            (
                o
                for o in self.orders.values()
                if o.mall_id == mall_id
                and begin <= o.confirm <= finish
                and self._status_filter(o, params)
            ),
            key=lambda o: (o.confirm, o.order_sn),
        )
        chunk = matched[(page - 1) * size : page * size]
        return self._ok(
            api, {"total_count": len(matched), "order_list": [self.render(o) for o in chunk]}
        )

    def _information(self, params: dict[str, str], mall_id: int) -> Response:
        api = "pdd.order.information.get"
        order = self.orders.get(params.get("order_sn", ""))
        if order is None or order.mall_id != mall_id:
            return self._error(PARAMETER_ERROR, "订单不存在", sub_msg="order_sn not found", api=api)
        return self._ok(api, {"order_info": self.render(order)})

    # --- decryption --------------------------------------------------------------------------

    def _data_list(self, params: dict[str, str], api: str) -> list[dict[str, Any]] | Response:
        import json

        try:
            items = json.loads(params.get("data_list", ""))
        except ValueError:
            return self._error(
                PARAMETER_ERROR, "data_list不合法", sub_msg="data_list must be JSON", api=api
            )
        if not isinstance(items, list) or not 1 <= len(items) <= DECRYPT_BATCH:
            return self._error(PARAMETER_ERROR, "data_list不合法", sub_msg="1..100 items", api=api)
        if not all(isinstance(i, dict) and isinstance(i.get("encrypted_data"), str) for i in items):
            return self._error(
                PARAMETER_ERROR, "data_list不合法", sub_msg="encrypted_data required", api=api
            )
        return items

    def _decrypt(self, params: dict[str, str], mall_id: int) -> Response:
        api = "pdd.open.decrypt.batch"
        items = self._data_list(params, api)
        if isinstance(items, Response):
            return items
        now = self.clock()
        if self.decrypt_calls and now - self.decrypt_calls[-1] < self.decrypt_interval:
            return self._error(
                self.throttle_code,
                "解密调用过于频繁",
                sub_msg="1 call per 10 s out of cloud",
                api=api,
            )
        today = [t for t in self.decrypt_calls if t > now - 86400]
        if len(today) >= self.decrypt_daily_cap:
            return self._error(
                self.quota_code, "解密调用次数已达上限", sub_msg="daily cap", api=api
            )
        self.decrypt_calls.append(now)
        answers = []
        for item in items:
            known = self._ciphertexts.get(item["encrypted_data"])
            if (
                known is None
                or known[0] != item.get("data_tag")
                or self.orders[known[0]].mall_id != mall_id
            ):
                return self._error(
                    PARAMETER_ERROR, "data_tag与密文不匹配", sub_msg="data_tag mismatch", api=api
                )
            answers.append(
                {
                    "data_tag": item["data_tag"],
                    "data_type": known[1],
                    "encrypted_data": item["encrypted_data"],
                    "decrypted_data": known[2],
                }
            )
        return self._ok(api, {"data_decrypt_list": answers})

    def _decrypt_mask(self, params: dict[str, str], mall_id: int) -> Response:
        api = "pdd.open.decrypt.mask.batch"
        items = self._data_list(params, api)
        if isinstance(items, Response):
            return items
        answers = []
        for item in items:
            known = self._ciphertexts.get(item["encrypted_data"])
            if known is None or known[0] != item.get("data_tag"):
                return self._error(
                    PARAMETER_ERROR, "data_tag与密文不匹配", sub_msg="data_tag mismatch", api=api
                )
            clear = known[2]
            masked = (
                _mask_name(clear)
                if known[1] == 5
                else clear[:3] + "*" * max(len(clear) - 7, 1) + clear[-4:]
            )
            answers.append(
                {
                    "data_tag": item["data_tag"],
                    "data_type": known[1],
                    "encrypted_data": item["encrypted_data"],
                    "decrypted_data": masked,
                }
            )
        return self._ok(api, {"data_decrypt_list": answers})


def _mask_name(name: str) -> str:
    return name[0] + "*" if len(name) <= 2 else name[0] + "*" * (len(name) - 2) + name[-1]


def _county(person: SyntheticCustomer) -> str:
    rest = person.address.removeprefix(person.province).removeprefix(person.city)
    match = _COUNTY.match(rest)
    return match.group(1) if match else ""


def _street(person: SyntheticCustomer) -> str:
    rest = person.address.removeprefix(person.province).removeprefix(person.city)
    return rest.removeprefix(_county(person)) or rest
