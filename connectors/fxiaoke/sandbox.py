"""An emulator of the Fenxiang Xiaoke OpenAPI on loopback (Part D of the protocol note).

What it enforces, as Fenxiang does (``shared/protocols/crm-zoho-fxiaoke.md`` B3-B9, D):

* Tokens: ``POST /cgi/corpAccessToken/get/V2`` (legacy) and ``POST /oauth2.0/token``
  (``grantType=app_secret``); 7200 s lifetime, the same token for the first 6600 s, at most 10
  calls a minute per app and none concurrent. A bad secret is ``10006``, a bad permanent code
  ``20015``, an unknown appId ``20006``.
* Business calls: ``POST`` + JSON, with body auth (``corpAccessToken``, ``corpId``,
  ``currentOpenUserId``) or header auth (``authorization: Bearer``, ``x-fs-ea``,
  ``x-fs-userid``), never both. No auth is ``20017``; a bad, expired or foreign token ``20016``.
  Every answer is HTTP 200 with ``errorCode``, ``errorMessage``, ``errorDescription`` and a
  ``traceId``; ``?thirdTraceId=`` is accepted and ignored.
* ``/cgi/crm/v2/data/query``: ``limit`` 1-100, ``offset`` at most 10,000 (else ``10013``
  "offset out of range 10000") and a multiple of ``limit``; snake_case ``search_query_info``,
  ``field_name``, ``field_values`` (a list of strings), camelCase ``fieldName``, ``isAsc``,
  ``fieldProjection``, ``dataObjectApiName``; the B6 operators; ``orders``; null fields omitted
  unless ``includeNull``; ``data.{dataList,offset,limit,total}``.
* ``get``/``create``/``update``/``invalid``/``delete``/``recover``/``changeOwner`` and
  ``object/list``/``object/describe``: ``dataObjectApiName`` inside ``object_data`` for create
  and update, directly under ``data`` otherwise; ``owner`` only through ``changeOwner``; only a
  voided (``invalid``) record can be deleted, and a deleted one is gone from every answer;
  numbers and currencies are strings, dates and times epoch milliseconds; ``last_modified_time``
  is bumped on every write; ``create`` answers ``dataId``; ``triggerApprovalFlow`` and
  ``triggerWorkFlow`` default to true (the tenant has an approval flow on contacts, so a create
  that does not turn it off lands ``under_review``); custom ``__c`` objects only on
  ``/cgi/crm/custom/v2/data/*``.
* Limits: 100 calls per 20 s per endpoint (``30004``), a daily quota (``30002``), no quota
  bought (``30003``).

Where Fenxiang's documentation is silent (Part E), the sandbox chooses and says so: voided
records stay visible to ``query`` and ``get`` with ``life_status`` ``invalid``; a field the
object does not describe is refused (``15002``), as are other malformed parameters; a paging
parameter out of range is ``10013``; the token endpoint's throttle answers ``30004``.

Faults of the kit render in Fenxiang's shape: ``rate_limit`` is HTTP 200 with ``errorCode``
30004 and ``server_error`` HTTP 200 with ``-1`` (system busy). :meth:`FxiaokeSandbox.fail_with`
scripts any other code (or an HTTP status from the gateway), and
:meth:`FxiaokeSandbox.hold_answers` applies a request and then withholds its answer (a create
whose answer is lost).
"""

from __future__ import annotations

import bisect
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from connectors.fxiaoke import _seed
from vault.sandbox import Request, Response, Sandbox, json_response

BEIJING = timezone(timedelta(hours=8))
TOKEN_LIFETIME = 7200
TOKEN_REUSE = 6600
TOKEN_CALLS_PER_MINUTE = 10
ENDPOINT_LIMIT = 100
ENDPOINT_WINDOW = 20.0
MAX_LIMIT = 100
MAX_OFFSET = 10_000
DEFAULT_LIMIT = 20

OPERATORS = frozenset(
    {
        *("EQ", "N", "GT", "GTE", "LT", "LTE", "LIKE", "NLIKE", "IS", "ISN", "IN", "NIN"),
        *("BETWEEN", "NBETWEEN", "STARTWITH", "ENDWITH", "HASANYOF", "NHASANYOF", "CONTAINS"),
    }
)
SYSTEM_FIELDS = frozenset(
    {
        "_id",
        "created_by",
        "last_modified_by",
        "create_time",
        "last_modified_time",
        "life_status",
        "lock_status",
        "is_deleted",
    }
)
LIFE_STATUSES = ("ineffective", "under_review", "normal", "in_change", "invalid")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{3,30}$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    type: str
    label: str
    required: bool = False
    options: tuple[str, ...] = ()
    target: str | None = None  # object_reference: the target object's apiName


def _common(extra: Mapping[str, FieldSpec]) -> dict[str, FieldSpec]:
    return {
        "_id": FieldSpec("text", "ID"),
        **extra,
        "owner": FieldSpec("employee", "负责人", required=True),
        "created_by": FieldSpec("employee", "创建人"),
        "last_modified_by": FieldSpec("employee", "最后修改人"),
        "create_time": FieldSpec("date_time", "创建时间"),
        "last_modified_time": FieldSpec("date_time", "最后修改时间"),
        "life_status": FieldSpec("select_one", "生命状态", options=LIFE_STATUSES),
        "lock_status": FieldSpec("select_one", "锁定状态", options=("0", "1")),
        "is_deleted": FieldSpec("true_or_false", "是否删除"),
        "record_type": FieldSpec("record_type", "业务类型", options=("default__c",)),
    }


