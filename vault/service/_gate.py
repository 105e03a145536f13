"""The outermost ASGI layer: request ids, the access log, header and body limits, and the rate
limit of requests without a credential.

It runs before FastAPI sees a request, so that an anonymous flood, two ``Authorization``
headers, an oversized body or a body of the wrong type is refused before any parsing (a request
with a credential is rate-limited after authentication, by principal: vault.service._auth), and
every request (refused or not) gets one access-log line and an ``X-Request-Id`` header. The
access log names ids and outcomes only: method, route template, status, duration, sizes,
principal and request id, never a query string or a body.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vault.service._ratelimit import REFUSAL, RateLimiter
from vault.service.config import ServiceConfig

access_log = structlog.get_logger("vault.service.access")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = ("application/json",)
OTHER_BODY_TYPES = {"/v1/consent/import": ("text/csv",)}  # raw path → accepted media types


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def request_id_of(headers: Mapping[bytes, bytes]) -> str:
    """The caller's ``X-Request-Id`` when it is a plain id, else a new one."""
    given = headers.get(b"x-request-id", b"").decode("latin-1")
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "rate_limited"
    return "client_error" if status < 500 else "server_error"


def _accepted(path: str, content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if path in OTHER_BODY_TYPES:
        return media in OTHER_BODY_TYPES[path]
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class Gate:
    def __init__(
        self, app: ASGIApp, config: ServiceConfig, limiter: RateLimiter | None = None
    ) -> None:
        self.app = app
        self.config = config
        self.limiter = limiter or RateLimiter(config.rate, config.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_id_of(headers)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        sent = {"status": 0, "bytes": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        received = {"bytes": 0}
        limit = self.config.max_body_bytes

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            refusal = self._refusal(scope, headers)
            if refusal is not None:
                status, message, extra = refusal
                await _send_error(send_with_id, status, message, request_id, extra)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            if self.config.access_log:
                route = scope.get("route")
                access_log.info(
                    "request",
                    request_id=request_id,
                    method=scope["method"],
                    route=getattr(route, "path", None) or "<unmatched>",
                    status=sent["status"],
                    outcome=_outcome(sent["status"]),
                    principal=state.get("principal"),
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    request_bytes=received["bytes"],
                    response_bytes=sent["bytes"],
                )

    def _refusal(
        self, scope: Scope, headers: Mapping[bytes, bytes]
    ) -> tuple[int, str, dict[str, str]] | None:
        """Why this request is refused before it reaches the application, if it is."""
        if sum(1 for name, _ in scope["headers"] if name == b"authorization") > 1:
            # Which one would count? Refused, whatever they hold (never echoed).
            return 400, "send one Authorization header, not several", {}
        if b"authorization" not in headers:
            # No credential: counted here, by client address. A request with one is counted
            # after authentication, in its principal's bucket (vault.service._auth).
            client = scope.get("client")
            wait = self.limiter.acquire(RateLimiter.key(f"client:{client[0] if client else '?'}"))
            if wait > 0:
                return 429, REFUSAL, {"Retry-After": RateLimiter.retry_after(wait)}
        length_text = headers.get(b"content-length")
        length = 0
        if length_text is not None:
            try:
                length = int(length_text)
            except ValueError:
                return 400, "the Content-Length header is not a number", {}
            if length > self.config.max_body_bytes:
                return (
                    413,
                    f"the request body is larger than {self.config.max_body_bytes} bytes",
                    {},
                )
        has_body = length > 0 or b"transfer-encoding" in headers
        if scope["method"] in BODY_METHODS and has_body:
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if not _accepted(scope["path"], content_type):
                wanted = ", ".join(OTHER_BODY_TYPES.get(scope["path"], JSON_TYPES))
                return 415, f"the request body must be {wanted}", {}
        return None


async def _send_error(
    send: Send, status: int, message: str, request_id: str, extra: Mapping[str, str]
) -> None:
    body = json.dumps(
        {"error": {"type": _ERROR_TYPES[status], "message": message, "request_id": request_id}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_ERROR_TYPES = {
    400: "BadRequest",
    413: "BodyTooLarge",
    415: "UnsupportedMediaType",
    429: "RateLimited",
}
