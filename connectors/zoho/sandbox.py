"""An emulator of Zoho CRM API v8 and its accounts server, as strict as Zoho.

Implements the Zoho checklist of Part D of ``shared/protocols/crm-zoho-fxiaoke.md`` on one
listener (the accounts server and the API domain are both :attr:`ZohoSandbox.url`):

1. ``POST /oauth/v2/token``: form body or query string; ``refresh_token`` and
   ``authorization_code`` grants; ``{"access_token","api_domain","token_type":"Bearer",
   "expires_in","scope"}``, a ``refresh_token`` only from the code grant; HTTP 200
   ``{"error":"invalid_code"}`` / ``{"error":"invalid_client"}``; at most 10 access tokens per
   refresh token per 10 minutes (then HTTP 400 ``Access Denied``), at most 30 live ones (the
   oldest dies). ``api_domain`` is the sandbox's own URL, never a Zoho host.
2. ``POST /oauth/v2/token/revoke``.
3. Every ``/crm/v8`` call needs ``Authorization: Zoho-oauthtoken <live token>``: 401
   ``INVALID_TOKEN`` for an unknown or expired token, 401 ``AUTHENTICATION_FAILURE`` for none or
   another scheme (``Bearer``).
4. ``GET /crm/v8/{Module}``: ``fields`` required (≤50, known names), ``per_page`` ≤200, ``sort_by``
   id|Created_Time|Modified_Time, ``sort_order`` asc|desc (default id desc), ``page × per_page``
   ≤2,000 (``DISCRETE_PAGINATION_LIMIT_EXCEEDED``), ``page_token`` from ``info.next_page_token``
   (24 h, bound to the other parameters, not with ``page``, ≤100,000 records),
   ``If-Modified-Since`` (ISO-8601 with offset, or an HTTP date) with 304 when nothing matches,
   204 when empty; ``info`` as Zoho sends it.
5. ``GET …/{id}``, ``POST`` insert, ``PUT`` update, ``POST …/upsert``, ``DELETE ?ids=``: ≤100
   records (``LIMIT_EXCEEDED``), per-record results in ``data[]`` (status 201/200, 207 when mixed,
   400 when every record failed), upsert matching by ``duplicate_check_fields`` in order (the
   system field ``Email`` ignored when not listed) or, without it, Email then the unique fields;
   ``MANDATORY_NOT_FOUND``, ``INVALID_DATA`` (with ``expected_data_type`` or
   ``maximum_length``), ``DUPLICATE_DATA`` for a unique field; ``Modified_Time`` set on every
   write in the user's time zone; 19-digit string ids.
6. ``GET …/deleted`` (type all|recycle|permanent, If-Modified-Since, 204), ``GET …/search``
   (criteria|email|phone|word, "equals" as contains, 2,000 cap), ``POST /crm/v8/coql`` (a subset:
   ``select … from M where … [order by …] [limit o, n]``, WHERE required).
   **The recycle bin**, as Zoho keeps it: a deleted record (``DELETE ?ids=`` or
   :meth:`ZohoSandbox.delete_in_crm`) is not gone; it goes to the recycle bin with all its
   fields for 60 days (``type: recycle`` in the deleted-records feed), then Zoho deletes it
   for good (``type: permanent``, an id and a time, listed for 120 days). ``GET
   /crm/v8/settings/recycle_bin[/{id}]`` lists what the bin holds (204 when nothing), ``DELETE
   /crm/v8/settings/recycle_bin?ids=`` (≤100) or ``…/{id}`` deletes for good now: ``SUCCESS``,
   or ``INVALID_DATA`` for an id the bin does not hold. ``purge_allowed=False`` plays a token
   without the ``ZohoCRM.settings.recycle_bin.DELETE`` scope (401 ``OAUTH_SCOPE_MISMATCH``).
7. ``GET /crm/v8/settings/fields?module=``, ``/settings/modules``, ``/users?type=CurrentUser``,
   ``/org`` for the official SDK.
8. Faults (the kit's): 429 ``TOO_MANY_REQUESTS`` in Zoho's envelope with no ``Retry-After`` (Zoho
   sends none), 500 ``INTERNAL_ERROR``; ``concurrency`` (429 above that many requests in flight);
   credits counted (1 per read, 1 per 10 records written), 429 past ``daily_credits``.

Where the spec marks a detail unconfirmed [U] (the exact ``details`` of a bad ``per_page`` or an
unknown field name, the status of an all-failed batch), the sandbox refuses rather than accepts,
so that what passes here does not depend on Zoho being lenient.
"""

from __future__ import annotations

import math
import random
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Final

from connectors.zoho._model import (
    EMAIL,
    LAYOUTS,
    MODULE_IDS,
    PHONE,
    READ_ONLY,
    SYSTEM_DUPLICATE_FIELD,
    FieldSpec,
    ModuleData,
    Refusal,
    full_name,
    is_date,
    record_error,
    refuse,
    zoho_error,
)
from connectors.zoho._query import ZohoQueries
from connectors.zoho._seed import cn_phone, latin_contact
from connectors.zoho.mapping import split_name
from vault.sandbox import Request, Response, Sandbox, json_response
from vault.synthetic import generate_customers

