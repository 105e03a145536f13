"""The TOP (Taobao Open Platform) router protocol: signing, the request, the envelopes, errors.

Every call is one form-encoded POST to ``<base_url>/router/rest``; the platform answers HTTP 200
for success and error alike and the body says which (``shared/protocols/taobao.md`` §1-5):

* signature (§3): every parameter but ``sign`` with a non-empty value, sorted by name (byte
  order), concatenated ``name + value``; ``md5`` is ``MD5(secret + s + secret)``, ``hmac`` is
  HMAC-MD5 and ``hmac-sha256`` HMAC-SHA256 keyed with the secret; upper-case hex.
* timestamp: ``yyyy-MM-dd HH:mm:ss`` in China time (Asia/Shanghai, UTC+8, no daylight saving).
* success: ``{"<method without taobao., dots as _>_response": {...}}``; error:
  ``{"error_response": {"code": 7, "msg": ..., "sub_code": ..., "sub_msg": ...}}``.

:func:`map_error` is the one place where the platform's codes become the sync engine's error
kinds; ``tests/connectors/taobao/test_protocol.py`` checks every documented code against it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from vault.errors import (
    ConnectorError,
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.sync import values
from vault.sync.http import json_answer, mapped_transport_errors
from vault.sync.values import CHINA, CHINA_TIME_FORMAT, china_text

TIME_FORMAT = CHINA_TIME_FORMAT
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")
ROUTER_PATH = "/router/rest"
API_VERSION = "2.0"

# --- signature and time --------------------------------------------------------------------


def sign_string(params: Mapping[str, str]) -> str:
    """The string TOP signs: sorted ``name + value`` of every non-empty parameter but ``sign``."""
    return "".join(
        f"{name}{params[name]}"
        for name in sorted(params)
        if name != "sign" and params[name] not in ("", None)
    )


def sign(params: Mapping[str, str], secret: str, method: str) -> str:
    """The upper-case hex signature of ``params`` under ``secret`` with ``method`` (§3)."""
    text = sign_string(params).encode("utf-8")
    key = secret.encode("utf-8")
    if method == "md5":
        digest = hashlib.md5(key + text + key, usedforsecurity=False).hexdigest()
    elif method == "hmac":
        digest = hmac.new(key, text, hashlib.md5).hexdigest()
    elif method == "hmac-sha256":
        digest = hmac.new(key, text, hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown sign_method {method!r}: one of {', '.join(SIGN_METHODS)}")
    return digest.upper()


def format_time(moment: datetime) -> str:
    """``moment`` as TOP writes times: ``yyyy-MM-dd HH:mm:ss`` in China time."""
    return china_text(moment)


def parse_time(text: str) -> datetime:
    """A TOP time string (China time) as an aware UTC datetime."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA).astimezone(UTC)


def yuan_to_fen(text: str | int | float | None) -> int:
    """``"200.07"`` (yuan, 2 decimals, as TOP sends money) as 20007 fen, without floats; TOP
    leaves zero amounts out, so an absent one is 0. ``ValueError`` for anything else (the
    connector names the trade)."""
    try:
        return values.yuan_to_fen(text, field="amount", connector="taobao", missing=0)
    except PlatformProtocolError as exc:
        raise ValueError("not a yuan amount with at most 2 decimals") from exc


# --- errors ----------------------------------------------------------------------------------

THROTTLE_SUB_CODES = frozenset(
    {
        "accesscontrol.limited-by-app-api-access-count",
        "accesscontrol.limited-by-api-access-count",
        "accesscontrol.limited-by-app-access-count",
        "isp.call-limited",
    }
)
AUTH_CODES = frozenset({24, 25, 26, 27, 28, 29})
"""Missing/invalid signature, session or app key: the credentials are wrong or expired."""
UNAVAILABLE_CODES = frozenset({10, 15})
"""Service currently unavailable, remote service error: the platform's fault, retry."""
_BAN = re.compile(r"last for (\d+) more seconds")