OBJECTS: dict[str, tuple[str, dict[str, FieldSpec]]] = {
    "ContactObj": (
        "联系人",
        _common(
            {
                "name": FieldSpec("text", "姓名", required=True),
                "account_id": FieldSpec("object_reference", "客户名称", target="AccountObj"),
                "mobile1": FieldSpec("phone_number", "手机1"),
                "tel1": FieldSpec("phone_number", "电话1"),
                "email": FieldSpec("email", "邮件"),
                "add": FieldSpec("text", "地址"),
                "date_of_birth": FieldSpec("date", "生日"),
                "gender": FieldSpec("select_one", "性别", options=("1", "2")),
                "job_title": FieldSpec("text", "职务"),
                "remark": FieldSpec("long_text", "备注"),
                "intimacy__c": FieldSpec("number", "亲密度"),
                "vault_customer_id__c": FieldSpec("text", "数据保险库客户编号"),
            }
        ),
    ),
    "AccountObj": (
        "客户",
        _common(
            {
                "name": FieldSpec("text", "客户名称", required=True),
                "account_no": FieldSpec("text", "客户编号"),
                "tel": FieldSpec("phone_number", "电话"),
                "account_type": FieldSpec("select_one", "客户类型", options=("1", "2", "3")),
                "address": FieldSpec("text", "详细地址"),
                "annual_revenue__c": FieldSpec("currency", "年销售额"),
            }
        ),
    ),
    "LeadsObj": (
        "销售线索",
        _common(
            {
                "name": FieldSpec("text", "姓名", required=True),
                "company": FieldSpec("text", "公司"),
                "tel": FieldSpec("phone_number", "电话"),
                "mobile": FieldSpec("phone_number", "手机"),
                "email": FieldSpec("email", "邮件"),
            }
        ),
    ),
    "object_vnote__c": (
        "客户备忘",
        _common({"name": FieldSpec("text", "主题", required=True)}),
    ),
}
APPROVAL_FLOW_OBJECTS = frozenset({"ContactObj"})