TOKEN_LIFETIME: Final = 3600
PAGE_TOKEN_LIFETIME: Final = 24 * 3600
TOKENS_PER_WINDOW: Final = 10  # access tokens per refresh token ...
TOKEN_WINDOW: Final = 600  # ... per 10 minutes
LIVE_TOKENS: Final = 30  # live access tokens per refresh token
MAX_FIELDS: Final = 50
MAX_PER_PAGE: Final = 200
DISCRETE_LIMIT: Final = 2_000
PAGE_TOKEN_LIMIT: Final = 100_000
MAX_WRITE: Final = 100
DEFAULT_RECORDS: Final = 100
RECYCLE_BIN_DAYS: Final = 60  # a deleted record stays in the recycle bin, whole, this long
PERMANENT_LIST_DAYS: Final = 120  # a record deleted for good is listed (id and time) this long
DAY: Final = 86_400
TRIGGERS: Final = frozenset({"workflow", "approval", "blueprint"})
SORT_FIELDS: Final = ("id", "Created_Time", "Modified_Time")
# --- state ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _PageToken:
    offset: int
    bound: tuple[Any, ...]
    user: str
    expires: float


class ZohoSandbox(ZohoQueries, Sandbox):
    """Zoho CRM v8 on loopback. ``records`` Contacts seeded from ``seed`` (about one in five with
    a Latin name, the rest Chinese), ``tz`` the org user's time zone offset."""

    name = "zoho"

    def __init__(
        self,
        *,
        seed: int = 0,
        records: int | None = None,
        tz: str = "+08:00",
        token_lifetime: int = TOKEN_LIFETIME,
        concurrency: int | None = None,
        daily_credits: int | None = None,
        data_centre: str = "US",
        purge_allowed: bool = True,
    ) -> None:
        super().__init__(seed=seed, records=records)
        self.purge_allowed = purge_allowed
        # id -> (module name, the record as it was, deleted at): what the recycle bin holds
        self.recycle_bin: dict[str, tuple[str, dict[str, Any], int]] = {}
        rng = random.Random(seed)
        self.tz = _parse_offset(tz)
        self.token_lifetime = token_lifetime
        self.concurrency = concurrency
        self.daily_credits = daily_credits
        self.data_centre = data_centre
        self.credits_used = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._flight_lock = threading.Lock()
        self._offset = 0.0  # advance(): the sandbox's clock runs ahead of the real one
        self.client_id = f"1000.{_hex(rng, 30).upper()}"
        self.client_secret = _hex(rng, 42)
        self.refresh_token = f"1000.{_hex(rng, 32)}.{_hex(rng, 32)}"
        self.grant_codes: set[str] = {f"1000.{_hex(rng, 32)}.{_hex(rng, 32)}"}
        self.refresh_tokens: dict[str, str] = {self.refresh_token: "user-1"}
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token -> (refresh token, expiry)
        self.token_grants: dict[str, list[float]] = {}  # refresh token -> issue times
        self.page_tokens: dict[str, _PageToken] = {}
        self._id_prefix = str(rng.randrange(1_000_000, 9_999_999))
        self._next_serial = 376_000 + rng.randrange(1_000)
        self.user = {
            "name": "Sandbox Admin",
            "id": self._new_id(),
            "email": "admin@sandbox.zoho.test",
        }
        self.org_id = str(rng.randrange(10**8, 10**9))
        self.modules = {
            name: ModuleData(
                name,
                dict(layout),
                {},
                [],
                index={
                    f: {}
                    for f in [
                        SYSTEM_DUPLICATE_FIELD[name],
                        *(s.api_name for s in layout.values() if s.unique),
                    ]
                },
            )
            for name, layout in LAYOUTS.items()
        }
        self._views: dict[tuple[Any, ...], list[str]] = {}
        self._seed_contacts(rng, DEFAULT_RECORDS if records is None else records)

    # --- the kit's interface -------------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "grant_code": next(iter(self.grant_codes), ""),
        }

    def urls(self) -> dict[str, str]:
        return {"base_url": self.url, "accounts_url": self.url, "api_url": self.url}

    def settings(self, **overrides: str) -> dict[str, str]:
        """The ``zoho`` connector's settings pointing at this sandbox."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "data_centre": self.data_centre,
            "accounts_url": self.url,
            "api_url": self.url,
            **overrides,
        }

    def expire_tokens(self) -> None:
        with self.lock:
            for token, (refresh, _) in list(self.access_tokens.items()):
                self.access_tokens[token] = (refresh, self.now() - 1)

    def render_rate_limit(self, retry_after: float) -> Response:
        # Zoho documents no Retry-After on its 429 (Part A10): the client must back off.
        return zoho_error(429, "TOO_MANY_REQUESTS", "too many requests")

    def render_server_error(self) -> Response:
        return zoho_error(500, "INTERNAL_ERROR", "Internal Server Error")

    # --- clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock forward (token and page-token expiry)."""
        with self.lock:
            self._offset += seconds

    def _render_time(self, epoch: float) -> str:
        return datetime.fromtimestamp(int(epoch), self.tz).isoformat(timespec="seconds")

    # --- inspection for tests ------------------------------------------------------------------

    def stored(self, module: str = "Contacts") -> list[dict[str, Any]]:
        """Every live record of ``module`` as Zoho would render it (all fields), in id order."""
        with self.lock:
            target = self.modules[module]
            return [self._render(target, r, None) for r in target.records.values()]

    def modify(self, record_id: str, module: str = "Contacts", **fields: Any) -> None:
        """A change made in Zoho's UI: set fields, bump Modified_Time."""
        with self.lock:
            target = self.modules[module]
            record = target.records[record_id]
            target.change(record, fields)
            self._touch(target, record)

    def delete_in_crm(self, record_id: str, module: str = "Contacts") -> None:
        """A record deleted in Zoho's UI: into the recycle bin, and in the deleted-records feed."""
        with self.lock:
            self._delete(self.modules[module], record_id)

    def holds(self, record_id: str) -> str | None:
        """Where the platform still holds the data of ``record_id``: ``"live"``,
        ``"recycle_bin"``, or ``None`` when it is gone for good (or never was)."""
        with self.lock:
            self._empty_recycle_bin()
            if any(record_id in m.records for m in self.modules.values()):
                return "live"
            return "recycle_bin" if record_id in self.recycle_bin else None

    # --- dispatch ------------------------------------------------------------------------------

    def _serve(self, request: Request) -> Response | None:
        # Counted around the kit's fault handling too, so a held ("timeout") request is in flight.
        with self._flight_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            over = self.concurrency is not None and self.in_flight > self.concurrency
        try:
            if over:
                self.request_log.append((request.method, request.path))
                return self.render_rate_limit(0)
            return super()._serve(request)
        finally:
            with self._flight_lock:
                self.in_flight -= 1

    def handle(self, request: Request) -> Response:
        with self.lock:
            try:
                return self._route(request)
            except Refusal as refusal:
                return refusal.response

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/oauth/v2/token":
            return self._token(request)
        if path == "/oauth/v2/token/revoke":
            return self._revoke(request)
        if not path.startswith("/crm/v8/"):
            return zoho_error(
                404,
                "INVALID_URL_PATTERN",
                "Please check if the URL trying to access is a correct one",
            )
        self._authenticate(request)
        parts = path[len("/crm/v8/") :].split("/")
        method = request.method
        if parts == ["users"] and method == "GET":
            return self._read(self._users(request))
        if parts == ["org"] and method == "GET":
            return self._read(
                json_response({"org": [{"id": self.org_id, "company_name": "Sandbox Org"}]})
            )
        if parts == ["settings", "fields"] and method == "GET":
            return self._read(self._settings_fields(request))
        if parts == ["settings", "modules"] and method == "GET":
            return self._read(self._settings_modules())
        if parts[:2] == ["settings", "recycle_bin"] and len(parts) <= 3:
            return self._recycle_bin_route(request, parts[2] if len(parts) == 3 else None)
        if parts == ["coql"]:
            self._method(method, "POST")
            return self._read(self._coql(request))
        module = self._module(parts[0])
        if len(parts) == 1:
            if method == "GET":
                return self._read(self._list(module, request))
            if method == "POST":
                return self._write(module, request, "insert")
            if method == "PUT":
                return self._write(module, request, "update")
            if method == "DELETE":
                return self._delete_many(module, request)
            raise self._not_allowed()
        if len(parts) == 2 and parts[1] == "upsert":
            self._method(method, "POST")
            return self._write(module, request, "upsert")
        if len(parts) == 2 and parts[1] == "deleted":
            self._method(method, "GET")
            return self._read(self._deleted(module, request))
        if len(parts) == 2 and parts[1] == "search":
            self._method(method, "GET")
            return self._read(self._search(module, request))
        if len(parts) == 2 and parts[1].isdigit():
            if method == "GET":
                return self._read(self._get_one(module, parts[1]))
            if method == "PUT":
                return self._write(module, request, "update", record_id=parts[1])
            if method == "DELETE":
                return self._delete_ids(module, [parts[1]])
            raise self._not_allowed()
        return zoho_error(
            404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one"
        )

    def _method(self, method: str, allowed: str) -> None:
        if method != allowed:
            raise self._not_allowed()

    def _not_allowed(self) -> Refusal:
        return refuse(
            405, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one"
        )

    def _module(self, name: str) -> ModuleData:
        module = self.modules.get(name)
        if module is None:
            raise refuse(
                400,
                "INVALID_MODULE",
                "the module name given seems to be invalid",
                resource_path_index=0,
            )
        return module

    def _spend(self, credits: int) -> None:
        self.credits_used += credits
        if self.daily_credits is not None and self.credits_used > self.daily_credits:
            raise Refusal(self.render_rate_limit(0))

    def _read(self, response: Response) -> Response:
        self._spend(1)
        return response

    # --- OAuth ---------------------------------------------------------------------------------

    def _oauth_params(self, request: Request) -> dict[str, str]:
        params = {k: v[0] for k, v in request.query.items() if v}
        if request.body:
            params.update(request.form())
        return params

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response({"error": "invalid_request"}, 405)
        params = self._oauth_params(request)
        grant = params.get("grant_type")
        if params.get("client_id") != self.client_id or (
            params.get("client_secret") != self.client_secret
        ):
            return json_response({"error": "invalid_client"})
        if grant == "refresh_token":
            refresh = params.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return json_response({"error": "invalid_code"})
            return self._issue(refresh, include_refresh=False)
        if grant == "authorization_code":
            code = params.get("code", "")
            if code not in self.grant_codes or not params.get("redirect_uri"):
                return json_response({"error": "invalid_code"})
            self.grant_codes.discard(code)
            refresh = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            self.refresh_tokens[refresh] = "user-1"
            return self._issue(refresh, include_refresh=True)
        return json_response({"error": "unsupported_grant_type"})

    def _issue(self, refresh: str, *, include_refresh: bool) -> Response:
        now = self.now()
        recent = [t for t in self.token_grants.get(refresh, []) if now - t < TOKEN_WINDOW]
        if len(recent) >= TOKENS_PER_WINDOW:
            return json_response(
                {
                    "error": "Access Denied",
                    "error_description": "You have made too many requests continuously. "
                    "Please try again after some time.",
                },
                400,
            )
        recent.append(now)
        self.token_grants[refresh] = recent
        live = [t for t, (r, _) in self.access_tokens.items() if r == refresh]
        for old in live[: max(0, len(live) - LIVE_TOKENS + 1)]:
            del self.access_tokens[old]
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self.access_tokens[token] = (refresh, now + self.token_lifetime)
        body: dict[str, Any] = {
            "access_token": token,
            "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.ALL ZohoCRM.coql.READ",
            "api_domain": self.url,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
        }
        if include_refresh:
            body["refresh_token"] = refresh
        return json_response(body)

    def _revoke(self, request: Request) -> Response:
        token = self._oauth_params(request).get("token", "")
        self.refresh_tokens.pop(token, None)
        for access, (refresh, _) in list(self.access_tokens.items()):
            if refresh == token:
                del self.access_tokens[access]
        return json_response({"status": "success"})

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token.strip():
            raise refuse(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        found = self.access_tokens.get(token.strip())
        if found is None or found[1] <= self.now():
            raise refuse(401, "INVALID_TOKEN", "invalid oauth token")
        return self.refresh_tokens.get(found[0], "user-1")

    # --- metadata ------------------------------------------------------------------------------

    def _users(self, request: Request) -> Response:
        return json_response(
            {
                "users": [
                    {
                        "id": self.user["id"],
                        "email": self.user["email"],
                        "full_name": self.user["name"],
                        "role": {"name": "CEO"},
                    }
                ],
                "info": {"per_page": 200, "count": 1, "page": 1, "more_records": False},
            }
        )

    def _settings_fields(self, request: Request) -> Response:
        name = request.arg("module")
        if not name:
            raise refuse(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                param_name="module",
            )
        module = self._module(name)
        json_types = {"boolean": "boolean", "lookup": "jsonobject"}
        return json_response(
            {
                "fields": [
                    {
                        "api_name": spec.api_name,
                        "data_type": spec.data_type,
                        "json_type": json_types.get(spec.data_type, "string"),
                        "length": spec.length,
                        "system_mandatory": spec.system_mandatory,
                        "custom_field": spec.custom,
                        "unique": {"casesensitive": False} if spec.unique else {},
                        "formula": {},
                        "rollup_summary": {},
                    }
                    for spec in module.layout.values()
                ]
            }
        )

    def _settings_modules(self) -> Response:
        return json_response(
            {
                "modules": [
                    {
                        "api_name": name,
                        "module_name": name,
                        "api_supported": True,
                        "generated_type": "default",
                        "id": self._id_prefix + "000000" + code,
                    }
                    for name, code in MODULE_IDS.items()
                ]
            }
        )

    # --- list ------------------------------------------------------------------------------------

    def _list(self, module: ModuleData, request: Request) -> Response:
        ids_arg = request.arg("ids")
        fields = self._fields_param(module, request, required=ids_arg is None)
        per_page = self._int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        page_arg = request.arg("page")
        token_arg = request.arg("page_token")
        if page_arg is not None and token_arg is not None:
            raise refuse(
                400,
                "AMBIGUITY_DURING_PROCESSING",
                "You cannot use both page and page_token",
                ambiguity_due_to=["page", "page_token"],
            )
        sort_by = request.arg("sort_by")
        if sort_by is not None and request.arg("cvid") is not None:
            raise refuse(
                400,
                "AMBIGUITY_DURING_PROCESSING",
                "You cannot use both cvid and sort_by",
                ambiguity_due_to=["cvid", "sort_by"],
            )
        sort_by = sort_by or "id"
        if sort_by not in SORT_FIELDS:
            raise refuse(
                400,
                "INVALID_DATA",
                "invalid data",
                param_name="sort_by",
                supported_values=list(SORT_FIELDS),
            )
        sort_order = request.arg("sort_order") or "desc"
        if sort_order not in ("asc", "desc"):
            raise refuse(
                400,
                "INVALID_DATA",
                "invalid data",
                param_name="sort_order",
                supported_values=["asc", "desc"],
            )
        since = self._if_modified_since(request)
        if ids_arg is not None:
            wanted = [i for i in ids_arg.split(",") if i]
            if len(wanted) > MAX_WRITE:
                raise refuse(
                    400, "LIMIT_EXCEEDED", "limit exceeded", param_name="ids", limit=MAX_WRITE
                )
            rows = [module.records[i] for i in wanted if i in module.records]
            if not rows:
                return Response(204)
            return json_response(
                {
                    "data": [self._render(module, r, fields) for r in rows],
                    "info": {
                        "per_page": per_page,
                        "count": len(rows),
                        "page": 1,
                        "more_records": False,
                    },
                }
            )
        bound = (
            module.name,
            tuple(fields or ()),
            per_page,
            sort_by,
            sort_order,
            since,
            request.arg("cvid"),
            request.arg("converted"),
            request.arg("approved"),
        )
        if token_arg is not None:
            token = self.page_tokens.get(token_arg)
            if token is None:
                raise refuse(400, "INVALID_DATA", "invalid data", param_name="page_token")
            if token.expires <= self.now():
                raise refuse(
                    400, "EXPIRED_VALUE", "the page token has expired", param_name="page_token"
                )
            if token.bound != bound:
                raise refuse(
                    400,
                    "TOKEN_BOUND_DATA_MISMATCH",
                    "the page token does not match the other parameters",
                    param_name="page_token",
                )
            start = token.offset
            if start >= PAGE_TOKEN_LIMIT:
                raise refuse(
                    400,
                    "PAGINATION_LIMIT_EXCEEDED",
                    "You can only get up to first 100000 records using page_token param.",
                    limit=PAGE_TOKEN_LIMIT,
                )
        else:
            page = self._int_param(request, "page", 1, 1, None)
            if page * per_page > DISCRETE_LIMIT:
                raise refuse(
                    400,
                    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                    "You can only get the first 2000 records without using page_token param.",
                    limit=DISCRETE_LIMIT,
                )
            start = (page - 1) * per_page
        view = self._view(module, sort_by, sort_order, since)
        if not view:
            return Response(304 if since is not None else 204)
        chunk = view[start : start + per_page]
        if not chunk:
            return Response(204)
        more = start + per_page < len(view)
        expiry = self.now() + PAGE_TOKEN_LIFETIME
        next_token = None
        if more:
            next_token = secrets.token_hex(16)
            self.page_tokens[next_token] = _PageToken(start + per_page, bound, "user-1", expiry)
        info = {
            "call": False,
            "per_page": per_page,
            "next_page_token": next_token,
            "count": len(chunk),
            "sort_by": sort_by,
            "page": start // per_page + 1,
            "previous_page_token": None,
            "page_token_expiry": self._render_time(expiry) if more else None,
            "sort_order": sort_order,
            "email": False,
            "more_records": more,
        }
        return json_response(
            {"data": [self._render(module, module.records[i], fields) for i in chunk], "info": info}
        )

    def _view(
        self, module: ModuleData, sort_by: str, sort_order: str, since: float | None
    ) -> list[str]:
        key = (module.name, module.version, sort_by, sort_order, since)
        view = self._views.get(key)
        if view is None:
            rows = [
                r for r in module.records.values() if since is None or r["Modified_Time"] > since
            ]
            if sort_by == "id":
                rows.sort(key=lambda r: int(r["id"]), reverse=sort_order == "desc")
            else:
                rows.sort(key=lambda r: (r[sort_by], int(r["id"])), reverse=sort_order == "desc")
            view = [r["id"] for r in rows]
            self._views = {
                k: v
                for k, v in self._views.items()
                if k[1] == module.version and k[0] == module.name
            } | {key: view}
        return view

    def _fields_param(
        self, module: ModuleData, request: Request, *, required: bool
    ) -> list[str] | None:
        raw = request.arg("fields")
        if raw is None or not raw.strip():
            if required:
                raise refuse(
                    400,
                    "REQUIRED_PARAM_MISSING",
                    "One of the expected parameter is missing",
                    param_name="fields",
                )
            return None
        names = [n.strip() for n in raw.split(",") if n.strip()]
        if len(names) > MAX_FIELDS:
            raise refuse(
                400,
                "LIMIT_EXCEEDED",
                "fields limit exceeded",
                param_name="fields",
                limit=MAX_FIELDS,
            )
        for name in names:
            if name != "id" and name not in module.layout:
                raise refuse(
                    400, "INVALID_DATA", "invalid data", param_name="fields", api_name=name
                )
        return names

    def _int_param(
        self, request: Request, name: str, default: int, low: int, high: int | None
    ) -> int:
        raw = request.arg(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise refuse(
                400, "INVALID_DATA", "invalid data", param_name=name, expected_data_type="integer"
            ) from None
        if value < low or (high is not None and value > high):
            details: dict[str, Any] = {"param_name": name, "minimum_value": low}
            if high is not None:
                details["maximum_value"] = high
            raise refuse(400, "INVALID_DATA", "invalid data", **details)
        return value

    def _if_modified_since(self, request: Request) -> float | None:
        raw = request.headers.get("if-modified-since")
        if raw is None:
            return None
        when: datetime | None
        try:
            when = datetime.fromisoformat(raw.strip())
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
        if when is None or when.tzinfo is None:
            raise refuse(
                400,
                "INVALID_DATA",
                "invalid data",
                header_name="If-Modified-Since",
                expected_data_type="datetime",
            )
        return when.timestamp()

    def _render(
        self, module: ModuleData, record: Mapping[str, Any], fields: list[str] | None
    ) -> dict[str, Any]:
        names = fields if fields is not None else list(module.layout)
        out: dict[str, Any] = {}
        for name in names:
            if name == "id":
                continue
            value = record.get(name)
            if name in ("Created_Time", "Modified_Time") and value is not None:
                value = self._render_time(value)
            out[name] = value
        out["id"] = record["id"]
        return out

    def _get_one(self, module: ModuleData, record_id: str) -> Response:
        record = module.records.get(record_id)
        if record is None:
            return Response(204)
        return json_response({"data": [self._render(module, record, None)]})

    # --- writes --------------------------------------------------------------------------------

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise refuse(
                400, "INVALID_DATA", "body is not a valid JSON", expected_data_type="jsonobject"
            ) from None
        if not isinstance(body, dict):
            raise refuse(
                400,
                "INVALID_DATA",
                "body is not a valid JSON object",
                expected_data_type="jsonobject",
            )
        return body

    def _write(
        self, module: ModuleData, request: Request, mode: str, record_id: str | None = None
    ) -> Response:
        body = self._body(request)
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise refuse(
                400,
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="data",
                json_path="$.data",
            )
        if len(data) > MAX_WRITE:
            raise refuse(
                400,
                "LIMIT_EXCEEDED",
                "limit exceeded",
                api_name="data",
                json_path="$.data",
                limit=MAX_WRITE,
            )
        trigger = body.get("trigger")
        if trigger is not None and (
            not isinstance(trigger, list) or not all(t in TRIGGERS for t in trigger)
        ):
            raise refuse(
                400, "INVALID_DATA", "invalid data", api_name="trigger", json_path="$.trigger"
            )
        checks: list[str] | None = None
        if mode == "upsert" and "duplicate_check_fields" in body:
            raw_checks = body["duplicate_check_fields"]
            if not isinstance(raw_checks, list):
                raise refuse(
                    400,
                    "INVALID_DATA",
                    "invalid data",
                    api_name="duplicate_check_fields",
                    json_path="$.duplicate_check_fields",
                )
            for index, name in enumerate(raw_checks):
                spec = module.layout.get(name) if isinstance(name, str) else None
                if spec is None or not (spec.unique or name == SYSTEM_DUPLICATE_FIELD[module.name]):
                    raise refuse(
                        400,
                        "INVALID_DATA",
                        "invalid data",
                        api_name="duplicate_check_fields",
                        json_path=f"$.duplicate_check_fields[{index}]",
                    )
            checks = list(raw_checks)
        self._spend(max(1, math.ceil(len(data) / 10)))
        results = [
            self._write_one(module, mode, i, row, checks, record_id) for i, row in enumerate(data)
        ]
        failed = sum(1 for r in results if r["status"] != "success")
        if failed == len(results):
            status = 400
        elif failed:
            status = 207
        elif mode == "insert" or all(r.get("action") == "insert" for r in results):
            status = 201
        else:
            status = 200
        return json_response({"data": results}, status)

    def _write_one(
        self,
        module: ModuleData,
        mode: str,
        index: int,
        row: Any,
        checks: list[str] | None,
        path_id: str | None,
    ) -> dict[str, Any]:
        path = f"$.data[{index}]"
        if not isinstance(row, dict):
            return record_error(
                "INVALID_DATA", "invalid data", json_path=path, expected_data_type="jsonobject"
            )
        problem = self._validate(module, row, path)
        if problem is not None:
            return problem
        values = {k: v for k, v in row.items() if k != "id" and not k.startswith("$")}
        record_id = path_id or row.get("id")
        target: dict[str, Any] | None = None
        matched_on: str | None = None
        if record_id is not None and mode == "insert":
            return record_error(
                "INVALID_DATA", "invalid data", api_name="id", json_path=f"{path}.id"
            )
        if record_id is not None:
            target = module.records.get(str(record_id))
            if target is None:
                return record_error(
                    "INVALID_DATA",
                    "the related id given seems to be invalid",
                    api_name="id",
                    json_path=f"{path}.id",
                )
        elif mode == "update":
            return record_error(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="id",
                json_path=f"{path}.id",
            )
        elif mode == "upsert":
            system = SYSTEM_DUPLICATE_FIELD[module.name]
            order = (
                checks
                if checks is not None
                else [system, *(s.api_name for s in module.layout.values() if s.unique)]
            )
            for name in order:
                value = values.get(name)
                if value in (None, ""):
                    continue
                target = self._find(module, name, value)
                if target is not None:
                    matched_on = name
                    break
        if target is None and not values.get("Last_Name"):
            return record_error(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="Last_Name",
                json_path=f"{path}.Last_Name",
            )
        clash = self._unique_clash(module, values, target, path)
        if clash is not None:
            return clash
        now = self.now()
        if target is None:
            target = {spec: None for spec in module.layout}
            target.update(
                id=self._new_id(),
                Owner=dict(self.user),
                Created_By={"name": self.user["name"], "id": self.user["id"]},
                Created_Time=int(now),
                Email_Opt_Out=False,
            )
            target.update(values)
            self._touch(module, target, now)
            module.add(target)
            action = "insert"
        else:
            module.change(target, values)
            self._touch(module, target, now)
            action = "update"
        details = {
            "Modified_Time": self._render_time(target["Modified_Time"]),
            "Modified_By": {"name": self.user["name"], "id": self.user["id"]},
            "Created_Time": self._render_time(target["Created_Time"]),
            "id": target["id"],
            "Created_By": {"name": self.user["name"], "id": self.user["id"]},
        }
        result: dict[str, Any] = {
            "code": "SUCCESS",
            "details": details,
            "message": "record added" if action == "insert" else "record updated",
            "status": "success",
        }
        if mode == "upsert":
            result["duplicate_field"] = matched_on
            result["action"] = action
        return result

    def _validate(
        self, module: ModuleData, row: Mapping[str, Any], path: str
    ) -> dict[str, Any] | None:
        for name, value in row.items():
            where = f"{path}.{name}"
            if name == "id":
                if not (isinstance(value, str) and value.isdigit()):
                    return record_error(
                        "INVALID_DATA",
                        "invalid data",
                        api_name="id",
                        json_path=where,
                        expected_data_type="bigint",
                    )
                continue
            spec = module.layout.get(name)
            if spec is None:
                return record_error("INVALID_DATA", "invalid data", api_name=name, json_path=where)
            if name in READ_ONLY:
                return record_error(
                    "INVALID_DATA", "the field is read only", api_name=name, json_path=where
                )
            if value is None:
                if spec.system_mandatory:
                    return record_error(
                        "MANDATORY_NOT_FOUND",
                        "required field not found",
                        api_name=name,
                        json_path=where,
                    )
                continue
            kind = spec.data_type
            if kind == "boolean":
                if not isinstance(value, bool):
                    return record_error(
                        "INVALID_DATA",
                        "invalid data",
                        api_name=name,
                        json_path=where,
                        expected_data_type="boolean",
                    )
                continue
            if not isinstance(value, str):
                return record_error(
                    "INVALID_DATA",
                    "invalid data",
                    api_name=name,
                    json_path=where,
                    expected_data_type=kind,
                )
            if kind in ("text", "textarea") and len(value) > spec.length:
                return record_error(
                    "INVALID_DATA",
                    "invalid data",
                    api_name=name,
                    json_path=where,
                    maximum_length=spec.length,
                )
            if kind == "email" and (len(value) > spec.length or not EMAIL.fullmatch(value)):
                return record_error(
                    "INVALID_DATA",
                    "invalid data",
                    api_name=name,
                    json_path=where,
                    expected_data_type="email",
                )
            if kind == "phone" and not PHONE.fullmatch(value):
                return record_error(
                    "INVALID_DATA",
                    "invalid data",
                    api_name=name,
                    json_path=where,
                    expected_data_type="phone",
                )
            if kind == "date" and not is_date(value):
                return record_error(
                    "INVALID_DATA",
                    "invalid data",
                    api_name=name,
                    json_path=where,
                    expected_data_type="date",
                )
        if "Last_Name" in row and not str(row.get("Last_Name") or "").strip():
            return record_error(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="Last_Name",
                json_path=f"{path}.Last_Name",
            )
        return None

    def _find(self, module: ModuleData, name: str, value: Any) -> dict[str, Any] | None:
        return module.find(name, value)

    def _unique_clash(
        self,
        module: ModuleData,
        values: Mapping[str, Any],
        target: Mapping[str, Any] | None,
        path: str,
    ) -> dict[str, Any] | None:
        for spec in module.layout.values():
            value = values.get(spec.api_name)
            if not spec.unique or value in (None, ""):
                continue
            other = self._find(module, spec.api_name, value)
            if other is not None and (target is None or other["id"] != target["id"]):
                return record_error(
                    "DUPLICATE_DATA",
                    "duplicate data",
                    api_name=spec.api_name,
                    json_path=f"{path}.{spec.api_name}",
                    more_records=False,
                    duplicate_record={
                        "id": other["id"],
                        "module": {
                            "api_name": module.name,
                            "id": self._id_prefix + "000000" + MODULE_IDS[module.name],
                        },
                        "Owner": {"name": self.user["name"], "id": self.user["id"]},
                    },
                )
        return None

    def _touch(self, module: ModuleData, record: dict[str, Any], now: float | None = None) -> None:
        record["Modified_Time"] = int(self.now() if now is None else now)
        record["Modified_By"] = {"name": self.user["name"], "id": self.user["id"]}
        record["Full_Name"] = full_name(record.get("First_Name"), record.get("Last_Name"))
        module.version += 1

    # --- delete --------------------------------------------------------------------------------

    def _delete_many(self, module: ModuleData, request: Request) -> Response:
        raw = request.arg("ids")
        if raw is None or not raw.strip():
            raise refuse(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                param_name="ids",
            )
        ids = [i.strip() for i in raw.split(",") if i.strip()]
        if len(ids) > MAX_WRITE:
            raise refuse(400, "LIMIT_EXCEEDED", "limit exceeded", param_name="ids", limit=MAX_WRITE)
        wf = request.arg("wf_trigger")
        if wf is not None and wf not in ("true", "false"):
            raise refuse(
                400,
                "INVALID_DATA",
                "invalid data",
                param_name="wf_trigger",
                expected_data_type="boolean",
            )
        return self._delete_ids(module, ids)

    def _delete_ids(self, module: ModuleData, ids: list[str]) -> Response:
        self._spend(max(1, math.ceil(len(ids) / 10)))
        results = []
        for record_id in ids:
            if record_id in module.records:
                self._delete(module, record_id)
                results.append(
                    {
                        "code": "SUCCESS",
                        "details": {"id": record_id},
                        "message": "record deleted",
                        "status": "success",
                    }
                )
            else:
                results.append(
                    record_error(
                        "INVALID_DATA", "the related id given seems to be invalid", id=record_id
                    )
                )
        failed = sum(1 for r in results if r["status"] != "success")
        status = 400 if failed == len(results) else 207 if failed else 200
        return json_response({"data": results}, status)

    def _delete(self, module: ModuleData, record_id: str) -> None:
        record = module.remove(record_id)
        module.version += 1
        by = {"name": self.user["name"], "id": self.user["id"]}
        now = int(self.now())
        self.recycle_bin[record_id] = (module.name, record, now)
        module.deleted.append(
            {
                "deleted_by": by,
                "id": record_id,
                "display_name": record.get("Full_Name"),
                "type": "recycle",
                "created_by": by,
                "deleted_time": now,
            }
        )

    # --- the recycle bin -------------------------------------------------------------------------

    def _empty_recycle_bin(self) -> None:
        """What Zoho does by itself: records 60 days in the bin are deleted for good; records
        deleted for good are listed for 120 days, then forgotten."""
        now = int(self.now())
        for record_id, (module_name, _, deleted_at) in list(self.recycle_bin.items()):
            if now - deleted_at >= RECYCLE_BIN_DAYS * DAY:
                self._purge(record_id, module_name, at=deleted_at + RECYCLE_BIN_DAYS * DAY)
        for module in self.modules.values():
            module.deleted[:] = [
                d
                for d in module.deleted
                if d["type"] != "permanent" or now - d["deleted_time"] < PERMANENT_LIST_DAYS * DAY
            ]

    def _purge(self, record_id: str, module_name: str, *, at: int) -> None:
        """Delete a record of the recycle bin for good: its data is gone; the deleted-records
        feed lists it as ``permanent`` (no name, no one who deleted it)."""
        del self.recycle_bin[record_id]
        module = self.modules[module_name]
        module.deleted[:] = [d for d in module.deleted if d["id"] != record_id]
        module.deleted.append(
            {
                "deleted_by": None,
                "id": record_id,
                "display_name": None,
                "type": "permanent",
                "created_by": None,
                "deleted_time": at,
            }
        )
        module.version += 1

    def _recycle_bin_route(self, request: Request, record_id: str | None) -> Response:
        self._empty_recycle_bin()
        if request.method == "GET":
            if record_id is not None:
                ids = [record_id]
            else:
                raw = request.arg("ids")
                ids = [i.strip() for i in raw.split(",") if i.strip()] if raw else []
            return self._read(self._recycle_bin_list(request, ids))
        if request.method != "DELETE":
            raise self._not_allowed()
        if not self.purge_allowed:
            raise refuse(
                401,
                "OAUTH_SCOPE_MISMATCH",
                "invalid oauth scope to access this URL",
                required_scope="ZohoCRM.settings.recycle_bin.DELETE",
            )
        if record_id is not None:
            ids = [record_id]
        else:
            raw = request.arg("ids")
            if raw is None or not raw.strip():
                raise refuse(
                    400,
                    "REQUIRED_PARAM_MISSING",
                    "One of the expected parameter is missing",
                    param_name="ids",
                )
            ids = [i.strip() for i in raw.split(",") if i.strip()]
        if len(ids) > MAX_WRITE:
            raise refuse(400, "LIMIT_EXCEEDED", "limit exceeded", param_name="ids", limit=MAX_WRITE)
        self._spend(max(1, math.ceil(len(ids) / 10)))
        results = []
        for one in ids:
            if one in self.recycle_bin:
                self._purge(one, self.recycle_bin[one][0], at=int(self.now()))
                results.append(
                    {
                        "code": "SUCCESS",
                        "details": {"id": one},
                        "message": "record deleted",
                        "status": "success",
                    }
                )
            else:
                results.append(
                    record_error("INVALID_DATA", "the id given seems to be invalid", id=one)
                )
        failed = sum(1 for r in results if r["status"] != "success")
        status = 400 if failed == len(results) else 207 if failed else 200
        return json_response({"data": results}, status)

    def _recycle_bin_list(self, request: Request, ids: list[str]) -> Response:
        per_page = self._int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        page = self._int_param(request, "page", 1, 1, None)
        entries = [
            (record_id, held)
            for record_id, held in self.recycle_bin.items()
            if not ids or record_id in ids
        ]
        entries.sort(key=lambda e: (e[1][2], int(e[0])), reverse=True)
        start = (page - 1) * per_page
        chunk = entries[start : start + per_page]
        if not chunk:
            return Response(204)
        by = {"name": self.user["name"], "id": self.user["id"]}
        return json_response(
            {
                "recycle_bin": [
                    {
                        "display_name": record.get("Full_Name"),
                        "deleted_time": self._render_time(deleted_at),
                        "owner": by,
                        "module": {"api_name": module_name, "id": MODULE_IDS[module_name]},
                        "deleted_by": by,
                        "id": record_id,
                    }
                    for record_id, (module_name, record, deleted_at) in chunk
                ],
                "info": {
                    "per_page": per_page,
                    "count": len(chunk),
                    "page": page,
                    "more_records": start + per_page < len(entries),
                },
            }
        )

    def _deleted(self, module: ModuleData, request: Request) -> Response:
        self._empty_recycle_bin()
        kind = request.arg("type") or "all"
        if kind not in ("all", "recycle", "permanent"):
            raise refuse(
                400,
                "INVALID_DATA",
                "invalid data",
                param_name="type",
                supported_values=["all", "recycle", "permanent"],
            )
        per_page = self._int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        page = self._int_param(request, "page", 1, 1, None)
        since = self._if_modified_since(request)
        rows = [
            d
            for d in module.deleted
            if (kind == "all" or d["type"] == kind) and (since is None or d["deleted_time"] > since)
        ]
        if not rows:
            return Response(304 if since is not None else 204)
        rows.sort(key=lambda d: (d["deleted_time"], int(d["id"])), reverse=True)
        start = (page - 1) * per_page
        chunk = rows[start : start + per_page]
        if not chunk:
            return Response(204)
        return json_response(
            {
                "data": [
                    {**d, "deleted_time": self._render_time(d["deleted_time"])} for d in chunk
                ],
                "info": {
                    "per_page": per_page,
                    "count": len(chunk),
                    "page": page,
                    "more_records": start + per_page < len(rows),
                },
            }
        )

    # --- seed ------------------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_serial += 1 + (self._next_serial * 7919) % 5
        return f"{self._id_prefix}{self._next_serial:012d}"

    def _seed_contacts(self, rng: random.Random, count: int) -> None:
        module = self.modules["Contacts"]
        chinese = generate_customers(count, seed=self.seed)
        end = int(time.time()) - 24 * 3600  # seeded history ends a day before the sandbox starts
        span = 400 * 24 * 3600
        step = span / max(count, 1)
        for index in range(count):
            person = next(chinese)
            created = int(end - span + index * step)
            modified = min(end, created + int(rng.random() ** 3 * 60 * 24 * 3600))
            if rng.random() < 0.2:
                values = latin_contact(rng, index)
            else:
                given, family = split_name(person.name)
                street = person.address
                for prefix in (person.province, person.city):
                    if prefix and street.startswith(prefix):
                        street = street[len(prefix) :]
                values = {
                    "First_Name": given,
                    "Last_Name": family,
                    "Email": person.email,
                    "Mobile": cn_phone(rng, person.phone),
                    "Mailing_Street": street,
                    "Mailing_City": person.city if person.city != person.province else None,
                    "Mailing_State": person.province,
                    "Mailing_Country": "中国",
                    "Date_of_Birth": person.birthday if rng.random() < 0.7 else None,
                }
            record: dict[str, Any] = {name: None for name in module.layout}
            record.update(values)
            record.update(
                id=self._new_id(),
                Owner=dict(self.user),
                Created_By={"name": self.user["name"], "id": self.user["id"]},
                Modified_By={"name": self.user["name"], "id": self.user["id"]},
                Created_Time=created,
                Modified_Time=modified,
                Email_Opt_Out=rng.random() < 0.1,
                Lead_Source=rng.choice(("Web Download", "Trade Show", "Online Store", None)),
                Full_Name=full_name(values.get("First_Name"), values.get("Last_Name")),
            )
            module.add(record)
        module.version += 1


def _parse_offset(text: str) -> timezone:
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", text)
    if match is None:
        raise ValueError(f"tz must look like +08:00, not {text!r}")
    sign = 1 if match[1] == "+" else -1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


__all__ = ["LAYOUTS", "FieldSpec", "ZohoSandbox"]
