"""The one map from the vault's errors (and the framework's) to HTTP answers.

Every error answer has the same body, ``{"error": {"type", "message", "request_id"}}``. The
message is the library's own (ids and field names, never a value); a validation error lists
where and what, never the rejected input nor a key the API does not declare (either may be a
phone number or a name: ``<unknown key>``, ``<key>`` stand in for them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from vault import errors
from vault.service._ratelimit import RateLimited, RateLimiter

log = structlog.get_logger("vault.service")

# Most specific first: the first class an error is an instance of decides.
STATUS: tuple[tuple[type[errors.VaultError], int], ...] = (
    (errors.AccessDenied, 403),  # 401 when the action is "authenticate"; see status_of
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidValue, 422),
    (errors.MigrationRequired, 503),
    (errors.KeyUnavailable, 503),
    (errors.DecryptionFailed, 500),
    (errors.InternalError, 500),
    (errors.ConfigError, 400),
    (errors.StoreError, 503),
    (errors.ConnectorError, 502),
    (errors.VaultError, 400),
)


def status_of(error: errors.VaultError) -> int:
    if isinstance(error, errors.AccessDenied) and error.action == "authenticate":
        return 401
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 400  # pragma: no cover  (VaultError is last in STATUS)


def error_body(kind: str, message: str, request: Request, **extra: Any) -> dict[str, Any]:
    return {
        "error": {
            "type": kind,
            "message": message,
            "request_id": getattr(request.state, "request_id", None),
            **extra,
        }
    }


def _vault_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, errors.VaultError)
    status = status_of(error)
    headers = {"WWW-Authenticate": 'Bearer realm="vault"'} if status == 401 else None
    if status >= 500:
        log.error("request_failed", error=type(error).__name__, request_id=request.state.request_id)
    message = str(error)
    if isinstance(error, errors.InvalidValue) and error.field not in declared_names(request):
        # A field name the client made up (`{"fields": {"13912345678": …}}`): not echoed.
        message = f"invalid value for a field not in the field catalogue: {error.reason}"
        message = message.replace(error.field, KEY)
    return JSONResponse(
        error_body(type(error).__name__, message, request), status_code=status, headers=headers
    )


UNKNOWN_KEY = "<unknown key>"  # a key the client sent that the API does not declare
KEY = "<key>"  # a key of the client's inside a declared object (e.g. of "fields")
LOCATIONS = frozenset({"body", "query", "header", "path", "cookie", "[key]"})


def declared_names(request: Request) -> frozenset[str]:
    """Every name the API itself declares: the properties of its schemas, its parameters and
    the field catalogue's names. Any other key in an error came from the client, and may be a
    phone number or a name: it is never echoed."""
    app = request.app
    names: frozenset[str] | None = getattr(app.state, "declared_names", None)
    if names is None:
        schema = app.openapi()
        found: set[str] = set(LOCATIONS)
        for component in schema.get("components", {}).get("schemas", {}).values():
            found |= set(component.get("properties", {}))
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict):
                    found |= {p["name"] for p in operation.get("parameters", []) if "name" in p}
        vault = getattr(app.state, "vault", None)
        if vault is not None:
            found |= set(vault.catalogue)
        names = frozenset(found)
        app.state.declared_names = names
    return names


def _problem(item: Mapping[str, Any], declared: frozenset[str]) -> dict[str, Any]:
    """Where and what, as pydantic says, without the client's keys and values."""
    loc = list(item.get("loc", ()))
    kind = str(item.get("type", ""))
    shown: list[str] = []
    withheld: list[str] = []
    for n, part in enumerate(loc):
        if isinstance(part, int) or part in declared:
            shown.append(str(part))
            continue
        withheld.append(str(part))
        last = n == len(loc) - 1
        shown.append(UNKNOWN_KEY if kind == "extra_forbidden" and last else KEY)
    message = str(item.get("msg", ""))
    given = item.get("input")
    echoed = [str(given)] if isinstance(given, str | int | float) else []
    if any(text and text in message for text in (*echoed, *withheld)):
        message = "invalid value"
    return {"loc": shown, "msg": message, "type": kind}


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    declared = declared_names(request)
    problems = [_problem(item, declared) for item in error.errors()]
    if any(problem["type"] == "json_invalid" for problem in problems):
        return JSONResponse(
            error_body("MalformedJSON", "the request body is not valid JSON", request),
            status_code=400,
        )
    return JSONResponse(
        error_body(
            "InvalidRequest", "the request does not match the API", request, problems=problems
        ),
        status_code=422,
    )


def _allowed_methods(request: Request) -> str:
    """Every method of every route on this path (FastAPI makes one route per method, and
    Starlette's own ``Allow`` names only the first)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "<none>"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    kind = {
        404: "NotFound",
        405: "MethodNotAllowed",
        413: "BodyTooLarge",
        415: "UnsupportedMediaType",
    }.get(error.status_code, "HTTPError")
    return JSONResponse(
        error_body(kind, str(error.detail), request),
        status_code=error.status_code,
        headers=headers,
    )


def _database_errors() -> tuple[type[Exception], ...]:
    """The database's own errors: SQLAlchemy's, and the drivers' (the audit log and bulk
    writes go straight to the driver)."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    found: list[type[Exception]] = [SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover  (PostgreSQL is optional)
        pass
    else:
        found.append(psycopg.Error)
    return tuple(found)


DATABASE_ERRORS = _database_errors()


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    # The type only: an exception's text may carry what it was handed.
    log.error("request_crashed", error=type(error).__name__, request_id=request.state.request_id)
    if isinstance(error, DATABASE_ERRORS):
        # The store (or its audit log) failed: nothing was answered from it. Unavailable, not a
        # bug of the request; the database's message (it may quote values) is not passed on.
        return JSONResponse(
            error_body("StoreError", "the vault's database failed this request", request),
            status_code=503,
        )
    return JSONResponse(
        error_body("InternalError", "the vault failed to answer this request", request),
        status_code=500,
    )


def _rate_limited(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RateLimited)
    return JSONResponse(
        error_body("RateLimited", str(error), request),
        status_code=429,
        headers={"Retry-After": RateLimiter.retry_after(error.wait)},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(errors.VaultError, _vault_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