class _Fail(Exception):
    def __init__(self, code: int, message: str, description: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.description = description or message


def _param(message: str) -> _Fail:
    return _Fail(15002, message, "参数不合法")


@dataclass(slots=True)
class _Issued:
    value: str
    app_id: str
    style: str  # "legacy" | "oauth"
    issued_at: float
    expires_at: float


@dataclass(slots=True)
class _Scripted:
    match: str | None
    after: int
    times: int
    code: int | None
    message: str
    http_status: int | None


@dataclass(slots=True)
class _Hold:
    match: str | None
    seconds: float
    times: int


@dataclass(frozen=True, slots=True)
class _Caller:
    employee_id: str


class FxiaokeSandbox(Sandbox):
    """One Fenxiang tenant (enterprise) with one app authorised, seeded with ``records``
    contacts (and a tenth as many accounts). See the module docstring for the rules."""

    name: ClassVar[str] = "fxiaoke"

    def __init__(
        self,
        *,
        seed: int = 0,
        records: int | None = None,
        endpoint_limit: int | None = ENDPOINT_LIMIT,
        daily_quota: int | None = None,
        quota_purchased: bool = True,
        clock: Callable[[], float] = time.time,
        token_delay: float = 0.0,
    ) -> None:
        super().__init__(seed=seed, records=records)
        self.clock = clock
        self.endpoint_limit = endpoint_limit
        self.daily_quota = daily_quota
        self.quota_purchased = quota_purchased
        self.token_delay = token_delay  # seconds a token fetch takes (to show single-flight)
        self.app_id = f"FSAID_{seed:04x}a51c7"
        self.app_secret = f"sandbox-secret-{seed}"
        # One tenant authorisation per emulator: a client's token cache never mistakes a
        # new sandbox on a reused port for the last one.
        self.permanent_code = f"sandbox-permanent-{seed}-{uuid.uuid4().hex[:12]}"
        self.corp_id = f"FSCID_{seed:04X}F3A2C"
        self.ea = f"fs{seed:04d}"
        self.employees = {"FSUID_ADMIN1000": "1000", "FSUID_SALES1001": "1001"}
        self.admin_open_user_id = "FSUID_ADMIN1000"
        self.workflow_runs = 0
        self.token_calls: list[float] = []
        self._tokens: dict[str, _Issued] = {}
        self._current: dict[tuple[str, str], _Issued] = {}
        self._token_in_flight = 0
        self._endpoint_calls: dict[str, deque[float]] = {}
        self._daily: dict[str, int] = {}
        self._scripted: list[_Scripted] = []
        self._holds: list[_Hold] = []
        self._trace = 0
        self._sequence = 0
        self._data: dict[str, dict[str, dict[str, Any]]] = {api: {} for api in OBJECTS}
        self._order: dict[str, list[str]] = {api: [] for api in OBJECTS}  # _ids, sorted
        self._seed(records if records is not None else 100)
        self._routes: dict[str, Callable[[Mapping[str, Any], _Caller, bool], dict[str, Any]]] = {}
        for prefix, custom in (("/cgi/crm/v2/data/", False), ("/cgi/crm/custom/v2/data/", True)):
            for verb, handler in (
                ("query", self._query),
                ("get", self._get),
                ("create", self._create),
                ("update", self._update),
                ("invalid", self._invalid),
                ("delete", self._delete),
                ("recover", self._recover),
                ("changeOwner", self._change_owner),
            ):
                self._routes[prefix + verb] = _bind(handler, custom)
        self._routes["/cgi/crm/v2/object/list"] = lambda body, caller, _: self._object_list()
        self._routes["/cgi/crm/v2/object/describe"] = lambda body, caller, _: self._describe(body)

    # --- the kit's interface ---------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return {
            "app_id": self.app_id,
            "app_secret": self.app_secret,
            "permanent_code": self.permanent_code,
            "open_user_id": self.admin_open_user_id,
            "owner_id": self.employees[self.admin_open_user_id],
        }

    def expire_tokens(self) -> None:
        with self.lock:
            past = self.clock() - 1
            for issued in self._tokens.values():
                issued.expires_at = min(issued.expires_at, past)
            self._current.clear()

    def render_rate_limit(self, retry_after: float) -> Response:
        return self._error_response(30004, "调用频率超出限制", "接口调用过于频繁，请稍后重试")

    def render_server_error(self) -> Response:
        return self._error_response(-1, "系统繁忙", "系统繁忙，请稍后重试")

    # --- scripting, for tests ----------------------------------------------------------------

    def fail_with(
        self,
        code: int | None = None,
        *,
        match: str | None = None,
        after: int = 0,
        times: int = 1,
        message: str = "",
        http_status: int | None = None,
    ) -> None:
        """Answer ``times`` matching requests (after ``after``) with Fenxiang error ``code``
        (HTTP 200), or with a bare HTTP ``http_status`` from the gateway."""
        if (code is None) == (http_status is None):
            raise ValueError("give either an errorCode or an http_status")
        with self.lock:
            self._scripted.append(_Scripted(match, after, times, code, message, http_status))

    def hold_answers(self, *, match: str, seconds: float, times: int = 1) -> None:
        """Apply ``times`` matching requests, then hold each answer back ``seconds``."""
        with self.lock:
            self._holds.append(_Hold(match, seconds, times))

    def live(self, api: str = "ContactObj") -> list[dict[str, Any]]:
        """Every record of ``api`` not deleted (voided ones included), in ``_id`` order."""
        with self.lock:
            return [dict(self._data[api][i]) for i in self._order[api]]

    def record(self, record_id: str, api: str = "ContactObj") -> dict[str, Any] | None:
        with self.lock:
            found = self._data[api].get(record_id)
            return dict(found) if found is not None else None

    def edit(
        self, record_id: str, api: str = "ContactObj", *, at: int | None = None, **values: Any
    ) -> None:
        """A salesperson edits a record in the Fenxiang app: set fields, bump the time."""
        with self.lock:
            found = self._data[api][record_id]
            found.update(values)
            found["last_modified_time"] = at if at is not None else self._now_ms()
            found["last_modified_by"] = ["1001"]

    def add_record(self, api: str = "ContactObj", *, at: int | None = None, **values: Any) -> str:
        """A salesperson types a record into the Fenxiang app (at ``at``, epoch ms)."""
        with self.lock:
            moment = at if at is not None else self._now_ms()
            record = self._blank(api, moment, moment)
            record.update(values)
            record["created_by"] = record["last_modified_by"] = ["1001"]
            self._insert(api, record)
            return str(record["_id"])

    def remove(self, record_id: str, api: str = "ContactObj") -> None:
        """A salesperson deletes a record for good (void, then delete from the recycle bin)."""
        with self.lock:
            self._drop(api, record_id)

    # --- one request -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        token_path = request.path in ("/cgi/corpAccessToken/get/V2", "/oauth2.0/token")
        if not token_path and request.path not in self._routes:
            return Response(
                404, b"<html><body>404 Not Found</body></html>", {"Content-Type": "text/html"}
            )
        scripted = self._take_scripted(request.path)
        if scripted is not None:
            if scripted.http_status is not None:
                return Response(
                    scripted.http_status,
                    b"<html><body>Bad Gateway</body></html>",
                    {"Content-Type": "text/html"},
                )
            assert scripted.code is not None
            return self._error_response(scripted.code, scripted.message or f"error {scripted.code}")
        try:
            if request.method != "POST":
                raise _param(f"HTTP method {request.method} is not supported: use POST")
            if "application/json" not in request.headers.get("content-type", ""):
                raise _param("Content-Type must be application/json")
            try:
                body = request.json()
            except ValueError:
                raise _param("the request body is not JSON") from None
            if not isinstance(body, dict):
                raise _param("the request body must be a JSON object")
            if token_path:
                answer = self._token(request.path, body)
            else:
                caller = self._authenticate(request, body)
                self._count_call(request.path)
                data = body.get("data")
                if not isinstance(data, dict):
                    raise _param("data is required and must be an object")
                answer = self._routes[request.path](body, caller, False)
        except _Fail as fail:
            return self._error_response(fail.code, fail.message, fail.description)
        hold = self._take_hold(request.path)
        if hold is not None:
            time.sleep(hold)
        return json_response(
            {
                "traceId": self._trace_id(),
                "errorCode": 0,
                "errorMessage": "OK",
                "errorDescription": "success",
                **answer,
            }
        )

    def _error_response(self, code: int, message: str, description: str = "") -> Response:
        return json_response(
            {
                "traceId": self._trace_id(),
                "errorCode": code,
                "errorMessage": message,
                "errorDescription": description or message,
            }
        )

    def _trace_id(self) -> str:
        with self.lock:
            self._trace += 1
            return f"E-O.{self.ea}.{self._trace}-{uuid.uuid4().hex}"

    def _take_scripted(self, path: str) -> _Scripted | None:
        with self.lock:
            for item in self._scripted:
                if item.match is not None and item.match not in path:
                    continue
                if item.after > 0:
                    item.after -= 1
                    continue
                item.times -= 1
                if item.times <= 0:
                    self._scripted.remove(item)
                return item
        return None

    def _take_hold(self, path: str) -> float | None:
        with self.lock:
            for item in self._holds:
                if item.match is not None and item.match not in path:
                    continue
                item.times -= 1
                if item.times <= 0:
                    self._holds.remove(item)
                return item.seconds
        return None

    # --- tokens ------------------------------------------------------------------------------

    def _token(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        legacy = path == "/cgi/corpAccessToken/get/V2"
        if not legacy and body.get("grantType") != "app_secret":
            raise _Fail(
                10006, "the parameter grantType is missing or illegal", "缺少参数或参数不合法"
            )
        with self.lock:
            if self._token_in_flight:
                raise _Fail(
                    30004, "token requests must not be concurrent", "获取token不允许并发调用"
                )
            now = self.clock()
            recent = [t for t in self.token_calls if t > now - 60]
            if len(recent) >= TOKEN_CALLS_PER_MINUTE:
                raise _Fail(
                    30004, "token requested more than 10 times a minute", "获取token频率超限"
                )
            self.token_calls.append(now)
            self._token_in_flight += 1
        try:
            if self.token_delay:
                time.sleep(self.token_delay)
            if body.get("appId") != self.app_id:
                raise _Fail(20006, "appId or appSecret is wrong", "appId或appSecret错误")
            if body.get("appSecret") != self.app_secret:
                raise _Fail(
                    10006, "the parameter appSecret is missing or illegal", "缺少参数或参数不合法"
                )
            if body.get("permanentCode") != self.permanent_code:
                raise _Fail(20015, "permanentCode is wrong", "永久授权码错误")
            issued = self._issue("legacy" if legacy else "oauth")
        finally:
            with self.lock:
                self._token_in_flight -= 1
        expires_in = max(0, math.ceil(issued.expires_at - self.clock()))
        if legacy:
            return {
                "corpAccessToken": issued.value,
                "corpId": self.corp_id,
                "expiresIn": expires_in,
            }
        return {
            "openUserId": self.corp_id,
            "accessToken": issued.value,
            "expiresIn": expires_in,
            "appId": self.app_id,
            "ea": self.ea,
        }

    def _issue(self, style: str) -> _Issued:
        with self.lock:
            now = self.clock()
            current = self._current.get((self.app_id, style))
            if current is not None and now - current.issued_at < TOKEN_REUSE:
                return current
            issued = _Issued(
                uuid.uuid4().hex.upper(), self.app_id, style, now, now + TOKEN_LIFETIME
            )
            self._tokens[issued.value] = issued
            self._current[(self.app_id, style)] = issued
            return issued

    def _authenticate(self, request: Request, body: Mapping[str, Any]) -> _Caller:
        header = request.headers.get("authorization")
        in_body = any(k in body for k in ("corpAccessToken", "corpId", "currentOpenUserId"))
        if header and in_body:
            raise _Fail(
                20016,
                "the cropId,cropAccessToken or authorization is error",
                "请勿混用 authorization 请求头与 corpAccessToken",
            )
        if header:
            scheme, _, value = header.partition(" ")
            issued = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            if not self._valid(issued, "oauth") or request.headers.get("x-fs-ea") != self.ea:
                raise _Fail(
                    20016,
                    "the cropId,cropAccessToken or authorization is error",
                    "token 无效或已过期",
                )
            user = request.headers.get("x-fs-userid", "")
            if user.startswith("FSUID_"):
                if body.get("convertUserId") is not True:
                    raise _Fail(
                        10006,
                        "the parameter x-fs-userid is missing or illegal",
                        "FSUID_ 需要 convertUserId",
                    )
                user = self.employees.get(user, "")
            if user not in self.employees.values():
                raise _Fail(
                    10006, "the parameter x-fs-userid is missing or illegal", "缺少参数或参数不合法"
                )
            return _Caller(user)
        token = body.get("corpAccessToken")
        if not token:
            raise _Fail(
                20017, "corpAccessToken为必填项，不能为空", "corpAccessToken为必填项，不能为空"
            )
        issued = self._tokens.get(token) if isinstance(token, str) else None
        if not self._valid(issued, "legacy") or body.get("corpId") != self.corp_id:
            raise _Fail(
                20016,
                "the cropId,cropAccessToken or authorization is error",
                "corpAccessToken不存在或者已经过期",
            )
        operator = body.get("currentOpenUserId")
        if not isinstance(operator, str) or operator not in self.employees:
            raise _Fail(
                10006,
                "the parameter currentOpenUserId is missing or illegal",
                "缺少参数或参数不合法",
            )
        return _Caller(self.employees[operator])

    def _valid(self, issued: _Issued | None, style: str) -> bool:
        return issued is not None and issued.style == style and self.clock() < issued.expires_at

    def _count_call(self, path: str) -> None:
        with self.lock:
            now = self.clock()
            if not self.quota_purchased:
                raise _Fail(30003, "no OpenAPI quota purchased", "企业未购买OpenAPI调用次数")
            day = datetime.fromtimestamp(now, BEIJING).date().isoformat()
            used = self._daily.get(day, 0)
            if self.daily_quota is not None and used >= self.daily_quota:
                raise _Fail(
                    30002, "daily OpenAPI quota exceeded", "今日调用次数已用完，次日0点重置"
                )
            if self.endpoint_limit is not None:
                calls = self._endpoint_calls.setdefault(path, deque())
                while calls and calls[0] <= now - ENDPOINT_WINDOW:
                    calls.popleft()
                if len(calls) >= self.endpoint_limit:
                    raise _Fail(30004, "调用频率超出限制", "单接口调用频率超限（100次/20秒）")
                calls.append(now)
            self._daily[day] = used + 1

    # --- objects -----------------------------------------------------------------------------

    def _object_list(self) -> dict[str, Any]:
        objects = [
            {"describeApiName": api, "describeDisplayName": label, "isActive": True}
            for api, (label, _fields) in OBJECTS.items()
        ]
        return {"data": {"objects": objects}}

    def _describe(self, body: Mapping[str, Any]) -> dict[str, Any]:
        data = body["data"]
        api = data.get("apiName")
        if api not in OBJECTS:
            raise _param(f"apiName {api!r} is not an object of this tenant")
        label, fields = OBJECTS[api]
        described = {
            name: {
                "api_name": name,
                "label": spec.label,
                "type": spec.type,
                "is_required": spec.required,
                **(
                    {"options": [{"value": o, "label": o} for o in spec.options]}
                    if spec.options
                    else {}
                ),
                **({"target_api_name": spec.target} if spec.target else {}),
            }
            for name, spec in fields.items()
        }
        return {"data": {"describe": {"api_name": api, "display_name": label, "fields": described}}}

    def _api(
        self, data: Mapping[str, Any], custom: bool, *, inside: Mapping[str, Any] | None = None
    ) -> str:
        holder = inside if inside is not None else data
        api = holder.get("dataObjectApiName")
        if not isinstance(api, str) or not api:
            where = (
                "object_data.dataObjectApiName" if inside is not None else "data.dataObjectApiName"
            )
            raise _param(f"{where} is required")
        if api not in OBJECTS:
            raise _param(f"dataObjectApiName {api!r} is not an object of this tenant")
        if api.endswith("__c") != custom:
            raise _param(
                f"{api} is a {'custom' if api.endswith('__c') else 'standard'} object: use "
                f"/cgi/crm/{'custom/' if api.endswith('__c') else ''}v2/data/*"
            )
        return api

    # --- query ---------------------------------------------------------------------------------

    def _query(self, body: Mapping[str, Any], caller: _Caller, custom: bool) -> dict[str, Any]:
        data = body["data"]
        api = self._api(data, custom)
        fields = OBJECTS[api][1]
        info = data.get("search_query_info")
        if info is None and "searchQueryInfo" in data:
            raise _param("search_query_info is required (snake_case)")
        if not isinstance(info, dict):
            raise _param("search_query_info is required")
        limit = info.get("limit", DEFAULT_LIMIT)
        offset = info.get("offset", 0)
        if not _is_int(limit) or not _is_int(offset):
            raise _param("limit and offset must be integers")
        if offset > MAX_OFFSET:
            raise _Fail(10013, "offset out of range 10000", "offset 不能超过10000")
        if not 1 <= limit <= MAX_LIMIT:
            raise _Fail(10013, "limit out of range 100", "limit 必须在 1 到 100 之间")
        if offset < 0 or offset % limit:
            raise _Fail(10013, "offset must be a multiple of limit", "offset 必须是 limit 的整数倍")
        filters = [_parse_filter(i, f, fields) for i, f in enumerate(_list(info, "filters"))]
        orders = [_parse_order(o, fields) for o in _list(info, "orders")]
        projection = info.get("fieldProjection")
        if projection is not None:
            if not isinstance(projection, list) or not all(isinstance(p, str) for p in projection):
                raise _param("fieldProjection must be a list of field api names")
            if unknown := [p for p in projection if p not in fields]:
                raise _param(f"fieldProjection: no field {unknown[0]!r} on {api}")
        include_null = data.get("includeNull") is True or body.get("includeNull") is True
        with_total = data.get("find_explicit_total_num", True) is not False
        with self.lock:
            rows, total = self._select(api, filters, orders, offset, limit)
            listed = [_present(r, fields, projection, include_null) for r in rows]
        return {
            "data": {
                "dataList": listed,
                "offset": offset,
                "limit": limit,
                "total": total if with_total else 0,
            }
        }

    def _select(
        self,
        api: str,
        filters: list[tuple[str, str, list[Any]]],
        orders: list[tuple[str, bool]],
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        store, ids = self._data[api], self._order[api]
        if orders == [("_id", True)] and all(
            name == "_id" and op in ("GT", "GTE") for name, op, _ in filters
        ):
            # The deep-paging pattern (order by _id, _id GT last): a bisect, not a scan.
            start = 0
            for _, op, values in filters:
                at = (bisect.bisect_right if op == "GT" else bisect.bisect_left)(ids, values[0])
                start = max(start, at)
            chosen = ids[start + offset : start + offset + limit]
            return [store[i] for i in chosen], len(ids) - start
        matched = [r for r in (store[i] for i in ids) if all(_test(r, f) for f in filters)]
        for name, ascending in reversed(orders or [("last_modified_time", False)]):
            present = [r for r in matched if r.get(name) is not None]
            absent = [r for r in matched if r.get(name) is None]
            present.sort(key=_sort_key_of(name), reverse=not ascending)
            matched = present + absent
        return matched[offset : offset + limit], len(matched)

    # --- reads and writes ------------------------------------------------------------------------

    def _get(self, body: Mapping[str, Any], caller: _Caller, custom: bool) -> dict[str, Any]:
        data = body["data"]
        api = self._api(data, custom)
        record_id = data.get("objectDataId")
        if not isinstance(record_id, str):
            raise _param("objectDataId is required")
        with self.lock:
            return {"data": _present(self._find(api, record_id), OBJECTS[api][1], None, False)}

    def _create(self, body: Mapping[str, Any], caller: _Caller, custom: bool) -> dict[str, Any]:
        data = body["data"]
        values = data.get("object_data")
        if not isinstance(values, dict):
            raise _param("data.object_data is required")
        if "dataObjectApiName" in data and "dataObjectApiName" not in values:
            raise _param("dataObjectApiName belongs inside object_data for create")
        api = self._api(data, custom, inside=values)
        fields = OBJECTS[api][1]
        given = {k: v for k, v in values.items() if k != "dataObjectApiName"}
        with self.lock:
            checked = self._checked(api, given, creating=True)
            for name, spec in fields.items():
                if (
                    spec.required
                    and name not in SYSTEM_FIELDS
                    and checked.get(name) in (None, "", [])
                ):
                    raise _Fail(15002, f"field {name} is required", f"{spec.label}为必填项")
            under_review = (
                api in APPROVAL_FLOW_OBJECTS and body.get("triggerApprovalFlow") is not False
            )
            if body.get("triggerWorkFlow") is not False:
                self.workflow_runs += 1
            now = self._now_ms()
            record: dict[str, Any] = {name: None for name in fields}
            record.update(checked)
            record.update(
                _id=self._new_id(now),
                created_by=[caller.employee_id],
                last_modified_by=[caller.employee_id],
                create_time=now,
                last_modified_time=now,
                life_status="under_review" if under_review else "normal",
                lock_status="0",
                is_deleted=False,
                record_type=checked.get("record_type") or "default__c",
            )
            self._insert(api, record)
        return {"dataId": record["_id"]}

    def _update(self, body: Mapping[str, Any], caller: _Caller, custom: bool) -> dict[str, Any]:
        data = body["data"]
        values = data.get("object_data")
        if not isinstance(values, dict):
            raise _param("data.object_data is required")
        if "dataObjectApiName" in data and "dataObjectApiName" not in values:
            raise _param("dataObjectApiName belongs inside object_data for update")
        api = self._api(data, custom, inside=values)
        record_id = values.get("_id")
        if not isinstance(record_id, str):
            raise _param("object_data._id is required for update")
        if "owner" in values:
            raise _param("owner cannot be changed through update: use /cgi/crm/v2/data/changeOwner")
        given = {k: v for k, v in values.items() if k not in ("dataObjectApiName", "_id")}
        with self.lock:
            record = self._find(api, record_id)
            if record["life_status"] == "invalid":
                raise _param(f"record {record_id} is voided (invalid) and cannot be edited")
            if record["lock_status"] == "1":
                raise _param(f"record {record_id} is locked")
            checked = self._checked(api, given, creating=False)
            for name, value in checked.items():
                if value is None and OBJECTS[api][1][name].required:
                    raise _Fail(15002, f"field {name} is required", "必填字段不能为空")
            record.update(checked)
            record["last_modified_time"] = max(self._now_ms(), record["last_modified_time"])
            record["last_modified_by"] = [caller.employee_id]
        return {}

    def _invalid(self, body: Mapping[str, Any], caller: _Caller, custom: bool) -> dict[str, Any]:
        data = body["data"]
        api = self._api(data, custom)
        record_id = data.get("object_data_id")
        if not isinstance(record_id, str):
            raise _param("object_data_id is required and is a single id")
        with self.lock:
            record = self._find(api, record_id)
            if record["life_status"] == "invalid":
                raise _param(f"record {record_id} is already voided")
            if record["lock_status"] == "1":
                raise _param(f"record {record_id} is locked")
            record["life_status"] = "invalid"
            record["last_modified_time"] = max(self._now_ms(), record["last_modified_time"])
            record["last_modified_by"] = [caller.employee_id]
        return {}

    def _delete(self, body: Mapping[str, Any], caller: _Caller, custom: bool) -> dict[str, Any]:
        data = body["data"]
        api = self._api(data, custom)
        ids = _id_list(data)
        with self.lock:
            for record_id in ids:
                if self._find(api, record_id)["life_status"] != "invalid":
                    raise _param(
                        f"record {record_id} is not voided: only voided records can be deleted"
                    )
            for record_id in ids:
                self._drop(api, record_id)
        return {}

    def _recover(self, body: Mapping[str, Any], caller: _Caller, custom: bool) -> dict[str, Any]:
        data = body["data"]
        api = self._api(data, custom)
        ids = _id_list(data)
        with self.lock:
            for record_id in ids:
                if self._find(api, record_id)["life_status"] != "invalid":
                    raise _param(f"record {record_id} is not voided")
            for record_id in ids:
                record = self._data[api][record_id]
                record["life_status"] = "normal"
                record["last_modified_time"] = max(self._now_ms(), record["last_modified_time"])
        return {}

    def _change_owner(
        self, body: Mapping[str, Any], caller: _Caller, custom: bool
    ) -> dict[str, Any]:
        data = body["data"]
        api = self._api(data, custom)
        changes = data.get("Data")
        if not isinstance(changes, list) or not changes:
            raise _param("Data is required: a list of {objectDataId, ownerId}")
        with self.lock:
            for change in changes:
                if not isinstance(change, dict) or not isinstance(change.get("objectDataId"), str):
                    raise _param("Data[].objectDataId is required")
                owner = self._check_value(api, "owner", change.get("ownerId"))
                record = self._find(api, change["objectDataId"])
                record["owner"] = owner
                record["last_modified_time"] = max(self._now_ms(), record["last_modified_time"])
        return {}

    # --- validation ----------------------------------------------------------------------------

    def _checked(self, api: str, given: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        fields = OBJECTS[api][1]
        checked: dict[str, Any] = {}
        for name, value in given.items():
            if name not in fields:
                raise _param(f"field {name} does not exist on {api}")
            if name in SYSTEM_FIELDS:
                raise _param(f"field {name} is a system field and cannot be written")
            if name == "owner" and not creating:
                raise _param("owner cannot be changed through update")
            checked[name] = None if value is None else self._check_value(api, name, value)
        return checked

    def _check_value(self, api: str, name: str, value: Any) -> Any:
        spec = OBJECTS[api][1][name]
        kind = spec.type
        if kind in ("text", "long_text", "email", "phone_number", "record_type"):
            if not isinstance(value, str):
                raise _param(f"field {name} ({kind}) takes a string")
            if kind == "email" and value and not _EMAIL.match(value):
                raise _param(f"field {name} is not a valid email address")
            if kind == "phone_number" and value and not _PHONE.match(value):
                raise _param(f"field {name} is not a valid phone number")
            return value
        if kind in ("number", "currency"):
            if not isinstance(value, str) or not _NUMBER.match(value):
                raise _param(f'field {name} ({kind}) takes a number as a string, e.g. "100.01"')
            return value
        if kind in ("date", "date_time"):
            if not _is_int(value):
                raise _param(f"field {name} ({kind}) takes epoch milliseconds (a Long)")
            return value
        if kind == "select_one":
            if not isinstance(value, str) or value not in spec.options:
                raise _param(f"field {name} takes one of the option values {list(spec.options)}")
            return value
        if kind == "employee":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) and v in self.employees.values() for v in value)
            ):
                raise _param(f'field {name} (employee) takes a list of employee ids, e.g. ["1000"]')
            return list(value)
        if kind == "true_or_false":
            if not isinstance(value, bool):
                raise _param(f"field {name} takes a JSON boolean")
            return value
        if kind == "object_reference":
            assert spec.target is not None
            if not isinstance(value, str) or value not in self._data[spec.target]:
                raise _param(f"field {name} must be the _id of an existing {spec.target}")
            return value
        raise _param(f"field {name} cannot be written")  # pragma: no cover

    # --- storage -------------------------------------------------------------------------------

    def _find(self, api: str, record_id: str) -> dict[str, Any]:
        found = self._data[api].get(record_id)
        if found is None:
            raise _param(f"record {record_id} of {api} does not exist or was deleted")
        return found

    def _insert(self, api: str, record: dict[str, Any]) -> None:
        self._data[api][record["_id"]] = record
        bisect.insort(self._order[api], record["_id"])

    def _drop(self, api: str, record_id: str) -> None:
        del self._data[api][record_id]
        ids = self._order[api]
        del ids[bisect.bisect_left(ids, record_id)]

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _new_id(self, at_ms: int) -> str:
        # 24 hex characters like a Mongo ObjectId: seconds first, so ids sort by creation.
        self._sequence += 1
        return f"{at_ms // 1000 & 0xFFFFFFFF:08x}{self.seed & 0xFFFF:04x}{self._sequence:012x}"

    def _seed(self, count: int) -> None:
        newest = min(_seed.SEED_EPOCH_MS, self._now_ms() - 86_400_000)
        oldest = newest - _seed.SEED_SPAN_MS
        account_ids: list[str] = []
        accounts = _seed.accounts(max(1, math.ceil(count / 10)), seed=self.seed)
        for index, (name, tel) in enumerate(accounts):
            created = oldest + index * (_seed.SEED_SPAN_MS // (2 * len(accounts)))
            record = self._blank("AccountObj", created, created)
            record.update(name=name, tel=tel, account_no=f"KH{index + 1:06d}", account_type="1")
            self._insert("AccountObj", record)
            account_ids.append(record["_id"])
        step = max(1, _seed.SEED_SPAN_MS // max(count, 1))
        for index, person in enumerate(_seed.contacts(count, seed=self.seed)):
            created = oldest + index * step
            # Edits land anywhere up to the newest seeded instant; a bulk import in the
            # middle gave a few percent of contacts one identical last_modified_time.
            modified = created + (index * 7919 % (newest - created + 1))
            if index % 40 == 3:
                modified = max(created, oldest + _seed.SEED_SPAN_MS // 2)
            record = self._blank("ContactObj", created, modified)
            record.update(
                name=person.name,
                mobile1=person.mobile,
                email=person.email,
                add=person.address,
                gender=person.gender,
                job_title=person.job_title,
                account_id=account_ids[index % len(account_ids)],
                intimacy__c=str(index % 100) if index % 3 == 0 else None,
                date_of_birth=_birthday_ms(person.birthday) if person.birthday else None,
            )
            self._insert("ContactObj", record)

    def _blank(self, api: str, created: int, modified: int) -> dict[str, Any]:
        record: dict[str, Any] = {name: None for name in OBJECTS[api][1]}
        record.update(
            _id=self._new_id(created),
            owner=["1000"],
            created_by=["1000"],
            last_modified_by=["1000"],
            create_time=created,
            last_modified_time=modified,
            life_status="normal",
            lock_status="0",
            is_deleted=False,
            record_type="default__c",
        )
        return record


# --- helpers -----------------------------------------------------------------------------------


def _bind(
    handler: Callable[[Mapping[str, Any], _Caller, bool], dict[str, Any]], custom: bool
) -> Callable[[Mapping[str, Any], _Caller, bool], dict[str, Any]]:
    return lambda body, caller, _: handler(body, caller, custom)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(info: Mapping[str, Any], key: str) -> list[Any]:
    value = info.get(key) or []
    if not isinstance(value, list):
        raise _param(f"search_query_info.{key} must be a list")
    return value


def _parse_filter(
    index: int, raw: Any, fields: Mapping[str, FieldSpec]
) -> tuple[str, str, list[Any]]:
    if not isinstance(raw, dict):
        raise _param(f"filters[{index}] must be an object")
    name, values, operator = raw.get("field_name"), raw.get("field_values"), raw.get("operator")
    if not isinstance(name, str):
        raise _param(f"filters[{index}].field_name is required (snake_case)")
    if name not in fields:
        raise _param(f"filters[{index}]: no field {name!r} on this object")
    if operator not in OPERATORS:
        raise _param(f"filters[{index}].operator {operator!r} is not an operator")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _param(f"filters[{index}].field_values must be a list of strings")
    if operator not in ("IS", "ISN") and not values:
        raise _param(f"filters[{index}].field_values is empty")
    if operator in ("BETWEEN", "NBETWEEN") and len(values) != 2:
        raise _param(f"filters[{index}]: {operator} takes two field_values")
    kind = fields[name].type
    try:
        typed = [_typed(kind, v) for v in values]
    except (ValueError, InvalidOperation):
        raise _param(f"filters[{index}].field_values do not fit field {name} ({kind})") from None
    return name, str(operator), typed


def _typed(kind: str, value: str) -> Any:
    if kind in ("date", "date_time"):
        return int(value)
    if kind in ("number", "currency"):
        return Decimal(value)
    if kind == "true_or_false":
        return value == "true"
    return value


def _parse_order(raw: Any, fields: Mapping[str, FieldSpec]) -> tuple[str, bool]:
    if not isinstance(raw, dict) or not isinstance(raw.get("fieldName"), str):
        raise _param("orders[].fieldName is required (camelCase)")
    if raw["fieldName"] not in fields:
        raise _param(f"orders: no field {raw['fieldName']!r} on this object")
    ascending = raw.get("isAsc", True)
    if not isinstance(ascending, bool):
        raise _param("orders[].isAsc must be a boolean")
    return raw["fieldName"], ascending


def _comparable(value: Any) -> Any:
    if isinstance(value, str) and _NUMBER.match(value):
        return Decimal(value)
    return value


def _sort_key_of(name: str) -> Callable[[Mapping[str, Any]], Any]:
    def key(record: Mapping[str, Any]) -> Any:
        value = record[name]
        return tuple(value) if isinstance(value, list) else value

    return key


def _test(record: Mapping[str, Any], condition: tuple[str, str, list[Any]]) -> bool:
    name, op, values = condition
    value = record.get(name)
    empty = value is None or value == "" or value == []
    if op == "IS":
        return empty
    if op == "ISN":
        return not empty
    items: Iterable[Any] = value if isinstance(value, list) else [value]
    if op in ("HASANYOF", "NHASANYOF"):
        hit = any(item in values for item in items)
        return hit if op == "HASANYOF" else not hit
    if empty:
        return op in ("N", "NIN", "NLIKE", "NBETWEEN")
    first = values[0]
    if isinstance(first, Decimal):
        value = _comparable(value)
    if op in ("EQ", "IN", "N", "NIN"):
        hit = any(item in values for item in items) if isinstance(value, list) else value in values
        return hit if op in ("EQ", "IN") else not hit
    text = str(value)
    if op in ("LIKE", "CONTAINS"):
        return str(first) in text
    if op == "NLIKE":
        return str(first) not in text
    if op == "STARTWITH":
        return text.startswith(str(first))
    if op == "ENDWITH":
        return text.endswith(str(first))
    try:
        if op == "GT":
            return bool(value > first)
        if op == "GTE":
            return bool(value >= first)
        if op == "LT":
            return bool(value < first)
        if op == "LTE":
            return bool(value <= first)
        inside = bool(values[0] <= value <= values[1])
        return inside if op == "BETWEEN" else not inside
    except TypeError:
        return False


def _present(
    record: Mapping[str, Any],
    fields: Mapping[str, FieldSpec],
    projection: list[str] | None,
    include_null: bool,
) -> dict[str, Any]:
    names: Iterable[str] = ["_id", *(p for p in projection if p != "_id")] if projection else fields
    shown: dict[str, Any] = {}
    for name in names:
        value = record.get(name)
        if value is None and not include_null:
            continue
        shown[name] = value
    return shown


def _id_list(data: Mapping[str, Any]) -> list[str]:
    ids = data.get("idList")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise _param("idList is required: a non-empty list of ids")
    return ids


def _birthday_ms(day: str) -> int:
    return int(
        datetime.combine(date.fromisoformat(day), datetime.min.time(), BEIJING).timestamp() * 1000
    )
