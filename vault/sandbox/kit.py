"""The sandbox kit: a platform emulator on loopback, with scriptable faults.

A platform's sandbox subclasses :class:`Sandbox` and implements :meth:`Sandbox.handle`, which
turns a :class:`Request` into a :class:`Response` exactly as the platform would (its signing,
envelopes, paging rules, error codes). The kit runs it as a real HTTP server on 127.0.0.1 with
an ephemeral port, so connectors are tested over HTTP as they run against the platform::

    with ZohoSandbox(seed=7, records=5000) as sandbox:
        sandbox.faults.inject("rate_limit", match="/crm/v8/Contacts", after=3, retry_after=1)
        connector = ZohoConnector({**sandbox.credentials(), "api_domain": sandbox.url})
        ...

Faults (each consumed by the matching requests, ``times`` of them, after skipping ``after``):

``rate_limit``     the platform's rate-limit answer (``render_rate_limit``; default HTTP 429 with
                   ``Retry-After``)
``server_error``   the platform's 5xx (``render_server_error``; default HTTP 500)
``timeout``        the answer is held back ``seconds`` (longer than the client's timeout)
``drop``           the connection is closed with no answer
``malformed``      HTTP 200 with a body that is not JSON
``token_expired``  :meth:`Sandbox.expire_tokens` runs, then the request is served as usual, so
                   the platform's own expired-token answer is what the client sees

Only loopback: the server binds 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("rate_limit", "server_error", "timeout", "drop", "malformed", "token_expired")
LOOPBACK = "127.0.0.1"
MAX_BODY = 16 * 1024 * 1024


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # header names lower-cased
    body: bytes

    def arg(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` when it is not."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` (first value of each name)."""
        return {
            k: v[0] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()
        }


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(
        status, body, {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
    )


@dataclass(slots=True)
class _Fault:
    kind: str
    match: str | None
    after: int
    times: int
    params: dict[str, Any]


class FaultPlan:
    """Faults to inject into the next matching requests. Thread-safe."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str]] = []  # (kind, path) of every fault served

    def inject(
        self, kind: str, *, match: str | None = None, after: int = 0, times: int = 1, **params: Any
    ) -> None:
        """Serve fault ``kind`` to ``times`` requests whose path contains ``match`` (any path if
        None), after letting ``after`` of them through."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(_Fault(kind, match, after, times, params))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.match is not None and fault.match not in path:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                self.injected.append((fault.kind, path))
                return fault
        return None


class Sandbox(ABC):
    """A platform emulator. Subclasses implement :meth:`handle` and :meth:`credentials`."""

    name: ClassVar[str]

    def __init__(self, *, seed: int = 0, records: int | None = None) -> None:
        self.seed = seed
        self.records = records
        self.faults = FaultPlan()
        self.request_log: list[tuple[str, str]] = []  # (method, path) of every request served
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()  # handlers run in threads; guard the emulator's state

    # --- what a platform's sandbox implements ----------------------------------------------

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer ``request`` as the platform does."""

    @abstractmethod
    def credentials(self) -> dict[str, str]:
        """The test credentials a client needs (app key, secret, tokens, ...)."""

    def expire_tokens(self) -> None:  # noqa: B027  (a platform without tokens has nothing to do)
        """Make every access token issued so far expired (the ``token_expired`` fault)."""

    def render_rate_limit(self, retry_after: float) -> Response:
        return json_response(
            {"error": "rate limited"}, 429, {"Retry-After": str(max(0, round(retry_after)))}
        )

    def render_server_error(self) -> Response:
        return json_response({"error": "internal error"}, 500)

    def urls(self) -> dict[str, str]:
        """The base URLs a client points at (more than one for a platform with an auth host)."""
        return {"base_url": self.url}

    # --- running -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use it as a context")
        port = self._server.server_address[1]
        return f"http://{LOOPBACK}:{port}"

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:``port`` (0: an ephemeral port) in a background thread."""
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((LOOPBACK, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for one poll
            name=f"sandbox-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def serve_forever(self, port: int = 0) -> None:
        """Serve in the foreground until interrupted."""
        self._server = ThreadingHTTPServer((LOOPBACK, port), _handler_for(self))
        self._server.daemon_threads = True
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def announce(self) -> dict[str, Any]:
        """What `vault sandbox NAME` prints: the URLs and the test credentials."""
        return {"sandbox": self.name, **self.urls(), "credentials": self.credentials()}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- one request -------------------------------------------------------------------------

    def _serve(self, request: Request) -> Response | None:
        """The answer to ``request`` with faults applied; None means drop the connection."""
        self.request_log.append((request.method, request.path))
        fault = self.faults.take(request.path)
        if fault is not None:
            if fault.kind == "rate_limit":
                return self.render_rate_limit(float(fault.params.get("retry_after", 1)))
            if fault.kind == "server_error":
                return self.render_server_error()
            if fault.kind == "drop":
                return None
            if fault.kind == "malformed":
                return Response(200, b'{"data": [ {"id": ', {"Content-Type": "application/json"})
            if fault.kind == "timeout":
                time.sleep(float(fault.params.get("seconds", 5)))
            if fault.kind == "token_expired":
                self.expire_tokens()
        try:
            return self.handle(request)
        except Exception as error:  # an emulator bug must show, not hang the client
            return json_response({"sandbox_error": type(error).__name__, "detail": str(error)}, 500)


def _handler_for(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms per answer on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read no stderr
            return

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            response = sandbox._serve(request)
            if response is None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    return Handler