def map_error(connector: str, envelope: Mapping[str, Any]) -> ConnectorError:
    """The sync engine's error kind for a TOP ``error_response`` object.

    Flow control (code 7 or a throttling sub_code) waits the seconds the platform names in
    ``sub_msg`` ("This ban will last for 2 more seconds"), or leaves the wait to the engine's
    backoff when it names none. ``isp.*`` sub_codes are the platform's faults and retried;
    ``isv.*`` and the argument codes are the caller's and are not.
    """
    code_value = envelope.get("code")
    try:
        code = int(code_value) if code_value is not None else None
    except (TypeError, ValueError):
        code = None
    sub_code = str(envelope.get("sub_code") or "")
    sub_msg = str(envelope.get("sub_msg") or "")
    msg = str(envelope.get("msg") or "")
    label = f"{code}" + (f"/{sub_code}" if sub_code else "")
    text = f"{msg}" + (f" ({sub_code})" if sub_code else "")
    if code == 7 or sub_code in THROTTLE_SUB_CODES:
        ban = _BAN.search(sub_msg) or _BAN.search(msg)
        return PlatformRateLimited(
            f"flow control: {text}",
            connector=connector,
            code=label,
            retry_after=float(ban.group(1)) if ban else None,
        )
    if code in AUTH_CODES or sub_code.startswith("isv.session") or "session" in sub_code:
        return PlatformAuthFailed(
            f"credentials refused: {text}; the shop may need to authorise the app again",
            connector=connector,
            code=label,
        )
    if sub_code.startswith("isv."):  # the caller's fault, whatever the code: do not retry
        return PlatformRejected(f"request refused: {text}", connector=connector, code=label)
    if code in UNAVAILABLE_CODES or sub_code.startswith("isp."):
        return PlatformUnavailable(f"platform fault: {text}", connector=connector, code=label)
    if code is None:
        return PlatformProtocolError(
            "an error_response without a numeric code", connector=connector, code=label
        )
    return PlatformRejected(f"request refused: {text}", connector=connector, code=label)


def response_key(method: str) -> str:
    """The success envelope's key: ``taobao.trade.fullinfo.get`` ->
    ``trade_fullinfo_get_response``."""
    name = method.removeprefix("taobao.")
    return name.replace(".", "_") + "_response"


# --- the client ------------------------------------------------------------------------------


class TopClient:
    """Signed calls to one TOP router as one app (``app_key``/``secret``).

    ``call`` returns the inner object of the success envelope or raises a
    :class:`~vault.errors.ConnectorError`; transport failures are mapped here too (timeouts and
    dropped connections -> ``PlatformUnavailable``). Thread-safe: ``httpx.Client`` is.
    """

    def __init__(
        self,
        *,
        base_url: str,
        app_key: str,
        secret: str,
        sign_method: str = "hmac-sha256",
        connector: str = "taobao",
        timeout: float = 30.0,
        clock: Any = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if sign_method not in SIGN_METHODS:
            raise ValueError(
                f"unknown sign_method {sign_method!r}: one of {', '.join(SIGN_METHODS)}"
            )
        self.url = base_url.rstrip("/") + ("" if base_url.endswith(ROUTER_PATH) else ROUTER_PATH)
        self.app_key = app_key
        self._secret = secret
        self.sign_method = sign_method
        self.connector = connector
        self._clock = clock or (lambda: datetime.now(UTC))
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def signed(
        self, method: str, params: Mapping[str, str], *, session: str | None
    ) -> dict[str, str]:
        """The full parameter set of a call, system parameters and ``sign`` included."""
        full = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": format_time(self._clock()),
            "format": "json",
            "v": API_VERSION,
            "sign_method": self.sign_method,
            **({"session": session} if session else {}),
            **{k: v for k, v in params.items() if v not in ("", None)},
        }
        full["sign"] = sign(full, self._secret, self.sign_method)
        return full

    def call(
        self, method: str, params: Mapping[str, str], *, session: str | None = None
    ) -> dict[str, Any]:
        form = self.signed(method, params, session=session)
        with mapped_transport_errors(connector=self.connector, what=method):
            answer = self._http.post(self.url, data=form)
        body = json_answer(answer, connector=self.connector, what=method)
        if not isinstance(body, dict):
            raise PlatformProtocolError(
                f"{method}: the answer is not an object", connector=self.connector
            )
        error = body.get("error_response")
        if isinstance(error, dict):
            raise map_error(self.connector, error)
        inner = body.get(response_key(method))
        if not isinstance(inner, dict):
            raise PlatformProtocolError(
                f"{method}: no {response_key(method)} in the answer", connector=self.connector
            )
        return inner

    def close(self) -> None:
        self._http.close()
